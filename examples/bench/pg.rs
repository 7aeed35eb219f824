//! The bench on PostgreSQL (`--db postgres://…`): each run on a fresh database it creates on that server and drops
//! afterwards, the bulk phase of the seeding written with `COPY`, and the checks' reads.
//!
//! `COPY` fires row triggers as `INSERT` does. Those that keep one counter row per org or per pool
//! (`subnet_prefixes`, a pool's `child_count`) would update the same row once per inserted row, and PostgreSQL keeps
//! every version of a row a transaction updates until it ends, so each update walks the ones before it: they are
//! disabled inside the seeding's transaction (so no other session ever sees them off) and what they keep is set once
//! from the rows. The trigger that keeps `address_runs` runs a PL/pgSQL function per record: it is disabled the same
//! way and the runs, which the seeding knows (each subnet's records are contiguous from its first usable address),
//! written directly. Every other trigger runs as it does for the handlers.

use std::io::Write as _;

use ipamd::net;
use postgres::{Client, NoTls};

use crate::client::Res;
use crate::seed::{block, hostname, BulkReport, DataSet, ADDRESS_VARIES, NET16, SPLIT16, SUBNET_VARIES, V6};
use std::time::Instant;

/// A database made for one run on the server of a `postgres://` URL, dropped (with `FORCE`, so a connection left
/// open cannot keep it) when this is, unless kept.
pub struct Fresh {
    /// The URL given, whose database the bench connects to only to create and drop its own.
    server: String,
    /// The fresh database's URL: the server's settings and the store connect to it.
    pub url: String,
    name: String,
    keep: bool,
}

impl Fresh {
    pub fn create(server: &str) -> Res<Fresh> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!("ipamd_bench_{stamp}_{}", std::process::id());
        let mut admin = Client::connect(server, NoTls)
            .map_err(|e| format!("cannot connect to the PostgreSQL server of --db: {e}"))?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        Ok(Fresh {
            server: server.to_string(),
            url: with_database(server, &name)?,
            name,
            keep: false,
        })
    }

    /// Leaves the database on the server when dropped; its name.
    pub fn keep(&mut self) -> &str {
        self.keep = true;
        &self.name
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let dropped = Client::connect(&self.server, NoTls)
            .and_then(|mut c| c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)));
        if let Err(e) = dropped {
            eprintln!("bench: could not drop the database {}: {e}", self.name);
        }
    }
}

/// `url` naming database `name` instead of its own (`postgres://user@host:port/db?options`).
fn with_database(url: &str, name: &str) -> Res<String> {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").ok_or("--db: not a postgres:// URL")? + 3;
    let path = base[authority..].find('/').map_or(base.len(), |n| authority + n);
    Ok(format!(
        "{}/{name}{}",
        &base[..path],
        query.map(|q| format!("?{q}")).unwrap_or_default()
    ))
}

/// Runs `f` on a thread of its own: the synchronous client drives a runtime of its own, which cannot run on a
/// thread of the bench's (the checks run inside one).
fn apart<T: Send>(f: impl FnOnce() -> Res<T> + Send) -> Res<T> {
    std::thread::scope(|s| s.spawn(f).join()).map_err(|_| "a PostgreSQL call panicked")?
}

