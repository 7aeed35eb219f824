//! `dhcpranges/*`: the DHCP pools of a subnet. A range lies inside its subnet and never overlaps another range of
//! the same subnet (active or not); the addresses of an active range are not free for allocation.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::db::{params, Ids, Row, Sql, ToParam};
use crate::error::{Code, Error, Result};
use crate::handler::Action::{Added, Deleted, Edited};
use crate::handler::ObjectKind;
use crate::handler::{Change, Ctx, Params};
use crate::methods::space;
use crate::methods::subnets::{self, Subnet};
use crate::methods::{check_version, deleted, list_reply, stamp_cols, stamps_at, IdParam, List, Paging};
use crate::model::{self, DhcpRange, Records};
use crate::net;
use crate::params::{as_bool, Data, Patch};
use crate::store::cached_sql;

fn columns() -> &'static str {
    cached_sql!(format!(
        "t.id, t.subnet_id, s.family, t.start_ip, t.end_ip, t.description, t.is_active, {}",
        stamp_cols("t", "m")
    ))
}

/// CROSS JOIN keeps the ranges as the outer loop (see addresses.rs).
const FROM: &str = "dhcp_ranges t CROSS JOIN subnets s ON s.id = t.subnet_id LEFT JOIN users m ON m.id = t.modby_id";

/// Ranges by family, then start address.
const ORDER: &str = "s.family, t.start_ip, t.id";

/// The ranges of the caller's org that match `cond` (SQL over ranges `t` and subnets `s`; its parameters start at
/// `?2`), ordered by family, start address and id.
fn query(ctx: &Ctx, cond: &str, args: &[&dyn ToParam]) -> Result<Vec<DhcpRange>> {
    select(ctx, FROM, cond, args, "")
}

/// The first `limit` ranges of the subnets `ids` (of the caller's org) that overlap the keys `lo..=hi`: one index
/// seek per subnet, the ids joined as a `rarray` list on SQLite, an array on PostgreSQL.
pub fn overlapping(ctx: &Ctx, ids: Vec<i64>, lo: &[u8], hi: &[u8], limit: usize) -> Result<Vec<DhcpRange>> {
    let ids = Ids::new(ids);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (sqlite, postgres) = (
        statement(
            &format!("rarray(?2) a CROSS JOIN {FROM}"),
            "t.subnet_id = a.value AND t.start_ip <= ?4 AND t.end_ip >= ?3",
            " LIMIT ?5",
        ),
        statement(
            FROM,
            "t.subnet_id = ANY(?2) AND t.start_ip <= ?4 AND t.end_ip >= ?3",
            " LIMIT ?5",
        ),
    );
    let org = ctx.org();
    ctx.tx.rows(
        Sql::Dialects(&sqlite, &postgres),
        params![org, ids, lo, hi, limit],
        record,
    )
}

/// The ranges over `from` that match `cond`, in [`ORDER`], followed by `limit` (a `LIMIT` clause or nothing).
fn select(ctx: &Ctx, from: &str, cond: &str, args: &[&dyn ToParam], limit: &str) -> Result<Vec<DhcpRange>> {
    let org = ctx.org();
    let mut all: Vec<&dyn ToParam> = vec![&org];
    all.extend_from_slice(args);
    ctx.tx.rows(&statement(from, cond, limit), &all[..], record)
}

/// The statement of [`select`].
fn statement(from: &str, cond: &str, limit: &str) -> String {
    format!(
        "SELECT {} FROM {from} WHERE s.org_id = ?1 AND ({cond}) ORDER BY {ORDER}{limit}",
        columns()
    )
}

pub struct GetParams {
    id: Option<i64>,
    subnet: Option<i64>,
    by_id: bool,
    paging: Paging,
}

impl Params for GetParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(GetParams {
            id: d.id("id")?,
            subnet: d.id("subnet")?,
            by_id: match d.str("order")?.as_deref() {
                None | Some("address") => false,
                Some("id") => true,
                Some(_) => return Err(Error::param("order", "must be address or id")),
            },
            paging: Paging::decode(d)?,
        })
    }
}

/// Ranges by subnet family and start (or by id): one `id` (which must exist), a `subnet`'s, or all of the org;
/// with `page` or `perpage`, a page.
pub fn get(ctx: &Ctx, p: GetParams) -> Result<model::List<DhcpRange>> {
    let mut filters = List::new("s.org_id = ?", ctx.org());
    if let Some(subnet) = p.subnet {
        subnets::load(ctx, subnet)?;
        filters.and("t.subnet_id = ?", subnet);
    }
    if let Some(id) = p.id {
        filters.and("t.id = ?", id);
    }
    let order = if p.by_id { "t.id" } else { ORDER };
    let (found, total) = filters.run(ctx, columns(), FROM, order, &p.paging, record)?;
    if p.id.is_some() && p.subnet.is_none() && total == 0 {
        return Err(Error::not_found("DHCP range"));
    }
    Ok(list_reply(&p.paging, total, "dhcpranges", found))
}

