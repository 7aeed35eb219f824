//! `export/get`: the networks, address records and DHCP ranges of the org, a group's subtree or one subnet, as rows
//! of one shape ([`ExportRow`]) a page at a time. Pages follow a key-set cursor (subnet id, then ranges by start and
//! records by address), so each page costs the same however far the export has gone, and nothing is read that the
//! page does not hold: the REST door and `ipamd export` stream the pages one after the other in constant memory.
//!
//! Each page is read in its own read transaction: a change committed while an export runs shows in the pages read
//! after it. No row is given twice or missed for paging's sake; a record changed mid-export is given as it was
//! when its page was read.

use crate::db::{self, params, Row};
use crate::error::{Error, Result};
use crate::handler::{Ctx, Params};
use crate::methods::subnets::{self, Subnet, SUBNET_COLS};
use crate::methods::{groups, MAX_RECORDS};
use crate::model::{ExportPage, ExportRow};
use crate::net;
use crate::params::Data;

/// What an export or a generated configuration covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    Org,
    Subnet(i64),
    /// The group and every group below it.
    Group(i64),
}

impl Scope {
    /// `subnet` or `group` (not both); neither is the whole org.
    pub fn decode(d: &mut Data) -> Result<Scope> {
        match (d.id("subnet")?, d.id("group")?) {
            (Some(_), Some(_)) => Err(Error::param("group", "give subnet or group, not both")),
            (Some(s), None) => Ok(Scope::Subnet(s)),
            (None, Some(g)) => Ok(Scope::Group(g)),
            (None, None) => Ok(Scope::Org),
        }
    }

    /// Checks that the subnet or group is the caller's (`not_found` otherwise).
    pub fn check(self, ctx: &Ctx) -> Result<()> {
        match self {
            Scope::Org => Ok(()),
            Scope::Subnet(id) => subnets::load(ctx, id).map(|_| ()),
            Scope::Group(id) => groups::exists(ctx, id),
        }
    }

    /// The first `limit` subnets of the scope after id `after`, by id, with the columns of [`SUBNET_COLS`] and then
    /// `extra` (column expressions over `t`), each read by `row`.
    pub fn subnets<T>(
        self,
        ctx: &Ctx,
        extra: &str,
        after: i64,
        limit: usize,
        row: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let (with, cond, arg) = match self {
            Scope::Org => ("", "", None),
            Scope::Subnet(id) => ("", " AND t.id = ?4", Some(id)),
            Scope::Group(id) => (
                "WITH RECURSIVE sub(id) AS (SELECT id FROM groups WHERE id = ?4 AND org_id = ?1
                     UNION SELECT g.id FROM groups g CROSS JOIN sub ON g.parent_id = sub.id) ",
                " AND t.group_id IN (SELECT id FROM sub)",
                Some(id),
            ),
        };
        let sql = format!(
            "{with}SELECT {SUBNET_COLS}{extra} FROM subnets t WHERE t.org_id = ?1 AND t.id > ?2{cond}
             ORDER BY t.id LIMIT ?3"
        );
        let mut args = vec![
            db::Value::from(ctx.org()),
            db::Value::from(after),
            db::Value::from(i64::try_from(limit).unwrap_or(i64::MAX)),
        ];
        args.extend(arg.map(db::Value::from));
        ctx.tx.rows(&sql, &db::param_list(&args), row)
    }
}

pub struct GetParams {
    scope: Scope,
    format: &'static str,
    after: Option<Cursor>,
    limit: usize,
}

impl Params for GetParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(GetParams {
            scope: Scope::decode(d)?,
            format: match d.str("format")?.as_deref() {
                None | Some("json") => "json",
                Some("csv") => "csv",
                Some(_) => return Err(Error::param("format", "must be json or csv")),
            },
            after: d.str("after")?.map(|c| Cursor::parse(&c)).transpose()?,
            limit: usize::try_from(d.per_page("limit", 1000, MAX_RECORDS as i64)?).unwrap_or(MAX_RECORDS),
        })
    }
}

/// A page of at most `limit` rows (default 1000, at most 5000) after the cursor `after`: each network, then its
/// DHCP ranges by first address, then its address records by address; networks by id. `next` is the cursor of
/// the next page, `null` after the last.
pub fn get(ctx: &Ctx, p: GetParams) -> Result<ExportPage> {
    p.scope.check(ctx)?;
    let mut rows = Vec::new();
    let mut at = p.after.unwrap_or(Cursor {
        subnet: 0,
        stage: Stage::Done,
        key: 0,
    });
    loop {
        let room = p.limit - rows.len();
        if room == 0 {
            return Ok(page(p.format, rows, Some(at)));
        }
        if at.stage == Stage::Done {
            let next = p.scope.subnets(ctx, NETWORK_EXTRA, at.subnet, 1, network_row)?.pop();
            let Some((id, row)) = next else {
                return Ok(page(p.format, rows, None));
            };
            rows.push(row);
            at = Cursor {
                subnet: id,
                stage: Stage::Network,
                key: 0,
            };
            continue;
        }
        // A subnet deleted since the last page is passed over.
        let Some(s) = lookup(ctx, at.subnet)? else {
            at.stage = Stage::Done;
            continue;
        };
        let (ranges, after) = match at.stage {
            Stage::Network => (true, None),
            Stage::Range => (true, Some(at.key)),
            Stage::RangesDone => (false, None),
            Stage::Address | Stage::Done => (false, Some(at.key)),
        };
        let found = read_children(ctx, ranges, &s, after, room)?;
        let full = found.len() == room;
        at.stage = match (ranges, full) {
            (true, true) => Stage::Range,
            (true, false) => Stage::RangesDone,
            (false, true) => Stage::Address,
            (false, false) => Stage::Done,
        };
        at.key = found.last().map_or(0, |(k, _)| *k);
        rows.extend(found.into_iter().map(|(_, r)| r));
    }
}

