//! `import/run`: networks, address records and DHCP ranges from CSV or JSON, in ipamd's own columns (those of
//! `export/get`) or in the columns of phpIPAM's and NetBox's CSV exports (methods.md, Import, has the mapping).
//!
//! Each row runs through the method that would make its change by hand (`subnets/add` or `subnets/edit`,
//! `ipaddress/add` or `ipaddress/edit`, `dhcpranges/add` or `dhcpranges/edit`), with that method's checks, counts
//! and audit entry, in a savepoint of its own: a refused row leaves nothing behind, and the rows after it still
//! run, so one answer reports every refusal by row and column. A real run commits only when no row is refused;
//! a dry run rolls everything back and reports what each row would have done.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::db::params;
use serde_json::{json, Map, Value};

use crate::error::{Code, Error, Result};
use crate::handler::{call, Ctx, Params};
use crate::methods::subnets::{Subnet, SUBNET_COLS};
use crate::methods::{addresses, dhcpranges, groups, subnets};
use crate::model::{ExportRow, ImportReport, ImportRow, Reply, RowError};
use crate::net;
use crate::params::Data;

/// The most rows one import takes: one transaction holds up every other write while it runs.
pub const MAX_IMPORT_ROWS: usize = 100_000;

/// The most bytes of `data` one import takes (over HTTP the 1 MiB body limit comes first).
pub const MAX_IMPORT_BYTES: usize = 32 << 20;

/// The most refused rows a refused real run lists.
const MAX_LISTED_ERRORS: usize = 100;

/// Where rows come from: whose column names and values they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Ipamd,
    Phpipam,
    Netbox,
}

pub struct RunParams {
    rows: Vec<Row>,
    dry_run: bool,
    group: Option<i64>,
}

impl RunParams {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl Params for RunParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let json = match d.str("format")?.as_deref() {
            None | Some("csv") => false,
            Some("json") => true,
            Some(_) => return Err(Error::param("format", "must be csv or json")),
        };
        let source = match d.str("source")?.as_deref() {
            None | Some("ipamd") => Source::Ipamd,
            Some("phpipam") => Source::Phpipam,
            Some("netbox") => Source::Netbox,
            Some(_) => return Err(Error::param("source", "must be ipamd, phpipam or netbox")),
        };
        let data = d.take("data").ok_or_else(|| Error::param("data", "is required"))?;
        let rows = match (json, data) {
            (true, Value::Array(items)) if source == Source::Ipamd => json_rows(items)?,
            (true, Value::String(text)) if source == Source::Ipamd => {
                check_size(&text)?;
                match serde_json::from_str(&text) {
                    Ok(Value::Array(items)) => json_rows(items)?,
                    _ => return Err(Error::param("data", "must be a JSON array of rows")),
                }
            }
            (true, _) if source != Source::Ipamd => {
                return Err(Error::param(
                    "format",
                    "phpIPAM and NetBox rows are read from their CSV exports",
                ))
            }
            (false, Value::String(text)) => {
                check_size(&text)?;
                csv_rows(&text, source)?
            }
            _ => return Err(Error::param("data", "must be the CSV text, or a JSON array of rows")),
        };
        Ok(RunParams {
            rows,
            dry_run: d.bool("dry_run")?.unwrap_or(false),
            group: d.id("group")?,
        })
    }
}

/// Runs every row. A dry run answers what each row would do and changes nothing; a real run answers the counts,
/// or, when any row is refused, `invalid_params` listing the refused rows (the first 100) and changes nothing.
pub fn run(ctx: &Ctx, p: RunParams) -> Result<ImportReport> {
    run_with(ctx, p, &mut |_| {})
}

/// [`run`], calling `progress` with the number of rows done after each row (the command line's progress).
pub fn run_with(ctx: &Ctx, p: RunParams, progress: &mut dyn FnMut(usize)) -> Result<ImportReport> {
    if let Some(g) = p.group {
        groups::exists(ctx, g)?;
    }
    ctx.tx.batch("SAVEPOINT import")?;
    let outcome = run_rows(ctx, &p, progress);
    let keep = matches!(&outcome, Ok(report) if !p.dry_run && report.refused == 0);
    ctx.tx.batch(if keep {
        "RELEASE import"
    } else {
        "ROLLBACK TO import; RELEASE import"
    })?;
    let mut report = outcome?;
    if report.refused > 0 && !p.dry_run {
        let refused: Vec<&ImportRow> = report.rows.iter().filter(|r| r.action == "refused").collect();
        let listed = &refused[..refused.len().min(MAX_LISTED_ERRORS)];
        return Err(Error::new(
            Code::InvalidParams,
            format!(
                "{} of {} rows refused; nothing was imported",
                report.refused,
                p.rows.len()
            ),
        )
        .with_data(json!({"rows": listed, "refused": report.refused})));
    }
    if !p.dry_run {
        report.rows = Vec::new();
    }
    Ok(report)
}

