//! `subnets/*`: IPv4 and IPv6 subnets, filed in groups, and pools (subnets that hold child subnets, [`pools`]).
//! Subnets of one group never overlap, but for a child and the pools that hold it; split and join keep every
//! record, range, field definition and child. Also the helpers the address, DHCP and search methods share: loading
//! a subnet and parsing addresses and blocks. The free space of a subnet's addresses is [`space`]'s.

mod pools;
pub use pools::{available, AvailableParams};

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Map, Value};

use crate::db::{params, Row};
use crate::error::{Code, Error, Result};
use crate::handler::Action::{Added, Deleted, Edited, Joined, Split};
use crate::handler::{Change, Ctx, ObjectKind, Params};
use crate::methods::groups::{self, parent_param};
use crate::methods::space;
use crate::methods::{
    addresses, check_version, column_count, deleted, fields, filter_text, like_escape, list_reply, stamp_cols,
    stamps_at, too_many, too_many_deleted, List, Paging, MAX_RECORDS,
};
use crate::model::{self, Records};
use crate::net::{self, CidrError};
use crate::params::{Data, Patch};
use crate::store::cached_sql;

/// A subnet's identity and block, what most handlers need of it.
#[derive(Debug, Clone)]
pub struct Subnet {
    pub id: i64,
    pub group: Option<i64>,
    pub net: IpNet,
}

impl Subnet {
    pub fn v4(&self) -> bool {
        matches!(self.net, IpNet::V4(_))
    }

    /// First and last usable key.
    pub fn usable(&self) -> (u128, u128) {
        net::usable(&self.net)
    }

    /// First and last key of the block.
    pub fn range(&self) -> (u128, u128) {
        net::range(&self.net)
    }

    pub fn addr(&self, k: u128) -> IpAddr {
        net::from_key(k, self.v4())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.net.contains(&ip)
    }
}

/// The columns [`subnet_of`] reads, from a subnets table aliased `t`.
pub const SUBNET_COLS: &str = "t.id, t.group_id, t.family, t.net_start, t.prefix";

/// How many columns [`SUBNET_COLS`] names: where the columns a statement selects after them start.
const SUBNET_COLUMNS: usize = column_count(SUBNET_COLS);

/// Reads [`SUBNET_COLS`] at column `at`.
pub fn subnet_of(r: &Row, at: usize) -> Result<Subnet> {
    let family: i64 = r.get(at + 2)?;
    let prefix: u8 = r.get(at + 4)?;
    let bad = || Error::internal(format!("column {}: bad subnet", at + 3));
    let k = net::bytes_key(r.blob(at + 3)?).ok_or_else(bad)?;
    let net = IpNet::new(net::from_key(k, family == 4), prefix).map_err(|_| bad())?;
    Ok(Subnet {
        id: r.get(at)?,
        group: r.get(at + 1)?,
        net,
    })
}

/// One subnet of the caller's org.
pub fn load(ctx: &Ctx, id: i64) -> Result<Subnet> {
    load_placed(ctx, id).map(|(s, _)| s)
}

/// One subnet of the caller's org, and whether it is a pool.
fn load_placed(ctx: &Ctx, id: i64) -> Result<(Subnet, bool)> {
    ctx.tx
        .query_opt(
            cached_sql!(format!(
                "SELECT {SUBNET_COLS}, t.pool FROM subnets t WHERE t.id = ?1 AND t.org_id = ?2"
            )),
            params![id, ctx.org()],
            |r| Ok((subnet_of(r, 0)?, r.get::<bool>(SUBNET_COLUMNS)?)),
        )?
        .ok_or_else(|| Error::not_found("subnet"))
}

/// The subnets of the caller's org that contain `ip`, most specific first (then by id).
pub fn containing(ctx: &Ctx, ip: IpAddr) -> Result<Vec<Subnet>> {
    let k = net::key(ip);
    overlapping(ctx, ip.is_ipv4(), k, k, Order::MostSpecific)
}

/// The order of [`overlapping`]'s answer.
#[derive(Clone, Copy)]
pub enum Order {
    /// Longest prefix first, then by id.
    MostSpecific,
    /// By first address, then prefix, then id.
    ByAddress,
}

impl Order {
    /// Sorts items by their subnet.
    fn sort<T>(self, items: &mut [T], subnet: impl Fn(&T) -> &Subnet) {
        match self {
            Order::MostSpecific => items.sort_by_key(|i| {
                let s = subnet(i);
                (std::cmp::Reverse(s.net.prefix_len()), s.id)
            }),
            Order::ByAddress => items.sort_by_key(|i| {
                let s = subnet(i);
                (net::key(s.net.network()), s.net.prefix_len(), s.id)
            }),
        }
    }
}

/// The subnets of the caller's org that overlap the key range `lo..=hi` (an address or a CIDR block), in `order`.
pub fn overlapping(ctx: &Ctx, v4: bool, lo: u128, hi: u128, order: Order) -> Result<Vec<Subnet>> {
    let sql = cached_sql!(overlap_sql(SUBNET_COLS));
    let mut found = overlapping_rows(ctx, sql, v4, lo, hi, |r| subnet_of(r, 0))?;
    order.sort(&mut found, |s| s);
    Ok(found)
}

/// [`overlapping`], each subnet with its record, read by the same statement: the first `limit` in `order` of the
/// subnets `keep` accepts, and whether there were more. The subnets starting inside the range stream from the index
/// in address order, so in [`Order::ByAddress`] reading stops past `limit` (once the subnets starting where the last
/// one taken starts are in); the subnets containing the range, all read, are one per prefix length and group.
pub fn overlapping_records(
    ctx: &Ctx,
    v4: bool,
    lo: u128,
    hi: u128,
    order: Order,
    keep: impl Fn(&Subnet) -> bool,
    limit: usize,
) -> Result<(Vec<(Subnet, model::Subnet)>, bool)> {
    let family = if v4 { 4 } else { 6 };
    let mut found: Vec<(Subnet, model::Subnet)> = Vec::new();
    let sql = cached_sql!(overlap_sql(columns()));
    ctx.tx.each(
        sql,
        params![ctx.org(), family, net::key_bytes(lo), net::key_bytes(hi)],
        |r| {
            let s = subnet_of(r, 0)?;
            if !keep(&s) {
                return Ok(true);
            }
            let start = s.net.network();
            if matches!(order, Order::ByAddress)
                && found.len() > limit
                && net::key(start) >= lo
                && found.last().is_some_and(|(last, _)| last.net.network() != start)
            {
                return Ok(false);
            }
            found.push((s, record(r)?));
            Ok(true)
        },
    )?;
    order.sort(&mut found, |(s, _)| s);
    let more = found.len() > limit;
    found.truncate(limit);
    Ok((found, more))
}

/// A subnet containing an address, with its address record for that address, if any (whose `fields`
/// [`addresses::with_fields`] fills in).
pub struct Holder {
    pub subnet: Subnet,
    /// Whether the subnet is a pool, and the pool it lies in (its [`Placement`]'s first two).
    pub pool: bool,
    pub parent: Option<i64>,
    pub address: Option<model::Host>,
}

/// The subnets of the caller's org that contain `ip`, most specific first (then by id), each with its address record
/// for `ip`: one statement answers where an address lives (`search/ip` with `status`). A subnet contains the address
/// only if it starts where the enclosing block of its length starts ([`ENCLOSING`], [`overlap_sql`]'s first part
/// with `net_start` allowed to equal the address). Subnet records are not built: of all the holders, a reply shows at
/// most the one that answers ([`get_record`]). `brief`: address records without their stamps
/// ([`addresses::brief_record_at`]).
pub fn holders(ctx: &Ctx, ip: IpAddr, brief: bool) -> Result<Vec<Holder>> {
    let sql = holders_sql(brief);
    let k = net::key(ip);
    // The address record's columns follow the subnet's and its placement's.
    let at = SUBNET_COLUMNS + 2;
    let mut found = overlapping_rows(ctx, sql, ip.is_ipv4(), k, k, |r| {
        let address = match r.get::<Option<i64>>(at)? {
            Some(_) if brief => Some(addresses::brief_record_at(r, at)?),
            Some(_) => Some(addresses::record_at(r, at)?),
            None => None,
        };
        Ok(Holder {
            subnet: subnet_of(r, 0)?,
            pool: r.get(SUBNET_COLUMNS)?,
            parent: r.get(SUBNET_COLUMNS + 1)?,
            address,
        })
    })?;
    Order::MostSpecific.sort(&mut found, |h| &h.subnet);
    Ok(found)
}

