//! The method table: every method of the API is one line here (wire name, who may call it, read or write,
//! handler). Both front doors reach the handlers only through this table and `dispatch`.

pub mod addresses;
pub mod appkeys;
pub mod backups;
pub mod changes;
pub mod dhcpranges;
pub mod export;
pub mod fields;
pub mod general;
pub mod groups;
pub mod import;
pub mod org;
pub mod output;
pub mod search;
pub mod space;
pub mod subnets;
pub mod tokens;
pub mod users;
pub mod webhooks;

use serde::Serialize;

use crate::db::{self, params, Row, Sql, ToParam, Tx};

use crate::error::{Code, Error, Result};
use crate::handler::{call, Access, Action, Change, Ctx, Kind, Level, Method, ObjectKind, Params};
use crate::model::{self, Deleted, Records, Stamps};
use crate::params::Data;

const READ: Access = Access::User(Level::Readonly);
const STANDARD: Access = Access::User(Level::Standard);
const ADMIN: Access = Access::User(Level::Admin);

#[rustfmt::skip]
pub static METHODS: &[Method] = &[
    Method { name: "ping", access: Access::AppKey, kind: Kind::Read, prepare: |d| call(general::ping, d) },
    Method { name: "version", access: Access::AppKey, kind: Kind::Read, prepare: |d| call(general::version, d) },
    Method { name: "userdata", access: READ, kind: Kind::Read, prepare: |d| call(general::userdata, d) },

    Method { name: "org/info", access: READ, kind: Kind::Read, prepare: |d| call(org::info, d) },
    Method { name: "org/edit", access: ADMIN, kind: Kind::Write, prepare: |d| call(org::edit, d) },
    Method { name: "org/delete", access: ADMIN, kind: Kind::Write, prepare: |d| call(org::delete, d) },
    Method { name: "org/logs", access: ADMIN, kind: Kind::Read, prepare: |d| call(org::logs, d) },

    Method { name: "org/users/get", access: READ, kind: Kind::Read, prepare: |d| call(users::get, d) },
    Method { name: "org/users/add", access: ADMIN, kind: Kind::Write, prepare: |d| call(users::add, d) },
    Method { name: "org/users/edit", access: READ, kind: Kind::Write, prepare: |d| call(users::edit, d) },

    Method { name: "org/appkeys/add", access: READ, kind: Kind::Write, prepare: |d| call(appkeys::add, d) },
    Method { name: "org/appkeys/get", access: READ, kind: Kind::Read, prepare: |d| call(appkeys::get, d) },
    Method { name: "org/appkeys/edit", access: READ, kind: Kind::Write, prepare: |d| call(appkeys::edit, d) },
    Method { name: "org/appkeys/delete", access: READ, kind: Kind::Write, prepare: |d| call(appkeys::delete, d) },

    Method { name: "org/tokens/add", access: READ, kind: Kind::Write, prepare: |d| call(tokens::add, d) },
    Method { name: "org/tokens/get", access: READ, kind: Kind::Read, prepare: |d| call(tokens::get, d) },
    Method { name: "org/tokens/delete", access: READ, kind: Kind::Write, prepare: |d| call(tokens::delete, d) },

    Method { name: "groups/get", access: READ, kind: Kind::Read, prepare: |d| call(groups::get, d) },
    Method { name: "groups/add", access: STANDARD, kind: Kind::Write, prepare: |d| call(groups::add, d) },
    Method { name: "groups/edit", access: STANDARD, kind: Kind::Write, prepare: |d| call(groups::edit, d) },
    Method { name: "groups/delete", access: STANDARD, kind: Kind::Write, prepare: |d| call(groups::delete, d) },

    Method { name: "backups/get", access: Access::Operator, kind: Kind::Read, prepare: |d| call(backups::get, d) },
    Method { name: "backups/add", access: Access::Operator, kind: Kind::Read, prepare: |d| call(backups::add, d) },
    Method { name: "backups/verify", access: Access::Operator, kind: Kind::Read, prepare: |d| call(backups::verify, d) },
    Method { name: "backups/restore", access: Access::Operator, kind: Kind::Replace, prepare: |d| call(backups::restore, d) },

    Method { name: "subnets/get", access: READ, kind: Kind::Read, prepare: |d| call(subnets::get, d) },
    Method { name: "subnets/add", access: STANDARD, kind: Kind::Write, prepare: |d| call(subnets::add, d) },
    Method { name: "subnets/edit", access: STANDARD, kind: Kind::Write, prepare: |d| call(subnets::edit, d) },
    Method { name: "subnets/delete", access: STANDARD, kind: Kind::Write, prepare: |d| call(subnets::delete, d) },
    Method { name: "subnets/massdelete", access: STANDARD, kind: Kind::Write, prepare: |d| call(subnets::massdelete, d) },
    Method { name: "subnets/split", access: STANDARD, kind: Kind::Write, prepare: |d| call(subnets::split, d) },
    Method { name: "subnets/join", access: STANDARD, kind: Kind::Write, prepare: |d| call(subnets::join, d) },
    Method { name: "subnets/available", access: READ, kind: Kind::Read, prepare: |d| call(subnets::available, d) },

    Method { name: "subnets/fields/get", access: READ, kind: Kind::Read, prepare: |d| call(fields::get, d) },
    Method { name: "subnets/fields/add", access: STANDARD, kind: Kind::Write, prepare: |d| call(fields::add, d) },
    Method { name: "subnets/fields/edit", access: STANDARD, kind: Kind::Write, prepare: |d| call(fields::edit, d) },
    Method { name: "subnets/fields/delete", access: STANDARD, kind: Kind::Write, prepare: |d| call(fields::delete, d) },

    Method { name: "ipaddress/get", access: READ, kind: Kind::Read, prepare: |d| call(addresses::get, d) },
    Method { name: "ipaddress/add", access: STANDARD, kind: Kind::Write, prepare: |d| call(addresses::add, d) },
    Method { name: "ipaddress/edit", access: STANDARD, kind: Kind::Write, prepare: |d| call(addresses::edit, d) },
    Method { name: "ipaddress/delete", access: STANDARD, kind: Kind::Write, prepare: |d| call(addresses::delete, d) },
    Method { name: "ipaddress/massdelete", access: STANDARD, kind: Kind::Write, prepare: |d| call(addresses::massdelete, d) },
    Method { name: "ipaddress/next", access: READ, kind: Kind::Read, prepare: |d| call(addresses::next, d) },
    Method { name: "ipaddress/available", access: READ, kind: Kind::Read, prepare: |d| call(addresses::available, d) },

    Method { name: "dhcpranges/get", access: READ, kind: Kind::Read, prepare: |d| call(dhcpranges::get, d) },
    Method { name: "dhcpranges/add", access: STANDARD, kind: Kind::Write, prepare: |d| call(dhcpranges::add, d) },
    Method { name: "dhcpranges/edit", access: STANDARD, kind: Kind::Write, prepare: |d| call(dhcpranges::edit, d) },
    Method { name: "dhcpranges/delete", access: STANDARD, kind: Kind::Write, prepare: |d| call(dhcpranges::delete, d) },

    Method { name: "export/get", access: READ, kind: Kind::Read, prepare: |d| call(export::get, d) },
    Method { name: "import/run", access: STANDARD, kind: Kind::Write, prepare: |d| call(import::run, d) },
    Method { name: "output/get", access: READ, kind: Kind::Read, prepare: |d| call(output::get, d) },

    Method { name: "search/ip", access: READ, kind: Kind::Read, prepare: |d| call(search::ip, d) },
    Method { name: "search/find", access: READ, kind: Kind::Read, prepare: |d| call(search::find, d) },

    Method { name: "changes/get", access: ADMIN, kind: Kind::Poll, prepare: |d| call(changes::get, d) },
    Method { name: "webhooks/add", access: ADMIN, kind: Kind::Write, prepare: |d| call(webhooks::add, d) },
    Method { name: "webhooks/get", access: ADMIN, kind: Kind::Read, prepare: |d| call(webhooks::get, d) },
    Method { name: "webhooks/edit", access: ADMIN, kind: Kind::Write, prepare: |d| call(webhooks::edit, d) },
    Method { name: "webhooks/delete", access: ADMIN, kind: Kind::Write, prepare: |d| call(webhooks::delete, d) },
    Method { name: "webhooks/deliveries", access: ADMIN, kind: Kind::Read, prepare: |d| call(webhooks::deliveries, d) },
    Method { name: "webhooks/redeliver", access: ADMIN, kind: Kind::Write, prepare: |d| call(webhooks::redeliver, d) },
];