fn run_rows(ctx: &Ctx, p: &RunParams, progress: &mut dyn FnMut(usize)) -> Result<ImportReport> {
    let mut report = ImportReport {
        dry_run: p.dry_run,
        created: 0,
        updated: 0,
        refused: 0,
        rows: Vec::with_capacity(p.rows.len()),
    };
    for row in &p.rows {
        ctx.tx.execute("SAVEPOINT import_row", params![])?;
        let done = apply(ctx, row, p.group);
        if done.is_err() {
            ctx.tx.execute("ROLLBACK TO import_row", params![])?;
        }
        ctx.tx.execute("RELEASE import_row", params![])?;
        let (action, id, errors) = match done {
            Ok((created, id)) => {
                match created {
                    true => report.created += 1,
                    false => report.updated += 1,
                }
                (if created { "created" } else { "updated" }, Some(id), Vec::new())
            }
            // What is no fault of the row's (the database, a bug) stops the import.
            Err(e) if matches!(e.code, Code::Internal | Code::Unavailable) => return Err(e),
            Err(e) => {
                report.refused += 1;
                ("refused", None, vec![row_error(row, e)])
            }
        };
        report.rows.push(ImportRow {
            row: row.line,
            kind: row.kind,
            action,
            id,
            errors,
        });
        progress(report.rows.len());
    }
    Ok(report)
}

/// One row of input: its number, kind, and its values under ipamd's column names, each with the column the input
/// named it by.
struct Row {
    line: usize,
    kind: &'static str,
    values: HashMap<&'static str, (String, String)>,
}

impl Row {
    /// A column's value; `None` when missing or empty (an empty cell keeps what a record has).
    fn get(&self, col: &str) -> Option<&str> {
        self.values.get(col).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
    }

    fn req(&self, col: &'static str) -> Result<&str> {
        self.get(col).ok_or_else(|| Error::param(col, "is required"))
    }
}

