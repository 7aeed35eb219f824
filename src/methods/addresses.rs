//! `ipaddress/*`: address records (hosts) inside subnets, and atomic allocation of the next free address.
//!
//! Allocation runs inside the call's write transaction, which the store serialises, so two calls never see the
//! same free address; the `UNIQUE (subnet_id, ip)` index is the backstop. Free space is found by walking the gaps
//! between runs of records and active DHCP ranges ([`space::with_taken`]), never by enumerating a subnet or its
//! records.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::LazyLock;

use ipnet::IpNet;
use serde_json::{json, Map, Value};

use crate::db::{params, Row, ToParam};
use crate::error::{Code, Error, Result};
use crate::handler::Action::{Added, Deleted, Edited};
use crate::handler::ObjectKind::Address;
use crate::handler::{Change, Ctx, Params};
use crate::methods::space;
use crate::methods::subnets::{self, Subnet};
use crate::methods::{
    capped, check_version, column_count, deleted, fields, filter_text, like_escape, list_reply, stamp_cols, stamps_at,
    too_many_deleted, IdParam, List, Paging, MAX_RECORDS, UNPAGED_LIMIT,
};
use crate::model::{self, Host, Records, MAX_BULK};
use crate::net;
use crate::params::{as_bool, Data, Patch};
use crate::store::cached_sql;

const STATUSES: [&str; 3] = ["active", "inactive", "reserved"];

/// The optional text columns of a record, in the order [`HostParams::texts`] holds them.
const TEXT_COLS: [&str; 4] = ["hostname", "cname", "discovery_source", "description"];

/// The latest `last_seen` accepted: 9999-12-31T23:59:59Z, so that every stored time renders as RFC 3339.
const MAX_TIME: i64 = 253_402_300_799;

/// The columns [`record`] reads, of records `t`, their subnets `s` and the users who last changed them `m`.
fn columns() -> &'static str {
    cached_sql!(columns_of("t", "s", "m"))
}

/// The columns [`record_at`] reads, of records aliased `t`, their subnets `s` and last modifiers `m`: the
/// [`brief_columns_of`], then the stamps of the last change.
pub fn columns_of(t: &str, s: &str, m: &str) -> String {
    format!("{}, {}", brief_columns_of(t, s), stamp_cols(t, m))
}

/// How many columns [`brief_columns_of`] names: where the stamps of [`columns_of`] start.
static BRIEF_COLUMNS: LazyLock<usize> = LazyLock::new(|| column_count(&brief_columns_of("t", "s")));

/// The columns [`brief_record_at`] reads: [`columns_of`] up to the stamps, so no modifier is joined. The last
/// tells whether the record has field values at all, so [`with_fields`] looks them up only then.
pub fn brief_columns_of(t: &str, s: &str) -> String {
    format!(
        "{t}.id, {t}.subnet_id, {s}.family, {t}.ip, {t}.hostname, {t}.cname, {t}.mac_address, {t}.status,
         {t}.is_assigned, {t}.last_seen, {t}.discovery_source, {t}.description, {s}.net_start, {s}.prefix,
         EXISTS (SELECT 1 FROM field_values v WHERE v.address_id = {t}.id)"
    )
}

/// CROSS JOIN keeps the records as the outer loop: without statistics SQLite may otherwise start from the org's
/// subnets and read every record of each, even for one id.
const FROM: &str = "addresses t CROSS JOIN subnets s ON s.id = t.subnet_id LEFT JOIN users m ON m.id = t.modby_id";

/// Records by family, then address, then subnet (one address may have a record in equal subnets of two groups).
const ORDER: &str = "s.family, t.ip, t.subnet_id";

/// The records of the caller's org that match `cond` (SQL over addresses `t` and subnets `s`; its parameters
/// start at `?2`), ordered by family, address and subnet, each with its field values.
pub fn query(ctx: &Ctx, cond: &str, args: &[&dyn ToParam]) -> Result<Vec<Host>> {
    run_query(ctx, &query_sql(cond, ORDER), args)
}

fn query_sql(cond: &str, order: &str) -> String {
    format!(
        "SELECT {} FROM {FROM} WHERE s.org_id = ?1 AND ({cond}) ORDER BY {order}",
        columns()
    )
}

/// [`query`] with its statement, [`query_sql`] of the condition.
fn run_query(ctx: &Ctx, sql: &str, args: &[&dyn ToParam]) -> Result<Vec<Host>> {
    let org = ctx.org();
    let mut all: Vec<&dyn ToParam> = vec![&org];
    all.extend_from_slice(args);
    let mut rows = ctx.tx.rows(sql, &all, record)?;
    with_fields(ctx, &mut rows)?;
    Ok(rows)
}

/// The first `limit` address records of one subnet, by address: [`ORDER`] within one subnet, which the unique index
/// on (subnet, address) reads in order, without sorting the subnet's records.
pub fn records_of_subnet(ctx: &Ctx, subnet_id: i64, limit: usize) -> Result<Vec<Host>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = cached_sql!(query_sql("t.subnet_id = ?2", "t.ip LIMIT ?3"));
    run_query(ctx, sql, &[&subnet_id, &limit])
}

