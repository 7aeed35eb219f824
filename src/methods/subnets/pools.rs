//! The free space of pools (schema.sql, migration 15): each pool's maximal aligned free blocks in `pool_free`, their
//! number per length in `pool_free_counts`. Taking a child splits the one free block that holds it, freeing one
//! merges it with its free buddies: every read and change is a few index seeks, whatever the pool's size and however
//! many children it has. `subnets/available` and the allocation of `subnets/add {parent, cidr}` read it.

use ipnet::IpNet;

use crate::db::params;
use crate::error::{Code, Error, Result};
use crate::handler::{Ctx, Params};
use crate::methods::subnets::{self, Subnet};
use crate::model;
use crate::net;
use crate::params::Data;

/// Where `subnets/add {parent, cidr}` puts a new child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The lowest-addressed free block of the length asked for (the default).
    FirstFit,
    /// Inside the smallest free aligned block that can hold it (the lowest such), so larger free blocks stay whole.
    BestFit,
    /// The highest-addressed free block.
    Last,
}

impl Strategy {
    pub fn decode(d: &mut Data) -> Result<Option<Strategy>> {
        match d.str("strategy")?.as_deref() {
            None => Ok(None),
            Some("first-fit") => Ok(Some(Strategy::FirstFit)),
            Some("best-fit") => Ok(Some(Strategy::BestFit)),
            Some("last") => Ok(Some(Strategy::Last)),
            Some(_) => Err(Error::param("strategy", "must be first-fit, best-fit or last")),
        }
    }
}

/// The host bits of a block: it holds `2^bits` keys.
fn bits_of(n: &IpNet) -> u32 {
    u32::from(n.max_prefix_len() - n.prefix_len())
}

/// The block of `bits` host bits at key `start`, in the family of `pool`.
fn block(pool: &Subnet, start: u128, bits: u32) -> Result<IpNet> {
    let max = pool.net.max_prefix_len();
    let prefix = u8::try_from(bits)
        .ok()
        .and_then(|b| max.checked_sub(b))
        .ok_or_else(|| Error::internal("a free block longer than its family"))?;
    IpNet::new(pool.addr(start), prefix).map_err(|_| Error::internal("a free block longer than its family"))
}

fn insert_free(ctx: &Ctx, pool: &Subnet, start: u128, bits: u32) -> Result<()> {
    let prefix = u32::from(pool.net.max_prefix_len()) - bits;
    ctx.tx.execute(
        "INSERT INTO pool_free (pool_id, start, prefix) VALUES (?1, ?2, ?3)",
        params![pool.id, &net::key_bytes(start)[..], prefix],
    )?;
    Ok(())
}

/// A new pool: all of it is free.
pub fn init(ctx: &Ctx, pool: &Subnet) -> Result<()> {
    insert_free(ctx, pool, pool.range().0, bits_of(&pool.net))
}