/// Creates or updates the row's record: whether it was created, and its id.
fn apply(ctx: &Ctx, row: &Row, group: Option<i64>) -> Result<(bool, i64)> {
    // The group a row's network is found or made in: the row's, else the call's; any, when neither says.
    let group = match row.get("group") {
        Some(g) => Some(
            g.parse::<i64>()
                .map_err(|_| Error::param("group", "must be a group id"))?,
        ),
        None => group,
    };
    match row.kind {
        "network" => {
            let block = subnets::parse_block(row.req("network")?).map_err(|e| rename(e, "network"))?;
            let mut data = fields(row, &["name", "description", "domain", "vlan_id", "location"]);
            match subnet_with_block(ctx, &block, group)? {
                Some(s) => {
                    data.insert("id".into(), json!(s.id));
                    run_method(ctx, subnets::edit, data).map(|_| (false, s.id))
                }
                None => {
                    data.insert("subnet".into(), json!(net::net_text(&block)));
                    data.insert("group".into(), json!(group));
                    match run_method(ctx, subnets::add, data)? {
                        Reply::Subnets(l) => created(l.first().map(|s| s.id)),
                        _ => created(None),
                    }
                }
            }
        }
        "address" => {
            let s = match row.get("network") {
                Some(block) => {
                    let block = subnets::parse_block(block).map_err(|e| rename(e, "network"))?;
                    subnet_with_block(ctx, &block, group)?.ok_or_else(|| no_network(&block))?
                }
                // The most specific subnet containing the address, as `ipaddress/add` with `ip` alone files it.
                None => {
                    let ip = subnets::parse_ip("ip", row.req("ip")?)?;
                    let found = subnets::containing(ctx, ip)?;
                    match found.as_slice() {
                        [] => return Err(Error::param("ip", format!("no network contains {ip}"))),
                        [a, b, ..] if a.net.prefix_len() == b.net.prefix_len() => {
                            let message = format!("{ip} is in subnets of several groups: name the network and group");
                            return Err(Error::new(Code::Ambiguous, message));
                        }
                        [first, ..] => first.clone(),
                    }
                }
            };
            let ip: IpAddr = ip_in(&s.net, "ip", row.req("ip")?)?;
            let mut data = fields(row, &["hostname", "cname", "mac_address", "status", "description"]);
            match record_at(ctx, &s, ip)? {
                Some(id) => {
                    data.insert("id".into(), json!(id));
                    run_method(ctx, addresses::edit, data).map(|_| (false, id))
                }
                None => {
                    data.insert("subnet".into(), json!(s.id));
                    data.insert("ip".into(), json!(ip.to_string()));
                    match run_method(ctx, addresses::add, data)? {
                        Reply::Hosts(l) => created(l.first().map(|h| h.id)),
                        _ => created(None),
                    }
                }
            }
        }
        _ => {
            let block = subnets::parse_block(row.req("network")?).map_err(|e| rename(e, "network"))?;
            let s = subnet_with_block(ctx, &block, group)?.ok_or_else(|| no_network(&block))?;
            let start = ip_in(&s.net, "ip", row.req("ip")?)?;
            let end = ip_in(&s.net, "end_ip", row.req("end_ip")?)?;
            let mut data = fields(row, &["description"]);
            match row.get("status") {
                None => {}
                Some("active") => _ = data.insert("is_active".into(), json!(true)),
                Some("inactive") => _ = data.insert("is_active".into(), json!(false)),
                Some(_) => return Err(Error::param("status", "a DHCP range is active or inactive")),
            }
            let existing: Option<i64> = ctx.tx.query_opt(
                "SELECT id FROM dhcp_ranges WHERE subnet_id = ?1 AND start_ip = ?2 AND end_ip = ?3",
                params![
                    s.id,
                    &net::key_bytes(net::key(start))[..],
                    &net::key_bytes(net::key(end))[..]
                ],
                |r| r.get(0),
            )?;
            match existing {
                Some(id) => {
                    data.insert("id".into(), json!(id));
                    run_method(ctx, dhcpranges::edit, data).map(|_| (false, id))
                }
                None => {
                    data.insert("subnet".into(), json!(s.id));
                    data.insert("start_ip".into(), json!(start.to_string()));
                    data.insert("end_ip".into(), json!(end.to_string()));
                    match run_method(ctx, dhcpranges::add, data)? {
                        Reply::Ranges(l) => created(l.first().map(|r| r.id)),
                        _ => created(None),
                    }
                }
            }
        }
    }
}

fn created(id: Option<i64>) -> Result<(bool, i64)> {
    id.map(|id| (true, id))
        .ok_or_else(|| Error::internal("an import's add answered no record"))
}

fn no_network(block: &ipnet::IpNet) -> Error {
    Error::param(
        "network",
        format!("there is no network {block}: import it first (a network row before this one)"),
    )
}

/// Runs handler `f` with `data` as its parameters, decoded as a call's are.
fn run_method<P: Params + Send + 'static, R: Into<Reply> + 'static>(
    ctx: &Ctx,
    f: fn(&Ctx, P) -> Result<R>,
    data: Map<String, Value>,
) -> Result<Reply> {
    let mut data = Data::new(Value::Object(data))?;
    call(f, &mut data)?.run(ctx)
}

/// The row's non-empty values of `cols`, as parameters.
fn fields(row: &Row, cols: &[&'static str]) -> Map<String, Value> {
    cols.iter()
        .filter_map(|c| row.get(c).map(|v| (c.to_string(), json!(v))))
        .collect()
}

/// A method's error on the row, naming the column as the input named it.
fn row_error(row: &Row, e: Error) -> RowError {
    let param = match &e.data {
        Some(Value::Object(m)) if e.code == Code::InvalidParams => m.keys().next().cloned(),
        _ => None,
    };
    let column = param.map(|p| {
        let native = match p.as_str() {
            "subnet" => "network",
            "start_ip" => "ip",
            "is_active" => "status",
            other => ExportRow::COLUMNS.iter().find(|c| **c == other).copied().unwrap_or("?"),
        };
        row.values
            .get(native)
            .map(|(input, _)| input.clone())
            .unwrap_or_else(|| if native == "?" { p.clone() } else { native.to_string() })
    });
    RowError {
        column,
        code: e.code.as_str(),
        message: e.message,
    }
}

/// The error of a parameter, as the error of `col`.
fn rename(e: Error, col: &str) -> Error {
    match e.code {
        Code::InvalidParams => {
            let message = e
                .message
                .split_once(": ")
                .map_or(e.message.as_str(), |(_, m)| m)
                .to_string();
            Error::param(col, message)
        }
        _ => e,
    }
}

fn check_size(text: &str) -> Result<()> {
    if text.len() > MAX_IMPORT_BYTES {
        return Err(Error::too_large(
            format!("one import takes at most {MAX_IMPORT_BYTES} bytes of data: import in parts"),
            MAX_IMPORT_BYTES,
        ));
    }
    Ok(())
}

fn too_many_rows() -> Error {
    Error::too_large(
        format!("one import takes at most {MAX_IMPORT_ROWS} rows: import in parts"),
        MAX_IMPORT_ROWS,
    )
}

/// ipamd's own rows in JSON: objects under the columns of `export/get`.
fn json_rows(items: Vec<Value>) -> Result<Vec<Row>> {
    if items.len() > MAX_IMPORT_ROWS {
        return Err(too_many_rows());
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(m) = item else {
                return Err(Error::param("data", format!("row {}: must be an object", i + 1)));
            };
            let mut cells = Vec::with_capacity(m.len());
            for (k, v) in m {
                let text = match v {
                    Value::Null => String::new(),
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(Error::param(
                            "data",
                            format!("row {}, {k}: must be a string or a number", i + 1),
                        ))
                    }
                };
                cells.push((k, text));
            }
            row(i + 1, Source::Ipamd, cells)
        })
        .collect()
}

