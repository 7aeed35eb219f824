//! The free space of a subnet's addresses: the space its address records (as runs of consecutive keys, kept by
//! schema.sql's triggers) and its active DHCP ranges take, walked in key order from any point with two index seeks,
//! the free addresses found in the gaps, and the per-subnet counts (`used`, `taken`) kept in step with them. The
//! address, DHCP-range and subnet handlers call it; it never enumerates a subnet. A pool's free child blocks are
//! the other free-space engine ([`crate::methods::subnets`]' pools).

use std::cell::RefCell;

use crate::db::{params, Row, Sql, Tx};
use crate::error::{Error, Result};
use crate::handler::Ctx;
use crate::methods::subnets::Subnet;
use crate::net;

/// The free-space engine's two reads: the runs of record addresses (schema.sql, migration 7) and the DHCP ranges of
/// a subnet (`?1`), each from the one holding key `?2` (the last to start at or below it) on, ascending. Neither
/// kind overlaps its own kind, so nothing ending at or after `?2` starts before that one.
/// (PostgreSQL has no `max` of `bytea`: it reads the first key of the index in descending order.)
pub const TAKEN_SQL: [Sql<'static>; 2] = [
    Sql::Dialects(
        "SELECT first_ip, last_ip FROM address_runs
         WHERE subnet_id = ?1
           AND first_ip >= coalesce((SELECT max(first_ip) FROM address_runs WHERE subnet_id = ?1 AND first_ip <= ?2), x'')
         ORDER BY first_ip",
        "SELECT first_ip, last_ip FROM address_runs
         WHERE subnet_id = ?1
           AND first_ip >= coalesce((SELECT first_ip FROM address_runs WHERE subnet_id = ?1 AND first_ip <= ?2
                                     ORDER BY first_ip DESC LIMIT 1), '\\x'::bytea)
         ORDER BY first_ip",
    ),
    Sql::Dialects(
        "SELECT start_ip, end_ip FROM dhcp_ranges
         WHERE subnet_id = ?1
           AND start_ip >= coalesce((SELECT max(start_ip) FROM dhcp_ranges WHERE subnet_id = ?1 AND start_ip <= ?2), x'')
           AND is_active = 1
         ORDER BY start_ip",
        "SELECT start_ip, end_ip FROM dhcp_ranges
         WHERE subnet_id = ?1
           AND start_ip >= coalesce((SELECT start_ip FROM dhcp_ranges WHERE subnet_id = ?1 AND start_ip <= ?2
                                     ORDER BY start_ip DESC LIMIT 1), '\\x'::bytea)
           AND is_active = 1
         ORDER BY start_ip",
    ),
];

