//! `ping`, `version` and `userdata`: liveness, the server's version, and who the caller is.

use crate::error::Result;
use crate::handler::{Ctx, Params};
use crate::methods::{org, users};
use crate::model::{Identity, Ping, Userdata, Version};
use crate::params::Data;

pub struct PingParams {
    time: Option<String>,
}

impl Params for PingParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(PingParams { time: d.str("time")? })
    }
}

pub fn ping(ctx: &Ctx, p: PingParams) -> Result<Ping> {
    Ok(Ping {
        pong: true,
        servertime: ctx.now,
        time: p.time,
    })
}

pub fn version(_: &Ctx, _: ()) -> Result<Version> {
    Ok(Version {
        version: "1.0",
        server: concat!("ipamd ", env!("CARGO_PKG_VERSION")),
    })
}

pub fn userdata(ctx: &Ctx, _: ()) -> Result<Userdata> {
    let user = match ctx.caller.user_id {
        Some(id) => Identity::User(users::load(ctx, id)?),
        None => Identity::Operator {
            id: (),
            username: ctx.caller.username.clone(),
            level: ctx.caller.level.as_str(),
        },
    };
    Ok(Userdata {
        user,
        org: org::load(ctx)?.name,
    })
}
