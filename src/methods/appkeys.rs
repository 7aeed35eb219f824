//! `org/appkeys/*`: application keys. A key is shown once, at creation; only its SHA-256 digest is stored.
//! Users manage their own keys; admins manage every key of the org.

use serde_json::json;

use crate::auth;
use crate::db::{params, Row};
use crate::error::{Error, Result};
use crate::handler::Action::{Added, Edited};
use crate::handler::ObjectKind::Appkey;
use crate::handler::{Change, Ctx, Params};
use crate::methods::{check_version, delete_owned, listed, owned, owner_within_quota, IdParam, ListParams, Table};
use crate::model::{self, AppKey, Deleted, Records};
use crate::params::{Data, Patch};
use crate::store::Tx;

/// The longest app key name, in characters: it names the application in every log line and remembered caller.
const NAME_MAX: usize = 64;

const COLS: &str = "id, name, description, prefix, enabled, disabledreason, owner_id, created, lastused, version";

fn record(r: &Row) -> Result<AppKey> {
    Ok(AppKey {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        prefix: r.get(3)?,
        enabled: r.get(4)?,
        disabledreason: r.get(5)?,
        owner: r.get(6)?,
        created: r.get(7)?,
        lastused: r.get(8)?,
        version: r.get(9)?,
        key: None,
    })
}

/// The appkeys a caller may see: their own, or an admin's every one of the org.
const TABLE: Table = Table {
    cols: COLS,
    from: "appkeys t",
    order: "t.id",
    key: "appkeys",
    what: "appkey",
};

/// The appkey `id`, if the caller may see it.
fn load(ctx: &Ctx, id: i64) -> Result<AppKey> {
    let mut one = get(ctx, ListParams::one(id))?;
    one.records.0.pop().ok_or_else(|| Error::not_found("appkey"))
}

/// Inserts a key and returns its id and the key itself (lower case), the only time it exists in clear.
pub fn insert(
    tx: &Tx,
    org_id: i64,
    owner_id: i64,
    name: &str,
    description: Option<&str>,
    now: i64,
) -> Result<(i64, String)> {
    let key = auth::new_appkey();
    let id = tx.query_row(
        "INSERT INTO appkeys (org_id, owner_id, name, description, digest, prefix, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        params![
            org_id,
            owner_id,
            name,
            description,
            auth::digest(&key),
            auth::prefix(&key),
            now
        ],
        |r| r.get::<i64>(0),
    )?;
    Ok((id, key))
}

pub struct AddParams {
    name: String,
    description: Option<String>,
}

impl Params for AddParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(AddParams {
            name: checked_name(d.req_str("name")?)?,
            description: d.str("description")?,
        })
    }
}

fn checked_name(name: String) -> Result<String> {
    match name.chars().count() > NAME_MAX {
        true => Err(Error::param("name", format!("at most {NAME_MAX} characters"))),
        false => Ok(name),
    }
}

pub fn add(ctx: &Ctx, p: AddParams) -> Result<Records<AppKey>> {
    let (id, key) = insert(
        ctx.tx,
        ctx.org(),
        owner_within_quota(ctx, "appkeys", "owner_id", ctx.settings.max_appkeys_per_user, "app key")?,
        &p.name,
        p.description.as_deref(),
        ctx.now,
    )?;
    let mut rec = load(ctx, id)?;
    ctx.log(Change::new(Appkey.id(id), Added, format!("appkey {} added", p.name)).after(&rec))?;
    rec.key = Some(key);
    Ok(Records(vec![rec]))
}

/// The keys the caller may see by id (or the one `id`); with `page` or `perpage`, a page.
pub fn get(ctx: &Ctx, p: ListParams) -> Result<model::List<AppKey>> {
    listed(ctx, owned(ctx, "t.owner_id = ?"), &TABLE, &p, record)
}

pub struct EditParams {
    id: i64,
    version: Option<i64>,
    name: Option<String>,
    description: Patch<String>,
    enabled: Option<bool>,
    disabledreason: Patch<String>,
}

impl Params for EditParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(EditParams {
            id: d.req_id("id")?,
            version: d.int("version")?,
            name: d.str("name")?.map(checked_name).transpose()?,
            description: d.patch_str("description")?,
            enabled: d.bool("enabled")?,
            disabledreason: d.patch_str("disabledreason")?,
        })
    }
}

/// Edits a key. Disabling takes effect on the next request: every call looks its key up afresh.
pub fn edit(ctx: &Ctx, p: EditParams) -> Result<Records<AppKey>> {
    let before = load(ctx, p.id)?;
    check_version(ctx, "appkeys", p.id, p.version)?;
    if let Some(name) = &p.name {
        ctx.tx
            .execute("UPDATE appkeys SET name = ?1 WHERE id = ?2", params![name, p.id])?;
    }
    for (col, patch) in [("description", &p.description), ("disabledreason", &p.disabledreason)] {
        let value = match patch {
            Patch::Keep => continue,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        };
        ctx.tx.execute(
            &format!("UPDATE appkeys SET {col} = ?1 WHERE id = ?2"),
            params![value, p.id],
        )?;
    }
    if let Some(enabled) = p.enabled {
        ctx.tx
            .execute("UPDATE appkeys SET enabled = ?1 WHERE id = ?2", params![enabled, p.id])?;
    }
    let after = ctx
        .tx
        .query_opt(
            &format!("SELECT {COLS} FROM appkeys WHERE id = ?1"),
            params![p.id],
            record,
        )?
        .ok_or_else(|| Error::not_found("appkey"))?;
    let changes = json!({"before": before, "after": after});
    ctx.log(
        Change::new(Appkey.id(p.id), Edited, "appkey edited")
            .detail(changes)
            .before(&before)
            .after(&after),
    )?;
    Ok(Records(vec![after]))
}

pub fn delete(ctx: &Ctx, p: IdParam) -> Result<Records<Deleted>> {
    let before = load(ctx, p.id)?;
    delete_owned(ctx, "appkeys", p, Appkey, &before)
}