/// The parameters of methods that take one required `id`.
pub struct IdParam {
    pub id: i64,
    /// The version the caller read the record at, to delete it only as it was (see [`check_version`]).
    pub version: Option<i64>,
}

impl Params for IdParam {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(IdParam {
            id: d.req_id("id")?,
            version: d.int("version")?,
        })
    }
}

/// Refuses to change record `id` of `table` when the caller named the version it read it at (`version`, REST's
/// `If-Match`) and the record has moved on since: `precondition_failed`, with the version it has now. Checked in
/// the write's own transaction before anything changes, so a refused call changes nothing. Call it once the record
/// was found in the caller's org: it reads by id alone.
pub fn check_version(ctx: &Ctx, table: &str, id: i64, expected: Option<i64>) -> Result<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let current: i64 = ctx.tx.query_row(
        &format!("SELECT version FROM {table} WHERE id = ?1"),
        params![id],
        |r| r.get(0),
    )?;
    if current == expected {
        return Ok(());
    }
    Err(Error::new(
        Code::PreconditionFailed,
        format!("the record is at version {current}, not {expected}: it changed since it was read"),
    )
    .with_data(serde_json::json!({"version": current})))
}

/// The parameters of methods that take an optional `id` (one record, or all of them).
pub struct OptIdParam {
    pub id: Option<i64>,
}