/// Takes `child`, which must lie in the free space of `pool`, out of it: `overlap` naming the pool when it does not.
pub fn take(ctx: &Ctx, pool: &Subnet, child: &IpNet) -> Result<()> {
    let (lo, hi) = net::range(child);
    let holder: Option<(Vec<u8>, u32)> = ctx.tx.query_opt(
        "SELECT start, prefix FROM pool_free WHERE pool_id = ?1 AND start <= ?2 ORDER BY start DESC LIMIT 1",
        params![pool.id, &net::key_bytes(lo)[..]],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let max = u32::from(pool.net.max_prefix_len());
    let free = holder.and_then(|(start, prefix)| Some((net::bytes_key(&start)?, max.checked_sub(prefix)?)));
    let Some((start, bits)) = free.filter(|&(start, bits)| hi <= (start | low_mask(bits))) else {
        return Err(Error::new(
            Code::Overlap,
            format!("{child} is not free in pool {} ({})", pool.id, pool.net),
        ));
    };
    ctx.tx.execute(
        "DELETE FROM pool_free WHERE pool_id = ?1 AND start = ?2",
        params![pool.id, &net::key_bytes(start)[..]],
    )?;
    for (s, b) in net::remainder(bits, lo, bits_of(child)) {
        insert_free(ctx, pool, s, b)?;
    }
    Ok(())
}

/// Moves a pool's version when a child changes size: its `covered` is part of its record (schema.sql, migration
/// 12), and no column of its row changes with it (a child added, moved or deleted moves `child_count`).
pub fn changed(ctx: &Ctx, pool: &Subnet) -> Result<()> {
    ctx.tx.execute(
        "UPDATE subnets SET child_count = child_count WHERE id = ?1",
        params![pool.id],
    )?;
    Ok(())
}

/// Gives `child`'s space back to `pool`, merged with its free buddies.
pub fn release(ctx: &Ctx, pool: &Subnet, child: &IpNet) -> Result<()> {
    let (mut start, mut bits) = (net::range(child).0, bits_of(child));
    let top = bits_of(&pool.net);
    let max = u32::from(pool.net.max_prefix_len());
    while bits < top {
        let (parent, buddy) = net::parent_and_buddy(start, bits);
        let merged = ctx.tx.execute(
            "DELETE FROM pool_free WHERE pool_id = ?1 AND start = ?2 AND prefix = ?3",
            params![pool.id, &net::key_bytes(buddy)[..], max - bits],
        )?;
        if merged == 0 {
            break;
        }
        (start, bits) = (parent, bits + 1);
    }
    insert_free(ctx, pool, start, bits)
}

/// Recomputes a pool's free space from its children (after its block changed, a split or a join): reads every
/// child once.
pub fn rebuild(ctx: &Ctx, pool: &Subnet) -> Result<()> {
    ctx.tx
        .execute("DELETE FROM pool_free WHERE pool_id = ?1", params![pool.id])?;
    let (lo, hi) = pool.range();
    let mut next = Some(lo);
    let children = {
        ctx.tx.rows(
            "SELECT net_start, net_end FROM subnets WHERE parent_id = ?1 ORDER BY net_start",
            params![pool.id],
            |r| Ok((r.get::<Vec<u8>>(0)?, r.get::<Vec<u8>>(1)?)),
        )?
    };
    for (a, b) in children {
        let (a, b) = net::bytes_key(&a)
            .zip(net::bytes_key(&b))
            .ok_or_else(|| Error::internal(format!("pool {}: a child with a bad block", pool.id)))?;
        if let Some(n) = next.filter(|n| a > *n) {
            gap(ctx, pool, n, a - 1)?;
        }
        next = b.checked_add(1);
    }
    if let Some(n) = next.filter(|n| *n <= hi) {
        gap(ctx, pool, n, hi)?;
    }
    Ok(())
}

fn gap(ctx: &Ctx, pool: &Subnet, lo: u128, hi: u128) -> Result<()> {
    for (s, b) in net::aligned_blocks(lo, hi) {
        insert_free(ctx, pool, s, b)?;
    }
    Ok(())
}

/// The keys whose low `bits` bits vary.
fn low_mask(bits: u32) -> u128 {
    u128::MAX.checked_shr(128 - bits).unwrap_or(0)
}

/// A pool's free blocks per prefix length, shortest first.
fn counts(ctx: &Ctx, pool_id: i64) -> Result<Vec<(u8, u128)>> {
    ctx.tx.rows(
        "SELECT prefix, blocks FROM pool_free_counts WHERE pool_id = ?1 ORDER BY prefix",
        params![pool_id],
        |r| Ok((r.get::<u8>(0)?, u128::try_from(r.get::<i64>(1)?).unwrap_or(0))),
    )
}

/// The free space of a pool from its counts (`prefix:blocks,…`, as `subnets::columns` reads them): the number of
/// free keys. Exact: a pool holds at most 2^127 keys (no IPv6 block may hold ::ffff:0:0/96).
pub fn free_keys(max_prefix: u8, counts: &[(u8, u128)]) -> u128 {
    counts.iter().fold(0u128, |n, &(prefix, blocks)| {
        let bits = u32::from(max_prefix.saturating_sub(prefix));
        n.saturating_add(blocks.saturating_mul(1u128.checked_shl(bits).unwrap_or(0)))
    })
}

/// The free blocks of length `want` that the free blocks `counts` hold.
fn free_of(want: u8, counts: &[(u8, u128)]) -> u128 {
    counts
        .iter()
        .filter(|(prefix, _)| *prefix <= want)
        .fold(0u128, |n, &(prefix, blocks)| {
            let bits = u32::from(want - prefix);
            n.saturating_add(blocks.saturating_mul(1u128.checked_shl(bits).unwrap_or(0)))
        })
}

/// Parses the `prefix:blocks` list of [`crate::methods::subnets`]' record columns.
pub fn parse_counts(text: &str) -> Vec<(u8, u128)> {
    text.split(',')
        .filter_map(|item| {
            let (p, n) = item.split_once(':')?;
            Some((p.parse().ok()?, n.parse().ok()?))
        })
        .collect()
}

/// Checks a prefix length asked for in `pool`: longer than the pool's, at most the family's.
fn child_prefix(pool: &Subnet, field: &str, cidr: i64) -> Result<u8> {
    match u8::try_from(cidr) {
        Ok(c) if c > pool.net.prefix_len() && c <= pool.net.max_prefix_len() => Ok(c),
        _ => Err(Error::param(
            field,
            format!(
                "must be a prefix length from /{} to /{} inside {}",
                pool.net.prefix_len() + 1,
                pool.net.max_prefix_len(),
                pool.net
            ),
        )),
    }
}

/// The statements of [`pick`], one per strategy: over the prefix lengths the pool has free blocks of
/// (`pool_free_counts`) that can hold a /`?2`, the lowest (or highest) free block of each, one seek each in
/// `pool_free_prefix`, in one statement (`ORDER BY … LIMIT 1`, as PostgreSQL has no `min` of `bytea`).
const PICK_SQL: [&str; 3] = [
    "SELECT c.prefix, (SELECT f.start FROM pool_free f WHERE f.pool_id = ?1 AND f.prefix = c.prefix
             ORDER BY f.start LIMIT 1) AS s
     FROM pool_free_counts c WHERE c.pool_id = ?1 AND c.prefix <= ?2 ORDER BY s LIMIT 1",
    "SELECT c.prefix, (SELECT f.start FROM pool_free f WHERE f.pool_id = ?1 AND f.prefix = c.prefix
             ORDER BY f.start LIMIT 1) AS s
     FROM pool_free_counts c WHERE c.pool_id = ?1 AND c.prefix <= ?2 ORDER BY c.prefix DESC LIMIT 1",
    "SELECT c.prefix, (SELECT f.start FROM pool_free f WHERE f.pool_id = ?1 AND f.prefix = c.prefix
             ORDER BY f.start DESC LIMIT 1) AS s
     FROM pool_free_counts c WHERE c.pool_id = ?1 AND c.prefix <= ?2 ORDER BY s DESC LIMIT 1",
];

