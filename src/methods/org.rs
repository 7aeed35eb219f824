//! `org/*`: the caller's organisation — its record and counts, renaming, deletion, and the audit log.

use serde_json::{json, Value};

use crate::db::{self, params, Row};
use crate::error::{Code, Error, Result};
use crate::handler::{Action, Change, Ctx, ObjectKind, Params};
use crate::methods::deleted;
use crate::model::{Deleted, LogEntry, LogPage, Org, OrgInfo, OrgName, Records};
use crate::params::{Data, Patch};

const COLS: &str = "id, identifier, description, created, operator";

fn record(r: &Row) -> Result<Org> {
    Ok(Org {
        name: OrgName {
            id: r.get(0)?,
            identifier: r.get(1)?,
            description: r.get(2)?,
        },
        created: r.get(3)?,
        operator: r.get(4)?,
    })
}

/// The caller's org.
pub fn load(ctx: &Ctx) -> Result<Org> {
    ctx.tx.query_row(
        &format!("SELECT {COLS} FROM orgs WHERE id = ?1"),
        params![ctx.org()],
        record,
    )
}

pub fn info(ctx: &Ctx, _: ()) -> Result<OrgInfo> {
    let org = load(ctx)?;
    ctx.tx.query_row(
        "SELECT (SELECT count(*) FROM users WHERE org_id = ?1),
                (SELECT count(*) FROM groups WHERE org_id = ?1),
                (SELECT count(*) FROM subnets WHERE org_id = ?1),
                (SELECT coalesce(sum(used), 0) FROM subnets WHERE org_id = ?1)",
        params![ctx.org()],
        |r| {
            Ok(OrgInfo {
                org,
                usercount: r.get(0)?,
                groupcount: r.get(1)?,
                subnetcount: r.get(2)?,
                ipcount: r.get(3)?,
            })
        },
    )
}

/// Checks and normalises an org identifier: `[a-z0-9._-]{1,64}`, compared case-insensitively.
pub fn valid_identifier(s: &str) -> Result<String> {
    let id = s.trim().to_ascii_lowercase();
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(id)
    } else {
        Err(Error::param(
            "identifier",
            "must be 1 to 64 of a-z, 0-9, '.', '_' and '-'",
        ))
    }
}

pub struct EditParams {
    description: Patch<String>,
    identifier: Option<String>,
}

impl Params for EditParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let identifier = d.str("identifier")?.map(|i| valid_identifier(&i)).transpose()?;
        Ok(EditParams {
            description: d.patch_str("description")?,
            identifier,
        })
    }
}

pub fn edit(ctx: &Ctx, p: EditParams) -> Result<Records<Org>> {
    let before = load(ctx)?;
    if let Some(identifier) = &p.identifier {
        let taken: bool = ctx.tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM orgs WHERE identifier = ?1 AND id <> ?2)",
            params![identifier, ctx.org()],
            |r| r.get(0),
        )?;
        if taken {
            return Err(Error::new(
                Code::Duplicate,
                format!("the identifier '{identifier}' is taken"),
            ));
        }
        ctx.tx.execute(
            "UPDATE orgs SET identifier = ?1 WHERE id = ?2",
            params![identifier, ctx.org()],
        )?;
    }
    match &p.description {
        Patch::Keep => {}
        Patch::Clear => {
            ctx.tx
                .execute("UPDATE orgs SET description = '' WHERE id = ?1", params![ctx.org()])?;
        }
        Patch::Set(description) => {
            ctx.tx.execute(
                "UPDATE orgs SET description = ?1 WHERE id = ?2",
                params![description, ctx.org()],
            )?;
        }
    }
    let after = load(ctx)?;
    let (b, a) = (&before.name, &after.name);
    let changes = json!({"identifier": [b.identifier, a.identifier], "description": [b.description, a.description]});
    ctx.log(
        Change::new(ObjectKind::Org.id(ctx.org()), Action::Edited, "organisation edited")
            .detail(changes)
            .before(&before)
            .after(&after),
    )?;
    Ok(Records(vec![after]))
}

pub struct DeleteParams {
    confirm: String,
}

impl Params for DeleteParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(DeleteParams {
            confirm: d.req_str("confirm")?,
        })
    }
}