/// The first `limit` records of the caller's org whose subnet has family `family` and whose address lies in
/// `lo..=hi`, in subnets that are direct members of `group` when set; ordered as [`query`] orders. [`ORDER`] without
/// its family, which is fixed: the address index is read in order (only the records of one address are sorted by
/// subnet), and the scan stops after `limit` matches.
pub fn records_in(
    ctx: &Ctx,
    family: i64,
    lo: u128,
    hi: u128,
    group: Option<Option<i64>>,
    limit: usize,
) -> Result<Vec<Host>> {
    let (lo_b, hi_b) = (net::key_bytes(lo).to_vec(), net::key_bytes(hi).to_vec());
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let sql = cached_sql!(query_sql(
        "s.family = ?2 AND t.ip BETWEEN ?3 AND ?4 AND (?5 = 0 OR s.group_id IS NOT DISTINCT FROM ?6)",
        "t.ip, t.subnet_id LIMIT ?7"
    ));
    run_query(
        ctx,
        sql,
        &[&family, &lo_b, &hi_b, &group.is_some(), &group.flatten(), &limit],
    )
}

/// One record of the caller's org.
pub fn get_record(ctx: &Ctx, id: i64) -> Result<Host> {
    // One row: ordered by id, a primary-key lookup needs no sorter.
    run_query(ctx, cached_sql!(query_sql("t.id = ?2", "t.id")), &[&id])?
        .pop()
        .ok_or_else(|| Error::not_found("address record"))
}

/// Parses a time given as unix seconds, RFC 3339 (`Z` or an offset), or a naive ISO 8601 date or date-time,
/// which is taken as UTC. Fractions of a second are dropped.
pub fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let t = s.trim();
    let bad = || format!("'{t}' is not a time: use RFC 3339, ISO 8601 or unix seconds");
    let secs = match unix_seconds(t) {
        Some(secs) => secs,
        None => iso_time(t).ok_or_else(bad)?,
    };
    if (0..=MAX_TIME).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("'{t}' is outside 1970-01-01 to 9999-12-31"))
    }
}

pub struct GetParams {
    subnet: Option<i64>,
    /// With `id`/`ids` and no other filter: how many distinct records must exist.
    exact: Option<usize>,
    by_id: bool,
    /// One address is asked for: its records share a family.
    by_ip: bool,
    /// Only `id` is given: a primary-key lookup, without building a list's statement.
    one: Option<i64>,
    /// Only `ip` is given (as an address key), unpaged and in address order: a lookup in the address index, without
    /// building a list's statement.
    at: Option<Vec<u8>>,
    filters: List,
    paging: Paging,
}

impl GetParams {
    /// The parameters of a lookup by id alone (`one`) or by address alone (`at`, its key's bytes).
    fn lookup(one: Option<i64>, at: Option<Vec<u8>>) -> GetParams {
        GetParams {
            subnet: None,
            exact: one.map(|_| 1),
            by_id: one.is_some(),
            by_ip: at.is_some(),
            one,
            at,
            filters: List::new("s.org_id = ?", 0),
            paging: Paging {
                page: 1,
                perpage: 1,
                paged: false,
            },
        }
    }
}

impl Params for GetParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let id = d.id("id")?;
        if let Some(id) = id.filter(|_| d.is_empty()) {
            // Only `id`, the commonest call: `get` answers it by primary key, with no list statement to build.
            return Ok(GetParams::lookup(Some(id), None));
        }
        if id.is_none() && d.only("ip") {
            // Only `ip`, the next commonest: answered by one statement built once, with no filters to assemble. (An
            // empty `ip` is no filter: the list below.)
            if let Some(ip) = d.str("ip")? {
                let ip = subnets::parse_ip("ip", &ip)?;
                return Ok(GetParams::lookup(None, Some(net::key_bytes(net::key(ip)).to_vec())));
            }
        }
        let ids = d.ids("ids")?;
        if id.is_some() && ids.is_some() {
            return Err(Error::param("ids", "give either id or ids"));
        }
        let mut filters = List::new("s.org_id = ?", 0);
        let mut exact = None;
        if let Some(id) = id {
            // One record: a primary-key lookup, in the order of its one row (SQLite then sorts nothing).
            exact = Some(1);
            filters.and("t.id = ?", id);
        } else if let Some(mut ids) = ids {
            ids.sort_unstable();
            ids.dedup();
            exact = Some(ids.len());
            filters.and("t.id IN (SELECT value FROM json_each(?))", json!(ids).to_string());
        }
        let subnet = d.id("subnet")?;
        if let Some(subnet) = subnet {
            filters.and("t.subnet_id = ?", subnet);
        }
        let ip = d.str("ip")?.map(|ip| subnets::parse_ip("ip", &ip)).transpose()?;
        let ip_key = ip.map(|ip| net::key_bytes(net::key(ip)).to_vec());
        if let Some(key) = &ip_key {
            filters.and("t.ip = ?", key.clone());
        }
        for col in ["hostname", "cname"] {
            if let Some(v) = filter_text(d, col)? {
                filters.and(&format!("t.{col} LIKE ? ESCAPE '\\'"), text_pattern(&v));
            }
        }
        if let Some(v) = d.str("status")? {
            filters.and("t.status = ?", status_param(&v)?);
        }
        if let Some(v) = d.bool("is_assigned")? {
            filters.and("t.is_assigned = ?", v);
        }
        if let Some(v) = filter_text(d, "mac_address")? {
            match net::normalize_mac(&v) {
                Ok(mac) => filters.and("t.mac_address = ?", mac),
                Err(_) => filters.and("t.mac_address LIKE ? ESCAPE '\\'", text_pattern(&v)),
            }
        }
        let one = id.filter(|_| filters.conds.len() == 2);
        if filters.conds.len() > 2 {
            exact = None;
        }
        let by_id = match d.str("order")?.as_deref() {
            None | Some("address") => id.is_some(),
            Some("id") => true,
            Some(_) => return Err(Error::param("order", "must be address or id")),
        };
        let paging = Paging::decode(d)?;
        // With the address's condition beside the organisation's and no other, nothing else filters.
        let at = ip_key.filter(|_| filters.conds.len() == 2 && !by_id && !paging.paged);
        Ok(GetParams {
            subnet,
            exact,
            by_id,
            by_ip: ip.is_some(),
            one,
            at,
            filters,
            paging,
        })
    }
}