/// The block of length `cidr` that `strategy` picks in `pool`'s free space; `subnet_full` when none is free. Every
/// free aligned block of that length lies in one free block of `pool_free` at most that long, so the lowest starts
/// the lowest such free block, and the highest ends the highest one.
pub fn pick(ctx: &Ctx, pool: &Subnet, cidr: i64, strategy: Strategy) -> Result<IpNet> {
    let want = child_prefix(pool, "cidr", cidr)?;
    let sql = match strategy {
        Strategy::FirstFit => PICK_SQL[0],
        Strategy::BestFit => PICK_SQL[1],
        Strategy::Last => PICK_SQL[2],
    };
    let found: Option<(u8, Vec<u8>)> = ctx
        .tx
        .query_opt(sql, params![pool.id, want], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let max = pool.net.max_prefix_len();
    let want_bits = u32::from(max - want);
    match found.and_then(|(prefix, start)| Some((prefix, net::bytes_key(&start)?))) {
        Some((_, start)) if strategy != Strategy::Last => block(pool, start, want_bits),
        // The highest block of length `want` ends where its free block ends.
        Some((prefix, start)) => {
            let bits = u32::from(max.saturating_sub(prefix));
            block(pool, (start | low_mask(bits)) & !low_mask(want_bits), want_bits)
        }
        None => Err(Error::new(
            Code::SubnetFull,
            format!("pool {} ({}) has no free /{want}", pool.id, pool.net),
        )
        .with_data(serde_json::json!({"cidr": want}))),
    }
}

pub struct AvailableParams {
    id: i64,
    cidr: Option<i64>,
    limit: i64,
    after: Option<std::net::IpAddr>,
}

impl Params for AvailableParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(AvailableParams {
            id: d.req_id("id")?,
            cidr: d.int("cidr")?,
            limit: d.per_page("limit", 256, 1000)?,
            after: d.str("after")?.map(|s| subnets::parse_ip("after", &s)).transpose()?,
        })
    }
}