/// [`holders`]' statement. `brief` reads each address record from `addresses_brief` (schema.sql, migration 6),
/// which holds all of the brief record: no table row, no modifier.
fn holders_sql(brief: bool) -> &'static str {
    fn sql(cols: &str, index: &str, modifier: &str) -> String {
        format!(
            "SELECT {SUBNET_COLS}, t.pool, t.parent_id, {cols} FROM subnet_prefixes p CROSS JOIN subnets t
               LEFT JOIN addresses a {index} ON a.subnet_id = t.id AND a.ip = ?3 {modifier}
             WHERE {ENCLOSING}"
        )
    }
    match brief {
        true => cached_sql!(sql(
            &addresses::brief_columns_of("a", "t"),
            "INDEXED BY addresses_brief",
            ""
        )),
        false => cached_sql!(sql(
            &addresses::columns_of("a", "t", "am"),
            "",
            "LEFT JOIN users am ON am.id = a.modby_id"
        )),
    }
}

/// Runs a statement over the key range `lo..=hi` of an address or a CIDR block: `?1` the org, `?2` the family, `?3`
/// and `?4` the range's ends (see [`overlap_sql`]).
fn overlapping_rows<T>(
    ctx: &Ctx,
    sql: &str,
    v4: bool,
    lo: u128,
    hi: u128,
    row: impl FnMut(&Row) -> Result<T>,
) -> Result<Vec<T>> {
    let family = if v4 { 4 } else { 6 };
    let (lo_b, hi_b) = (net::key_bytes(lo), net::key_bytes(hi));
    ctx.tx.rows(sql, params![ctx.org(), family, lo_b, hi_b], row)
}

/// The subnets `t` of the caller's org (`?1`) and family (`?2`) that start where the enclosing block of their length
/// (`subnet_prefixes p`) around key `?3` starts and reach `?4`: those that contain the range `?3..=?4`.
const ENCLOSING: &str =
    "p.org_id = ?1 AND p.family = ?2 AND t.org_id = ?1 AND t.net_start = net_floor(?3, ?2, p.prefix)
           AND t.family = ?2 AND t.net_end >= ?4 AND t.prefix = p.prefix";

/// The statement that reads `cols` (of subnets `t` and `m`, the user who last changed it) from the subnets of the
/// caller's org (`?1`) and family (`?2`) that overlap the key range `?3..=?4` of an address or a CIDR block, by index
/// seeks only. A subnet starting before the range overlaps it only by containing it, so it starts where the
/// enclosing block of its length starts: one seek per prefix length the org uses (`subnet_prefixes`; `net_floor` is
/// the block start, see `store`). The subnets starting inside the range are one range seek. A scan on
/// `net_start <= ?4` would read every subnet below the range. The statement is the same for every range: one
/// cached plan, no temporary table.
fn overlap_sql(cols: &str) -> String {
    format!(
        "SELECT {cols} FROM subnet_prefixes p CROSS JOIN subnets t LEFT JOIN users m ON m.id = t.modby_id
         WHERE {ENCLOSING} AND t.net_start < ?3
         UNION ALL
         SELECT {cols} FROM subnets t LEFT JOIN users m ON m.id = t.modby_id
         WHERE t.org_id = ?1 AND t.net_start >= ?3 AND t.net_start <= ?4 AND t.family = ?2"
    )
}

/// The key of a page's cursor `after`, an address that must lie inside `s` (a `what`: subnet or pool).
pub fn cursor(s: &Subnet, after: Option<IpAddr>, what: &str) -> Result<Option<u128>> {
    match after {
        Some(a) if s.contains(a) => Ok(Some(net::key(a))),
        Some(a) => Err(Error::param(
            "after",
            format!("{a} is not inside {what} {} ({})", s.id, s.net),
        )),
        None => Ok(None),
    }
}

/// Parses an address parameter. IPv4-mapped IPv6 forms are refused: their keys are the IPv4 addresses' keys.
pub fn parse_ip(field: &str, s: &str) -> Result<IpAddr> {
    let ip = net::parse_addr(s).map_err(|m| Error::param(field, m))?;
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Err(Error::param(
            field,
            "IPv4-mapped IPv6 addresses are not supported: use the IPv4 form",
        )),
        _ => Ok(ip),
    }
}

/// Parses a subnet's CIDR; host bits set → `invalid_subnet` naming the normalised block.
pub fn parse_block(s: &str) -> Result<IpNet> {
    let block = net::parse_cidr(s).map_err(cidr_error)?;
    storable(block)
}

/// Refuses a block to search inside ::ffff:0:0/96: its keys are the IPv4 addresses' keys.
pub fn check_block(block: IpNet) -> Result<IpNet> {
    match net::mapped(&block) {
        net::Mapped::Inside => Err(mapped_error(
            &block,
            "is IPv4-mapped (inside ::ffff:0:0/96): use the IPv4 form",
        )),
        _ => Ok(block),
    }
}

/// The one rule for a subnet's block, on every path that gives a subnet a block (add, edit, split, join and the
/// REST doors onto them; restore checks the same with SQL): an IPv6 block may not overlap ::ffff:0:0/96, neither
/// inside it nor holding it, since an IPv6 record there would have an IPv4 record's key.
pub fn storable(block: IpNet) -> Result<IpNet> {
    match net::mapped(&block) {
        net::Mapped::Apart => Ok(block),
        net::Mapped::Inside => check_block(block),
        net::Mapped::Overlaps => Err(mapped_error(
            &block,
            "overlaps ::ffff:0:0/96, the IPv4-mapped addresses: use a block outside it",
        )),
    }
}

fn mapped_error(block: &IpNet, what: &str) -> Error {
    Error::new(Code::InvalidSubnet, format!("{block} {what}")).with_data(json!({"mapped": "::ffff:0:0/96"}))
}

fn cidr_error(e: CidrError) -> Error {
    match e {
        CidrError::HostBits(n) => Error::new(Code::InvalidSubnet, format!("host bits are set: did you mean {n}?"))
            .with_data(json!({"suggested": n.to_string()})),
        CidrError::Invalid(m) => Error::new(Code::InvalidSubnet, m),
    }
}

/// The block of a `subnet` parameter, or of `network` + `cidr`.
fn block_param(d: &mut Data) -> Result<Option<IpNet>> {
    let subnet = d.str("subnet")?;
    let network = d.str("network")?;
    let cidr = d.int("cidr")?;
    match (subnet, network, cidr) {
        (Some(s), None, None) => parse_block(&s).map(Some),
        (None, Some(n), Some(c)) => {
            let c = u8::try_from(c).map_err(|_| Error::param("cidr", "must be a prefix length"))?;
            storable(net::cidr_from_parts(&n, c).map_err(cidr_error)?).map(Some)
        }
        (None, None, None) => Ok(None),
        (Some(_), _, _) => Err(Error::param("subnet", "give either subnet or network and cidr")),
        (None, _, _) => Err(Error::param("cidr", "network and cidr go together")),
    }
}

/// The columns [`record`] reads; a pool's free blocks per length as `prefix:blocks,…` ([`pools`]).
fn columns() -> &'static str {
    cached_sql!(format!(
        "{SUBNET_COLS}, t.name, t.description, t.domain, t.vlan_id, t.location, t.used, t.taken, {}, t.pool,
         t.parent_id, t.child_count,
         CASE WHEN t.pool = 1 THEN coalesce((SELECT string_agg(c.prefix || ':' || c.blocks, ',')
                                             FROM pool_free_counts c WHERE c.pool_id = t.id), '') END",
        stamp_cols("t", "m")
    ))
}