impl Params for OptIdParam {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(OptIdParam { id: d.id("id")? })
    }
}

/// The parameters of a list method that takes an optional `id` (one record, or all of them) and paging.
pub struct ListParams {
    pub id: Option<i64>,
    pub paging: Paging,
}

impl ListParams {
    /// Record `id` alone, unpaged.
    pub fn one(id: i64) -> ListParams {
        ListParams {
            id: Some(id),
            paging: Paging {
                page: 1,
                perpage: 1,
                paged: false,
            },
        }
    }
}

impl Params for ListParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(ListParams {
            id: d.id("id")?,
            paging: Paging::decode(d)?,
        })
    }
}

/// What [`listed`] reads: columns, tables (the main one aliased `t`) and order, and how the reply names the records
/// (`key`) and a missing one (`what`).
pub struct Table {
    pub cols: &'static str,
    pub from: &'static str,
    pub order: &'static str,
    pub key: &'static str,
    pub what: &'static str,
}

/// The records of `table` that `filters` match, or the one `p.id` (`not_found` when it matches none), with
/// paging a page of them, read with `LIMIT`/`OFFSET` in the order of an index ([`List::run`]).
pub fn listed<T>(
    ctx: &Ctx,
    mut filters: List,
    table: &Table,
    p: &ListParams,
    record: fn(&Row) -> Result<T>,
) -> Result<model::List<T>> {
    if let Some(id) = p.id {
        filters.and("t.id = ?", id);
    }
    let (found, total) = filters.run(ctx, table.cols, table.from, table.order, &p.paging, record)?;
    if p.id.is_some() && total == 0 {
        return Err(Error::not_found(table.what));
    }
    Ok(list_reply(&p.paging, total, table.key, found))
}

/// The stamp columns of a record table aliased `t`, joined to its last modifier as `m`, and the record's version;
/// read by [`stamps_at`].
pub fn stamp_cols(t: &str, m: &str) -> String {
    format!("{t}.modby_id, {t}.modifiedat, {t}.modby_name, {m}.email, {m}.realname, {t}.created, {t}.version")
}

/// The number of columns in a list of column expressions with no comma inside one.
pub const fn column_count(cols: &str) -> usize {
    let (bytes, mut i, mut n) = (cols.as_bytes(), 0, 1);
    while i < bytes.len() {
        if bytes[i] == b',' {
            n += 1;
        }
        i += 1;
    }
    n
}