/// Where a page ends: the subnet, how far into it, and the key of the last range or record given.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    subnet: i64,
    stage: Stage,
    key: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The network's row is given; its ranges come next.
    Network,
    /// Ranges are given up to the key.
    Range,
    /// Every range is given; the records come next.
    RangesDone,
    /// Records are given up to the key.
    Address,
    /// The subnet is done; the next one comes next.
    Done,
}

impl Cursor {
    fn parse(s: &str) -> Result<Cursor> {
        let bad = || Error::param("after", "must be a cursor an earlier page gave as next");
        let mut parts = s.split('.');
        let (Some(subnet), Some(stage), Some(key), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Cursor {
            subnet: subnet.parse().map_err(|_| bad())?,
            stage: match stage {
                "n" => Stage::Network,
                "r" => Stage::Range,
                "m" => Stage::RangesDone,
                "a" => Stage::Address,
                "d" => Stage::Done,
                _ => return Err(bad()),
            },
            key: u128::from_str_radix(key, 16).map_err(|_| bad())?,
        })
    }

    fn text(&self) -> String {
        let stage = match self.stage {
            Stage::Network => "n",
            Stage::Range => "r",
            Stage::RangesDone => "m",
            Stage::Address => "a",
            Stage::Done => "d",
        };
        format!("{}.{stage}.{:x}", self.subnet, self.key)
    }
}

fn page(format: &'static str, rows: Vec<ExportRow>, next: Option<Cursor>) -> ExportPage {
    ExportPage {
        format,
        rows,
        next: next.map(|c| c.text()),
    }
}

/// The columns of a network's row after [`SUBNET_COLS`].
const NETWORK_EXTRA: &str = ", t.name, t.domain, t.vlan_id, t.location, t.description";

fn network_row(r: &Row) -> Result<(i64, ExportRow)> {
    let s = subnets::subnet_of(r, 0)?;
    Ok((
        s.id,
        ExportRow {
            kind: "network",
            network: net::net_text(&s.net),
            group: s.group,
            name: r.get(5)?,
            domain: r.get(6)?,
            vlan_id: r.get(7)?,
            location: r.get(8)?,
            description: r.get(9)?,
            ..ExportRow::default()
        },
    ))
}

/// Subnet `id` of the caller's org, if it still exists.
fn lookup(ctx: &Ctx, id: i64) -> Result<Option<Subnet>> {
    match subnets::load(ctx, id) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.code == crate::error::Code::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

const RANGES_SQL: &str = "SELECT start_ip, end_ip, is_active, description, NULL, NULL, NULL, NULL FROM dhcp_ranges
     WHERE subnet_id = ?1 AND start_ip >= ?2 AND start_ip <> ?3 ORDER BY start_ip LIMIT ?4";
const ADDRESSES_SQL: &str = "SELECT ip, NULL, NULL, description, hostname, cname, mac_address, status FROM addresses
     WHERE subnet_id = ?1 AND ip >= ?2 AND ip <> ?3 ORDER BY ip LIMIT ?4";

/// The first `limit` DHCP ranges (`ranges`) or address records of `s`, after key `after` (from the first without
/// one), each with its key: one index range scan of (subnet, address).
fn read_children(
    ctx: &Ctx,
    ranges: bool,
    s: &Subnet,
    after: Option<u128>,
    limit: usize,
) -> Result<Vec<(u128, ExportRow)>> {
    let lo = net::key_bytes(after.unwrap_or(0));
    // `<> ?3` drops the key the last page ended on; from the start, a 17-byte blob no 16-byte key equals.
    let not: &[u8] = match after {
        Some(_) => &lo,
        None => &[0; 17],
    };
    let sql = if ranges { RANGES_SQL } else { ADDRESSES_SQL };
    let network = net::net_text(&s.net);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    ctx.tx.rows(sql, params![s.id, lo, not, limit], |r| {
        let first: Vec<u8> = r.get(0)?;
        let key = net::bytes_key(&first).unwrap_or_default();
        let text = |k: u128| net::ip_text(net::from_key(k, s.v4()));
        let row = if ranges {
            let end: Vec<u8> = r.get(1)?;
            let active: bool = r.get(2)?;
            ExportRow {
                kind: "dhcp_range",
                ip: Some(text(key)),
                end_ip: net::bytes_key(&end).map(text),
                status: Some(if active { "active" } else { "inactive" }.into()),
                description: r.get(3)?,
                ..ExportRow::default()
            }
        } else {
            ExportRow {
                kind: "address",
                ip: Some(text(key)),
                description: r.get(3)?,
                hostname: r.get(4)?,
                cname: r.get(5)?,
                mac_address: r.get(6)?,
                status: r.get(7)?,
                ..ExportRow::default()
            }
        };
        Ok((
            key,
            ExportRow {
                network: network.clone(),
                group: s.group,
                ..row
            },
        ))
    })
}