const FROM: &str = "subnets t LEFT JOIN users m ON m.id = t.modby_id";

fn select() -> &'static str {
    cached_sql!(format!("SELECT {} FROM {FROM}", columns()))
}

/// Orders subnets by family, then address, then prefix.
const ORDER: &str = "ORDER BY t.family, t.net_start, t.prefix";

fn record(r: &Row) -> Result<model::Subnet> {
    let s = subnet_of(r, 0)?;
    let taken: String = r.get(11)?;
    let total = net::usable_count(&s.net);
    Ok(model::Subnet {
        id: s.id,
        group: s.group,
        subnet: net::net_text(&s.net),
        network: net::ip_text(s.net.network()),
        cidr: s.net.prefix_len(),
        broadcast: (s.v4() && s.net.prefix_len() <= 30).then(|| net::ip_text(s.net.broadcast())),
        family: if s.v4() { 4 } else { 6 },
        name: r.get(5)?,
        description: r.get(6)?,
        domain: r.get(7)?,
        vlan_id: r.get(8)?,
        location: r.get(9)?,
        total_hosts: total,
        used_hosts: r.get(10)?,
        available_hosts: total.saturating_sub(taken.parse::<u128>().unwrap_or(0)),
        stamps: stamps_at(r, 12)?,
        pool: r.get(19)?,
        parent: r.get(20)?,
        children: r.get(21)?,
        covered: r.get::<Option<String>>(22)?.map(|counts| {
            let (lo, hi) = s.range();
            let free = pools::free_keys(s.net.max_prefix_len(), &pools::parse_counts(&counts));
            (hi - lo).saturating_add(1).saturating_sub(free)
        }),
        pools: None,
        subnets: None,
        addresses: None,
        fields: None,
    })
}

/// The full record of one subnet of the caller's org.
pub fn get_record(ctx: &Ctx, id: i64) -> Result<model::Subnet> {
    ctx.tx
        .query_opt(
            cached_sql!(format!("{} WHERE t.id = ?1 AND t.org_id = ?2", select())),
            params![id, ctx.org()],
            record,
        )?
        .ok_or_else(|| Error::not_found("subnet"))
}

/// Where a subnet stands among pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub pool: bool,
    pub parent: Option<i64>,
    pub children: i64,
}

/// Whether subnet `id` (of the caller's org, already loaded) is a pool, and its pool.
pub fn placement(ctx: &Ctx, id: i64) -> Result<Placement> {
    ctx.tx.query_row(
        "SELECT pool, parent_id, child_count FROM subnets WHERE id = ?1",
        params![id],
        |r| {
            Ok(Placement {
                pool: r.get(0)?,
                parent: r.get(1)?,
                children: r.get(2)?,
            })
        },
    )
}

/// Refuses a subnet that is not a pool where a pool is needed (`field` names it).
pub fn require_pool(ctx: &Ctx, s: &Subnet, field: &str) -> Result<()> {
    match placement(ctx, s.id)?.pool {
        true => Ok(()),
        false => Err(Error::param(
            field,
            format!("subnet {} ({}) is not a pool", s.id, s.net),
        )),
    }
}

/// A subnet of the caller's org to file address records or DHCP ranges in, read in one statement: `not_found`, or
/// refused when it is a pool (a pool holds subnets).
pub fn load_holder(ctx: &Ctx, id: i64) -> Result<Subnet> {
    let (s, pool) = load_placed(ctx, id)?;
    match pool {
        false => Ok(s),
        true => Err(Error::new(
            Code::InvalidSubnet,
            format!(
                "subnet {} ({}) is a pool: it holds subnets, not addresses or DHCP ranges",
                s.id, s.net
            ),
        )),
    }
}

/// The pools holding a subnet whose pool is `parent`, innermost first: at most one per prefix length.
pub fn chain(ctx: &Ctx, mut parent: Option<i64>) -> Result<Vec<Subnet>> {
    let mut out: Vec<Subnet> = Vec::new();
    while let Some(id) = parent {
        if out.len() > 129 {
            return Err(Error::internal(format!("pool {id}: a cycle of pools")));
        }
        out.push(load(ctx, id)?);
        parent = placement(ctx, id)?.parent;
    }
    Ok(out)
}

/// [`chain`] as records show it.
pub fn pool_refs(ctx: &Ctx, parent: Option<i64>) -> Result<Vec<model::PoolRef>> {
    Ok(chain(ctx, parent)?
        .into_iter()
        .map(|p| model::PoolRef {
            id: p.id,
            subnet: net::net_text(&p.net),
        })
        .collect())
}

/// The pool a child names: a pool of the caller's org, which must hold `block` (when known) strictly.
fn pool_param(ctx: &Ctx, id: i64, block: Option<&IpNet>) -> Result<Subnet> {
    let pool = load(ctx, id)?;
    require_pool(ctx, &pool, "parent")?;
    if let Some(b) = block {
        if !net::contains(&pool.net, b) || b.prefix_len() <= pool.net.prefix_len() {
            return Err(Error::new(
                Code::InvalidSubnet,
                format!("{b} does not lie inside pool {} ({})", pool.id, pool.net),
            ));
        }
    }
    Ok(pool)
}

/// Refuses a block that overlaps another subnet of the same group (`except` excludes subnets being changed), but for
/// the pools holding it (`pools`, its [`chain`]) and, for a pool whose block changes, its own subtree: the subnets of
/// the group inside `subtree`, its block before the change (a subnet of the group inside it could only be one of
/// its descendants).
fn check_overlap(
    ctx: &Ctx,
    group: Option<i64>,
    block: &IpNet,
    except: &[i64],
    pools: &[Subnet],
    subtree: Option<&IpNet>,
) -> Result<()> {
    let (lo, hi) = net::range(block);
    let rows = overlapping(ctx, matches!(block, IpNet::V4(_)), lo, hi, Order::ByAddress)?;
    let mut conflicts = Map::new();
    for s in rows.into_iter().filter(|s| s.group == group) {
        let exempt = except.contains(&s.id)
            || pools.iter().any(|p| p.id == s.id)
            || subtree.is_some_and(|t| net::contains(t, &s.net) && s.net != *t);
        if !exempt {
            conflicts.insert(s.id.to_string(), json!(s.net.to_string()));
        }
    }
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(
            Error::new(Code::Overlap, format!("{block} overlaps another subnet of the group"))
                .with_data(Value::Object(conflicts)),
        )
    }
}

/// The optional text columns of a subnet, in the order the SQL below names them.
const TEXT_COLS: [&str; 4] = ["name", "description", "domain", "location"];

fn vlan_param(d: &mut Data) -> Result<Patch<i64>> {
    match d.patch_int("vlan_id")? {
        Patch::Set(v) if !(1..=4094).contains(&v) => Err(Error::param("vlan_id", "must be from 1 to 4094")),
        other => Ok(other),
    }
}

/// The order of `subnets/get`'s list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubnetOrder {
    Address,
    Id,
    Utilisation,
}

pub struct GetParams {
    ids: Option<Vec<i64>>,
    group: Patch<i64>,
    parent: Patch<i64>,
    tree: bool,
    addresses: bool,
    fields: bool,
    order: SubnetOrder,
    filters: List,
    paging: Paging,
}