/// Records by address (or by id). `id`/`ids` alone must all exist; `subnet` must exist. The other filters (`ip`,
/// `hostname`, `cname`, `status`, `is_assigned`, `mac_address`) may match nothing. With `page` or `perpage` the
/// reply is a page, which for one `subnet` also carries that subnet's record.
pub fn get(ctx: &Ctx, mut p: GetParams) -> Result<model::List<Host>> {
    if let (Some(id), false) = (p.one, p.paging.paged) {
        return Ok(model::List::of(vec![get_record(ctx, id)?], "addresses"));
    }
    if let Some(key) = &p.at {
        // The statement the list's filters would build for `ip` alone, written once.
        let sql = cached_sql!(query_sql("t.ip = ?2", &format!("t.ip, t.subnet_id{UNPAGED_LIMIT}")));
        let mut found = capped(ctx.tx, sql, params![ctx.org(), key], record)?;
        with_fields(ctx, &mut found)?;
        return Ok(model::List::of(found, "addresses"));
    }
    let subnet = p.subnet.map(|s| subnets::get_record(ctx, s)).transpose()?;
    p.filters.args[0] = ctx.org().into();
    // Within one subnet, or at one address, the family is fixed: the records are read in the order of the unique
    // index or of `addresses_ip`, not sorted.
    let order = match (p.by_id, p.subnet, p.by_ip) {
        (true, _, _) => "t.id",
        (false, Some(_), _) => "t.ip",
        (false, None, true) => "t.ip, t.subnet_id",
        (false, None, false) => ORDER,
    };
    let (mut found, total) = p.filters.run(ctx, columns(), FROM, order, &p.paging, record)?;
    if p.exact.is_some_and(|n| usize::try_from(total).unwrap_or(0) != n) {
        return Err(Error::not_found("address record"));
    }
    with_fields(ctx, &mut found)?;
    let mut reply = list_reply(&p.paging, total, "addresses", found);
    if reply.page.is_some() {
        reply.within = subnet.map(Box::new);
    }
    Ok(reply)
}

/// The optional fields of a record, as `ipaddress/add` and `ipaddress/edit` take them.
struct HostParams {
    texts: [Patch<String>; 4],
    mac_address: Patch<String>,
    status: Patch<String>,
    is_assigned: Patch<bool>,
    last_seen: Patch<i64>,
    fields: Option<Map<String, Value>>,
}

impl HostParams {
    fn decode(d: &mut Data) -> Result<HostParams> {
        let texts = [
            d.patch_str(TEXT_COLS[0])?,
            d.patch_str(TEXT_COLS[1])?,
            d.patch_str(TEXT_COLS[2])?,
            d.patch_str(TEXT_COLS[3])?,
        ];
        let mac_address = match d.patch_str("mac_address")? {
            Patch::Set(m) => Patch::Set(net::normalize_mac(&m).map_err(|e| Error::param("mac_address", e))?),
            other => other,
        };
        let status = match d.patch_str("status")? {
            Patch::Set(s) => Patch::Set(status_param(&s)?),
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
        };
        let is_assigned = match d.patch_str("is_assigned")? {
            Patch::Set(b) => {
                Patch::Set(as_bool(&Value::String(b)).ok_or_else(|| Error::param("is_assigned", "must be a boolean"))?)
            }
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
        };
        let last_seen = match d.patch_str("last_seen")? {
            Patch::Set(t) => Patch::Set(parse_time(&t).map_err(|e| Error::param("last_seen", e))?),
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
        };
        let fields = match d.take("fields") {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(Value::Array(a)) if a.is_empty() => Some(Map::new()),
            Some(_) => return Err(Error::param("fields", "must be an object of field name → value")),
        };
        Ok(HostParams {
            texts,
            mac_address,
            status,
            is_assigned,
            last_seen,
            fields,
        })
    }

    /// The record's columns after these changes. A cleared `status` or `is_assigned` takes its default.
    fn apply(&self, h: Columns, assign_by_default: bool) -> Columns {
        let mut texts = h.texts;
        for (cur, patch) in texts.iter_mut().zip(&self.texts) {
            *cur = patched(patch, cur.take());
        }
        Columns {
            texts,
            mac_address: patched(&self.mac_address, h.mac_address),
            status: patched(&self.status, Some(h.status)).unwrap_or_else(|| "active".into()),
            is_assigned: patched(&self.is_assigned, Some(h.is_assigned)).unwrap_or(assign_by_default),
            last_seen: patched(&self.last_seen, h.last_seen),
        }
    }
}

fn patched<T: Clone>(p: &Patch<T>, cur: Option<T>) -> Option<T> {
    match p {
        Patch::Keep => cur,
        Patch::Clear => None,
        Patch::Set(v) => Some(v.clone()),
    }
}

/// The stored columns of a record besides its place.
#[derive(Clone)]
struct Columns {
    texts: [Option<String>; 4],
    mac_address: Option<String>,
    status: String,
    is_assigned: bool,
    last_seen: Option<i64>,
}

impl Columns {
    /// The parameters `?1` to `?13` of the statements that write a record whole (`add`'s INSERT, `edit`'s
    /// UPDATE): its subnet, address key, columns, and the time and caller of the change.
    fn params<'a>(&'a self, ctx: &'a Ctx, subnet: &'a i64, key: &'a [u8; 16]) -> [&'a dyn ToParam; 13] {
        let [hostname, cname, discovery_source, description] = &self.texts;
        [
            subnet,
            key,
            hostname,
            cname,
            &self.mac_address,
            &self.status,
            &self.is_assigned,
            &self.last_seen,
            discovery_source,
            description,
            &ctx.now,
            &ctx.caller.user_id,
            &ctx.caller.username,
        ]
    }
}