/// CSV rows: a header line, then one row per line.
fn csv_rows(text: &str, source: Source) -> Result<Vec<Row>> {
    let mut records = crate::csv::parse(text)
        .map_err(|e| Error::param("data", e))?
        .into_iter();
    let Some((_, header)) = records.next() else {
        return Err(Error::param("data", "has no header line"));
    };
    if records.len() > MAX_IMPORT_ROWS {
        return Err(too_many_rows());
    }
    records
        .map(|(line, fields)| {
            if fields.len() > header.len() {
                return Err(Error::param(
                    "data",
                    format!("line {line}: more fields than the header has"),
                ));
            }
            let cells = header
                .iter()
                .cloned()
                .zip(fields.into_iter().map(|f| crate::csv::unguard(&f).to_string()));
            row(line, source, cells.collect())
        })
        .collect()
}

/// A row from its cells (input column name, value), under ipamd's columns.
fn row(line: usize, source: Source, cells: Vec<(String, String)>) -> Result<Row> {
    let mut values: HashMap<&'static str, (String, String)> = HashMap::new();
    for (name, value) in cells {
        let key = name.trim().to_ascii_lowercase().replace(' ', "_");
        let Some(native) = column(source, &key) else {
            if source == Source::Ipamd {
                return Err(Error::param(
                    "data",
                    format!("line {line}: unknown column '{}'", name.trim()),
                ));
            }
            continue;
        };
        let value = match (source, native) {
            (Source::Phpipam | Source::Netbox, "status") => status(source, &value).to_string(),
            _ => value,
        };
        values.insert(native, (name.trim().to_string(), value));
    }
    // NetBox writes an address with its prefix length: the network is the block it names.
    if source == Source::Netbox {
        if let Some((input, address)) = values.get("ip").cloned() {
            if let Some((ip, len)) = address.trim().split_once('/') {
                let block = net::parse_addr(ip)
                    .ok()
                    .zip(len.parse::<u8>().ok())
                    .and_then(|(ip, l)| ipnet::IpNet::new(ip, l).ok())
                    .ok_or_else(|| {
                        Error::param(
                            "data",
                            format!("line {line}, {input}: not an address with its prefix length"),
                        )
                    })?;
                values.insert("ip", (input.clone(), ip.to_string()));
                values
                    .entry("network")
                    .or_insert((input, net::net_text(&block.trunc())));
            }
        }
    }
    let kind = match values.get("kind").map(|(_, k)| k.trim()) {
        Some("network") => "network",
        Some("address") => "address",
        Some("dhcp_range") => "dhcp_range",
        Some(other) => {
            let message = format!("line {line}, kind: '{other}' is not network, address or dhcp_range");
            return Err(Error::param("data", message));
        }
        // A NetBox prefix row names a network and no address.
        None if values.contains_key("network") && !values.contains_key("ip") => "network",
        None => "address",
    };
    Ok(Row { line, kind, values })
}