impl Params for GetParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let id = d.id("id")?;
        let mut ids = d.ids("ids")?;
        if id.is_some() && ids.is_some() {
            return Err(Error::param("ids", "give either id or ids"));
        }
        if let Some(ids) = &mut ids {
            // A repeated id counts once; the first place of each is kept.
            let mut seen = std::collections::HashSet::with_capacity(ids.len());
            ids.retain(|id| seen.insert(*id));
            if ids.len() > MAX_RECORDS {
                return Err(too_many());
            }
        }
        let order = match d.str("order")?.as_deref() {
            None | Some("address") => SubnetOrder::Address,
            Some("id") => SubnetOrder::Id,
            Some("utilisation") => SubnetOrder::Utilisation,
            Some(_) => return Err(Error::param("order", "must be address, id or utilisation")),
        };
        let mut filters = List::new("t.org_id = ?", 0);
        for col in ["name", "domain", "location"] {
            if let Some(v) = filter_text(d, col)? {
                filters.and(&format!("t.{col} LIKE ? ESCAPE '\\'"), format!("%{}%", like_escape(&v)));
            }
        }
        if let Some(v) = d.int("vlan_id")? {
            filters.and("t.vlan_id = ?", v);
        }
        let group = parent_param(d, "group")?;
        if (id.is_some() || ids.is_some()) && group != Patch::Keep {
            return Err(Error::param("group", "give either id, ids or group"));
        }
        let parent = parent_param(d, "parent")?;
        if (id.is_some() || ids.is_some()) && parent != Patch::Keep {
            return Err(Error::param("parent", "give either id, ids or parent"));
        }
        Ok(GetParams {
            ids: id.map(|i| vec![i]).or(ids),
            group,
            parent,
            tree: d.bool("tree")?.unwrap_or(false),
            addresses: d.bool("addresses")?.unwrap_or(false),
            fields: d.bool("fields")?.unwrap_or(false),
            order,
            filters,
            paging: Paging::decode(d)?,
        })
    }
}

/// Subnets keyed by id, by family, address and prefix (or by id); `id` must exist. Filters, `order` and paging
/// serve the REST API's lists.
pub fn get(ctx: &Ctx, mut p: GetParams) -> Result<model::List<model::Subnet>> {
    let (mut list, total) = match &p.ids {
        Some(ids) => {
            let mut found = ids.iter().map(|id| get_record(ctx, *id)).collect::<Result<Vec<_>>>()?;
            found.sort_by_key(|s| (s.family, s.network.parse::<IpAddr>().ok().map(net::key), s.cidr));
            let n = found.len() as i64;
            (found, n)
        }
        None => {
            p.filters.args[0] = ctx.org().into();
            match p.group {
                Patch::Keep => {}
                Patch::Clear => p.filters.conds.push("t.group_id IS NULL".into()),
                Patch::Set(g) => {
                    // An unknown group (or another org's) is not found, not an empty list that hides a typo.
                    groups::exists(ctx, g)?;
                    p.filters.and("t.group_id = ?", g)
                }
            }
            match p.parent {
                Patch::Keep => {}
                Patch::Clear => p.filters.conds.push("t.parent_id IS NULL".into()),
                Patch::Set(id) => {
                    load(ctx, id)?;
                    p.filters.and("t.parent_id = ?", id)
                }
            }
            let order = match p.order {
                SubnetOrder::Id => "t.id",
                SubnetOrder::Address => "t.family, t.net_start, t.prefix",
                // The share of usable addresses taken, fullest first (the web UI's list and overview). An IPv6
                // block's usable count is taken as 2^62 at most: SQLite's integers stop at 2^63, and a block
                // that large shows 0 % either way. Every count is at least 1. (Spelled for both engines: the
                // shifted value a BIGINT and the shift an INT, as PostgreSQL's `<<` takes them; `taken` may exceed
                // a 4-byte float.)
                SubnetOrder::Utilisation => {
                    "CAST(t.taken AS DOUBLE PRECISION) / CASE
                         WHEN t.family = 4 AND t.prefix <= 30 THEN (CAST(1 AS BIGINT) << CAST(32 - t.prefix AS INT)) - 2
                         WHEN t.family = 4 THEN CAST(1 AS BIGINT) << CAST(32 - t.prefix AS INT)
                         WHEN t.prefix < 66 THEN CAST(1 AS BIGINT) << 62
                         ELSE CAST(1 AS BIGINT) << CAST(128 - t.prefix AS INT) END DESC, t.family, t.net_start, t.prefix"
                }
            };
            // A page's subnets are chosen from `subnets` alone, then joined (schema.pg.sql migration 20 holds them
            // in address order, as this reads them).
            p.filters
                .run_page_first(ctx, columns(), FROM, "subnets t", order, &p.paging, record, |s| s.id)?
        }
    };
    // The records, and the field definitions, of all the subnets together count against the one bound of a reply.
    let (mut records_room, mut fields_room) = (MAX_RECORDS, MAX_RECORDS);
    let full = || {
        Error::too_large(
            format!(
                "more than {MAX_RECORDS} address records or field definitions: read them with ipaddress/get, a page \
                 at a time, or subnets/fields/get"
            ),
            MAX_RECORDS,
        )
    };
    let mut tree_room = MAX_RECORDS;
    for s in list.iter_mut() {
        if p.tree {
            s.pools = Some(pool_refs(ctx, s.parent)?);
            if s.children > 0 {
                s.subnets = Some(Records(subtree(ctx, s.id, &mut tree_room, 1)?));
            }
        }
        if p.addresses {
            let records = addresses::records_of_subnet(ctx, s.id, records_room + 1)?;
            records_room = records_room.checked_sub(records.len()).ok_or_else(full)?;
            s.addresses = Some(Records(records));
        }
        if p.fields {
            let defs = fields::list(ctx, s.id)?;
            fields_room = fields_room.checked_sub(defs.len()).ok_or_else(full)?;
            s.fields = Some(Records(defs));
        }
    }
    Ok(list_reply(&p.paging, total, "subnets", list))
}

/// The children of pool `id`, by address, each with its own subtree: at most `room` subnets in all, else
/// `too_large`.
fn subtree(ctx: &Ctx, id: i64, room: &mut usize, depth: usize) -> Result<Vec<model::Subnet>> {
    let too_large = || {
        Error::too_large(
            format!("the tree holds more than {MAX_RECORDS} subnets: page through subnets/get with parent"),
            MAX_RECORDS,
        )
    };
    // A child is strictly inside its pool: no tree is deeper than the longest prefix.
    if depth > 129 {
        return Err(Error::internal(format!("pool {id}: a cycle of pools")));
    }
    let limit = i64::try_from(*room + 1).unwrap_or(i64::MAX);
    let mut children = ctx.tx.rows(
        cached_sql!(format!(
            "{} WHERE t.parent_id = ?1 ORDER BY t.net_start LIMIT ?2",
            select()
        )),
        params![id, limit],
        record,
    )?;
    *room = room.checked_sub(children.len()).ok_or_else(too_large)?;
    for c in children.iter_mut().filter(|c| c.children > 0) {
        c.subnets = Some(Records(subtree(ctx, c.id, room, depth + 1)?));
    }
    Ok(children)
}

pub struct AddParams {
    /// The block, or the prefix length to allocate in `parent`.
    block: Result<IpNet, i64>,
    group: Patch<i64>,
    parent: Option<i64>,
    pool: bool,
    strategy: Option<pools::Strategy>,
    texts: [Option<String>; 4],
    vlan_id: Option<i64>,
}

impl Params for AddParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let parent = d.id("parent")?;
        let block = match (parent, d.has("subnet") || d.has("network")) {
            // `{parent, cidr}` alone: a free block of that length, allocated in the pool.
            (Some(_), false) => Err(d
                .int("cidr")?
                .ok_or_else(|| Error::param("cidr", "is required: the prefix length to allocate (or give subnet)"))?),
            _ => Ok(block_param(d)?.ok_or_else(|| Error::param("subnet", "is required (or network and cidr)"))?),
        };
        let strategy = pools::Strategy::decode(d)?;
        if strategy.is_some() && block.is_ok() {
            return Err(Error::param(
                "strategy",
                "goes with parent and cidr alone, which allocate a block",
            ));
        }
        let group = parent_param(d, "group")?;
        let texts = [
            d.str("name")?,
            d.str("description")?,
            d.str("domain")?,
            d.str("location")?,
        ];
        let vlan_id = match vlan_param(d)? {
            Patch::Set(v) => Some(v),
            _ => None,
        };
        Ok(AddParams {
            block,
            group,
            parent,
            pool: d.bool("pool")?.unwrap_or(false),
            strategy,
            texts,
            vlan_id,
        })
    }
}

