//! `search/*`: where an address or block lives (`search/ip`), and a case-insensitive substring search over the
//! text of groups, subnets and address records (`search/find`).

use std::collections::HashSet;
use std::net::IpAddr;

use crate::db::ToParam;
use ipnet::IpNet;
use serde_json::json;

use crate::error::{Error, Result};
use crate::handler::{Ctx, Params};
use crate::methods::groups::{self, parent_param};
use crate::methods::{addresses, dhcpranges, subnets};
use crate::model::{Found, Holding, IpStatus, Located, PoolRef, Records, Reply};
use crate::net::{self, CidrError};
use crate::params::{Data, Patch};

const KINDS: [&str; 3] = ["groups", "subnets", "addresses"];

/// The REST API's names of the kinds, also accepted in `types`.
const REST_KINDS: [(&str, &str); 2] = [("networks", "subnets"), ("hosts", "addresses")];

/// The default and the most results of each kind that `search/ip` and `search/find` answer with.
const LIMIT: i64 = 1000;

pub struct IpParams {
    query: Query,
    group: Patch<i64>,
    status: bool,
    brief: bool,
    limit: usize,
}

impl Params for IpParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let text = d.req_str("ip")?;
        let query = Query::parse(&text).map_err(|m| Error::param("ip", m))?;
        let status = d.bool("status")?.unwrap_or(false);
        if status && matches!(query, Query::Block(_)) {
            return Err(Error::param("ip", "must be one address, not a block"));
        }
        let brief = d.bool("brief")?.unwrap_or(false);
        if brief && !status {
            return Err(Error::param("brief", "applies only with status"));
        }
        if status && d.has("limit") {
            return Err(Error::param("limit", "applies only without status"));
        }
        let limit = d.per_page("limit", LIMIT, LIMIT)?;
        Ok(IpParams {
            query,
            group: parent_param(d, "group")?,
            status,
            brief,
            limit: usize::try_from(limit).unwrap_or(0),
        })
    }
}

/// For an address: the subnets containing it (most specific first), its records and the DHCP ranges holding it.
/// For a block: the subnets overlapping it, each with `match` (contains / equal / within), and the records and
/// ranges inside or overlapping it. `group` keeps only the direct members of that group (`0`/`""`: top level).
/// At most `limit` of each kind; `truncated: true` is added when some kind had more.
/// With `status` (an address only): what the address is in the one subnet that answers for it (see [`status`]);
/// with `brief` as well, an assigned address is answered without the subnet's record and its record without the
/// stamps of its last change (what the REST shape shows).
pub fn ip(ctx: &Ctx, p: IpParams) -> Result<Reply> {
    if let Patch::Set(g) = p.group {
        groups::exists(ctx, g)?;
    }
    match p.query {
        Query::Addr(ip) if p.status => status(ctx, ip, &p.group, p.brief).map(|s| Reply::IpStatus(Box::new(s))),
        _ => {
            let kinds = ["subnets", "addresses", "dhcpranges"];
            Ok(Reply::Located(locate(ctx, &p.query, &p.group, &kinds, p.limit)?))
        }
    }
}