/// Walks the space of a subnet taken by address records and active DHCP ranges, ascending, from the intervals that
/// hold `from` on. `f` gets a lazy iterator of inclusive key intervals (sorted by start; a record may lie in a
/// range), so a caller that stops early reads only what it needs: two seeks, then one run or range per interval.
pub fn with_taken<T>(
    tx: &Tx,
    s: &Subnet,
    from: u128,
    f: impl FnOnce(&mut dyn Iterator<Item = (u128, u128)>) -> T,
) -> Result<T> {
    let from_bytes = net::key_bytes(from);
    let failure: RefCell<Option<Error>> = RefCell::new(None);
    let interval = |r: &Row| Ok(net::bytes_key(r.blob(0)?).zip(net::bytes_key(r.blob(1)?)));
    let keys = |row: Result<Option<(u128, u128)>>| match row {
        Ok(keys) => keys,
        Err(e) => {
            *failure.borrow_mut() = Some(e);
            None
        }
    };
    let [runs_sql, ranges_sql] = TAKEN_SQL;
    let out = tx.scan(runs_sql, params![s.id, from_bytes], interval, |runs| {
        tx.scan(ranges_sql, params![s.id, from_bytes], interval, |ranges| {
            let mut runs = runs.map_while(keys).peekable();
            let mut ranges = ranges.map_while(keys).peekable();
            let mut merged = std::iter::from_fn(|| match (runs.peek(), ranges.peek()) {
                (Some(a), Some(b)) if b.0 < a.0 => ranges.next(),
                (Some(_), _) => runs.next(),
                (None, _) => ranges.next(),
            });
            f(&mut merged)
        })
    })??;
    match failure.take() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Up to `limit` free usable keys of a subnet at or above `from`, ascending.
pub fn free_keys(tx: &Tx, s: &Subnet, from: u128, limit: usize) -> Result<Vec<u128>> {
    let usable = s.usable();
    let from = from.max(usable.0);
    with_taken(tx, s, from, |taken| {
        net::free_list((from, usable.1), None, limit, taken)
    })
}

/// Recomputes a subnet's `used` and `taken` from its records and ranges (after bulk changes): reads its runs and
/// ranges, not its records.
pub fn recount(ctx: &Ctx, s: &Subnet) -> Result<()> {
    let usable = s.usable();
    let free = with_taken(ctx.tx, s, usable.0, |taken| net::free_count(usable, taken))?;
    let taken = net::usable_count(&s.net) - free;
    ctx.tx.execute(
        "UPDATE subnets SET used = (SELECT count(*) FROM addresses WHERE subnet_id = ?1), taken = ?2 WHERE id = ?1",
        params![s.id, taken.to_string()],
    )?;
    Ok(())
}

/// A subnet's kept count of taken usable addresses (a decimal text: an IPv6 subnet's may pass `i64`).
pub fn taken(tx: &Tx, s: &Subnet) -> Result<u128> {
    let taken: String = tx.query_row("SELECT taken FROM subnets WHERE id = ?1", params![s.id], |r| r.get(0))?;
    taken
        .parse()
        .map_err(|_| Error::internal(format!("subnet {}: bad taken count", s.id)))
}

/// Keeps a subnet's counts as the record at key `k` is added or removed: `used` always, `taken` when `k` is usable
/// and in no active DHCP range (whose addresses the range already counts). One statement, whose answer no one
/// waits for ([`Tx::execute_later`]).
pub fn adjust(ctx: &Ctx, s: &Subnet, k: u128, added: bool) -> Result<()> {
    let (lo, hi) = s.usable();
    let delta: i64 = if added { 1 } else { -1 };
    if !(lo..=hi).contains(&k) {
        return ctx.tx.execute_later(
            "UPDATE subnets SET used = used + ?1 WHERE id = ?2",
            params![delta, s.id],
        );
    }
    let kb = net::key_bytes(k);
    ctx.tx.execute_later(
        "UPDATE subnets SET used = used + ?1,
             taken = CASE WHEN EXISTS(SELECT 1 FROM dhcp_ranges WHERE subnet_id = ?2 AND is_active = 1
                                             AND start_ip <= ?3 AND end_ip >= ?3)
                          THEN taken ELSE count_add(taken, ?1) END
         WHERE id = ?2",
        params![delta, s.id, &kb[..]],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both reads of the free-space engine seek their index, the subquery too: neither scans a subnet's runs or
    /// ranges from the start.
    #[test]
    fn the_free_space_reads_seek_from_the_start_key() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate(&conn).unwrap();
        for sql in TAKEN_SQL {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", sql.sqlite())).unwrap();
            let rows = stmt
                .query_map(rusqlite::params![1, 0], |r| r.get::<_, String>(3))
                .unwrap();
            let plan = rows.map(|r| r.unwrap()).collect::<Vec<_>>();
            assert!(plan.iter().all(|step| !step.starts_with("SCAN")), "{plan:#?}");
            let seeks = plan
                .iter()
                .filter(|step| step.starts_with("SEARCH") && step.contains("(subnet_id=? AND"))
                .count();
            assert_eq!(seeks, 2, "{plan:#?}");
        }
    }

    /// The runs of consecutive record addresses that schema.sql's triggers keep (migration 7; also the migration's
    /// own fill) are the runs of the records, after any sequence of inserts, deletes and moves between subnets,
    /// at both ends of the key space too.
    mod runs {
        use std::collections::BTreeSet;

        use proptest::prelude::*;
        use rusqlite::{params, Connection};

        use crate::net;

        /// Keys near both ends of the key space, where stepping a key past the end gives NULL.
        fn key(i: u8) -> u128 {
            match i {
                0..=11 => u128::from(i),
                _ => u128::MAX - u128::from(i - 12),
            }
        }

        fn expected(records: &BTreeSet<(i64, u128)>) -> Vec<(i64, u128, u128)> {
            let mut runs: Vec<(i64, u128, u128)> = Vec::new();
            for &(s, k) in records {
                match runs.last_mut() {
                    Some(r) if r.0 == s && r.2.checked_add(1) == Some(k) => r.2 = k,
                    _ => runs.push((s, k, k)),
                }
            }
            runs
        }

        fn stored(conn: &Connection, table: &str) -> Vec<(i64, u128, u128)> {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT subnet_id, first_ip, last_ip FROM {table} ORDER BY subnet_id, first_ip"
                ))
                .unwrap();
            let rows = stmt
                .query_map([], |r| {
                    let (a, b): (Vec<u8>, Vec<u8>) = (r.get(1)?, r.get(2)?);
                    Ok((r.get(0)?, net::bytes_key(&a).unwrap(), net::bytes_key(&b).unwrap()))
                })
                .unwrap();
            rows.map(|r| r.unwrap()).collect()
        }

        #[derive(Debug, Clone)]
        enum Op {
            Add(i64, u8),
            Delete(u8),
            Move(u8, i64, u8),
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (1i64..=2, 0u8..24).prop_map(|(s, k)| Op::Add(s, k)),
                (0u8..24).prop_map(Op::Delete),
                (0u8..24, 1i64..=2, 0u8..24).prop_map(|(i, s, k)| Op::Move(i, s, k)),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn the_triggers_keep_the_runs_of_the_records(ops in prop::collection::vec(op(), 1..80)) {
                let conn = Connection::open_in_memory().unwrap();
                crate::store::migrate(&conn).unwrap();
                // Records of subnets 1 and 2, which need no rows here.
                conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
                let mut records: BTreeSet<(i64, u128)> = BTreeSet::new();
                for op in ops {
                    let nth = |records: &BTreeSet<(i64, u128)>, i: u8| {
                        records.iter().nth(usize::from(i) % records.len().max(1)).copied()
                    };
                    match op {
                        Op::Add(s, k) if records.insert((s, key(k))) => {
                            conn.execute(
                                "INSERT INTO addresses (subnet_id, ip, created, modifiedat, modby_name)
                                 VALUES (?1, ?2, 0, 0, 'test')",
                                params![s, &net::key_bytes(key(k))[..]],
                            )
                            .unwrap();
                        }
                        Op::Delete(i) => if let Some((s, k)) = nth(&records, i) {
                            records.remove(&(s, k));
                            conn.execute(
                                "DELETE FROM addresses WHERE subnet_id = ?1 AND ip = ?2",
                                params![s, &net::key_bytes(k)[..]],
                            )
                            .unwrap();
                        },
                        Op::Move(i, to, k) => if let Some((s, old)) = nth(&records, i) {
                            if records.insert((to, key(k))) {
                                records.remove(&(s, old));
                                conn.execute(
                                    "UPDATE addresses SET subnet_id = ?1, ip = ?2 WHERE subnet_id = ?3 AND ip = ?4",
                                    params![to, &net::key_bytes(key(k))[..], s, &net::key_bytes(old)[..]],
                                )
                                .unwrap();
                            }
                        },
                        Op::Add(..) => {}
                    }
                    prop_assert_eq!(stored(&conn, "address_runs"), expected(&records));
                }
                // The migration's fill computes the same runs from the records alone.
                let fill = crate::store::SCHEMA
                    .split("-- Consecutive keys of a subnet")
                    .nth(1)
                    .and_then(|rest| rest.split(';').next())
                    .and_then(|stmt| stmt.split_once("INSERT INTO address_runs (subnet_id, first_ip, last_ip)"))
                    .map(|(_, select)| select.to_string())
                    .unwrap();
                conn.execute_batch(&format!(
                    "CREATE TEMP TABLE refilled (subnet_id, first_ip, last_ip);
                     INSERT INTO refilled {fill}"
                ))
                .unwrap();
                prop_assert_eq!(stored(&conn, "refilled"), expected(&records));
            }
        }
    }
}