/// Adds a subnet, or a pool (`pool`). With `parent` it is a child of that pool, in the pool's group: its block must
/// lie strictly inside the pool and overlap none of its siblings, or, given as `cidr` alone, is the free block of
/// that length `strategy` picks.
pub fn add(ctx: &Ctx, p: AddParams) -> Result<model::List<model::Subnet>> {
    let parent = match p.parent {
        Some(id) => Some(pool_param(ctx, id, p.block.as_ref().ok())?),
        None => None,
    };
    let given = match p.group {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(g) => Some(Some(g)),
    };
    let group = match (&parent, given) {
        (Some(pool), Some(g)) if g != pool.group => {
            return Err(Error::param(
                "group",
                format!("a child is in its pool's group ({})", json!(pool.group)),
            ))
        }
        (Some(pool), _) => pool.group,
        (None, g) => g.flatten(),
    };
    if let Some(g) = group {
        groups::exists(ctx, g)?;
    }
    let block = match (&parent, p.block) {
        (_, Ok(block)) => block,
        (Some(pool), Err(cidr)) => pools::pick(ctx, pool, cidr, p.strategy.unwrap_or(pools::Strategy::FirstFit))?,
        (None, Err(_)) => return Err(Error::param("parent", "is required to allocate a block")),
    };
    let chain = chain(ctx, p.parent)?;
    check_overlap(ctx, group, &block, &[], &chain, None)?;
    let id = insert(ctx, &block, group, p.parent, p.pool, &p.texts, p.vlan_id)?;
    let new = Subnet { id, group, net: block };
    if let Some(pool) = &parent {
        pools::take(ctx, pool, &block)?;
    }
    if p.pool {
        pools::init(ctx, &new)?;
    }
    let after = get_record(ctx, id)?;
    ctx.log(
        Change::new(ObjectKind::Subnet.id(id), Added, format!("subnet {block} added"))
            .detail(json!({"group": group, "parent": p.parent, "pool": p.pool}))
            .after(&after),
    )?;
    Ok(model::List::of(vec![after], "subnets"))
}

fn insert(
    ctx: &Ctx,
    block: &IpNet,
    group: Option<i64>,
    parent: Option<i64>,
    pool: bool,
    texts: &[Option<String>; 4],
    vlan: Option<i64>,
) -> Result<i64> {
    let (lo, hi) = net::range(block);
    let family = if matches!(block, IpNet::V4(_)) { 4 } else { 6 };
    let id = ctx.tx.query_row(
        "INSERT INTO subnets (org_id, group_id, family, net_start, net_end, prefix, name, description, domain,
                              location, vlan_id, created, modifiedat, modby_id, modby_name, parent_id, pool)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16) RETURNING id",
        params![
            ctx.org(),
            group,
            family,
            &net::key_bytes(lo)[..],
            &net::key_bytes(hi)[..],
            block.prefix_len(),
            texts[0],
            texts[1],
            texts[2],
            texts[3],
            vlan,
            ctx.now,
            ctx.caller.user_id,
            ctx.caller.username,
            parent,
            pool
        ],
        |r| r.get::<i64>(0),
    )?;
    Ok(id)
}

/// Stamps a subnet as modified by the caller now.
fn touch(ctx: &Ctx, id: i64) -> Result<()> {
    ctx.tx.execute(
        "UPDATE subnets SET modifiedat = ?1, modby_id = ?2, modby_name = ?3 WHERE id = ?4",
        params![ctx.now, ctx.caller.user_id, ctx.caller.username, id],
    )?;
    Ok(())
}

pub struct EditParams {
    id: i64,
    version: Option<i64>,
    block: Option<IpNet>,
    group: Patch<i64>,
    parent: Patch<i64>,
    pool: Option<bool>,
    texts: [Patch<String>; 4],
    vlan_id: Patch<i64>,
}

impl Params for EditParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(EditParams {
            id: d.req_id("id")?,
            version: d.int("version")?,
            block: block_param(d)?,
            group: parent_param(d, "group")?,
            parent: parent_param(d, "parent")?,
            pool: d.bool("pool")?,
            texts: [
                d.patch_str("name")?,
                d.patch_str("description")?,
                d.patch_str("domain")?,
                d.patch_str("location")?,
            ],
            vlan_id: vlan_param(d)?,
        })
    }
}

/// Edits a subnet. A new block must still hold every record, DHCP range and child, lie inside its pool, and overlap
/// nothing in its group but its pools and its subtree. A new pool (`parent`, `0` for none) must hold it and not be
/// in its subtree; a child takes its pool's group, and a pool's subtree moves with it to another group. `pool`
/// makes an empty subnet a pool, or a pool without children a plain subnet.
pub fn edit(ctx: &Ctx, p: EditParams) -> Result<model::List<model::Subnet>> {
    let s = load(ctx, p.id)?;
    check_version(ctx, "subnets", p.id, p.version)?;
    let before = get_record(ctx, p.id)?;
    let place = placement(ctx, s.id)?;
    let block = p.block.unwrap_or(s.net);
    let parent_id = match p.parent {
        Patch::Keep => place.parent,
        Patch::Clear => None,
        Patch::Set(id) => Some(id),
    };
    let parent = match parent_id {
        Some(id) => Some(pool_param(ctx, id, Some(&block))?),
        None => None,
    };
    let chain = chain(ctx, parent_id)?;
    if chain.iter().any(|c| c.id == s.id) {
        return Err(Error::param("parent", "a pool cannot lie inside itself"));
    }
    let group = match (p.group, &parent) {
        (Patch::Set(g), Some(pool)) if Some(g) != pool.group => {
            return Err(Error::param(
                "group",
                format!("a child is in its pool's group ({})", json!(pool.group)),
            ))
        }
        (Patch::Clear, Some(pool)) if pool.group.is_some() => {
            return Err(Error::param(
                "group",
                format!("a child is in its pool's group ({})", json!(pool.group)),
            ))
        }
        (_, Some(pool)) => pool.group,
        (Patch::Keep, None) => s.group,
        (Patch::Clear, None) => None,
        (Patch::Set(g), None) => {
            groups::exists(ctx, g)?;
            Some(g)
        }
    };
    let pool = p.pool.unwrap_or(place.pool);
    if pool && !place.pool && (before.used_hosts > 0 || has_ranges(ctx, s.id)?) {
        return Err(Error::new(
            Code::NotEmpty,
            format!(
                "subnet {} holds address records or DHCP ranges: it cannot become a pool",
                s.id
            ),
        ));
    }
    if !pool && place.children > 0 {
        return Err(Error::new(
            Code::NotEmpty,
            format!("pool {} holds {} subnets: it stays a pool", s.id, place.children),
        )
        .with_data(json!({"subnets": place.children})));
    }
    // Its subtree is in its group: exempt there, and not yet in another it moves to.
    let subtree = (place.children > 0 && group == s.group).then_some(&s.net);
    if block != s.net || group != s.group || parent_id != place.parent {
        check_overlap(ctx, group, &block, &[s.id], &chain, subtree)?;
    }
    if block != s.net && place.children > 0 {
        let (lo, hi) = net::range(&block);
        let outside: i64 = ctx.tx.query_row(
            "SELECT count(*) FROM subnets WHERE parent_id = ?1 AND (net_start < ?2 OR net_end > ?3)",
            params![s.id, &net::key_bytes(lo)[..], &net::key_bytes(hi)[..]],
            |r| r.get(0),
        )?;
        if outside > 0 {
            return Err(Error::new(
                Code::InvalidSubnet,
                format!("{block} would leave {outside} of the pool's subnets outside"),
            )
            .with_data(json!({"subnets": outside})));
        }
    }
    if block != s.net || parent_id != place.parent {
        if let Some(old) = place.parent {
            pools::release(ctx, &load(ctx, old)?, &s.net)?;
        }
        if let Some(new) = &parent {
            pools::take(ctx, new, &block)?;
            if parent_id == place.parent {
                pools::changed(ctx, new)?;
            }
        }
    }
    if block != s.net {
        if block.network().is_ipv4() != s.v4() {
            return Err(Error::new(Code::InvalidSubnet, "a subnet cannot change address family"));
        }
        let (lo, hi) = net::range(&block);
        let (lo, hi) = (net::key_bytes(lo), net::key_bytes(hi));
        let outside: (i64, i64) = ctx.tx.query_row(
            "SELECT (SELECT count(*) FROM addresses WHERE subnet_id = ?1 AND (ip < ?2 OR ip > ?3)),
                    (SELECT count(*) FROM dhcp_ranges WHERE subnet_id = ?1 AND (start_ip < ?2 OR end_ip > ?3))",
            params![s.id, &lo[..], &hi[..]],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if outside != (0, 0) {
            return Err(Error::new(
                Code::InvalidSubnet,
                format!("{block} would leave records or DHCP ranges outside"),
            )
            .with_data(json!({"addresses": outside.0, "dhcpranges": outside.1})));
        }
        ctx.tx.execute(
            "UPDATE subnets SET net_start = ?1, net_end = ?2, prefix = ?3 WHERE id = ?4",
            params![&lo[..], &hi[..], block.prefix_len(), s.id],
        )?;
    }
    ctx.tx.execute(
        "UPDATE subnets SET group_id = ?1, parent_id = ?2, pool = ?3 WHERE id = ?4",
        params![group, parent_id, pool, s.id],
    )?;
    if group != s.group && place.children > 0 {
        // The subtree follows its pool into the group.
        ctx.tx.execute(
            "WITH RECURSIVE sub(id) AS (SELECT id FROM subnets WHERE parent_id = ?1
                                        UNION ALL SELECT t.id FROM subnets t JOIN sub ON t.parent_id = sub.id)
             UPDATE subnets SET group_id = ?2 WHERE id IN (SELECT id FROM sub)",
            params![s.id, group],
        )?;
    }
    let now = Subnet {
        net: block,
        group,
        ..s.clone()
    };
    match (place.pool, pool) {
        (false, true) => pools::init(ctx, &now)?,
        (true, false) => {
            ctx.tx
                .execute("DELETE FROM pool_free WHERE pool_id = ?1", params![s.id])?;
        }
        (true, true) if block != s.net => pools::rebuild(ctx, &now)?,
        _ => {}
    }
    for (col, patch) in TEXT_COLS.iter().zip(&p.texts) {
        let v = match patch {
            Patch::Keep => continue,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        };
        ctx.tx.execute(
            &format!("UPDATE subnets SET {col} = ?1 WHERE id = ?2"),
            params![v, s.id],
        )?;
    }
    match p.vlan_id {
        Patch::Keep => {}
        Patch::Clear => {
            ctx.tx
                .execute("UPDATE subnets SET vlan_id = NULL WHERE id = ?1", params![s.id])?;
        }
        Patch::Set(v) => {
            ctx.tx
                .execute("UPDATE subnets SET vlan_id = ?1 WHERE id = ?2", params![v, s.id])?;
        }
    }
    touch(ctx, s.id)?;
    space::recount(ctx, &now)?;
    let after = get_record(ctx, p.id)?;
    ctx.log(
        Change::new(ObjectKind::Subnet.id(p.id), Edited, "subnet edited")
            .detail(diff(&before, &after))
            .before(&before)
            .after(&after),
    )?;
    Ok(model::List::of(vec![after], "subnets"))
}