/// `{ip, status, matches, network?, host?, dhcp_range?}` for one address. Of the `matches` subnets containing it,
/// the one that answers is the most specific holding a record for it, else the most specific, else the lowest id.
/// `status`: `assigned` (it has a record there: `host`), `unusable` (network, broadcast or subnet-router anycast
/// address), `dhcp` (inside an active range: `dhcp_range`), `available`, or `unmanaged` (no subnet contains it).
/// One statement reads the containing subnets and each one's record for the address; the answering subnet's record
/// (`network`) is read by id, and its ranges when the address has no record there. `brief`: what the REST status
/// shape shows, no `network` beside a `host` and no stamps in the `host`.
fn status(ctx: &Ctx, ip: IpAddr, group: &Patch<i64>, brief: bool) -> Result<IpStatus> {
    let mut holders = subnets::holders(ctx, ip, brief)?;
    if let Some(gid) = group_filter(group) {
        holders.retain(|h| h.subnet.group == gid);
    }
    // A pool answers for no address: its children do.
    let pools: Vec<PoolRef> = holders
        .iter()
        .filter(|h| h.pool)
        .map(|h| PoolRef {
            id: h.subnet.id,
            subnet: net::net_text(&h.subnet.net),
        })
        .collect();
    holders.retain(|h| !h.pool);
    let mut out = IpStatus {
        ip: net::ip_text(ip),
        matches: holders.len(),
        network: None,
        status: "unmanaged",
        host: None,
        dhcp_range: None,
        pools: Vec::new(),
    };
    if holders.is_empty() {
        out.pools = pools;
        return Ok(out);
    }
    let answering = holders.iter().position(|h| h.address.is_some()).unwrap_or(0);
    let subnets::Holder {
        subnet,
        parent,
        address,
        ..
    } = holders.swap_remove(answering);
    out.pools = subnets::pool_refs(ctx, parent)?;
    let key = net::key(ip);
    if !(brief && address.is_some()) {
        out.network = Some(Holding {
            subnet: subnets::get_record(ctx, subnet.id)?,
            matched: Some(match_of(&subnet, key, key)),
        });
    }
    if let Some(mut host) = address {
        addresses::with_fields(ctx, std::slice::from_mut(&mut host))?;
        out.status = "assigned";
        out.host = Some(host);
        return Ok(out);
    }
    let (lo, hi) = subnet.usable();
    if !(lo..=hi).contains(&key) {
        out.status = "unusable";
        return Ok(out);
    }
    let key_b = net::key_bytes(key).to_vec();
    // Ranges of one subnet never overlap: one holds the address at most.
    out.dhcp_range = dhcpranges::overlapping(ctx, vec![subnet.id], &key_b, &key_b, 1)?
        .into_iter()
        .find(|r| r.is_active);
    out.status = if out.dhcp_range.is_some() { "dhcp" } else { "available" };
    Ok(out)
}

pub struct FindParams {
    query: String,
    limit: usize,
    kinds: Vec<&'static str>,
}

impl Params for FindParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let query = d.req_str("query")?.trim().to_string();
        if query.is_empty() {
            return Err(Error::param("query", "must not be empty"));
        }
        let limit = d.per_page("limit", 100, LIMIT)?;
        let kinds = match d.list("types")? {
            None => KINDS.to_vec(),
            Some(items) => {
                let mut kinds = Vec::new();
                for item in items {
                    let kind = item
                        .as_str()
                        .map(|t| {
                            let t = t.trim();
                            REST_KINDS
                                .iter()
                                .find(|(rest, _)| rest.eq_ignore_ascii_case(t))
                                .map_or(t, |(_, kind)| kind)
                        })
                        .and_then(|t| KINDS.iter().find(|k| k.eq_ignore_ascii_case(t)))
                        .ok_or_else(|| Error::param("types", "must be a list of groups, subnets, addresses"))?;
                    if !kinds.contains(kind) {
                        kinds.push(*kind);
                    }
                }
                if kinds.is_empty() {
                    return Err(Error::param(
                        "types",
                        "must name at least one of groups, subnets, addresses",
                    ));
                }
                kinds
            }
        };
        Ok(FindParams {
            query,
            limit: usize::try_from(limit).unwrap_or(100),
            kinds,
        })
    }
}