/// The stamps read from [`stamp_cols`] at column `at` onwards.
pub fn stamps_at(r: &Row, at: usize) -> Result<Stamps> {
    Ok(Stamps {
        userid: r.get(at)?,
        modifiedat: r.get(at + 1)?,
        user: r.get(at + 2)?,
        email: r.get(at + 3)?,
        realname: r.get(at + 4)?,
        created: r.get(at + 5)?,
        version: r.get(at + 6)?,
    })
}

/// The reply of a delete: one `{id, deleted}` record per deleted id.
pub fn deleted(ids: &[i64]) -> Records<Deleted> {
    Records(ids.iter().map(|&id| Deleted { id, deleted: true }).collect())
}

/// The owner a caller's view of app keys and tokens is limited to: admins see the whole org (`None`).
fn owner_filter(ctx: &Ctx) -> Option<i64> {
    match ctx.caller.level {
        Level::Admin => None,
        _ => Some(ctx.caller.user_id.unwrap_or(0)),
    }
}

/// The filter of a list of app keys or tokens: the caller's org, and unless an admin asks, the owner
/// (`owner_cond`, with one `?`).
pub fn owned(ctx: &Ctx, owner_cond: &str) -> List {
    let mut filters = List::new("t.org_id = ?", ctx.org());
    if let Some(owner) = owner_filter(ctx) {
        filters.and(owner_cond, owner);
    }
    filters
}

/// Deletes app key or token `p.id` (of `table`, a constant of the callers), which the caller read as `before`
/// through their own view (so it exists and is theirs to delete); the feed keeps `before`.
pub fn delete_owned(
    ctx: &Ctx,
    table: &str,
    p: IdParam,
    kind: ObjectKind,
    before: &impl Serialize,
) -> Result<Records<Deleted>> {
    check_version(ctx, table, p.id, p.version)?;
    ctx.tx
        .execute(&format!("DELETE FROM {table} WHERE id = ?1"), params![p.id])?;
    let what = kind.as_str();
    ctx.log(Change::new(kind.id(p.id), Action::Deleted, format!("{what} deleted")).before(before))?;
    Ok(deleted(&[p.id]))
}

/// The user who will own a new app key or token; an `API_TOKENS` operator token is no user.
pub fn owner(ctx: &Ctx) -> Result<i64> {
    ctx.caller.user_id.ok_or_else(|| {
        Error::new(
            crate::error::Code::AccessDenied,
            "an operator token is not a user and cannot own credentials",
        )
    })
}

/// The most records one reply without paging may hold, and the most records one call may delete: a call past it
/// is refused (`too_large`) after reading one record more, never after loading everything.
pub const MAX_RECORDS: usize = 5000;

/// The `LIMIT` of an unpaged list: one row more than [`MAX_RECORDS`]. A constant in the statement's text, not a bound
/// `LIMIT ?`, which SQLite plans far worse (see [`List::run`]).
pub const UNPAGED_LIMIT: &str = " LIMIT 5001";

/// The rows of a list without paging, read one by one: more than [`MAX_RECORDS`] is refused ([`too_many`]) as soon
/// as the row past the bound is read. A statement that sorts should also say `LIMIT` of one row more, so that
/// SQLite's sorter keeps no more rows than that either.
pub fn capped<'s, T>(
    tx: &Tx,
    sql: impl Into<Sql<'s>>,
    params: &[&dyn ToParam],
    mut f: impl FnMut(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut over = false;
    tx.each(sql, params, |r| {
        over = out.len() == MAX_RECORDS;
        if !over {
            out.push(f(r)?);
        }
        Ok(!over)
    })?;
    match over {
        true => Err(too_many()),
        false => Ok(out),
    }
}

/// The refusal of a list without paging that matches more than [`MAX_RECORDS`] records.
pub fn too_many() -> Error {
    Error::too_large(
        format!("more than {MAX_RECORDS} records match: ask for a page (page, perpage) or narrow the filters"),
        MAX_RECORDS,
    )
}