/// The free space of a pool: up to `limit` of its largest aligned free blocks, ascending, starting above the
/// address `after`; with `cidr`, only blocks that can hold a /cidr, and the exact number of free /cidr blocks.
/// At most one index seek per prefix length in use, then `limit` rows of each.
pub fn available(ctx: &Ctx, p: AvailableParams) -> Result<model::FreeBlocks> {
    let pool = subnets::load(ctx, p.id)?;
    subnets::require_pool(ctx, &pool, "id")?;
    let want = p.cidr.map(|c| child_prefix(&pool, "cidr", c)).transpose()?;
    let after = subnets::cursor(&pool, p.after, "pool")?;
    let counts = counts(ctx, pool.id)?;
    let limit = usize::try_from(p.limit).unwrap_or(0);
    let mut found: Vec<(u128, u8)> = Vec::new();
    let from = after.map_or(Some(pool.range().0), |a| a.checked_add(1));
    if let Some(from) = from {
        for &(prefix, _) in counts.iter().filter(|(prefix, _)| want.is_none_or(|w| *prefix <= w)) {
            let starts = ctx.tx.rows(
                "SELECT start FROM pool_free WHERE pool_id = ?1 AND prefix = ?2 AND start >= ?3 ORDER BY start LIMIT ?4",
                params![pool.id, prefix, net::key_bytes(from), p.limit],
                |r| net::bytes_key(r.blob(0)?).ok_or_else(|| Error::internal("a free block with a bad key")),
            )?;
            found.extend(starts.into_iter().map(|start| (start, prefix)));
        }
    }
    found.sort_unstable();
    found.truncate(limit);
    let max = pool.net.max_prefix_len();
    let blocks = found
        .into_iter()
        .map(|(start, prefix)| block(&pool, start, u32::from(max - prefix)).map(|b| net::net_text(&b)))
        .collect::<Result<Vec<_>>>()?;
    Ok(model::FreeBlocks {
        subnet: pool.id,
        network: net::net_text(&pool.net),
        cidr: want,
        free: want.map(|w| free_of(w, &counts)),
        total_free: free_keys(max, &counts),
        largest: counts.first().map(|(prefix, _)| *prefix),
        blocks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each strategy's statement seeks the lowest or highest free block of each prefix length in the index: it
    /// never scans a pool's free blocks, however many there are.
    #[test]
    fn picking_a_block_seeks_one_free_block_per_prefix_length() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate(&conn).unwrap();
        for sql in PICK_SQL {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt
                .query_map(rusqlite::params![1, 24], |r| r.get::<_, String>(3))
                .unwrap();
            let plan = rows.map(|r| r.unwrap()).collect::<Vec<_>>();
            assert!(plan.iter().all(|step| !step.starts_with("SCAN")), "{plan:#?}");
            assert!(
                plan.iter()
                    .any(|s| s.contains("INDEX pool_free_prefix (pool_id=? AND prefix=?)")),
                "{plan:#?}"
            );
        }
    }

    #[test]
    fn free_blocks_of_a_length_count_the_smaller_inside_the_larger() {
        // A /47 and two /48s free: four /49s and two /48s in the /47, two each in the /48s.
        let counts = [(47, 1), (48, 2)];
        assert_eq!(free_of(48, &counts), 4);
        assert_eq!(free_of(49, &counts), 8);
        assert_eq!(free_of(47, &counts), 1);
        assert_eq!(free_of(46, &counts), 0);
        assert_eq!(free_keys(128, &counts), 4 << 80);
        assert_eq!(free_of(128, &[(1, 1)]), 1 << 127);
        assert_eq!(parse_counts("47:1,48:2"), counts.to_vec());
        assert_eq!(parse_counts(""), vec![]);
    }
}