/// The hostname template's placeholder: the record's place in a bulk allocation, from 1.
const PLACE: &str = "{n}";

pub struct AddParams {
    ip: Option<IpAddr>,
    subnet: Option<i64>,
    /// `count` records at once, and whether their addresses must be consecutive.
    bulk: Option<(usize, bool)>,
    host: HostParams,
}

impl Params for AddParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let count = d.int("count")?;
        let contiguous = d.bool("contiguous")?;
        let p = AddParams {
            ip: d.str("ip")?.map(|s| subnets::parse_ip("ip", &s)).transpose()?,
            subnet: d.id("subnet")?,
            bulk: match (count, contiguous) {
                (Some(n), c) if (1..=MAX_BULK).contains(&n) => {
                    Some((usize::try_from(n).unwrap_or(1), c.unwrap_or(false)))
                }
                (Some(_), _) => return Err(Error::param("count", format!("must be from 1 to {MAX_BULK}"))),
                (None, Some(_)) => return Err(Error::param("contiguous", "goes with count")),
                (None, None) => None,
            },
            host: HostParams::decode(d)?,
        };
        if p.ip.is_none() && p.subnet.is_none() {
            return Err(Error::param("ip", "give ip, subnet, or both"));
        }
        if p.bulk.is_some() && (p.ip.is_some() || p.subnet.is_none()) {
            return Err(Error::param(
                "count",
                "goes with subnet alone: the records take its next free addresses",
            ));
        }
        Ok(p)
    }
}

/// Adds a record. `ip` alone files it in the most specific subnet containing it; `subnet` alone takes that
/// subnet's next free address; both must agree. With `count` (and `subnet` alone): that many records at the
/// subnet's lowest free addresses (`contiguous`: the first run of that many consecutive ones), all or none, each
/// hostname from the template `hostname` with `{n}` replaced by the record's place (1, 2, …).
pub fn add(ctx: &Ctx, p: AddParams) -> Result<model::Reply> {
    let (subnet, ips) = match (p.subnet, p.ip) {
        (Some(id), ip) => {
            let s = subnets::load_holder(ctx, id)?;
            let ips = match (ip, p.bulk) {
                (Some(ip), _) => vec![inside(&s, ip)?],
                (None, None) => vec![next_free(ctx, &s)?],
                (None, Some((n, contiguous))) => free_many(ctx, &s, n, contiguous)?,
            };
            (s, ips)
        }
        (None, Some(ip)) => (most_specific(ctx, ip)?, vec![ip]),
        (None, None) => return Err(Error::param("ip", "give ip, subnet, or both")),
    };
    let assign = ctx.settings.host_assign_on_create;
    let template = p.host.apply(
        Columns {
            texts: [None, None, None, None],
            mac_address: None,
            status: "active".into(),
            is_assigned: assign,
            last_seen: None,
        },
        assign,
    );
    let values = p.host.fields.unwrap_or_default();
    let mut out = Vec::with_capacity(ips.len());
    for (i, ip) in ips.into_iter().enumerate() {
        let mut host = template.clone();
        if let (Some(h), Some(_)) = (&template.texts[0], p.bulk) {
            host.texts[0] = Some(h.replace(PLACE, &(i + 1).to_string()));
        }
        out.push(insert(ctx, &subnet, ip, &host, &values)?);
    }
    let list = model::List::of(out, "addresses");
    Ok(match p.bulk {
        Some(_) => model::Allocated(list).into(),
        None => list.into(),
    })
}

/// Files one new record at `ip` in `subnet`, keeps the subnet's counts and logs it.
fn insert(ctx: &Ctx, subnet: &Subnet, ip: IpAddr, host: &Columns, values: &Map<String, Value>) -> Result<Host> {
    let key = net::key(ip);
    let key_bytes = net::key_bytes(key);
    // With whether the subnet defines fields: most define none, and then a record given no values has none.
    let inserted = ctx.tx.insert_unique(
        "INSERT INTO addresses (subnet_id, ip, hostname, cname, mac_address, status, is_assigned, last_seen,
                                    discovery_source, description, created, modifiedat, modby_id, modby_name)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13)
             RETURNING id, EXISTS(SELECT 1 FROM fields WHERE subnet_id = ?1)",
        &host.params(ctx, &subnet.id, &key_bytes),
        |r| Ok((r.get::<i64>(0)?, r.get::<bool>(1)?)),
    )?;
    // Refused by the unique key: the error names the record that holds the address.
    let Some((id, defined)) = inserted else {
        check_free(ctx, subnet, key, 0)?;
        return Err(duplicate(subnet, ip));
    };
    if defined || !values.is_empty() {
        fields::set_values(ctx, subnet.id, id, values, true)?;
    }
    space::adjust(ctx, subnet, key, true)?;
    let after = get_record(ctx, id)?;
    ctx.log(
        Change::new(
            Address.id(id),
            Added,
            format!("address {ip} added to subnet {}", subnet.net),
        )
        .detail(json!({"subnet": subnet.id, "ip": ip.to_string()}))
        .after(&after),
    )?;
    Ok(after)
}