/// The refusal of a delete that would take more than [`MAX_RECORDS`] records of a kind (address records, subnets,
/// groups) with it: one call's transaction holds up every other org's writes for as long as it runs.
pub fn too_many_deleted() -> Error {
    Error::too_large(
        format!("one call deletes at most {MAX_RECORDS} address records, subnets or groups: delete in parts"),
        MAX_RECORDS,
    )
}

/// [`owner`], once it is checked that they own fewer than `max` rows of `table` (app keys or tokens; `owner_col`
/// names their owner, and both are constants of the callers): the quota that keeps one user from multiplying
/// their credentials. The check and the insert that follows share the writer's transaction.
pub fn owner_within_quota(ctx: &Ctx, table: &str, owner_col: &str, max: u32, what: &str) -> Result<i64> {
    let user = owner(ctx)?;
    let owned: i64 = ctx.tx.query_row(
        &format!("SELECT COUNT(*) FROM {table} WHERE org_id = ?1 AND {owner_col} = ?2"),
        params![ctx.org(), user],
        |r| r.get(0),
    )?;
    if owned >= i64::from(max) {
        return Err(Error::new(
            crate::error::Code::QuotaExceeded,
            format!("a user may own at most {max} {what}s; delete one first"),
        ));
    }
    Ok(user)
}

/// The `page` and `perpage` parameters of a list method: either makes the reply a page (see [`List::reply`]).
pub struct Paging {
    pub page: i64,
    pub perpage: i64,
    pub paged: bool,
}

impl Paging {
    pub fn decode(d: &mut crate::params::Data) -> Result<Paging> {
        let paged = d.has("page") || d.has("perpage");
        Ok(Paging {
            page: d.page("page")?,
            perpage: d.per_page("perpage", 50, 1000)?,
            paged,
        })
    }
}

/// A filtered, ordered, optionally paginated list query over `from` (which names the main table `t`).
pub struct List {
    pub conds: Vec<String>,
    pub args: Vec<db::Value>,
}

impl List {
    /// Starts with the filter that keeps the list within the caller's org, which every list has: its org, or a
    /// parent record already found in it (a subnet's field definitions).
    pub fn new(org_cond: &str, org: i64) -> List {
        List {
            conds: vec![org_cond.to_string()],
            args: vec![db::Value::Int(org)],
        }
    }

    /// Adds `cond` (with one `?`) bound to `value`.
    pub fn and(&mut self, cond: &str, value: impl Into<db::Value>) {
        self.conds.push(cond.to_string());
        self.args.push(value.into());
    }

    /// Runs the query and, when paged, the count. Returns the records and the total.
    pub fn run<T>(
        &self,
        ctx: &Ctx,
        cols: &str,
        from: &str,
        order: &str,
        paging: &Paging,
        record: fn(&Row) -> Result<T>,
    ) -> Result<(Vec<T>, i64)> {
        let cond = self.conds.join(" AND ");
        let mut args = self.args.clone();
        // Unpaged, one more row than a reply may hold tells that there are too many: the work stops there, and a
        // sort keeps no more rows than that. (A constant: SQLite plans a bound `LIMIT ?` of a point lookup far
        // worse, some 260k instructions per `ipaddress/get {"id"}` instead of 100k.)
        let limit = if paging.paged {
            args.push(paging.perpage.into());
            args.push(((paging.page - 1).saturating_mul(paging.perpage)).into());
            " LIMIT ? OFFSET ?"
        } else {
            UNPAGED_LIMIT
        };
        let rows = capped(
            ctx.tx,
            &format!("SELECT {cols} FROM {from} WHERE {cond} ORDER BY {order}{limit}"),
            &db::param_list(&args),
            record,
        )?;
        let total = if paging.paged {
            ctx.tx.query_row(
                &format!("SELECT count(*) FROM {from} WHERE {cond}"),
                &db::param_list(&self.args),
                |r| r.get(0),
            )?
        } else {
            rows.len() as i64
        };
        Ok((rows, total))
    }