/// Whether a subnet has DHCP ranges.
fn has_ranges(ctx: &Ctx, id: i64) -> Result<bool> {
    ctx.tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM dhcp_ranges WHERE subnet_id = ?1)",
        params![id],
        |r| r.get(0),
    )
}

/// The fields that differ between two records, as `{field: [before, after]}`.
pub fn diff(before: &impl serde::Serialize, after: &impl serde::Serialize) -> Value {
    let mut out = Map::new();
    if let (Value::Object(b), Value::Object(a)) = (json!(before), json!(after)) {
        for (k, av) in a {
            if matches!(k.as_str(), "modifiedat" | "userid" | "user" | "email" | "realname") {
                continue;
            }
            let bv = b.get(&k).unwrap_or(&Value::Null);
            if *bv != av {
                out.insert(k, json!([bv, av]));
            }
        }
    }
    Value::Object(out)
}

pub struct DeleteParams {
    ids: Vec<i64>,
    force: bool,
    recursive: bool,
}

impl DeleteParams {
    fn decode_with(d: &mut Data, key: &str) -> Result<Self> {
        let mut ids = match key {
            "id" => vec![d.req_id("id")?],
            _ => d.ids(key)?.ok_or_else(|| Error::param(key, "is required"))?,
        };
        // A repeated id counts once; the first place of each is kept.
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        ids.retain(|id| seen.insert(*id));
        if ids.len() > MAX_RECORDS {
            return Err(too_many_deleted());
        }
        Ok(DeleteParams {
            ids,
            force: d.bool("force")?.unwrap_or(false),
            recursive: d.bool("recursive")?.unwrap_or(false),
        })
    }
}

/// `subnets/delete` parameters: `{id, force?, version?}`.
pub struct DeleteOne(DeleteParams, Option<i64>);

impl Params for DeleteOne {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(DeleteOne(DeleteParams::decode_with(d, "id")?, d.int("version")?))
    }
}

/// `subnets/massdelete` parameters: `{ids, force?}`.
pub struct DeleteMany(DeleteParams);

impl Params for DeleteMany {
    fn decode(d: &mut Data) -> Result<Self> {
        DeleteParams::decode_with(d, "ids").map(DeleteMany)
    }
}

pub fn delete(ctx: &Ctx, p: DeleteOne) -> Result<Records<model::Deleted>> {
    if let (Some(version), [id]) = (p.1, p.0.ids.as_slice()) {
        load(ctx, *id)?;
        check_version(ctx, "subnets", *id, Some(version))?;
    }
    remove(ctx, p.0, false)
}

pub fn massdelete(ctx: &Ctx, p: DeleteMany) -> Result<Records<model::Deleted>> {
    remove(ctx, p.0, true)
}