/// Up to `limit` groups, subnets and address records each whose text contains `query`; an address or CIDR query
/// puts the `search/ip` results first. `truncated` says whether some kind had more. Every kind is read only up to
/// `limit + 1` records, in SQL: the work and the reply are bounded by `limit`, whatever the org holds.
pub fn find(ctx: &Ctx, p: FindParams) -> Result<Found> {
    let hits = text_matches(ctx, &p.query, &p.kinds, p.limit + 1)?;
    let mut located = match Query::parse(&p.query) {
        Ok(q) => Some(locate(ctx, &q, &Patch::Keep, &p.kinds, p.limit + 1)?),
        Err(_) => None,
    };
    let wanted = |kind: &str| p.kinds.contains(&kind);
    let mut truncated = false;
    let mut groups = Vec::new();
    if wanted("groups") {
        groups = hits
            .groups
            .iter()
            .map(|id| groups::load(ctx, *id))
            .collect::<Result<_>>()?;
        truncated |= cut(&mut groups, p.limit);
    }
    let mut subnets = Vec::new();
    if wanted("subnets") {
        subnets = located
            .as_mut()
            .map(|l| std::mem::take(&mut l.subnets.0))
            .unwrap_or_default();
        let text = hits
            .subnets
            .iter()
            .map(|id| subnets::get_record(ctx, *id).map(|subnet| Holding { subnet, matched: None }));
        truncated |= merge(&mut subnets, text, |h| h.subnet.id, p.limit)?;
    }
    let mut addresses = Vec::new();
    if wanted("addresses") {
        addresses = located.map(|l| l.addresses.0).unwrap_or_default();
        let ids = json!(hits.addresses).to_string();
        let text = addresses::query(ctx, "t.id IN (SELECT value FROM json_each(?2))", &[&ids])?;
        truncated |= merge(&mut addresses, text.into_iter().map(Ok), |h| h.id, p.limit)?;
    }
    Ok(Found {
        groups: Records(groups),
        subnets: Records(subnets),
        addresses: Records(addresses),
        truncated,
    })
}

/// Adds the records of `more` whose ids `list` lacks, then cuts it to `limit`; whether it had more.
fn merge<T>(
    list: &mut Vec<T>,
    more: impl Iterator<Item = Result<T>>,
    id: impl Fn(&T) -> i64,
    limit: usize,
) -> Result<bool> {
    let mut ids: HashSet<i64> = list.iter().map(&id).collect();
    for r in more {
        let r = r?;
        if ids.insert(id(&r)) {
            list.push(r);
        }
    }
    Ok(cut(list, limit))
}

/// What `search/ip` looks for: one address or a block.
enum Query {
    Addr(IpAddr),
    Block(IpNet),
}

impl Query {
    /// An address, or a CIDR; a CIDR with host bits set searches its block.
    fn parse(s: &str) -> std::result::Result<Query, String> {
        if !s.contains('/') {
            return subnets::parse_ip("ip", s)
                .map(Query::Addr)
                .map_err(|e| e.message.trim_start_matches("ip: ").to_string());
        }
        match net::parse_cidr(s) {
            Ok(n) | Err(CidrError::HostBits(n)) => subnets::check_block(n).map(Query::Block).map_err(|e| e.message),
            Err(CidrError::Invalid(m)) => Err(m),
        }
    }

    /// The family and the first and last key.
    fn span(&self) -> (i64, u128, u128) {
        match self {
            Query::Addr(ip) => (if ip.is_ipv4() { 4 } else { 6 }, net::key(*ip), net::key(*ip)),
            Query::Block(n) => {
                let (lo, hi) = net::range(n);
                (if matches!(n, IpNet::V4(_)) { 4 } else { 6 }, lo, hi)
            }
        }
    }
}

/// The first `limit` subnets, records and ranges of the caller's org at `q` (of the kinds named in `kinds`; the
/// others stay empty and are not read), limited to the direct members of `group` when set; each kind cut at its
/// limit, `truncated` when one had more.
fn locate(ctx: &Ctx, q: &Query, group: &Patch<i64>, kinds: &[&str], limit: usize) -> Result<Located> {
    let (family, lo, hi) = q.span();
    let gid = group_filter(group);
    let mut found = Located {
        subnets: Records(Vec::new()),
        addresses: Records(Vec::new()),
        dhcpranges: Records(Vec::new()),
        truncated: false,
    };
    if kinds.contains(&"subnets") || kinds.contains(&"dhcpranges") {
        let order = match q {
            Query::Addr(_) => subnets::Order::MostSpecific,
            Query::Block(_) => subnets::Order::ByAddress,
        };
        let keep = |s: &subnets::Subnet| gid.is_none_or(|g| s.group == g);
        let (blocks, more) = subnets::overlapping_records(ctx, family == 4, lo, hi, order, keep, limit)?;
        found.truncated |= more;
        if kinds.contains(&"dhcpranges") {
            // A range lies inside its subnet: the ranges at `q` are those of the subnets found, filtered already.
            let ids: Vec<i64> = blocks.iter().map(|(s, _)| s.id).collect();
            let (lo_b, hi_b) = (net::key_bytes(lo).to_vec(), net::key_bytes(hi).to_vec());
            found.dhcpranges.0 = dhcpranges::overlapping(ctx, ids, &lo_b, &hi_b, limit + 1)?;
            found.truncated |= cut(&mut found.dhcpranges.0, limit);
        }
        if kinds.contains(&"subnets") {
            found.subnets.0 = blocks
                .into_iter()
                .map(|(sub, subnet)| Holding {
                    subnet,
                    matched: Some(match_of(&sub, lo, hi)),
                })
                .collect();
        }
    }
    if kinds.contains(&"addresses") {
        found.addresses.0 = addresses::records_in(ctx, family, lo, hi, gid, limit + 1)?;
        found.truncated |= cut(&mut found.addresses.0, limit);
    }
    Ok(found)
}