pub struct AddParams {
    subnet: i64,
    start: IpAddr,
    end: IpAddr,
    description: Option<String>,
    is_active: bool,
}

impl Params for AddParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(AddParams {
            subnet: d.req_id("subnet")?,
            start: subnets::parse_ip("start_ip", &d.req_str("start_ip")?)?,
            end: subnets::parse_ip("end_ip", &d.req_str("end_ip")?)?,
            description: d.str("description")?,
            is_active: d.bool("is_active")?.unwrap_or(true),
        })
    }
}

pub fn add(ctx: &Ctx, p: AddParams) -> Result<model::List<DhcpRange>> {
    let s = subnets::load_holder(ctx, p.subnet)?;
    let (start, end) = check(ctx, &s, p.start, p.end, 0)?;
    let id = ctx.tx.query_row(
        "INSERT INTO dhcp_ranges (subnet_id, start_ip, end_ip, description, is_active, created, modifiedat, modby_id,
                                  modby_name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8) RETURNING id",
        params![
            s.id,
            &net::key_bytes(start)[..],
            &net::key_bytes(end)[..],
            p.description,
            p.is_active,
            ctx.now,
            ctx.caller.user_id,
            ctx.caller.username
        ],
        |r| r.get::<i64>(0),
    )?;
    space::recount(ctx, &s)?;
    let range = span((start, end), s.v4());
    let after = load(ctx, id)?;
    ctx.log(
        Change::new(
            ObjectKind::DhcpRange.id(id),
            Added,
            format!("DHCP range {range} added to subnet {}", s.net),
        )
        .detail(json!({"subnet": s.id, "range": range, "is_active": p.is_active}))
        .after(&after),
    )?;
    Ok(model::List::of(vec![after], "dhcpranges"))
}

pub struct EditParams {
    id: i64,
    version: Option<i64>,
    subnet: Option<i64>,
    start: Option<IpAddr>,
    end: Option<IpAddr>,
    description: Patch<String>,
    is_active: Patch<bool>,
}

impl Params for EditParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(EditParams {
            id: d.req_id("id")?,
            version: d.int("version")?,
            subnet: d.id("subnet")?,
            start: d
                .str("start_ip")?
                .map(|s| subnets::parse_ip("start_ip", &s))
                .transpose()?,
            end: d.str("end_ip")?.map(|s| subnets::parse_ip("end_ip", &s)).transpose()?,
            description: d.patch_str("description")?,
            is_active: match d.patch_str("is_active")? {
                Patch::Set(b) => Patch::Set(
                    as_bool(&Value::String(b)).ok_or_else(|| Error::param("is_active", "must be a boolean"))?,
                ),
                Patch::Keep => Patch::Keep,
                Patch::Clear => Patch::Clear,
            },
        })
    }
}

/// Edits a range. A new `subnet` moves it there; its (new or current) ends must lie inside that subnet.
pub fn edit(ctx: &Ctx, p: EditParams) -> Result<model::List<DhcpRange>> {
    let before = load(ctx, p.id)?;
    check_version(ctx, "dhcp_ranges", p.id, p.version)?;
    let (old, keys) = load_row(ctx, p.id)?;
    let s = match p.subnet {
        Some(id) if id != old.id => subnets::load_holder(ctx, id)?,
        _ => old.clone(),
    };
    let start = p.start.unwrap_or_else(|| old.addr(keys.0));
    let end = p.end.unwrap_or_else(|| old.addr(keys.1));
    let (start, end) = check(ctx, &s, start, end, p.id)?;
    let description = match p.description {
        Patch::Keep => before.description.clone(),
        Patch::Clear => None,
        Patch::Set(d) => Some(d),
    };
    // A cleared flag takes its default: active.
    let is_active = match p.is_active {
        Patch::Keep => before.is_active,
        Patch::Clear => true,
        Patch::Set(b) => b,
    };
    ctx.tx.execute(
        "UPDATE dhcp_ranges SET subnet_id = ?1, start_ip = ?2, end_ip = ?3, description = ?4, is_active = ?5,
                                modifiedat = ?6, modby_id = ?7, modby_name = ?8
         WHERE id = ?9",
        params![
            s.id,
            &net::key_bytes(start)[..],
            &net::key_bytes(end)[..],
            description,
            is_active,
            ctx.now,
            ctx.caller.user_id,
            ctx.caller.username,
            p.id
        ],
    )?;
    space::recount(ctx, &s)?;
    if s.id != old.id {
        space::recount(ctx, &old)?;
    }
    let after = load(ctx, p.id)?;
    ctx.log(
        Change::new(
            ObjectKind::DhcpRange.id(p.id),
            Edited,
            format!("DHCP range {} edited", span((start, end), s.v4())),
        )
        .detail(subnets::diff(&before, &after))
        .before(&before)
        .after(&after),
    )?;
    Ok(model::List::of(vec![after], "dhcpranges"))
}

