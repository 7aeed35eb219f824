//! `ping`, `version` and `userdata`: liveness, the server's version, and who the caller is.

use serde_json::{json, Value};

use crate::error::Result;
use crate::handler::{Ctx, Params};
use crate::methods::{org, users};
use crate::params::Data;

pub struct PingParams {
    time: Option<String>,
}

impl Params for PingParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(PingParams { time: d.str("time")? })
    }
}

pub fn ping(ctx: &Ctx, p: PingParams) -> Result<Value> {
    let mut out = json!({"pong": true, "servertime": ctx.now});
    if let Some(time) = p.time {
        out["time"] = Value::String(time);
    }
    Ok(out)
}

pub fn version(_: &Ctx, _: ()) -> Result<Value> {
    Ok(json!({"version": "1.0", "server": concat!("ipamd ", env!("CARGO_PKG_VERSION"))}))
}

pub fn userdata(ctx: &Ctx, _: ()) -> Result<Value> {
    let user = match ctx.caller.user_id {
        Some(id) => users::load(ctx, id)?,
        // An API_TOKENS operator token acts as the operator org's admin without being a user.
        None => {
            json!({"id": null, "username": ctx.caller.username, "level": ctx.caller.level.as_str()})
        }
    };
    let o = org::load(ctx)?;
    Ok(json!({"user": user, "org": {"id": o["id"], "identifier": o["identifier"], "description": o["description"]}}))
}