/// Cuts `list` to `limit` items; whether it had more.
fn cut<T>(list: &mut Vec<T>, limit: usize) -> bool {
    let more = list.len() > limit;
    list.truncate(limit);
    more
}

/// The group a search is limited to: `None` for any, `Some(None)` for the top level.
fn group_filter(group: &Patch<i64>) -> Option<Option<i64>> {
    match group {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(g) => Some(Some(*g)),
    }
}

/// How a subnet relates to the keys `lo..=hi`: equal, contains or within.
fn match_of(sub: &subnets::Subnet, lo: u128, hi: u128) -> &'static str {
    let (s, e) = sub.range();
    if (s, e) == (lo, hi) {
        "equal"
    } else if s <= lo && hi <= e {
        "contains"
    } else {
        "within"
    }
}

/// The ids (ascending) of up to `limit` address records of the caller's org whose hostname, cname, MAC,
/// description or a field value contains `query`. From three characters on, the trigram index `addresses_fts`
/// answers for the record's own columns, streaming in id order, so a million records cost no more than a
/// thousand; field values (and shorter queries) are matched by a scan.
fn address_matches(ctx: &Ctx, query: &str, mac: Option<&str>, limit: i64) -> Result<Vec<i64>> {
    let org = ctx.org();
    let collect =
        |sql: &str, args: &[&dyn ToParam]| -> Result<Vec<i64>> { ctx.tx.rows(sql, args, |r| r.get::<i64>(0)) };
    // FTS5 cuts a phrase at a NUL; such a query (and one too short for trigrams) takes the scan. PostgreSQL reads
    // its trigram indexes (schema.pg.sql) through ILIKE, however short the query.
    let mut ids = if ctx.tx.is_postgres() {
        let mut ids = pg_address_matches(ctx, query, mac, limit)?;
        ids.extend(collect(
            "SELECT DISTINCT v.address_id FROM field_values v JOIN addresses t ON t.id = v.address_id
             JOIN subnets s ON s.id = t.subnet_id
             WHERE s.org_id = ?1 AND v.value ILIKE ?2 ESCAPE '\\' ORDER BY v.address_id LIMIT ?3",
            &[&org, &like_pattern(query), &limit],
        )?);
        ids
    } else if query.chars().count() >= 3 && !query.contains('\0') {
        let phrase = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let fts = match mac {
            Some(m) if m != query => format!("{} OR {}", phrase(query), phrase(m)),
            _ => phrase(query),
        };
        let mut ids = collect(
            "SELECT t.id FROM addresses_fts f CROSS JOIN addresses t ON t.id = f.rowid CROSS JOIN subnets s ON s.id = t.subnet_id
             WHERE addresses_fts MATCH ?2 AND s.org_id = ?1 ORDER BY f.rowid LIMIT ?3",
            &[&org, &fts, &limit],
        )?;
        ids.extend(collect(
            "SELECT DISTINCT v.address_id FROM field_values v CROSS JOIN addresses t ON t.id = v.address_id
             CROSS JOIN subnets s ON s.id = t.subnet_id
             WHERE s.org_id = ?1 AND instr(lower(v.value), lower(?2)) > 0 ORDER BY v.address_id LIMIT ?3",
            &[&org, &query, &limit],
        )?);
        ids
    } else {
        collect(
            "SELECT t.id FROM addresses t CROSS JOIN subnets s ON s.id = t.subnet_id
             WHERE s.org_id = ?1
               AND (instr(lower(t.hostname), lower(?2)) > 0 OR instr(lower(t.cname), lower(?2)) > 0
                    OR instr(lower(t.mac_address), lower(?2)) > 0 OR instr(lower(t.description), lower(?2)) > 0
                    OR EXISTS (SELECT 1 FROM field_values v
                               WHERE v.address_id = t.id AND instr(lower(v.value), lower(?2)) > 0))
             ORDER BY t.id LIMIT ?3",
            &[&org, &query, &limit],
        )?
    };
    ids.sort_unstable();
    ids.dedup();
    ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(ids)
}

