//! The data set: groups and subnets made through the API, then address records and most networks bulk-inserted
//! straight into the database (with the counts the server keeps), checked against rows the API made: into SQLite
//! here, into PostgreSQL with `COPY` in pg.rs.
//!
//! Layout (full run): 10.0.0.0/16 with 60,000 contiguous records (next-16), 10.1.0.0/16 with 60,000 (split-16),
//! 2001:db8::/48 with 100,000 (available-48), an empty 10.64.0.0/10 (alloc), and /24s from 100.64.0.0 up, filed in
//! the leaf groups, holding the rest of the 1,000,000 records. Record n is `host-<n>.example.net`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipamd::net;
use ipnet::IpNet;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection};
use serde_json::{json, Value};

use crate::client::{Api, Res};
use crate::pg;

/// Where a run's data lives: a SQLite file in the run's temporary directory, or a fresh PostgreSQL database.
pub enum Db {
    Sqlite(PathBuf),
    Postgres(pg::Fresh),
}

impl Db {
    /// The server's database setting (`--db`).
    pub fn setting(&self) -> PathBuf {
        match self {
            Db::Sqlite(path) => path.clone(),
            Db::Postgres(fresh) => PathBuf::from(&fresh.url),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }
}

/// How big the data set is.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Address records in the whole database.
    pub records: u64,
    /// Subnets in the whole database (the four scenario subnets and the /24s).
    pub networks: u64,
    pub net16: u64,
    pub split16: u64,
    pub v6: u64,
    /// Records filed out of order through the server by the peek-ooo scenario.
    pub ooo16: u64,
    /// Children of the pool scenarios' IPv6 /32 pool.
    pub pool: u64,
    pub roots: usize,
    pub children: usize,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        records: 1_000_000,
        networks: 10_000,
        net16: 60_000,
        split16: 60_000,
        v6: 100_000,
        ooo16: 20_000,
        pool: 100_000,
        roots: 8,
        children: 4,
    };
    pub const SMOKE: Sizes = Sizes {
        records: 2_000,
        networks: 100,
        net16: 500,
        split16: 500,
        v6: 500,
        ooo16: 500,
        pool: 1_000,
        roots: 3,
        children: 2,
    };

    /// A data set shaped like the full one with `records` records: a network per 100 records, the scenario
    /// subnets holding the same shares of them (`scaled(1_000_000)` is the full data set).
    pub fn scaled(records: u64) -> Sizes {
        let share = |percent: u64| records * percent / 100;
        Sizes {
            records,
            networks: (records / 100).max(6),
            net16: share(6),
            split16: share(6),
            v6: share(10),
            ooo16: share(2),
            pool: share(10),
            ..Sizes::FULL
        }
    }

    /// The /24s: every network but the four scenario subnets.
    pub fn small_nets(&self) -> u64 {
        self.networks.saturating_sub(4)
    }

    /// Records in /24 number `i`: the rest of the records, spread evenly.
    pub fn small_records(&self, i: u64) -> u64 {
        let rest = self.records.saturating_sub(self.net16 + self.split16 + self.v6);
        let nets = self.small_nets().max(1);
        rest / nets + u64::from(i < rest % nets)
    }

    fn check(&self) -> Res<()> {
        if self.small_nets() < 2 || self.small_records(self.small_nets() - 1) < 2 {
            return Err("the data set needs at least 6 networks and 2 records in each /24".into());
        }
        if self.small_records(0) > 253 || self.small_nets() > 16_384 || self.net16.max(self.split16) > 65_000 {
            return Err("the data set does not fit its blocks".into());
        }
        Ok(())
    }
}

pub const NET16: &str = "10.0.0.0/16";
pub const SPLIT16: &str = "10.1.0.0/16";
pub const V6: &str = "2001:db8::/48";
pub const ALLOC: &str = "10.64.0.0/10";
/// alloc-2's subnet (PostgreSQL only), made when it starts.
pub const ALLOC2: &str = "10.128.0.0/10";
pub const OOO16: &str = "10.2.0.0/16";
/// The pool scenarios' pool, made as its lower half and grown once its children are in.
pub const POOL: &str = "3fff:100::/32";
pub const POOL_HALF: &str = "3fff:100::/33";

/// The free /56 after pool child `i`: the children are the even /56s from the pool's start.
pub fn pool_hole(i: u64) -> Res<IpNet> {
    let start = net::range(&block(POOL)?).0 + (u128::from(2 * i + 1) << 72);
    Ok(IpNet::new(net::from_key(start, false), 56)?)
}

