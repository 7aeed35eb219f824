//! `ipaddress/*`: address records (hosts), and atomic allocation of the next free address.

use serde_json::Value;

use crate::dispatch::Ctx;
use crate::error::Result;

/// The address records of one subnet, by address.
pub fn records_of_subnet(_ctx: &Ctx, _subnet_id: i64) -> Result<Vec<Value>> {
    Ok(Vec::new())
}