/// The address columns `search/find` matches on PostgreSQL, each with a trigram index (`addresses_<column>_trgm`)
/// and statistics of its trigrams (`addresses_<column>_trgms`, schema.pg.sql migration 20).
const PG_TEXT_COLUMNS: [&str; 4] = ["hostname", "cname", "mac_address", "description"];

/// The share of a column's values above which a trigram is common: its posting list in the trigram index is too
/// long to be worth intersecting, and a word whose trigrams are all common is left out of the index condition.
const COMMON_TRIGRAM: f64 = 0.05;

/// The share of a column's values from which a trigram is dense: when every trigram an index is asked with is at
/// least this common, its candidates are many (10,000 of a million and more), and a walk of the primary key in id
/// order, which the planner may choose then, stops early among them. (Of the hostnames `host-0` to
/// `host-999999`: ` 12` is dense, 1.2 %; `123` is not, 0.46 %.)
const DENSE_TRIGRAM: f64 = 0.01;

/// `%query%` for `LIKE`/`ILIKE … ESCAPE '\'`: the query matches anywhere, as itself.
fn like_pattern(query: &str) -> String {
    format!("%{}%", crate::methods::like_escape(query))
}

/// One run of `query` as pg_trgm cuts text: a word (alphanumeric characters) or the characters between two.
struct Part<'a> {
    text: &'a str,
    word: bool,
    /// For a word: the trigrams pg_trgm takes from it in the pattern `%query%` (lowercase; the first word is not
    /// padded on the left, nor the last on the right, as `%` stands there); empty for the runs between words.
    trigrams: Vec<String>,
}

/// `query` cut into [`Part`]s.
fn trigram_parts(query: &str) -> Vec<Part<'_>> {
    let mut runs: Vec<(bool, &str)> = Vec::new();
    let mut start = 0;
    let mut word = None;
    for (at, c) in query.char_indices() {
        let w = c.is_alphanumeric();
        if word.is_some_and(|prev| prev != w) {
            runs.push((!w, &query[start..at]));
            start = at;
        }
        word = Some(w);
    }
    if let Some(w) = word {
        runs.push((w, &query[start..]));
    }
    let last = runs.len().saturating_sub(1);
    runs.iter()
        .enumerate()
        .map(|(i, (word, text))| Part {
            text,
            word: *word,
            trigrams: if *word {
                word_trigrams(text, i > 0, i < last)
            } else {
                Vec::new()
            },
        })
        .collect()
}

/// The trigrams of a word as pg_trgm makes them: lowercased, with two spaces before it when something other than a
/// wildcard precedes it and one after it when something follows it.
fn word_trigrams(word: &str, before: bool, after: bool) -> Vec<String> {
    let mut chars: Vec<char> = Vec::new();
    if before {
        chars.extend([' ', ' ']);
    }
    chars.extend(word.chars().flat_map(char::to_lowercase));
    if after {
        chars.push(' ');
    }
    chars.windows(3).map(|w| w.iter().collect()).collect()
}