/// The pool's children, the even /56s from its start, inserted as `subnets/add` files a child (stamps from the
/// pool's row), in one transaction while the server runs.
pub fn pool_children(db: &Db, pool: i64, n: u64) -> Res<()> {
    match db {
        Db::Sqlite(path) => pool_children_sqlite(path, pool, n),
        Db::Postgres(fresh) => pg::pool_children(&fresh.url, pool, n),
    }
}

fn pool_children_sqlite(db_path: &Path, pool: i64, n: u64) -> Res<()> {
    let mut db = Connection::open(db_path)?;
    db.busy_timeout(Duration::from_secs(30))?;
    let tx = db.transaction()?;
    {
        let base = net::range(&block(POOL)?).0;
        let mut insert = tx.prepare(
            "INSERT INTO subnets (org_id, group_id, family, net_start, net_end, prefix, name, created, modifiedat,
                                  modby_id, modby_name, parent_id)
             SELECT org_id, group_id, 6, ?1, ?2, 56, NULL, created, created, modby_id, modby_name, id
             FROM subnets WHERE id = ?3",
        )?;
        for i in 0..n {
            let lo = base + (u128::from(2 * i) << 72);
            let hi = lo + ((1u128 << 72) - 1);
            insert.execute(params![&net::key_bytes(lo)[..], &net::key_bytes(hi)[..], pool])?;
        }
    }
    tx.commit()?;
    Ok(())
}
/// The first /24; the others follow it.
const SMALL_BASE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 0);

/// Ids and shapes of what was seeded, for the scenarios to aim at.
#[derive(Clone, Debug)]
pub struct DataSet {
    pub sizes: Sizes,
    pub net16: i64,
    pub split16: i64,
    pub v6: i64,
    pub alloc: i64,
    /// Ids of `net-0`, `net-1` (made through the API) and the first bulk one.
    pub net0: i64,
    pub net1: i64,
    /// The leaf groups the /24s are filed in, and the number of top-level groups.
    pub leaves: Vec<i64>,
    pub roots: usize,
    /// The record `ipaddress/add` made (record 0), the template of the bulk records.
    pub reference_record: i64,
    /// Lowest and highest address record id after seeding.
    pub record_ids: (i64, i64),
}

impl DataSet {
    /// The /24 number `i`.
    pub fn small_net(i: u64) -> IpNet {
        let base = u32::from(SMALL_BASE) + (i as u32) * 256;
        IpNet::new(IpAddr::V4(Ipv4Addr::from(base)), 24).unwrap_or_default()
    }

    /// Host `h` (1-based) of /24 number `i`.
    pub fn small_ip(i: u64, h: u64) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(u32::from(SMALL_BASE) + (i as u32) * 256 + h as u32))
    }

    /// The lowest usable address of `cidr` plus `offset`: the next free one after `offset` contiguous records.
    pub fn after_records(cidr: &str, offset: u64) -> Res<IpAddr> {
        let block = block(cidr)?;
        Ok(net::from_key(
            net::usable(&block).0 + u128::from(offset),
            block.network().is_ipv4(),
        ))
    }
}

pub fn block(cidr: &str) -> Res<IpNet> {
    net::parse_cidr(cidr).map_err(|e| e.to_string().into())
}

pub fn id_of(reply: &Value) -> Res<i64> {
    reply
        .as_object()
        .and_then(|m| m.keys().next())
        .and_then(|k| k.parse().ok())
        .ok_or_else(|| format!("no record id in {reply}").into())
}

pub fn hostname(n: u64) -> String {
    format!("host-{n}.example.net")
}

/// Phase 1, through the API: the groups, the four scenario subnets, the first two /24s and record 0.
pub async fn through_api(api: &mut Api, sizes: Sizes) -> Res<DataSet> {
    sizes.check()?;
    let mut leaves = Vec::new();
    for r in 0..sizes.roots {
        let root = id_of(
            &api.rpc("groups/add", json!({"description": format!("Site {r}")}))
                .await?,
        )?;
        for c in 0..sizes.children {
            let d = json!({"description": format!("Site {r} / Rack {c}"), "parent": root});
            leaves.push(id_of(&api.rpc("groups/add", d).await?)?);
        }
    }
    let net16 = add_subnet(api, NET16, "next-16", None).await?;
    let split16 = add_subnet(api, SPLIT16, "split-16", None).await?;
    let v6 = add_subnet(api, V6, "available-48", None).await?;
    let alloc = add_subnet(api, ALLOC, "alloc", None).await?;
    let leaf = |i: u64| leaves.get(i as usize % leaves.len().max(1)).copied();
    let net0 = add_subnet(api, &DataSet::small_net(0).to_string(), "net-0", leaf(0)).await?;
    let net1 = add_subnet(api, &DataSet::small_net(1).to_string(), "net-1", leaf(1)).await?;
    let d = json!({"ip": DataSet::small_ip(0, 1).to_string(), "hostname": hostname(0)});
    let reference_record = id_of(&api.rpc("ipaddress/add", d).await?)?;
    Ok(DataSet {
        sizes,
        net16,
        split16,
        v6,
        alloc,
        net0,
        net1,
        leaves,
        roots: sizes.roots,
        reference_record,
        record_ids: (reference_record, reference_record),
    })
}