/// The `n` lowest free addresses of a subnet, or with `contiguous` the first run of `n` consecutive free ones;
/// `subnet_full` when there are not that many.
fn free_many(ctx: &Ctx, s: &Subnet, n: usize, contiguous: bool) -> Result<Vec<IpAddr>> {
    let usable = s.usable();
    let keys = match contiguous {
        false => space::free_keys(ctx.tx, s, usable.0, n)?,
        true => space::with_taken(ctx.tx, s, usable.0, |taken| net::free_run(usable, n, taken))?
            .map(|first| (0..n as u128).map(|i| first + i).collect())
            .unwrap_or_default(),
    };
    if keys.len() < n {
        let what = if contiguous {
            "consecutive free addresses"
        } else {
            "free addresses"
        };
        return Err(Error::new(
            Code::SubnetFull,
            format!("subnet {} ({}) has fewer than {n} {what}", s.id, s.net),
        )
        .with_data(json!({"count": n})));
    }
    Ok(keys.into_iter().map(|k| s.addr(k)).collect())
}

pub struct EditParams {
    id: i64,
    version: Option<i64>,
    ip: Option<IpAddr>,
    subnet: Option<i64>,
    host: HostParams,
}

impl Params for EditParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(EditParams {
            id: d.req_id("id")?,
            version: d.int("version")?,
            ip: d.str("ip")?.map(|s| subnets::parse_ip("ip", &s)).transpose()?,
            subnet: d.id("subnet")?,
            host: HostParams::decode(d)?,
        })
    }
}

/// Edits a record. A new `ip` outside the record's subnet, without `subnet`, moves the record to the most
/// specific subnet containing it. A record that changes subnet keeps the field values whose names the new
/// subnet defines (and that fit their type), and takes the new subnet's defaults for the rest.
pub fn edit(ctx: &Ctx, p: EditParams) -> Result<model::List<Host>> {
    let before = get_record(ctx, p.id)?;
    check_version(ctx, "addresses", p.id, p.version)?;
    let (old_subnet, old_key, host) = load_row(ctx, p.id)?;
    let ip = p.ip.unwrap_or_else(|| old_subnet.addr(old_key));
    let subnet = match p.subnet {
        Some(id) => {
            let s = subnets::load_holder(ctx, id)?;
            inside(&s, ip)?;
            s
        }
        None if old_subnet.contains(ip) => old_subnet.clone(),
        None => most_specific(ctx, ip)?,
    };
    let key = net::key(ip);
    let moved = subnet.id != old_subnet.id || key != old_key;
    if moved {
        check_free(ctx, &subnet, key, p.id)?;
    }
    let host = p.host.apply(host, ctx.settings.host_assign_on_create);
    let key_bytes = net::key_bytes(key);
    let mut args = host.params(ctx, &subnet.id, &key_bytes).to_vec();
    args.push(&p.id);
    ctx.tx
        .execute_unique(
            "UPDATE addresses SET subnet_id = ?1, ip = ?2, hostname = ?3, cname = ?4, mac_address = ?5, status = ?6,
                                  is_assigned = ?7, last_seen = ?8, discovery_source = ?9, description = ?10,
                                  modifiedat = ?11, modby_id = ?12, modby_name = ?13
             WHERE id = ?14",
            &args[..],
        )?
        .ok_or_else(|| duplicate(&subnet, ip))?;
    if subnet.id != old_subnet.id {
        // Field definitions belong to a subnet: carry the values by name, then let the new subnet's rules apply.
        let old_values = fields::values_of(ctx, p.id)?;
        ctx.tx
            .execute("DELETE FROM field_values WHERE address_id = ?1", params![p.id])?;
        let defs = fields::definitions(ctx, subnet.id)?;
        let mut values = Map::new();
        for (name, v) in old_values {
            if let Some(def) = defs.iter().find(|d| d.name.eq_ignore_ascii_case(&name)) {
                if fields::check_value(def, &v).is_ok() {
                    values.insert(def.name.clone(), v);
                }
            }
        }
        for (name, v) in p.host.fields.unwrap_or_default() {
            values.retain(|n, _| !n.eq_ignore_ascii_case(&name));
            values.insert(name, v);
        }
        fields::set_values(ctx, subnet.id, p.id, &values, true)?;
    } else if let Some(values) = &p.host.fields {
        fields::set_values(ctx, subnet.id, p.id, values, false)?;
    }
    if moved {
        space::adjust(ctx, &old_subnet, old_key, false)?;
        space::adjust(ctx, &subnet, key, true)?;
    }
    let after = get_record(ctx, p.id)?;
    ctx.log(
        Change::new(Address.id(p.id), Edited, format!("address {ip} edited"))
            .detail(subnets::diff(&before, &after))
            .before(&before)
            .after(&after),
    )?;
    Ok(model::List::of(vec![after], "addresses"))
}

pub fn delete(ctx: &Ctx, p: IdParam) -> Result<Records<model::Deleted>> {
    let (subnet, key, _) = load_row(ctx, p.id)?;
    check_version(ctx, "addresses", p.id, p.version)?;
    remove(ctx, &subnet, &get_record(ctx, p.id)?, key)?;
    Ok(deleted(&[p.id]))
}

pub struct MassDeleteParams {
    ids: Option<Vec<i64>>,
    subnet: Option<i64>,
}

impl Params for MassDeleteParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let ids = match d.ids("ids")? {
            Some(ids) => {
                // A repeated id counts once; the first place of each is kept.
                let mut seen = std::collections::HashSet::with_capacity(ids.len());
                let ids: Vec<i64> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
                if ids.len() > MAX_RECORDS {
                    return Err(too_many_deleted());
                }
                Some(ids)
            }
            None => None,
        };
        let subnet = d.id("subnet")?;
        let all = d.bool("all")?;
        match (&ids, subnet, all) {
            (Some(_), None, None) => Ok(MassDeleteParams { ids, subnet: None }),
            (None, Some(_), Some(true)) => Ok(MassDeleteParams { ids: None, subnet }),
            (None, Some(_), _) => Err(Error::param("all", "must be true to delete every record of the subnet")),
            (Some(_), _, _) => Err(Error::param("ids", "give either ids or subnet and all")),
            (None, None, _) => Err(Error::param("ids", "ids, or subnet and all, is required")),
        }
    }
}