/// The `ILIKE` pattern a trigram index is asked with for the query cut into `parts`, leaving out the words that
/// `common` says are common: each becomes `%`. Every value containing the query matches it. `None` when no word
/// with a trigram is left (the index could only answer for common trigrams).
fn index_pattern(parts: &[Part<'_>], common: impl Fn(&str) -> bool) -> Option<String> {
    let mut pattern = String::from("%");
    let mut kept = false;
    for part in parts {
        let word = part.word;
        if word && (part.trigrams.is_empty() || part.trigrams.iter().all(|t| common(t))) {
            if !pattern.ends_with('%') || pattern.ends_with("\\%") {
                pattern.push('%');
            }
            continue;
        }
        kept |= word;
        pattern.push_str(&crate::methods::like_escape(part.text));
    }
    if !pattern.ends_with('%') || pattern.ends_with("\\%") {
        pattern.push('%');
    }
    kept.then_some(pattern)
}

/// The share of values holding the rarest trigram of the words [`index_pattern`] keeps, by `freq` (0 for a trigram
/// the statistics do not list as common).
fn rarest(parts: &[Part<'_>], freq: impl Fn(&str) -> f64) -> f64 {
    parts
        .iter()
        .filter(|p| p.trigrams.iter().any(|t| freq(t) < COMMON_TRIGRAM))
        .flat_map(|p| p.trigrams.iter().map(|t| freq(t)))
        .fold(1.0, f64::min)
}

/// PostgreSQL: the ids of up to `limit` address records of the caller's org whose hostname, cname, MAC or
/// description contains `query` (or the MAC `mac`), in no order, possibly twice.
///
/// A GIN trigram index intersects the posting lists of the pattern's trigrams, and a trigram that most values hold
/// (`hos` when every hostname is `host-…`) makes that cost as much as reading the column: `%host-1234%` took 10 ms
/// among a million hostnames, `%-1234%` 0.7 ms. So each column is asked, through the statistics ANALYZE keeps of
/// its trigrams, with the query less its common words, and the whole query is checked on the candidates (`strpos`
/// of the folded text: what `ILIKE '%query%'` tests, but no index condition). Each column is a branch of its own,
/// read up to `limit`: a bitmap of its candidates, fenced with `OFFSET 0` so that the planner cannot walk the
/// primary key in id order instead (through every record when the matches are few: the 1.5 s searches); but when
/// the candidates are many (every trigram asked for is dense), left to the planner, which walks the primary key
/// when its statistics say the matches are many (`host-12`: 5 ms instead of a bitmap of 11,111 candidates, 31 ms);
/// and when every word of the query is common there (or the column has no statistics yet), the whole pattern, left
/// to the planner (a walk in id order finds the first matches of a common pattern at once).
fn pg_address_matches(ctx: &Ctx, query: &str, mac: Option<&str>, limit: i64) -> Result<Vec<i64>> {
    let org = ctx.org();
    let parts = trigram_parts(query);
    let stats = common_trigrams(ctx, &parts)?;
    let full = like_pattern(query);
    let from = "SELECT t.id FROM addresses t JOIN subnets s ON s.id = t.subnet_id WHERE s.org_id = ?1";
    // The text parameters, from ?3 on: only those a branch reads (PostgreSQL cannot type one no statement reads).
    let mut texts: Vec<String> = Vec::new();
    let mut bind = |text: String| {
        let n = match texts.iter().position(|t| *t == text) {
            Some(at) => at,
            None => {
                texts.push(text);
                texts.len() - 1
            }
        };
        n + 3
    };
    // A branch of `cond`: fenced (`OFFSET 0`), the planner reads its candidates whole and then sorts them; not, it
    // may walk the primary key instead.
    let arm = |cond: String, fenced: bool| match fenced {
        true => format!("(SELECT id FROM ({from} AND {cond} OFFSET 0) a ORDER BY id LIMIT ?2)"),
        false => format!("({from} AND {cond} ORDER BY t.id LIMIT ?2)"),
    };
    let mut arms: Vec<String> = Vec::new();
    for column in PG_TEXT_COLUMNS {
        let listed = stats.iter().find(|(c, _)| c == column).map(|(_, t)| t);
        let freq = |t: &str| {
            listed
                .and_then(|l| l.iter().find(|(c, _)| c == t))
                .map_or(0.0, |(_, f)| *f)
        };
        let reduced = listed.and_then(|_| index_pattern(&parts, |t| freq(t) >= COMMON_TRIGRAM));
        let dense = rarest(&parts, freq) >= DENSE_TRIGRAM;
        // Without a narrower pattern, the whole one, left to the planner; a narrower one is checked against the whole
        // query on its candidates.
        let (pattern, fenced) = match reduced {
            Some(pattern) => (pattern, !dense),
            None => (full.clone(), false),
        };
        let narrower = pattern != full;
        let mut cond = format!("t.{column} ILIKE ?{} ESCAPE '\\'", bind(pattern));
        if narrower {
            cond.push_str(&format!(
                " AND strpos(lower(t.{column}), lower(?{})) > 0",
                bind(query.to_string())
            ));
        }
        arms.push(arm(cond, fenced));
    }
    if let Some(m) = mac.filter(|m| !m.eq_ignore_ascii_case(query)) {
        let cond = format!("t.mac_address ILIKE ?{} ESCAPE '\\'", bind(like_pattern(m)));
        arms.push(arm(cond, true));
    }
    let mut args: Vec<&dyn ToParam> = vec![&org, &limit];
    args.extend(texts.iter().map(|p| p as &dyn ToParam));
    ctx.tx.rows(&arms.join(" UNION ALL "), &args, |r| r.get::<i64>(0))
}

/// Trigrams of a column with the share of its values holding each.
type Shares = Vec<(String, f64)>;

/// For each column of [`PG_TEXT_COLUMNS`] that has statistics of its trigrams (ANALYZE has run since they were
/// made), those of the trigrams of `parts` that are dense there, with the share of values holding each.
fn common_trigrams(ctx: &Ctx, parts: &[Part<'_>]) -> Result<Vec<(String, Shares)>> {
    let trigrams: Vec<&String> = parts.iter().flat_map(|p| &p.trigrams).collect();
    if trigrams.is_empty() {
        return Ok(Vec::new());
    }
    let rows = ctx.tx.rows(
        "SELECT x.statistics_name, e.trigram, CAST(e.freq AS DOUBLE PRECISION)
         FROM pg_stats_ext_exprs x
         LEFT JOIN LATERAL (
             SELECT e.trigram, e.freq FROM unnest(CAST(CAST(x.most_common_elems AS TEXT) AS TEXT[]), x.most_common_elem_freqs)
                  AS e(trigram, freq)
             WHERE e.freq >= CAST(?2 AS DOUBLE PRECISION)
               AND e.trigram IN (SELECT json_array_elements_text(CAST(CAST(?1 AS TEXT) AS JSON)))) e ON true
         WHERE x.schemaname = current_schema() AND x.tablename = 'addresses' AND NOT x.inherited
           AND x.statistics_name IN ('addresses_hostname_trgms', 'addresses_cname_trgms',
                                     'addresses_mac_address_trgms', 'addresses_description_trgms')",
        &[&json!(trigrams).to_string(), &DENSE_TRIGRAM],
        |r| {
            let trigram = r.get::<Option<String>>(1)?;
            let freq = r.get::<Option<f64>>(2)?;
            Ok((r.get::<String>(0)?, trigram.zip(freq)))
        },
    )?;
    let mut out: Vec<(String, Shares)> = Vec::new();
    for (name, trigram) in rows {
        let column = name
            .trim_start_matches("addresses_")
            .trim_end_matches("_trgms")
            .to_string();
        match out.iter_mut().find(|(c, _)| *c == column) {
            Some((_, common)) => common.extend(trigram),
            None => out.push((column, trigram.into_iter().collect())),
        }
    }
    Ok(out)
}

/// The ids of the records of each kind that `search/find` matched by text.
struct Hits {
    groups: Vec<i64>,
    subnets: Vec<i64>,
    addresses: Vec<i64>,
}

/// The ids of up to `limit` records of each kind whose text contains `query`, case-insensitively (ASCII), in each
/// kind's list order. All of `search/find`'s text matching is here, so that an index can replace it.
fn text_matches(ctx: &Ctx, query: &str, kinds: &[&str], limit: usize) -> Result<Hits> {
    let org = ctx.org();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // A whole MAC address in any accepted spelling also finds its normalised form.
    let mac = net::normalize_mac(query).ok();
    let ids = |sql: &str, args: &[&dyn ToParam]| -> Result<Vec<i64>> { ctx.tx.rows(sql, args, |r| r.get::<i64>(0)) };
    let mut hits = Hits {
        groups: Vec::new(),
        subnets: Vec::new(),
        addresses: Vec::new(),
    };
    if kinds.contains(&"groups") {
        hits.groups = ids(
            "SELECT id FROM groups WHERE org_id = ?1 AND instr(lower(description), lower(?2)) > 0
             ORDER BY description COLLATE NOCASE, id LIMIT ?3",
            &[&org, &query, &limit],
        )?;
    }
    if kinds.contains(&"subnets") {
        // PostgreSQL reads the four columns' trigram indexes (schema.pg.sql migration 20) through ILIKE, which folds
        // case as `lower` does; SQLite scans the org's subnets (`LIKE` would end the pattern at a NUL).
        hits.subnets = match ctx.tx.is_postgres() {
            true => ids(
                "SELECT t.id FROM subnets t
                 WHERE t.org_id = ?1
                   AND (t.name ILIKE ?2 ESCAPE '\\' OR t.description ILIKE ?2 ESCAPE '\\'
                        OR t.domain ILIKE ?2 ESCAPE '\\' OR t.location ILIKE ?2 ESCAPE '\\')
                 ORDER BY t.family, t.net_start, t.prefix LIMIT ?3",
                &[&org, &like_pattern(query), &limit],
            )?,
            false => ids(
                "SELECT t.id FROM subnets t
                 WHERE t.org_id = ?1
                   AND (instr(lower(t.name), lower(?2)) > 0 OR instr(lower(t.description), lower(?2)) > 0
                        OR instr(lower(t.domain), lower(?2)) > 0 OR instr(lower(t.location), lower(?2)) > 0)
                 ORDER BY t.family, t.net_start, t.prefix LIMIT ?3",
                &[&org, &query, &limit],
            )?,
        };
    }
    if kinds.contains(&"addresses") {
        hits.addresses = address_matches(ctx, query, mac.as_deref(), limit)?;
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_take_the_trigrams_pg_trgm_takes_from_a_pattern() {
        let parts = trigram_parts("Host-1234.x");
        let texts: Vec<(&str, bool)> = parts.iter().map(|p| (p.text, p.word)).collect();
        assert_eq!(
            texts,
            [("Host", true), ("-", false), ("1234", true), (".", false), ("x", true)]
        );
        // `%` before the first word and after the last: no padding there.
        assert_eq!(parts[0].trigrams, ["hos", "ost", "st "]);
        assert_eq!(parts[2].trigrams, ["  1", " 12", "123", "234", "34 "]);
        assert_eq!(parts[4].trigrams, ["  x"]);
        assert!(parts[1].trigrams.is_empty());
        assert!(trigram_parts("").is_empty());
    }

    #[test]
    fn the_index_pattern_leaves_out_common_words_and_escapes_the_rest() {
        let parts = trigram_parts("host-1234");
        let common = ["hos", "ost", "st ", "  1"];
        assert_eq!(
            index_pattern(&parts, |t| common.contains(&t)).as_deref(),
            Some("%-1234%")
        );
        assert_eq!(index_pattern(&parts, |_| false).as_deref(), Some("%host-1234%"));
        assert_eq!(index_pattern(&parts, |_| true), None);
        // A word too short for a trigram of its own cannot narrow the index.
        assert_eq!(index_pattern(&trigram_parts("ab"), |_| false), None);
        let parts = trigram_parts("a_b%cd-x1x2");
        assert_eq!(
            index_pattern(&parts, |t| t.contains('x')).as_deref(),
            Some("%\\_b\\%cd-%")
        );
    }
}