/// The ipamd column an input column (lower case, spaces as `_`) maps to.
fn column(source: Source, name: &str) -> Option<&'static str> {
    match source {
        Source::Ipamd => ExportRow::COLUMNS.iter().find(|c| **c == name).copied(),
        Source::Phpipam => match name {
            "ip_addr" | "ip_address" | "ip" => Some("ip"),
            "hostname" | "dns_name" => Some("hostname"),
            "mac" | "mac_address" => Some("mac_address"),
            "description" => Some("description"),
            "state" | "tag" => Some("status"),
            "subnet" => Some("network"),
            _ => None,
        },
        Source::Netbox => match name {
            "address" => Some("ip"),
            "prefix" => Some("network"),
            "dns_name" => Some("hostname"),
            "description" => Some("description"),
            "status" => Some("status"),
            _ => None,
        },
    }
}

/// An address status of phpIPAM (its tags) or NetBox, as ipamd's.
fn status(source: Source, value: &str) -> &str {
    match (source, value.trim().to_ascii_lowercase().as_str()) {
        (_, "") => "",
        (_, "active" | "used" | "dhcp" | "slaac") => "active",
        (_, "reserved") => "reserved",
        (Source::Phpipam, "offline") | (Source::Netbox, "deprecated") | (_, "inactive") => "inactive",
        // A NetBox prefix's status (container…) is no address's; a network row does not read it.
        _ => value,
    }
}

/// Parses an address that must lie in `net`, for the rows of an import.
fn ip_in(net: &IpNet, field: &str, text: &str) -> Result<IpAddr> {
    let ip = subnets::parse_ip(field, text)?;
    if net.contains(&ip) {
        Ok(ip)
    } else {
        Err(Error::param(field, format!("{ip} is not inside {net}")))
    }
}

/// The subnet of the caller's org whose block is `block` (in `group` when given): `None` when there is none,
/// `ambiguous` when subnets of several groups have that block.
fn subnet_with_block(ctx: &Ctx, block: &IpNet, group: Option<i64>) -> Result<Option<Subnet>> {
    let (lo, _) = net::range(block);
    let family = if matches!(block, IpNet::V4(_)) { 4 } else { 6 };
    let found = ctx.tx.rows(
        &format!(
            "SELECT {SUBNET_COLS} FROM subnets t WHERE t.org_id = ?1 AND t.net_start = ?2 AND t.prefix = ?3
         AND t.family = ?4 AND (CAST(?5 AS BIGINT) IS NULL OR t.group_id = ?5) ORDER BY t.id LIMIT 2"
        ),
        params![ctx.org(), &net::key_bytes(lo)[..], block.prefix_len(), family, group],
        |r| subnets::subnet_of(r, 0),
    )?;
    match found.len() {
        0 | 1 => Ok(found.into_iter().next()),
        _ => Err(Error::new(
            Code::Ambiguous,
            format!("subnets of several groups are {block}: name the group"),
        )),
    }
}

/// The id of the record of `ip` in subnet `s`, if it has one.
fn record_at(ctx: &Ctx, s: &Subnet, ip: IpAddr) -> Result<Option<i64>> {
    ctx.tx.query_opt(
        "SELECT id FROM addresses WHERE subnet_id = ?1 AND ip = ?2",
        params![s.id, &net::key_bytes(net::key(ip))[..]],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netbox_and_phpipam_columns_map_to_ours() {
        let rows = csv_rows(
            "address,status,dns_name,tenant\n10.0.0.5/24,deprecated,web1,acme\n",
            Source::Netbox,
        )
        .unwrap();
        assert_eq!(rows[0].kind, "address");
        assert_eq!(rows[0].get("ip"), Some("10.0.0.5"));
        assert_eq!(rows[0].get("network"), Some("10.0.0.0/24"));
        assert_eq!(rows[0].get("status"), Some("inactive"));
        assert_eq!(rows[0].get("hostname"), Some("web1"));
        let rows = csv_rows(
            "prefix,status,description\n10.1.0.0/16,container,core\n",
            Source::Netbox,
        )
        .unwrap();
        assert_eq!((rows[0].kind, rows[0].get("network")), ("network", Some("10.1.0.0/16")));
        let rows = csv_rows(
            "IP address,Hostname,MAC address,State,Owner\n10.0.0.7,db,aa:bb:cc:dd:ee:ff,Offline,x\n",
            Source::Phpipam,
        )
        .unwrap();
        assert_eq!(rows[0].get("status"), Some("inactive"));
        assert_eq!(
            rows[0].values.get("mac_address").map(|(c, _)| c.as_str()),
            Some("MAC address")
        );
    }

    #[test]
    fn our_own_columns_are_strict() {
        let e = csv_rows("kind,network,colour\naddress,10.0.0.0/24,red\n", Source::Ipamd)
            .err()
            .unwrap();
        assert_eq!(e.message, "data: line 2: unknown column 'colour'");
    }
}