/// The number of subnets below a pool and of address records in them.
fn subtree_counts(ctx: &Ctx, id: i64) -> Result<(i64, i64)> {
    ctx.tx.query_row(
        "WITH RECURSIVE sub(id) AS (SELECT id FROM subnets WHERE parent_id = ?1
                                    UNION ALL SELECT t.id FROM subnets t JOIN sub ON t.parent_id = sub.id)
         SELECT count(*), CAST(coalesce(sum(t.used), 0) AS BIGINT) FROM sub JOIN subnets t ON t.id = sub.id",
        params![id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Deletes subnets, all or nothing. A subnet with records is refused unless `force`, a pool with children unless
/// `recursive` (and `force` too when its subtree holds records); its DHCP ranges, fields, (with `force`) records
/// and (with `recursive`) subtree go with it, at most [`MAX_RECORDS`] records in all. A deleted child's block is
/// free again in its pool.
fn remove(ctx: &Ctx, p: DeleteParams, mass: bool) -> Result<Records<model::Deleted>> {
    let mut failures = Map::new();
    let mut first: Option<Error> = None;
    let mut doomed = Vec::new();
    for id in &p.ids {
        let outcome = get_record(ctx, *id).and_then(|r| {
            let (subnets, below) = match r.children {
                0 => (0, 0),
                _ => subtree_counts(ctx, r.id)?,
            };
            let used = r.used_hosts + below;
            if subnets > 0 && !p.recursive {
                Err(Error::new(
                    Code::NotEmpty,
                    format!("pool {id} holds {subnets} subnets; pass recursive"),
                )
                .with_data(json!({"subnets": subnets})))
            } else if used > 0 && !p.force {
                Err(Error::new(
                    Code::NotEmpty,
                    format!("subnet {id} holds {used} address records; pass force"),
                )
                .with_data(json!({"addresses": used})))
            } else {
                Ok((r, subnets, used))
            }
        });
        match outcome {
            Ok(r) => doomed.push(r),
            Err(e) => {
                failures.insert(id.to_string(), json!(e.message));
                first.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first {
        if !mass {
            return Err(e);
        }
        return Err(Error::new(
            e.code,
            format!(
                "{} of {} subnets cannot be deleted; none was",
                failures.len(),
                p.ids.len()
            ),
        )
        .with_data(Value::Object(failures)));
    }
    let records: i64 = doomed.iter().map(|(_, subnets, used)| subnets + used).sum();
    if records > MAX_RECORDS as i64 {
        return Err(too_many_deleted());
    }
    let mut ids = Vec::new();
    for (r, subnets, used) in doomed {
        let id = r.id;
        // A pool deleted earlier in this call took its subtree with it.
        let s = match load(ctx, id) {
            Ok(s) => s,
            Err(e) if e.code == Code::NotFound => {
                ids.push(id);
                continue;
            }
            Err(e) => return Err(e),
        };
        if subnets > 0 {
            ctx.tx.execute(
                "WITH RECURSIVE sub(id) AS (SELECT id FROM subnets WHERE parent_id = ?1
                                            UNION ALL SELECT t.id FROM subnets t JOIN sub ON t.parent_id = sub.id)
                 DELETE FROM subnets WHERE id IN (SELECT id FROM sub)",
                params![id],
            )?;
        }
        ctx.tx.execute("DELETE FROM subnets WHERE id = ?1", params![id])?;
        if let Some(pool) = r.parent {
            pools::release(ctx, &load(ctx, pool)?, &s.net)?;
        }
        ctx.log(
            Change::new(
                ObjectKind::Subnet.id(id),
                Deleted,
                format!("subnet {} deleted", r.subnet),
            )
            .detail(match subnets {
                0 => json!({"addresses": used}),
                _ => json!({"addresses": used, "subnets": subnets}),
            })
            .before(&r),
        )?;
        ids.push(id);
    }
    Ok(deleted(&ids))
}

pub struct SplitParams {
    id: i64,
    cidr: Option<i64>,
    parts: Option<i64>,
}

impl Params for SplitParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let p = SplitParams {
            id: d.req_id("id")?,
            cidr: d.int("cidr")?,
            parts: d.int("parts")?,
        };
        match (p.cidr, p.parts) {
            (Some(_), Some(_)) => Err(Error::param("parts", "give either cidr or parts")),
            (None, None) => Err(Error::param(
                "cidr",
                "cidr (the new prefix length) or parts is required",
            )),
            _ => Ok(p),
        }
    }
}

/// Splits a subnet into 2^k children. The lowest keeps the id and metadata; the others copy the metadata and the
/// field definitions; every record and DHCP range moves to the child that holds it (ids unchanged).
pub fn split(ctx: &Ctx, p: SplitParams) -> Result<model::List<model::Subnet>> {
    let s = load(ctx, p.id)?;
    let invalid = |m: String| Error::new(Code::InvalidSplit, m);
    let prefix = match (p.cidr, p.parts) {
        (Some(c), _) => u8::try_from(c).map_err(|_| invalid(format!("/{c} is not a prefix length")))?,
        (None, Some(n)) => {
            let n = u64::try_from(n).map_err(|_| invalid("parts must be a power of two".into()))?;
            net::parts_to_prefix(&s.net, n).map_err(invalid)?
        }
        (None, None) => return Err(invalid("nothing to split into".into())),
    };
    let children = net::split(&s.net, prefix, ctx.settings.max_split).map_err(invalid)?;
    for child in &children {
        storable(*child)?;
    }
    let place = placement(ctx, s.id)?;
    if place.children > 0 {
        // Each child of a pool must fit in one part.
        let too_big: i64 = ctx.tx.query_row(
            "SELECT count(*) FROM subnets WHERE parent_id = ?1 AND prefix < ?2",
            params![s.id, prefix],
            |r| r.get(0),
        )?;
        if too_big > 0 {
            return Err(invalid(format!(
                "{too_big} of the pool's subnets are larger than /{prefix}"
            )));
        }
    }
    let ranges = ctx.tx.rows(
        "SELECT id, start_ip, end_ip FROM dhcp_ranges WHERE subnet_id = ?1",
        params![s.id],
        |r| Ok((r.get::<i64>(0)?, r.get::<Vec<u8>>(1)?, r.get::<Vec<u8>>(2)?)),
    )?;
    let mut straddling = Map::new();
    for (id, a, b) in &ranges {
        let (a, b) = (net::bytes_key(a).unwrap_or(0), net::bytes_key(b).unwrap_or(0));
        if !children.iter().any(|c| net::range(c).0 <= a && b <= net::range(c).1) {
            straddling.insert(id.to_string(), json!(net::format_range((a, b), s.v4())));
        }
    }
    if !straddling.is_empty() {
        return Err(
            invalid(format!("DHCP ranges would straddle the /{prefix} children")).with_data(Value::Object(straddling))
        );
    }
    // The subnet as it was, for the feed: its entry gives the fields the split changed.
    let before = get_record(ctx, s.id)?;
    let meta: [Option<String>; 4] = ctx.tx.query_row(
        "SELECT name, description, domain, location FROM subnets WHERE id = ?1",
        params![s.id],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
    )?;
    let vlan: Option<i64> = ctx
        .tx
        .query_row("SELECT vlan_id FROM subnets WHERE id = ?1", params![s.id], |r| r.get(0))?;
    let mut ids = vec![s.id];
    for child in &children[1..] {
        let id = insert(ctx, child, s.group, place.parent, place.pool, &meta, vlan)?;
        let (lo, hi) = net::range(child);
        let (lo, hi) = (net::key_bytes(lo), net::key_bytes(hi));
        ctx.tx.execute(
            "UPDATE subnets SET parent_id = ?1 WHERE parent_id = ?2 AND net_start BETWEEN ?3 AND ?4",
            params![id, s.id, &lo[..], &hi[..]],
        )?;
        let field_map = fields::copy_definitions(ctx, s.id, id)?;
        ctx.tx.execute(
            "UPDATE addresses SET subnet_id = ?1 WHERE subnet_id = ?2 AND ip BETWEEN ?3 AND ?4",
            params![id, s.id, &lo[..], &hi[..]],
        )?;
        ctx.tx.execute(
            "UPDATE dhcp_ranges SET subnet_id = ?1 WHERE subnet_id = ?2 AND start_ip BETWEEN ?3 AND ?4",
            params![id, s.id, &lo[..], &hi[..]],
        )?;
        fields::remap_values(ctx, id, &field_map)?;
        space::recount(
            ctx,
            &Subnet {
                id,
                group: s.group,
                net: *child,
            },
        )?;
        ids.push(id);
    }
    let (lo, hi) = net::range(&children[0]);
    ctx.tx.execute(
        "UPDATE subnets SET net_start = ?1, net_end = ?2, prefix = ?3 WHERE id = ?4",
        params![&net::key_bytes(lo)[..], &net::key_bytes(hi)[..], prefix, s.id],
    )?;
    if place.pool {
        for (id, net) in ids.iter().zip(&children) {
            pools::rebuild(
                ctx,
                &Subnet {
                    id: *id,
                    group: s.group,
                    net: *net,
                },
            )?;
        }
    }
    touch(ctx, s.id)?;
    space::recount(
        ctx,
        &Subnet {
            net: children[0],
            ..s.clone()
        },
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in &ids {
        out.push(get_record(ctx, *id)?);
    }
    ctx.log(
        Change::new(
            ObjectKind::Subnet.id(s.id),
            Split,
            format!("subnet {} split into {} /{prefix}", s.net, children.len()),
        )
        .detail(json!({"from": s.net.to_string(), "created": ids[1..]}))
        .before(&before)
        .after(&out[0]),
    )?;
    Ok(model::List::of(out, "subnets"))
}

pub struct JoinParams {
    ids: Option<Vec<i64>>,
    id: Option<i64>,
    cidr: Option<i64>,
    force: bool,
}

impl Params for JoinParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let p = JoinParams {
            ids: d.ids("ids")?,
            id: d.id("id")?,
            cidr: d.int("cidr")?,
            force: d.bool("force")?.unwrap_or(false),
        };
        match (&p.ids, p.id, p.cidr) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => Ok(p),
            (Some(_), _, _) => Err(Error::param("ids", "give either ids or id and cidr")),
            _ => Err(Error::param("ids", "ids, or id and cidr, is required")),
        }
    }
}