    /// [`List::run`] for records that join other tables (`from`, the main table `t` first): a page is read as the
    /// ids of its records first, from `table` alone (`subnets t`) in `order`, then those records with their joins,
    /// put back in that order. With `LIMIT … OFFSET n` on the whole join, both engines build, join and drop the n
    /// records before the page (page 150 of 10,000 networks: 7,500 of them). The filters name `t`'s columns only.
    /// Unpaged, the same as [`List::run`].
    #[allow(clippy::too_many_arguments)]
    pub fn run_page_first<T>(
        &self,
        ctx: &Ctx,
        cols: &str,
        from: &str,
        table: &str,
        order: &str,
        paging: &Paging,
        record: fn(&Row) -> Result<T>,
        id: fn(&T) -> i64,
    ) -> Result<(Vec<T>, i64)> {
        if !paging.paged {
            return self.run(ctx, cols, from, order, paging, record);
        }
        let cond = self.conds.join(" AND ");
        let mut args = self.args.clone();
        args.push(paging.perpage.into());
        args.push(((paging.page - 1).saturating_mul(paging.perpage)).into());
        let ids: Vec<i64> = ctx.tx.rows(
            &format!("SELECT t.id FROM {table} WHERE {cond} ORDER BY {order} LIMIT ? OFFSET ?"),
            &db::param_list(&args),
            |r| r.get(0),
        )?;
        let mut rows = Vec::new();
        if !ids.is_empty() {
            // The ids as one list parameter joined like a table (`db::Ids`), the page's records by their keys.
            let (sqlite, postgres) = (
                format!("SELECT {cols} FROM rarray(?1) a CROSS JOIN {from} WHERE t.id = a.value"),
                format!("SELECT {cols} FROM {from} WHERE t.id = ANY(?1)"),
            );
            rows = capped(
                ctx.tx,
                Sql::Dialects(&sqlite, &postgres),
                params![db::Ids::new(ids.iter().copied())],
                record,
            )?;
        }
        let place: std::collections::HashMap<i64, usize> = ids.iter().enumerate().map(|(at, id)| (*id, at)).collect();
        rows.sort_by_key(|r| place.get(&id(r)).copied());
        let total = ctx.tx.query_row(
            &format!("SELECT count(*) FROM {table} WHERE {cond}"),
            &db::param_list(&self.args),
            |r| r.get(0),
        )?;
        Ok((rows, total))
    }
}

/// A list reply: the records, or with paging a page of them named `key`, with the place of the page.
pub fn list_reply<T>(paging: &Paging, total: i64, key: &'static str, records: Vec<T>) -> model::List<T> {
    let mut list = model::List::of(records, key);
    if paging.paged {
        list.page = Some(model::Page {
            page: paging.page,
            perpage: paging.perpage,
            pages: (total + paging.perpage - 1) / paging.perpage,
            total,
        });
    }
    list
}

/// A text filter of a list (`hostname`, `name`…). A control character is refused: SQLite's `LIKE` ends a pattern
/// at a NUL, so `%00` would match every record.
pub fn filter_text(d: &mut crate::params::Data, key: &str) -> Result<Option<String>> {
    match d.str(key)? {
        Some(v) if v.chars().any(char::is_control) => Err(Error::param(key, "must not contain control characters")),
        v => Ok(v),
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern, so they match themselves.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unpaged_list_reads_one_row_past_the_bound() {
        assert_eq!(UNPAGED_LIMIT, format!(" LIMIT {}", MAX_RECORDS + 1));
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        assert!(names
            .iter()
            .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'/')));
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate method name in METHODS");
    }

    /// methods.md is the wire reference: every method of the table has its own `### name` section there, and the
    /// document names no method the table lacks.
    #[test]
    fn methods_md_documents_exactly_the_table() {
        let doc = include_str!("../methods.md");
        let documented: Vec<&str> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("### `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        for m in METHODS {
            assert!(
                documented.contains(&m.name),
                "methods.md has no '### `{}`' section",
                m.name
            );
        }
        for d in &documented {
            assert!(
                METHODS.iter().any(|m| m.name == *d),
                "methods.md documents '{d}', which the table lacks"
            );
        }
    }
}