/// A 16-byte address key as `COPY`'s text of a `bytea`.
fn bytea(k: u128) -> String {
    let mut s = String::with_capacity(34);
    s.push_str("\\x");
    for b in net::key_bytes(k) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A row as JSON text without the columns in `except`.
fn row_json(c: &mut Client, table: &str, id: i64, except: &[&str]) -> Res<String> {
    let except: Vec<String> = except.iter().map(|s| s.to_string()).collect();
    let row = c.query_one(
        &format!("SELECT (to_jsonb(t) - $2::text[])::text FROM {table} t WHERE id = $1"),
        &[&id, &except],
    )?;
    Ok(row.get(0))
}

/// Checks that bulk row `bulk` of `table` equals row `api`, which the API made, in every column but `varies`.
fn same_rows(c: &mut Client, table: &str, api: i64, bulk: i64, varies: &[&str]) -> Res<()> {
    if row_json(c, table, api, varies)? == row_json(c, table, bulk, varies)? {
        return Ok(());
    }
    Err(format!(
        "bulk {table} rows differ from the API's: {} vs {}",
        row_json(c, table, api, &[])?,
        row_json(c, table, bulk, &[])?
    )
    .into())
}

/// Phase 2 on PostgreSQL: the other /24s and every record but record 0 through `COPY`, their derived data, each
/// subnet's kept counts, then `VACUUM ANALYZE` so the planner knows the tables (as autovacuum would, later).
pub fn bulk(url: &str, ds: &mut DataSet) -> Res<BulkReport> {
    let sizes = ds.sizes;
    let mut notes = Vec::new();
    let mut c = Client::connect(url, NoTls)?;

    // The /24s after net-1, stamps, owner and org copied from net-1.
    let t = Instant::now();
    let api = c.query_one(
        "SELECT org_id, family, net_start, net_end, prefix, name, created, modby_id, modby_name
         FROM subnets WHERE id = $1",
        &[&ds.net1],
    )?;
    let (lo, hi) = net::range(&DataSet::small_net(1));
    let written = (
        api.get::<_, i64>(1),
        api.get::<_, Vec<u8>>(2),
        api.get::<_, Vec<u8>>(3),
        api.get::<_, i64>(4),
        api.get::<_, Option<String>>(5),
    );
    let expected = (
        4,
        net::key_bytes(lo).to_vec(),
        net::key_bytes(hi).to_vec(),
        24,
        Some("net-1".to_string()),
    );
    if written != expected {
        return Err(format!("subnets/add wrote {written:?}, the bench computes {expected:?}").into());
    }
    let org: i64 = api.get(0);
    let stamp: i64 = api.get(6);
    let (modby_id, modby_name): (Option<i64>, String) = (api.get(7), api.get(8));
    let modby = modby_id.map(|n| n.to_string()).unwrap_or_default();
    let mut tx = c.transaction()?;
    tx.batch_execute("ALTER TABLE subnets DISABLE TRIGGER subnet_prefixes_insert")?;
    {
        let mut w = tx.copy_in(
            "COPY subnets (org_id, group_id, family, net_start, net_end, prefix, name, created, modifiedat, modby_id,
                           modby_name) FROM STDIN (FORMAT csv)",
        )?;
        let mut line = String::new();
        for i in 2..sizes.small_nets() {
            let (lo, hi) = net::range(&DataSet::small_net(i));
            let group = ds.leaves.get(i as usize % ds.leaves.len().max(1));
            line.clear();
            line.push_str(&format!(
                "{org},{},4,{},{},24,net-{i},{stamp},{stamp},{modby},\"{}\"\n",
                group.map(|g| g.to_string()).unwrap_or_default(),
                bytea(lo),
                bytea(hi),
                modby_name.replace('"', "\"\"")
            ));
            w.write_all(line.as_bytes())?;
        }
        w.finish()?;
    }
    tx.batch_execute("ALTER TABLE subnets ENABLE TRIGGER subnet_prefixes_insert")?;
    tx.execute("DELETE FROM subnet_prefixes WHERE org_id = $1", &[&org])?;
    tx.execute(
        "INSERT INTO subnet_prefixes (org_id, family, prefix, subnets)
         SELECT org_id, family, prefix, count(*) FROM subnets WHERE org_id = $1 GROUP BY org_id, family, prefix",
        &[&org],
    )?;
    tx.commit()?;
    let first_bulk: i64 = c
        .query_one(
            "SELECT id FROM subnets WHERE net_start = $1 AND prefix = 24",
            &[&net::key_bytes(net::range(&DataSet::small_net(2)).0).to_vec()],
        )?
        .get(0);
    same_rows(&mut c, "subnets", ds.net1, first_bulk, &SUBNET_VARIES)?;
    notes.push(
        "network rows: bulk rows equal subnets/add rows apart from id, block, name, group, stamps; subnet_prefixes \
         counted from the rows"
            .into(),
    );
    let networks = t.elapsed();

    // The records, in key order within each subnet, in one COPY.
    let t = Instant::now();
    let reference = c.query_one(
        "SELECT ip, status, is_assigned, created, modby_id, modby_name FROM addresses WHERE id = $1",
        &[&ds.reference_record],
    )?;
    let ref_ip = net::key_bytes(net::key(DataSet::small_ip(0, 1))).to_vec();
    if reference.get::<_, Vec<u8>>(0) != ref_ip {
        return Err(format!(
            "ipaddress/add wrote ip = {:?}, the bench computes {ref_ip:?}",
            reference.get::<_, Vec<u8>>(0)
        )
        .into());
    }
    let status: String = reference.get(1);
    let assigned: i64 = reference.get(2);
    let stamp: i64 = reference.get(3);
    let modby = reference
        .get::<_, Option<i64>>(4)
        .map(|n| n.to_string())
        .unwrap_or_default();
    let modby_name = reference.get::<_, String>(5).replace('"', "\"\"");
    let small_ids: Vec<i64> = c
        .query(
            "SELECT id FROM subnets WHERE prefix = 24 AND family = 4 AND id >= $1 ORDER BY net_start",
            &[&ds.net0],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if small_ids.len() as u64 != sizes.small_nets() {
        return Err(format!("found {} /24s, expected {}", small_ids.len(), sizes.small_nets()).into());
    }
    // (subnet, first usable key, first record number, records): every subnet's records are contiguous from its
    // first usable address, record 0 (made through the API) first in net-0.
    let mut plan: Vec<(i64, u128, u64, u64)> = Vec::new();
    for (i, id) in small_ids.iter().enumerate() {
        let lo = net::usable(&DataSet::small_net(i as u64)).0;
        plan.push((*id, lo, u64::from(i == 0), sizes.small_records(i as u64)));
    }
    for (id, cidr, count) in [
        (ds.net16, NET16, sizes.net16),
        (ds.split16, SPLIT16, sizes.split16),
        (ds.v6, V6, sizes.v6),
    ] {
        plan.push((id, net::usable(&block(cidr)?).0, 0, count));
    }
    let mut tx = c.transaction()?;
    tx.batch_execute("ALTER TABLE addresses DISABLE TRIGGER address_runs_insert")?;
    {
        let mut w = tx.copy_in(
            "COPY addresses (subnet_id, ip, hostname, status, is_assigned, created, modifiedat, modby_id, modby_name)
             FROM STDIN (FORMAT csv)",
        )?;
        let mut n: u64 = 1;
        let mut line = String::new();
        for (subnet, lo, from, count) in &plan {
            for j in *from..*count {
                line.clear();
                line.push_str(&format!(
                    "{subnet},{},{},{status},{assigned},{stamp},{stamp},{modby},\"{modby_name}\"\n",
                    bytea(lo + u128::from(j)),
                    hostname(n)
                ));
                w.write_all(line.as_bytes())?;
                n += 1;
            }
        }
        w.finish()?;
    }
    tx.batch_execute("ALTER TABLE addresses ENABLE TRIGGER address_runs_insert")?;
    // The runs: one per subnet, replacing net-0's run of record 0.
    let ids: Vec<i64> = plan.iter().map(|p| p.0).collect();
    tx.execute("DELETE FROM address_runs WHERE subnet_id = ANY($1)", &[&ids])?;
    {
        let mut w = tx.copy_in("COPY address_runs (subnet_id, first_ip, last_ip) FROM STDIN (FORMAT csv)")?;
        for (subnet, lo, _, count) in &plan {
            let last = lo + u128::from(*count) - 1;
            w.write_all(format!("{subnet},{},{}\n", bytea(*lo), bytea(last)).as_bytes())?;
        }
        w.finish()?;
    }
    // The counts the server keeps: used = records; taken = usable addresses recorded or in an active DHCP range
    // (no ranges here, and every record is usable, so taken = used).
    let counts: Vec<i64> = plan.iter().map(|p| p.3 as i64).collect();
    tx.execute(
        "UPDATE subnets s SET used = u.n, taken = u.n::text FROM unnest($1::bigint[], $2::bigint[]) AS u(id, n)
         WHERE s.id = u.id",
        &[&ids, &counts],
    )?;
    tx.commit()?;
    let records = t.elapsed();
    let second: i64 = c
        .query_one(
            "SELECT id FROM addresses WHERE subnet_id = $1 AND ip = $2",
            &[&ds.net0, &net::key_bytes(net::key(DataSet::small_ip(0, 2))).to_vec()],
        )?
        .get(0);
    same_rows(&mut c, "addresses", ds.reference_record, second, &ADDRESS_VARIES)?;
    notes.push(
        "address rows: bulk rows equal ipaddress/add rows apart from id, ip, hostname, stamps; one address run per \
         subnet"
            .into(),
    );
    let r = c.query_one("SELECT min(id), max(id), count(*) FROM addresses", &[])?;
    ds.record_ids = (r.get(0), r.get(1));
    let total: i64 = r.get(2);
    if total as u64 != sizes.records {
        return Err(format!("seeded {total} records, expected {}", sizes.records).into());
    }
    let t = Instant::now();
    c.batch_execute("VACUUM ANALYZE")?;
    notes.push("VACUUM ANALYZE after the rows: planner statistics and the visibility map, as autovacuum keeps".into());
    Ok(BulkReport {
        networks,
        records,
        fts: t.elapsed(),
        counts: std::time::Duration::ZERO,
        notes,
    })
}

/// The pool's children (see [`crate::seed::pool_children`]) through `COPY` in one transaction while the server
/// runs: the pool's child count and the org's prefix count raised once by `n`, as their triggers would have.
pub fn pool_children(url: &str, pool: i64, n: u64) -> Res<()> {
    apart(|| pool_children_now(url, pool, n))
}

fn pool_children_now(url: &str, pool: i64, n: u64) -> Res<()> {
    let mut c = Client::connect(url, NoTls)?;
    let mut tx = c.transaction()?;
    let p = tx.query_one(
        "SELECT org_id, group_id, created, modby_id, modby_name FROM subnets WHERE id = $1",
        &[&pool],
    )?;
    let org: i64 = p.get(0);
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let (group, stamp, modby) = (opt(p.get(1)), p.get::<_, i64>(2), opt(p.get(3)));
    let modby_name = p.get::<_, String>(4).replace('"', "\"\"");
    tx.batch_execute(
        "ALTER TABLE subnets DISABLE TRIGGER subnet_prefixes_insert;
         ALTER TABLE subnets DISABLE TRIGGER subnets_children_insert",
    )?;
    {
        let mut w = tx.copy_in(
            "COPY subnets (org_id, group_id, family, net_start, net_end, prefix, name, created, modifiedat, modby_id,
                           modby_name, parent_id) FROM STDIN (FORMAT csv)",
        )?;
        let base = net::range(&block(crate::seed::POOL)?).0;
        for i in 0..n {
            let lo = base + (u128::from(2 * i) << 72);
            let hi = lo + ((1u128 << 72) - 1);
            w.write_all(
                format!(
                    "{org},{group},6,{},{},56,,{stamp},{stamp},{modby},\"{modby_name}\",{pool}\n",
                    bytea(lo),
                    bytea(hi)
                )
                .as_bytes(),
            )?;
        }
        w.finish()?;
    }
    tx.batch_execute(
        "ALTER TABLE subnets ENABLE TRIGGER subnet_prefixes_insert;
         ALTER TABLE subnets ENABLE TRIGGER subnets_children_insert",
    )?;
    let n = n as i64;
    tx.execute(
        "UPDATE subnets SET child_count = child_count + $2 WHERE id = $1",
        &[&pool, &n],
    )?;
    tx.execute(
        "INSERT INTO subnet_prefixes (org_id, family, prefix, subnets) VALUES ($1, 6, 56, $2)
         ON CONFLICT (org_id, family, prefix) DO UPDATE SET subnets = subnet_prefixes.subnets + $2",
        &[&org, &n],
    )?;
    tx.commit()?;
    c.batch_execute("ANALYZE subnets")?;
    Ok(())
}

/// The kept counts (id, used, taken) of some subnets.
pub fn kept_counts(url: &str, ids: &[i64]) -> Res<Vec<(i64, i64, String)>> {
    apart(|| {
        let mut c = Client::connect(url, NoTls)?;
        let rows = c.query(
            "SELECT id, used, taken FROM subnets WHERE id = ANY($1) ORDER BY id",
            &[&ids],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    })
}

/// (records in the subnet, distinct addresses among them).
pub fn allocated(url: &str, subnet: i64) -> Res<(u64, u64)> {
    apart(|| {
        let mut c = Client::connect(url, NoTls)?;
        let r = c.query_one(
            "SELECT count(*), count(DISTINCT ip) FROM addresses WHERE subnet_id = $1",
            &[&subnet],
        )?;
        Ok((r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
    })
}