/// Joins subnets of one group that exactly tile one block into the lowest-addressed of them, which keeps its id.
pub fn join(ctx: &Ctx, p: JoinParams) -> Result<Records<model::Joined>> {
    let members: Vec<Subnet> = match (&p.ids, p.id, p.cidr) {
        (Some(ids), _, _) => {
            let mut v = Vec::new();
            for id in ids {
                let s = load(ctx, *id)?;
                if !v.iter().any(|m: &Subnet| m.id == s.id) {
                    v.push(s);
                }
            }
            v
        }
        (None, Some(id), Some(cidr)) => {
            let s = load(ctx, id)?;
            let prefix = u8::try_from(cidr).map_err(|_| Error::param("cidr", "must be a prefix length"))?;
            let block = IpNet::new(s.net.network(), prefix)
                .map_err(|_| Error::param("cidr", "must be a prefix length of the subnet's family"))?
                .trunc();
            if prefix >= s.net.prefix_len() {
                return Err(Error::param(
                    "cidr",
                    format!("must be shorter than /{}", s.net.prefix_len()),
                ));
            }
            let members = members_within(ctx, s.group, placement(ctx, s.id)?.parent, &block)?;
            // The members must fill the block asked for, not merely tile a smaller one inside it.
            let (start, end) = net::range(&block);
            let mut missing = Vec::new();
            let mut next = Some(start);
            for m in &members {
                let (lo, hi) = m.range();
                if let Some(n) = next.filter(|n| lo > *n) {
                    missing.push((n, lo - 1));
                }
                next = hi.checked_add(1);
            }
            if let Some(n) = next.filter(|n| *n <= end) {
                missing.push((n, end));
            }
            if !missing.is_empty() {
                return Err(not_contiguous(&block, &missing));
            }
            members
        }
        _ => return Err(Error::param("ids", "ids, or id and cidr, is required")),
    };
    if members.len() < 2 {
        return Err(Error::param("ids", "name at least two subnets to join"));
    }
    if members.iter().any(|m| m.group != members[0].group) {
        return Err(Error::param("ids", "the subnets must all be in one group"));
    }
    let places = members
        .iter()
        .map(|m| placement(ctx, m.id))
        .collect::<Result<Vec<_>>>()?;
    let place = places[0];
    if places.iter().any(|p| p.parent != place.parent || p.pool != place.pool) {
        return Err(Error::param(
            "ids",
            "the subnets must all be pools or all not, in one pool",
        ));
    }
    let nets: Vec<IpNet> = members.iter().map(|m| m.net).collect();
    let block = net::tile(&nets).map_err(|nt| not_contiguous(&nt.expected, &nt.missing))?;
    storable(block)?;
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    let chain = chain(ctx, place.parent)?;
    // The members tile the block: a subnet of the group inside it is in a member's subtree.
    let subtree = place.pool.then_some(&block);
    check_overlap(ctx, members[0].group, &block, &ids, &chain, subtree)?;
    let survivor = members
        .iter()
        .min_by_key(|m| m.range().0)
        .cloned()
        .ok_or_else(|| Error::internal("no members"))?;
    let absorbed: Vec<i64> = ids.iter().copied().filter(|id| *id != survivor.id).collect();
    // The surviving subnet as it was, for the feed: its entry gives the fields the join changed.
    let before = get_record(ctx, survivor.id)?;
    for id in &absorbed {
        let field_map = fields::merge_definitions(ctx, *id, survivor.id, p.force)?;
        ctx.tx.execute(
            "UPDATE addresses SET subnet_id = ?1 WHERE subnet_id = ?2",
            params![survivor.id, id],
        )?;
        ctx.tx.execute(
            "UPDATE dhcp_ranges SET subnet_id = ?1 WHERE subnet_id = ?2",
            params![survivor.id, id],
        )?;
        fields::remap_values(ctx, survivor.id, &field_map)?;
        ctx.tx.execute(
            "UPDATE subnets SET parent_id = ?1 WHERE parent_id = ?2",
            params![survivor.id, id],
        )?;
        ctx.tx.execute("DELETE FROM subnets WHERE id = ?1", params![id])?;
    }
    let (lo, hi) = net::range(&block);
    ctx.tx.execute(
        "UPDATE subnets SET net_start = ?1, net_end = ?2, prefix = ?3 WHERE id = ?4",
        params![
            &net::key_bytes(lo)[..],
            &net::key_bytes(hi)[..],
            block.prefix_len(),
            survivor.id
        ],
    )?;
    if place.pool {
        pools::rebuild(
            ctx,
            &Subnet {
                net: block,
                ..survivor.clone()
            },
        )?;
    }
    touch(ctx, survivor.id)?;
    space::recount(
        ctx,
        &Subnet {
            net: block,
            ..survivor.clone()
        },
    )?;
    let after = get_record(ctx, survivor.id)?;
    ctx.log(
        Change::new(
            ObjectKind::Subnet.id(survivor.id),
            Joined,
            format!("{} subnets joined into {block}", ids.len()),
        )
        .detail(json!({"joined": absorbed}))
        .before(&before)
        .after(&after),
    )?;
    Ok(Records(vec![model::Joined {
        subnet: after,
        joined: absorbed,
    }]))
}

/// `not_contiguous`, naming the block the members should tile and the ranges of it they leave uncovered.
fn not_contiguous(expected: &IpNet, missing: &[(u128, u128)]) -> Error {
    let v4 = matches!(expected, IpNet::V4(_));
    Error::new(
        Code::NotContiguous,
        format!("the subnets do not exactly tile {expected}"),
    )
    .with_data(json!({
        "expected": expected.to_string(),
        "missing": missing.iter().map(|r| net::format_range(*r, v4)).collect::<Vec<_>>(),
    }))
}

/// The subnets of a group and pool that lie inside `block`.
fn members_within(ctx: &Ctx, group: Option<i64>, parent: Option<i64>, block: &IpNet) -> Result<Vec<Subnet>> {
    let (lo, hi) = net::range(block);
    let family = if matches!(block, IpNet::V4(_)) { 4 } else { 6 };
    ctx.tx.rows(
        cached_sql!(format!(
            "SELECT {SUBNET_COLS} FROM subnets t
             WHERE t.org_id = ?1 AND t.group_id IS NOT DISTINCT FROM ?2 AND t.family = ?3 AND t.net_start >= ?4
               AND t.net_end <= ?5 AND t.parent_id IS NOT DISTINCT FROM ?6 {ORDER}"
        )),
        params![ctx.org(), group, family, net::key_bytes(lo), net::key_bytes(hi), parent],
        |r| subnet_of(r, 0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The brief lookup of where an address lives reads its records from `addresses_brief` alone: a column added to
    /// the brief record but not to the index would make every lookup read the table row again.
    #[test]
    fn the_brief_holders_statement_reads_only_the_covering_index() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate(&conn).unwrap();
        crate::store::add_functions(&conn).unwrap();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt.query_map([1, 4, 0, 0], |r| r.get::<_, String>(3)).unwrap();
            rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
        };
        let brief = plan(holders_sql(true));
        assert!(brief.contains("COVERING INDEX addresses_brief"), "{brief}");
        assert!(!brief.contains("SEARCH am"), "{brief}");
        let full = plan(holders_sql(false));
        assert!(!full.contains("addresses_brief"), "{full}");
    }
}