/// Deletes records, all or nothing: `ids` (each must exist, else errorData names it), or every record of a
/// `subnet` with `all`; at most [`MAX_RECORDS`] either way.
pub fn massdelete(ctx: &Ctx, p: MassDeleteParams) -> Result<Records<model::Deleted>> {
    if let Some(subnet) = p.subnet {
        let s = subnets::load(ctx, subnet)?;
        // Read whole, for the feed's `before`: at most one record past the bound.
        let doomed = records_of_subnet(ctx, s.id, MAX_RECORDS + 1)?;
        if doomed.len() > MAX_RECORDS {
            return Err(too_many_deleted());
        }
        ctx.tx
            .execute("DELETE FROM addresses WHERE subnet_id = ?1", params![s.id])?;
        space::recount(ctx, &s)?;
        for host in &doomed {
            ctx.log(deletion(host))?;
        }
        return Ok(deleted(&doomed.iter().map(|h| h.id).collect::<Vec<_>>()));
    }
    let ids = p.ids.unwrap_or_default();
    let mut failures = Map::new();
    let mut doomed = Vec::new();
    for id in &ids {
        match load_row(ctx, *id) {
            Ok((s, key, _)) => doomed.push((*id, s, key)),
            Err(e) => {
                failures.insert(id.to_string(), json!(e.message));
            }
        }
    }
    if !failures.is_empty() {
        return Err(Error::new(
            Code::NotFound,
            format!(
                "{} of {} address records cannot be deleted; none was",
                failures.len(),
                ids.len()
            ),
        )
        .with_data(Value::Object(failures)));
    }
    // The records whole, in one read, for the feed's `before`.
    let ids = json!(doomed.iter().map(|d| d.0).collect::<Vec<_>>()).to_string();
    let records: HashMap<i64, Host> = query(ctx, "t.id IN (SELECT value FROM json_each(?2))", &[&ids])?
        .into_iter()
        .map(|h| (h.id, h))
        .collect();
    for (id, s, key) in &doomed {
        let host = records
            .get(id)
            .ok_or_else(|| Error::internal(format!("address record {id} vanished")))?;
        remove(ctx, s, host, *key)?;
    }
    Ok(deleted(&doomed.iter().map(|d| d.0).collect::<Vec<_>>()))
}

pub struct SubnetParam {
    subnet: i64,
}

impl Params for SubnetParam {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(SubnetParam {
            subnet: d.req_id("subnet")?,
        })
    }
}

/// The next free address of a subnet, without taking it: `{ip, subnet (id), network (CIDR)}`.
pub fn next(ctx: &Ctx, p: SubnetParam) -> Result<model::Next> {
    let s = subnets::load(ctx, p.subnet)?;
    let ip = next_free(ctx, &s)?;
    Ok(model::Next {
        ip: net::ip_text(ip),
        subnet: s.id,
        network: net::net_text(&s.net),
    })
}

pub struct AvailableParams {
    subnet: i64,
    limit: i64,
    after: Option<IpAddr>,
}

impl Params for AvailableParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(AvailableParams {
            subnet: d.req_id("subnet")?,
            limit: d.per_page("limit", 256, 10_000)?,
            after: d.str("after")?.map(|s| subnets::parse_ip("after", &s)).transpose()?,
        })
    }
}

/// Up to `limit` free addresses of a subnet, ascending, after the cursor `after` (an address of the subnet), with
/// the exact number of free addresses in the whole subnet.
pub fn available(ctx: &Ctx, p: AvailableParams) -> Result<model::Available> {
    let s = subnets::load(ctx, p.subnet)?;
    let after = subnets::cursor(&s, p.after, "subnet")?;
    let free = match after.map_or(Some(s.usable().0), |a| a.checked_add(1)) {
        Some(from) => space::free_keys(ctx.tx, &s, from, usize::try_from(p.limit).unwrap_or(0))?,
        None => Vec::new(),
    };
    let taken = space::taken(ctx.tx, &s)?;
    Ok(model::Available {
        subnet: s.id,
        network: net::net_text(&s.net),
        total_available: net::usable_count(&s.net).saturating_sub(taken),
        addresses: free.into_iter().map(|k| net::ip_text(s.addr(k))).collect(),
    })
}

fn record(r: &Row) -> Result<Host> {
    record_at(r, 0)
}

/// A record from the [`columns_of`] that start at column `at`.
pub fn record_at(r: &Row, at: usize) -> Result<Host> {
    let mut host = brief_record_at(r, at)?;
    host.stamps = Some(stamps_at(r, at + *BRIEF_COLUMNS)?);
    Ok(host)
}

/// [`record_at`] without the stamps of its last change (`userid`, `modifiedat`, `user`, `email`, `realname`,
/// `created`): the record as the REST API shows it (`search/ip` `brief`). Its `fields` are empty until
/// [`with_fields`] fills in those of a record that has some.
pub fn brief_record_at(r: &Row, at: usize) -> Result<Host> {
    let v4 = r.get::<i64>(at + 2)? == 4;
    let key = |i: usize| -> Result<u128> {
        net::bytes_key(r.blob(at + i)?).ok_or_else(|| Error::internal(format!("column {}: bad address", at + i)))
    };
    let block = IpNet::new(net::from_key(key(12)?, v4), r.get(at + 13)?)
        .map_err(|e| Error::internal(format!("column {}: {e}", at + 13)))?;
    Ok(Host {
        id: r.get(at)?,
        subnet: r.get(at + 1)?,
        network: net::net_text(&block),
        ip: net::ip_text(net::from_key(key(3)?, v4)),
        hostname: r.get(at + 4)?,
        cname: r.get(at + 5)?,
        mac_address: r.get(at + 6)?,
        status: r.get(at + 7)?,
        is_assigned: r.get(at + 8)?,
        last_seen: r.get(at + 9)?,
        discovery_source: r.get(at + 10)?,
        description: r.get(at + 11)?,
        fields: Map::new(),
        has_fields: r.get(at + 14)?,
        stamps: None,
    })
}