pub fn delete(ctx: &Ctx, p: IdParam) -> Result<Records<model::Deleted>> {
    let (s, range) = load_row(ctx, p.id)?;
    check_version(ctx, "dhcp_ranges", p.id, p.version)?;
    let before = load(ctx, p.id)?;
    ctx.tx.execute("DELETE FROM dhcp_ranges WHERE id = ?1", params![p.id])?;
    space::recount(ctx, &s)?;
    let range = span(range, s.v4());
    ctx.log(
        Change::new(
            ObjectKind::DhcpRange.id(p.id),
            Deleted,
            format!("DHCP range {range} deleted from subnet {}", s.net),
        )
        .detail(json!({"subnet": s.id, "range": range}))
        .before(&before),
    )?;
    Ok(deleted(&[p.id]))
}

fn record(r: &Row) -> Result<DhcpRange> {
    let v4 = r.get::<i64>(2)? == 4;
    let addr = |i: usize| -> Result<String> {
        let k = net::bytes_key(r.blob(i)?).ok_or_else(|| Error::internal(format!("column {i}: bad address")))?;
        Ok(net::ip_text(net::from_key(k, v4)))
    };
    let subnet = r.get(1)?;
    Ok(DhcpRange {
        id: r.get(0)?,
        subnet,
        network_id: subnet,
        start_ip: addr(3)?,
        end_ip: addr(4)?,
        description: r.get(5)?,
        is_active: r.get(6)?,
        stamps: stamps_at(r, 7)?,
    })
}

/// One range of the caller's org, as a record.
fn load(ctx: &Ctx, id: i64) -> Result<DhcpRange> {
    query(ctx, "t.id = ?2", &[&id])?
        .pop()
        .ok_or_else(|| Error::not_found("DHCP range"))
}

/// One range of the caller's org: its subnet and its key range.
fn load_row(ctx: &Ctx, id: i64) -> Result<(Subnet, (u128, u128))> {
    let (subnet_id, start, end): (i64, Vec<u8>, Vec<u8>) = ctx
        .tx
        .query_opt(
            "SELECT r.subnet_id, r.start_ip, r.end_ip FROM dhcp_ranges r CROSS JOIN subnets s ON s.id = r.subnet_id
             WHERE r.id = ?1 AND s.org_id = ?2",
            params![id, ctx.org()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
        .ok_or_else(|| Error::not_found("DHCP range"))?;
    let s = subnets::load(ctx, subnet_id)?;
    match (net::bytes_key(&start), net::bytes_key(&end)) {
        (Some(a), Some(b)) => Ok((s, (a, b))),
        _ => Err(Error::internal(format!("DHCP range {id}: bad keys"))),
    }
}

/// Checks a range for subnet `s`: both ends inside, in order, and no overlap with another range of the subnet
/// (`except` is the range being edited). Returns the keys.
fn check(ctx: &Ctx, s: &Subnet, start: IpAddr, end: IpAddr, except: i64) -> Result<(u128, u128)> {
    for (field, ip) in [("start_ip", start), ("end_ip", end)] {
        if !s.contains(ip) {
            return Err(Error::param(
                field,
                format!("{ip} is not inside subnet {} ({})", s.id, s.net),
            ));
        }
    }
    let (a, b) = (net::key(start), net::key(end));
    if a > b {
        return Err(Error::param("end_ip", format!("{end} is below start_ip {start}")));
    }
    let rows = ctx.tx.rows(
        "SELECT id, start_ip, end_ip FROM dhcp_ranges
         WHERE subnet_id = ?1 AND id <> ?2 AND start_ip <= ?4 AND end_ip >= ?3 ORDER BY start_ip",
        params![s.id, except, net::key_bytes(a), net::key_bytes(b)],
        |r| Ok((r.get::<i64>(0)?, r.get::<Vec<u8>>(1)?, r.get::<Vec<u8>>(2)?)),
    )?;
    let mut conflicts = Map::new();
    for (id, x, y) in rows {
        if let (Some(x), Some(y)) = (net::bytes_key(&x), net::bytes_key(&y)) {
            conflicts.insert(id.to_string(), json!(span((x, y), s.v4())));
        }
    }
    if conflicts.is_empty() {
        Ok((a, b))
    } else {
        Err(Error::new(
            Code::Overlap,
            format!("{} overlaps another DHCP range of the subnet", span((a, b), s.v4())),
        )
        .with_data(Value::Object(conflicts)))
    }
}

/// A range as `start-end`, also when it holds one address.
fn span(r: (u128, u128), v4: bool) -> String {
    format!("{}-{}", net::from_key(r.0, v4), net::from_key(r.1, v4))
}
