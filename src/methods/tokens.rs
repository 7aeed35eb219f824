//! `org/tokens/*`: REST API tokens, each bound to the user who made it (so it carries that user's org and
//! level). A token is shown once; only its SHA-256 digest is stored.

use serde_json::json;

use crate::auth;
use crate::db::{params, Row};
use crate::error::{Error, Result};
use crate::handler::{Action, Change, Ctx, ObjectKind, Params};
use crate::methods::{delete_owned, listed, owned, owner_within_quota, IdParam, ListParams, Table};
use crate::model::{self, Deleted, Records, Token};
use crate::params::Data;
use crate::store::Tx;

const COLS: &str = "id, description, prefix, user_id, created, expires, lastused, version";

fn record(r: &Row) -> Result<Token> {
    Ok(Token {
        id: r.get(0)?,
        description: r.get(1)?,
        prefix: r.get(2)?,
        user: r.get(3)?,
        created: r.get(4)?,
        expires: r.get(5)?,
        lastused: r.get(6)?,
        version: r.get(7)?,
        token: None,
    })
}

/// The tokens a caller may see: their own, or an admin's every one of the org.
const TABLE: Table = Table {
    cols: COLS,
    from: "tokens t",
    order: "t.id",
    key: "tokens",
    what: "token",
};

/// The token `id`, if the caller may see it.
fn load(ctx: &Ctx, id: i64) -> Result<Token> {
    let mut one = get(ctx, ListParams::one(id))?;
    one.records.0.pop().ok_or_else(|| Error::not_found("token"))
}

/// Inserts a token and returns its id and the token itself, the only time it exists in clear.
pub fn insert(
    tx: &Tx,
    org_id: i64,
    user_id: i64,
    description: Option<&str>,
    expires: Option<i64>,
    now: i64,
) -> Result<(i64, String)> {
    let token = auth::new_token()?;
    let id = tx.query_row(
        "INSERT INTO tokens (org_id, user_id, description, digest, prefix, created, expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        params![
            org_id,
            user_id,
            description,
            auth::digest(&token),
            auth::prefix(&token),
            now,
            expires
        ],
        |r| r.get::<i64>(0),
    )?;
    Ok((id, token))
}

pub struct AddParams {
    description: Option<String>,
    expires: Option<i64>,
}

impl Params for AddParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(AddParams {
            description: d.str("description")?,
            expires: d
                .str("expires")?
                .map(|t| super::addresses::parse_time(&t).map_err(|m| Error::param("expires", m)))
                .transpose()?,
        })
    }
}

pub fn add(ctx: &Ctx, p: AddParams) -> Result<Records<Token>> {
    if p.expires.is_some_and(|e| e <= ctx.now) {
        return Err(Error::param("expires", "must be a time in the future"));
    }
    let (id, token) = insert(
        ctx.tx,
        ctx.org(),
        owner_within_quota(ctx, "tokens", "user_id", ctx.settings.max_tokens_per_user, "token")?,
        p.description.as_deref(),
        p.expires,
        ctx.now,
    )?;
    let mut rec = load(ctx, id)?;
    ctx.log(
        Change::new(ObjectKind::Token.id(id), Action::Added, "token added")
            .detail(json!({"prefix": auth::prefix(&token)}))
            .after(&rec),
    )?;
    rec.token = Some(token);
    Ok(Records(vec![rec]))
}

/// The tokens the caller may see by id (or the one `id`); with `page` or `perpage`, a page.
pub fn get(ctx: &Ctx, p: ListParams) -> Result<model::List<Token>> {
    listed(ctx, owned(ctx, "t.user_id = ?"), &TABLE, &p, record)
}

pub fn delete(ctx: &Ctx, p: IdParam) -> Result<Records<Deleted>> {
    let before = load(ctx, p.id)?;
    delete_owned(ctx, "tokens", p, ObjectKind::Token, &before)
}