/// Fills in the field values of each record that has some (see [`brief_record_at`]).
pub fn with_fields(ctx: &Ctx, records: &mut [Host]) -> Result<()> {
    for r in records.iter_mut().filter(|r| r.has_fields) {
        r.fields = fields::values_of(ctx, r.id)?;
    }
    Ok(())
}

/// A `status` value, any case.
fn status_param(s: &str) -> Result<String> {
    let s = s.trim().to_ascii_lowercase();
    if STATUSES.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(Error::param("status", "must be active, inactive or reserved"))
    }
}

/// A case-insensitive `LIKE … ESCAPE '\'` pattern: a glob when `v` holds `*` or `?`, else a substring. `%` and
/// `_` match themselves.
fn text_pattern(v: &str) -> String {
    let escaped = like_escape(v);
    if v.contains(['*', '?']) {
        escaped.replace('*', "%").replace('?', "_")
    } else {
        format!("%{escaped}%")
    }
}

/// A record's subnet, address key and columns, in the caller's org.
fn load_row(ctx: &Ctx, id: i64) -> Result<(Subnet, u128, Columns)> {
    let row = ctx.tx.query_opt(
        &format!(
            "SELECT {}, a.ip, a.hostname, a.cname, a.discovery_source, a.description, a.mac_address, a.status,
                        a.is_assigned, a.last_seen
                 FROM addresses a CROSS JOIN subnets t ON t.id = a.subnet_id WHERE a.id = ?1 AND t.org_id = ?2",
            subnets::SUBNET_COLS
        ),
        params![id, ctx.org()],
        |r| {
            let s = subnets::subnet_of(r, 0)?;
            let ip: Vec<u8> = r.get(5)?;
            let host = Columns {
                texts: [r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
                mac_address: r.get(10)?,
                status: r.get(11)?,
                is_assigned: r.get(12)?,
                last_seen: r.get(13)?,
            };
            Ok((s, ip, host))
        },
    )?;
    let (s, ip, host) = row.ok_or_else(|| Error::not_found("address record"))?;
    let key = net::bytes_key(&ip).ok_or_else(|| Error::internal(format!("address {id}: bad key")))?;
    Ok((s, key, host))
}

/// Deletes record `host` (its address `key` in subnet `s`), keeps the subnet's counts and logs it.
fn remove(ctx: &Ctx, s: &Subnet, host: &Host, key: u128) -> Result<()> {
    ctx.tx
        .execute("DELETE FROM addresses WHERE id = ?1", params![host.id])?;
    space::adjust(ctx, s, key, false)?;
    ctx.log(deletion(host))
}

/// The log entry of a deleted record, the record itself as the feed's `before`.
fn deletion(host: &Host) -> Change {
    Change::new(Address.id(host.id), Deleted, format!("address {} deleted", host.ip))
        .detail(json!({"subnet": host.subnet, "ip": host.ip}))
        .before(host)
}

/// The lowest free address of a subnet; `subnet_full` when there is none.
fn next_free(ctx: &Ctx, s: &Subnet) -> Result<IpAddr> {
    let k = space::free_keys(ctx.tx, s, s.usable().0, 1)?.pop();
    k.map(|k| s.addr(k)).ok_or_else(|| {
        Error::new(
            Code::SubnetFull,
            format!("subnet {} ({}) has no free address", s.id, s.net),
        )
    })
}

/// The most specific subnet of the caller's org containing `ip`, pools aside; a tie between groups is `ambiguous`.
fn most_specific(ctx: &Ctx, ip: IpAddr) -> Result<Subnet> {
    let mut found = subnets::containing(ctx, ip)?;
    let mut pools = Vec::new();
    for s in &found {
        if subnets::placement(ctx, s.id)?.pool {
            pools.push(s.id);
        }
    }
    found.retain(|s| !pools.contains(&s.id));
    let Some(first) = found.first() else {
        return Err(Error::new(Code::NotFound, format!("no subnet contains {ip}")));
    };
    let tied: Vec<&Subnet> = found
        .iter()
        .filter(|s| s.net.prefix_len() == first.net.prefix_len())
        .collect();
    if tied.len() > 1 {
        let data: Map<String, Value> = tied
            .iter()
            .map(|s| (s.id.to_string(), json!(s.net.to_string())))
            .collect();
        return Err(Error::new(
            Code::Ambiguous,
            format!(
                "{ip} is in {} subnets of different groups: name one as subnet",
                tied.len()
            ),
        )
        .with_data(Value::Object(data)));
    }
    Ok(first.clone())
}

/// `ip`, when it lies inside `s`.
fn inside(s: &Subnet, ip: IpAddr) -> Result<IpAddr> {
    if s.contains(ip) {
        Ok(ip)
    } else {
        Err(Error::param(
            "ip",
            format!("{ip} is not inside subnet {} ({})", s.id, s.net),
        ))
    }
}

/// Refuses an address that already has a record (other than `except`) in the subnet.
fn check_free(ctx: &Ctx, s: &Subnet, key: u128, except: i64) -> Result<()> {
    let existing: Option<i64> = ctx.tx.query_opt(
        "SELECT id FROM addresses WHERE subnet_id = ?1 AND ip = ?2 AND id <> ?3",
        params![s.id, &net::key_bytes(key)[..], except],
        |r| r.get(0),
    )?;
    match existing {
        None => Ok(()),
        Some(id) => Err(duplicate(s, s.addr(key)).with_data(json!({id.to_string(): s.addr(key).to_string()}))),
    }
}

fn duplicate(s: &Subnet, ip: IpAddr) -> Error {
    Error::new(
        Code::Duplicate,
        format!("{ip} already has a record in subnet {} ({})", s.id, s.net),
    )
}

/// Unix seconds: plain decimal digits, optionally with a fraction (dropped).
fn unix_seconds(t: &str) -> Option<i64> {
    let (whole, frac) = t.split_once('.').unwrap_or((t, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) || whole.len() > 15 {
        return None;
    }
    whole.parse().ok()
}

/// `n` ASCII digits at the start of `s`, and the rest.
fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

/// `YYYY-MM-DD`, optionally followed by `T` (or a space) and `HH:MM[:SS[.fraction]]`, optionally followed by `Z`
/// or an offset `±HH:MM`, `±HHMM` or `±HH`. Without a zone the time is UTC.
fn iso_time(t: &str) -> Option<i64> {
    let (year, r) = digits(t, 4)?;
    let (month, r) = digits(r.strip_prefix('-')?, 2)?;
    let (day, r) = digits(r.strip_prefix('-')?, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let date = crate::time::days_from_civil(i64::from(year), month, day) * 86_400;
    if r.is_empty() {
        return Some(date);
    }
    let r = r.strip_prefix(['T', 't', ' '])?;
    let (hour, r) = digits(r, 2)?;
    let (minute, r) = digits(r.strip_prefix(':')?, 2)?;
    let (second, r) = match r.strip_prefix(':') {
        None => (0, r),
        Some(r) => {
            let (second, r) = digits(r, 2)?;
            match r.strip_prefix(['.', ',']) {
                None => (second, r),
                Some(f) => {
                    let n = f.bytes().take_while(u8::is_ascii_digit).count();
                    if n == 0 {
                        return None;
                    }
                    (second, &f[n..])
                }
            }
        }
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let time = i64::from(hour * 3600 + minute * 60 + second);
    let offset = match r {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match r.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let (oh, rest) = digits(&r[1..], 2)?;
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            let om = match rest {
                "" => 0,
                _ => match digits(rest, 2)? {
                    (m, "") => m,
                    _ => return None,
                },
            };
            if oh > 23 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
    };
    Some(date + time - offset)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brief_columns_are_the_first_of_all_columns() {
        let brief = brief_columns_of("t", "s");
        assert_eq!(
            *BRIEF_COLUMNS, 15,
            "a column per stored field of the record, the network's two for `network`, whether it has field values"
        );
        assert!(columns().starts_with(&format!("{brief}, ")));
    }

    #[test]
    fn times_in_every_accepted_form() {
        let t = 1_766_916_118; // 2025-12-28T10:01:58Z
        for ok in [
            "1766916118",
            " 1766916118 ",
            "1766916118.75",
            "2025-12-28T10:01:58Z",
            "2025-12-28t10:01:58z",
            "2025-12-28T10:01:58.123456Z",
            "2025-12-28T10:01:58,5Z",
            "2025-12-28T10:01:58+00:00",
            "2025-12-28T12:01:58+02:00",
            "2025-12-28T12:01:58+0200",
            "2025-12-28T12:01:58+02",
            "2025-12-28T05:31:58-04:30",
            "2025-12-28T10:01:58",
            "2025-12-28 10:01:58",
            "2025-12-28T10:01:58.999",
        ] {
            assert_eq!(parse_time(ok), Ok(t), "{ok:?}");
        }
        assert_eq!(parse_time("2025-12-28T10:01"), Ok(t - 58));
        assert_eq!(parse_time("2025-12-28"), Ok(t - 36_118));
        assert_eq!(
            parse_time("2026-01-01T00:30:00+01:00"),
            parse_time("2025-12-31T23:30:00Z")
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("2000-02-29T00:00:00Z"), Ok(951_782_400));
        assert_eq!(parse_time("9999-12-31T23:59:59Z"), Ok(MAX_TIME));
    }

    #[test]
    fn times_that_are_refused() {
        for bad in [
            "",
            "now",
            "-5",
            "1e9",
            "12.",
            ".5",
            "2025-13-01",
            "2025-02-29",
            "1900-02-29",
            "2025-04-31",
            "2025-00-10",
            "2025-12-00",
            "2025-1-28",
            "25-12-28",
            "2025/12/28",
            "2025-12-28T",
            "2025-12-28T24:00:00Z",
            "2025-12-28T10:60:00Z",
            "2025-12-28T10:01:60Z",
            "2025-12-28T10Z",
            "2025-12-28T10:01:58.Z",
            "2025-12-28T10:01:58+2",
            "2025-12-28T10:01:58+02:0",
            "2025-12-28T10:01:58+24:00",
            "2025-12-28T10:01:58 UTC",
            "2025-12-28X10:01:58",
            "2025-12-28Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "253402300800",
            "99999999999999999999",
            "２０２５-12-28",
        ] {
            assert!(parse_time(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn times_round_trip_through_rfc3339() {
        for t in (0..MAX_TIME).step_by(86_399 * 97 + 13) {
            assert_eq!(parse_time(&crate::time::rfc3339(t)), Ok(t));
        }
        assert_eq!(parse_time("2024-02-29T23:59:59Z"), Ok(1_709_251_199));
    }
}