async fn add_subnet(api: &mut Api, subnet: &str, name: &str, group: Option<i64>) -> Res<i64> {
    id_of(
        &api.rpc("subnets/add", json!({"subnet": subnet, "name": name, "group": group}))
            .await?,
    )
}

/// The columns in which a bulk network row may differ from the `subnets/add` row of its neighbour, and a bulk
/// record from the `ipaddress/add` one.
pub const SUBNET_VARIES: [&str; 7] = [
    "id",
    "group_id",
    "net_start",
    "net_end",
    "name",
    "created",
    "modifiedat",
];
pub const ADDRESS_VARIES: [&str; 5] = ["id", "ip", "hostname", "created", "modifiedat"];

/// How long the bulk phase took, and what it checked.
pub struct BulkReport {
    pub networks: Duration,
    pub records: Duration,
    pub fts: Duration,
    pub counts: Duration,
    pub notes: Vec<String>,
}

/// A row as column name → value.
fn row(db: &Connection, table: &str, id: i64) -> Res<BTreeMap<String, SqlValue>> {
    let mut stmt = db.prepare(&format!("SELECT * FROM {table} WHERE id = ?1"))?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let values = stmt.query_row([id], |r| {
        (0..names.len())
            .map(|i| r.get::<_, SqlValue>(i))
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(names.into_iter().zip(values).collect())
}

/// The columns in which two rows differ, outside `allowed`.
fn unexpected_differences(
    a: &BTreeMap<String, SqlValue>,
    b: &BTreeMap<String, SqlValue>,
    allowed: &[&str],
) -> Vec<String> {
    a.iter()
        .filter(|(k, v)| !allowed.contains(&k.as_str()) && b.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}: {v:?} vs {:?}", b.get(k)))
        .collect()
}

fn blob(k: u128) -> SqlValue {
    SqlValue::Blob(net::key_bytes(k).to_vec())
}

/// Phase 2, straight into the database while no server has it open: the other /24s, every record but record 0,
/// and each subnet's kept counts. Each bulk row is checked against the row the API made for its neighbour.
pub fn bulk(db: &Db, ds: &mut DataSet) -> Res<BulkReport> {
    match db {
        Db::Sqlite(path) => bulk_sqlite(path, ds),
        Db::Postgres(fresh) => pg::bulk(&fresh.url, ds),
    }
}

fn bulk_sqlite(db_path: &Path, ds: &mut DataSet) -> Res<BulkReport> {
    let sizes = ds.sizes;
    let mut notes = Vec::new();
    let mut db = Connection::open(db_path)?;
    // The schema's triggers keep the runs of record addresses with the server's SQL functions.
    ipamd::store::add_functions(&db)?;
    // Seeding is not a durability test: the server reopens the file afterwards with its own settings.
    db.execute_batch("PRAGMA synchronous = OFF;")?;

    // The /24s after net-1, as subnets::insert writes them; stamps and owner copied from net-1.
    let t = Instant::now();
    let api_row = row(&db, "subnets", ds.net1)?;
    let expected_1 = {
        let b = DataSet::small_net(1);
        let (lo, hi) = net::range(&b);
        [
            ("family", SqlValue::Integer(4)),
            ("net_start", blob(lo)),
            ("net_end", blob(hi)),
            ("prefix", SqlValue::Integer(24)),
            ("name", SqlValue::Text("net-1".into())),
        ]
    };
    for (col, v) in &expected_1 {
        if api_row.get(*col) != Some(v) {
            return Err(format!(
                "subnets/add wrote {col} = {:?}, the bench computes {v:?}",
                api_row.get(*col)
            )
            .into());
        }
    }
    let get = |col: &str| api_row.get(col).cloned().unwrap_or(SqlValue::Null);
    let (org, modby_id, modby_name, stamp) = (get("org_id"), get("modby_id"), get("modby_name"), get("created"));
    let tx = db.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO subnets (org_id, group_id, family, net_start, net_end, prefix, name, created, modifiedat,
                                  modby_id, modby_name)
             VALUES (?1, ?2, 4, ?3, ?4, 24, ?5, ?6, ?6, ?7, ?8)",
        )?;
        for i in 2..sizes.small_nets() {
            let (lo, hi) = net::range(&DataSet::small_net(i));
            let group = ds.leaves.get(i as usize % ds.leaves.len().max(1));
            insert.execute(params![
                org,
                group,
                &net::key_bytes(lo)[..],
                &net::key_bytes(hi)[..],
                format!("net-{i}"),
                stamp,
                modby_id,
                modby_name
            ])?;
        }
    }
    tx.commit()?;
    let first_bulk: i64 = db.query_row(
        "SELECT id FROM subnets WHERE net_start = ?1 AND prefix = 24",
        [&net::key_bytes(net::range(&DataSet::small_net(2)).0)[..]],
        |r| r.get(0),
    )?;
    let diff = unexpected_differences(&api_row, &row(&db, "subnets", first_bulk)?, &SUBNET_VARIES);
    if !diff.is_empty() {
        return Err(format!("bulk network rows differ from subnets/add rows: {}", diff.join("; ")).into());
    }
    notes.push("network rows: bulk rows equal subnets/add rows apart from id, block, name, group, stamps".into());
    let networks = t.elapsed();

    // The records, in key order within each subnet, in large transactions.
    let t = Instant::now();
    let reference = row(&db, "addresses", ds.reference_record)?;
    let ref_ip = blob(net::key(DataSet::small_ip(0, 1)));
    if reference.get("ip") != Some(&ref_ip) {
        return Err(format!(
            "ipaddress/add wrote ip = {:?}, the bench computes {ref_ip:?}",
            reference.get("ip")
        )
        .into());
    }
    let get = |col: &str| reference.get(col).cloned().unwrap_or(SqlValue::Null);
    let (status, assigned, modby_id, modby_name, stamp) = (
        get("status"),
        get("is_assigned"),
        get("modby_id"),
        get("modby_name"),
        get("created"),
    );
    // Subnet id → records; every record is contiguous from the lowest usable address.
    let mut filled: Vec<(i64, u64)> = Vec::new();
    let small_ids: Vec<i64> = {
        let mut stmt =
            db.prepare("SELECT id FROM subnets WHERE prefix = 24 AND family = 4 AND id >= ?1 ORDER BY net_start")?;
        let ids = stmt
            .query_map([ds.net0], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        ids
    };
    if small_ids.len() as u64 != sizes.small_nets() {
        return Err(format!("found {} /24s, expected {}", small_ids.len(), sizes.small_nets()).into());
    }
    let deferred = defer_fts_triggers(&db)?;
    let mut tx = db.transaction()?;
    let mut n: u64 = 1;
    let mut in_tx = 0;
    {
        let mut plan: Vec<(i64, IpNet, u64, u64)> = Vec::new(); // (subnet, block, first offset, count)
        for (i, id) in small_ids.iter().enumerate() {
            let count = sizes.small_records(i as u64);
            plan.push((*id, DataSet::small_net(i as u64), u64::from(i == 0), count));
            filled.push((*id, count));
        }
        for (id, cidr, count) in [
            (ds.net16, NET16, sizes.net16),
            (ds.split16, SPLIT16, sizes.split16),
            (ds.v6, V6, sizes.v6),
        ] {
            plan.push((id, block(cidr)?, 0, count));
            filled.push((id, count));
        }
        for (subnet, b, from, count) in plan {
            let lo = net::usable(&b).0;
            for j in from..count {
                if in_tx == 100_000 {
                    tx.commit()?;
                    tx = db.transaction()?;
                    in_tx = 0;
                }
                tx.prepare_cached(
                    "INSERT INTO addresses (subnet_id, ip, hostname, status, is_assigned, created, modifiedat,
                                            modby_id, modby_name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
                )?
                .execute(params![
                    subnet,
                    &net::key_bytes(lo + u128::from(j))[..],
                    hostname(n),
                    status,
                    assigned,
                    stamp,
                    modby_id,
                    modby_name
                ])?;
                n += 1;
                in_tx += 1;
            }
        }
    }
    tx.commit()?;
    let second: i64 = db.query_row(
        "SELECT id FROM addresses WHERE subnet_id = ?1 AND ip = ?2",
        params![ds.net0, &net::key_bytes(net::key(DataSet::small_ip(0, 2)))[..]],
        |r| r.get(0),
    )?;
    let diff = unexpected_differences(&reference, &row(&db, "addresses", second)?, &ADDRESS_VARIES);
    if !diff.is_empty() {
        return Err(format!("bulk address rows differ from ipaddress/add rows: {}", diff.join("; ")).into());
    }
    notes.push("address rows: bulk rows equal ipaddress/add rows apart from id, ip, hostname, stamps".into());
    ds.record_ids = db.query_row("SELECT min(id), max(id) FROM addresses", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    let total: i64 = db.query_row("SELECT count(*) FROM addresses", [], |r| r.get(0))?;
    if total as u64 != sizes.records {
        return Err(format!("seeded {total} records, expected {}", sizes.records).into());
    }
    let records = t.elapsed();

    let t = Instant::now();
    restore_fts_triggers(&db, &deferred)?;
    if !deferred.tables.is_empty() {
        notes.push(format!(
            "full-text index ({}) built once after the rows, its insert triggers put back as schema.sql has them",
            deferred.tables.join(", ")
        ));
    }
    let fts = t.elapsed();

    // The counts the server keeps: used = records; taken = usable addresses recorded or in an active DHCP
    // range (no ranges here, and every record is usable, so taken = used). The runs of record addresses the
    // free-space engine reads were kept by the schema's triggers as the rows went in.
    let t = Instant::now();
    let tx = db.transaction()?;
    for (id, count) in &filled {
        tx.execute(
            "UPDATE subnets SET used = ?1, taken = ?2 WHERE id = ?3",
            params![*count as i64, count.to_string(), id],
        )?;
    }
    tx.commit()?;
    db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    let counts = t.elapsed();
    Ok(BulkReport {
        networks,
        records,
        fts,
        counts,
        notes,
    })
}

/// FTS5 tables over `addresses` (external content) and the insert triggers that feed them, set aside.
struct Deferred {
    tables: Vec<String>,
    triggers: Vec<String>,
}

/// Drops the insert triggers of `addresses` that feed a full-text table with `addresses` as its content: one
/// 'rebuild' after the bulk insert builds the same index faster than a trigger per row.
fn defer_fts_triggers(db: &Connection) -> Res<Deferred> {
    let mut stmt = db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE '%fts5%'")?;
    let virtual_tables: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let tables: Vec<String> = virtual_tables
        .into_iter()
        .filter(|(_, sql)| {
            let compact: String = sql.chars().filter(|c| !c.is_whitespace() && *c != '"').collect();
            compact.contains("content='addresses'")
        })
        .map(|(name, _)| name)
        .collect();
    let mut stmt =
        db.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'addresses'")?;
    let found: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut triggers = Vec::new();
    for (name, sql) in found {
        let insert = sql.to_ascii_uppercase().contains("AFTER INSERT ON");
        if insert && tables.iter().any(|t| sql.contains(t.as_str())) {
            db.execute_batch(&format!("DROP TRIGGER \"{name}\""))?;
            triggers.push(sql);
        }
    }
    Ok(Deferred { tables, triggers })
}

/// Puts the triggers back exactly as they were and rebuilds each full-text table from its content table.
fn restore_fts_triggers(db: &Connection, d: &Deferred) -> Res<()> {
    for sql in &d.triggers {
        db.execute_batch(sql)?;
    }
    for t in &d.tables {
        db.execute_batch(&format!("INSERT INTO \"{t}\" (\"{t}\") VALUES ('rebuild')"))?;
    }
    Ok(())
}

/// The kept counts (id, used, taken) of some subnets, as the database holds them.
pub fn kept_counts(db: &Db, ids: &[i64]) -> Res<Vec<(i64, i64, String)>> {
    let path = match db {
        Db::Sqlite(path) => path,
        Db::Postgres(fresh) => return pg::kept_counts(&fresh.url, ids),
    };
    let db = Connection::open(path)?;
    let mut out = Vec::new();
    for id in ids {
        out.push(
            db.query_row("SELECT id, used, taken FROM subnets WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?,
        );
    }
    Ok(out)
}

/// Distinctness of an allocation run: (records in the subnet, distinct addresses among them).
pub fn allocated(db: &Db, subnet: i64) -> Res<(u64, u64)> {
    let path = match db {
        Db::Sqlite(path) => path,
        Db::Postgres(fresh) => return pg::allocated(&fresh.url, subnet),
    };
    let db = Connection::open(path)?;
    let (all, distinct): (i64, i64) = db.query_row(
        "SELECT count(*), count(DISTINCT ip) FROM addresses WHERE subnet_id = ?1",
        [subnet],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((all as u64, distinct as u64))
}