/// Deletes the org and everything in it (the foreign keys cascade) in the call's one transaction.
pub fn delete(ctx: &Ctx, p: DeleteParams) -> Result<Records<Deleted>> {
    let org = load(ctx)?;
    if org.operator {
        return Err(Error::new(
            Code::Conflict,
            "the operator organisation cannot be deleted",
        ));
    }
    if !org.name.identifier.eq_ignore_ascii_case(p.confirm.trim()) {
        return Err(Error::param("confirm", "must be the organisation's identifier"));
    }
    ctx.tx.execute("DELETE FROM orgs WHERE id = ?1", params![ctx.org()])?;
    // The feed's rows have no foreign key (schema.sql, migration 13): an org id may be given again, and its new
    // owner must not read the old org's changes.
    ctx.tx
        .execute("DELETE FROM changes WHERE org_id = ?1", params![ctx.org()])?;
    tracing::info!(org = ctx.org(), respid = ctx.respid, "organisation deleted");
    Ok(deleted(&[ctx.org()]))
}

pub struct LogsParams {
    page: i64,
    perpage: i64,
    filters: Vec<(&'static str, db::Value)>,
}

impl Params for LogsParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let page = d.page("page")?;
        let perpage = d.per_page("perpage", 50, 500)?;
        let mut filters = Vec::new();
        for (key, sql) in [
            ("since", "time >= ?"),
            ("until", "time <= ?"),
            ("userid", "userid = ?"),
            ("objectid", "objectid = ?"),
        ] {
            if let Some(v) = d.int(key)? {
                filters.push((sql, db::Value::Int(v)));
            }
        }
        for (key, sql) in [("objecttype", "objecttype = ?"), ("method", "method = ?")] {
            if let Some(v) = d.str(key)? {
                filters.push((sql, db::Value::Text(v)));
            }
        }
        Ok(LogsParams { page, perpage, filters })
    }
}

/// The org's audit log, newest first, a page at a time.
pub fn logs(ctx: &Ctx, p: LogsParams) -> Result<LogPage> {
    let mut sql_where = String::from("org_id = ?");
    let mut args = vec![db::Value::Int(ctx.org())];
    for (cond, v) in p.filters {
        sql_where.push_str(" AND ");
        sql_where.push_str(cond);
        args.push(v);
    }
    let total: i64 = ctx.tx.query_row(
        &format!("SELECT count(*) FROM logs WHERE {sql_where}"),
        &db::param_list(&args),
        |r| r.get(0),
    )?;
    args.push(db::Value::Int(p.perpage));
    args.push(db::Value::Int((p.page - 1).saturating_mul(p.perpage)));
    let sql = format!(
        "SELECT id, time, userid, \"user\", application, respid, method, objecttype, objectid, summary, changes
         FROM logs WHERE {sql_where} ORDER BY id DESC LIMIT ? OFFSET ?"
    );
    let rows = ctx.tx.rows(&sql, &db::param_list(&args), |r| {
        let changes: Option<String> = r.get(10)?;
        Ok(LogEntry {
            id: r.get(0)?,
            time: r.get(1)?,
            userid: r.get(2)?,
            user: r.get(3)?,
            application: r.get(4)?,
            respid: r.get(5)?,
            method: r.get(6)?,
            objecttype: r.get(7)?,
            objectid: r.get(8)?,
            summary: r.get(9)?,
            changes: changes.and_then(|c| serde_json::from_str::<Value>(&c).ok()),
        })
    })?;
    Ok(LogPage {
        page: p.page,
        perpage: p.perpage,
        pages: (total + p.perpage - 1) / p.perpage,
        total,
        logs: Records(rows),
    })
}

/// Inserts an org; the identifier must be valid (see [`valid_identifier`]) and free.
pub fn insert(tx: &crate::store::Tx, identifier: &str, description: &str, operator: bool, now: i64) -> Result<i64> {
    let taken: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM orgs WHERE identifier = ?1)",
        params![identifier],
        |r| r.get(0),
    )?;
    if taken {
        return Err(Error::new(
            Code::Duplicate,
            format!("the identifier '{identifier}' is taken"),
        ));
    }
    let id = tx.query_row(
        "INSERT INTO orgs (identifier, description, operator, created) VALUES (?1, ?2, ?3, ?4) RETURNING id",
        params![identifier, description, operator, now],
        |r| r.get::<i64>(0),
    )?;
    Ok(id)
}

/// Whether any org exists: an empty database is initialised on first run.
pub fn any(tx: &crate::store::Tx) -> Result<bool> {
    tx.query_row("SELECT EXISTS(SELECT 1 FROM orgs)", params![], |r| r.get(0))
}

/// Every org, by id: `ipamd org list` (the command line's, never a caller's: a caller sees only its own org).
pub fn all(tx: &crate::store::Tx) -> Result<Vec<Org>> {
    crate::methods::capped(tx, &format!("SELECT {COLS} FROM orgs ORDER BY id"), params![], record)
}
