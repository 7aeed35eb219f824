//! Address arithmetic: one u128 key space for both families, strict parsing, subnet maths and free-space walking.
//!
//! An IPv6 address is its natural u128; an IPv4 address a.b.c.d is the key of ::ffff:a.b.c.d, so one index of
//! 16-byte big-endian keys orders both families. A key alone does not say its family: callers carry it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The part of a client's address that stands for one client: an IPv4 address (also when it comes IPv4-mapped), or
/// an IPv6 address's /64, which one client usually holds whole — so rotating addresses inside it gives it no new
/// connection slots nor rate-limit budgets.
pub fn client(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
        v4 => v4,
    }
}

/// The key of an address; IPv4 maps to ::ffff:a.b.c.d.
pub fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of a key; with `v4` the low 32 bits are the IPv4 address.
pub fn from_key(k: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(k as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(k))
    }
}

/// The text of an address, as its `Display` writes it. IPv4 is written digit by digit: records carry several
/// addresses each, and `Display`'s formatter machinery is most of what rendering one costs.
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let mut s = String::with_capacity(18);
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                push_decimal(&mut s, octet);
            }
            s
        }
        IpAddr::V6(a) => a.to_string(),
    }
}

/// The text of a block, `address/prefix`, as its `Display` writes it.
pub fn net_text(n: &IpNet) -> String {
    let mut s = ip_text(n.addr());
    s.push('/');
    push_decimal(&mut s, n.prefix_len());
    s
}

fn push_decimal(s: &mut String, n: u8) {
    if n >= 100 {
        s.push(char::from(b'0' + n / 100));
    }
    if n >= 10 {
        s.push(char::from(b'0' + n / 10 % 10));
    }
    s.push(char::from(b'0' + n % 10));
}

/// The 16-byte big-endian form stored in the database, whose byte order is the key order.
pub fn key_bytes(k: u128) -> [u8; 16] {
    k.to_be_bytes()
}

/// The key stored as `b`; None unless `b` is exactly 16 bytes.
pub fn bytes_key(b: &[u8]) -> Option<u128> {
    <[u8; 16]>::try_from(b).ok().map(u128::from_be_bytes)
}

/// Parses one address. Only surrounding ASCII whitespace is forgiven; std's parser already refuses leading
/// zeros, short IPv4 forms, zone ids and prefixes.
pub fn parse_addr(s: &str) -> Result<IpAddr, String> {
    parse_exact(s.trim_ascii())
}

fn parse_exact(s: &str) -> Result<IpAddr, String> {
    if s.is_empty() {
        return Err("empty IP address".to_string());
    }
    s.parse().map_err(|_| format!("not an IP address: '{s}'"))
}

/// Why a CIDR was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    /// Not a CIDR at all; the message says why.
    Invalid(String),
    /// A valid address and prefix with host bits set; carries the normalised block.
    HostBits(IpNet),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::Invalid(m) => f.write_str(m),
            CidrError::HostBits(n) => write!(f, "host bits are set: did you mean {n}?"),
        }
    }
}

/// Parses "addr/len" strictly: the length is plain decimal without sign or leading zeros.
pub fn parse_cidr(s: &str) -> Result<IpNet, CidrError> {
    let t = s.trim_ascii();
    let Some((addr, len)) = t.split_once('/') else {
        return Err(CidrError::Invalid(format!(
            "not a CIDR (expected address/prefix): '{t}'"
        )));
    };
    let ip = parse_exact(addr).map_err(CidrError::Invalid)?;
    let digits_ok = !len.is_empty()
        && len.len() <= 3
        && len.bytes().all(|b| b.is_ascii_digit())
        && (len == "0" || !len.starts_with('0'));
    let prefix = match len.parse::<u8>() {
        Ok(p) if digits_ok => p,
        _ => return Err(CidrError::Invalid(format!("invalid prefix length in '{t}'"))),
    };
    make_net(ip, prefix)
}

/// Builds a block from separate network and prefix inputs, with the same checks as `parse_cidr`.
pub fn cidr_from_parts(network: &str, prefix: u8) -> Result<IpNet, CidrError> {
    make_net(parse_addr(network).map_err(CidrError::Invalid)?, prefix)
}

fn make_net(ip: IpAddr, prefix: u8) -> Result<IpNet, CidrError> {
    let net = IpNet::new(ip, prefix).map_err(|_| {
        let max = if ip.is_ipv4() { 32 } else { 128 };
        CidrError::Invalid(format!("prefix length /{prefix} is out of range 0-{max}"))
    })?;
    if net.addr() == net.network() {
        Ok(net)
    } else {
        Err(CidrError::HostBits(net.trunc()))
    }
}

fn is_v4(net: &IpNet) -> bool {
    matches!(net, IpNet::V4(_))
}

/// The keys whose low `bits` bits vary; `bits` is 0..=128.
fn host_mask(bits: u32) -> u128 {
    u128::MAX.checked_shr(128 - bits).unwrap_or(0)
}

/// The first key of the `prefix`-long block holding key `k` of an IPv4 (`v4`) or IPv6 address; None when `prefix`
/// is longer than the family's addresses. IPv4 keys keep their ::ffff:0:0/96 bits: the mask covers the address only.
pub fn block_start(k: u128, v4: bool, prefix: u32) -> Option<u128> {
    let bits = if v4 { 32 } else { 128 };
    (prefix <= bits).then(|| k & !host_mask(bits - prefix))
}

/// First and last key of the block.
pub fn range(net: &IpNet) -> (u128, u128) {
    let start = key(net.network());
    let bits = u32::from(net.max_prefix_len() - net.prefix_len());
    (start, start | host_mask(bits))
}

/// First and last usable key. IPv4 /30 and shorter lose network and broadcast; IPv6 /126 and shorter lose the
/// subnet-router anycast (first) address. Never empty.
pub fn usable(net: &IpNet) -> (u128, u128) {
    let (s, e) = range(net);
    match net {
        IpNet::V4(n) if n.prefix_len() <= 30 => (s + 1, e - 1),
        IpNet::V6(n) if n.prefix_len() <= 126 => (s + 1, e),
        _ => (s, e),
    }
}

/// Number of usable addresses; exact, since even ::/0 has only 2^128-1 usable.
pub fn usable_count(net: &IpNet) -> u128 {
    let (s, e) = usable(net);
    e - s + 1
}

/// Whether `inner` lies inside `outer`; different families never contain each other.
pub fn contains(outer: &IpNet, inner: &IpNet) -> bool {
    let (o, i) = (range(outer), range(inner));
    is_v4(outer) == is_v4(inner) && o.0 <= i.0 && i.1 <= o.1
}

/// Whether the blocks share an address; different families never overlap.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    let (x, y) = (range(a), range(b));
    is_v4(a) == is_v4(b) && x.0 <= y.1 && y.0 <= x.1
}

/// The keys of ::ffff:0:0/96, the IPv4-mapped IPv6 addresses: every IPv4 address's key is its mapped address's.
pub const MAPPED: (u128, u128) = (0xffff_0000_0000, 0xffff_ffff_ffff);

/// How a block meets the IPv4-mapped IPv6 addresses ([`MAPPED`]); an IPv4 block never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    Apart,
    /// Shares some of them, or holds them all.
    Overlaps,
    /// Lies inside them.
    Inside,
}

pub fn mapped(net: &IpNet) -> Mapped {
    let (lo, hi) = range(net);
    if is_v4(net) || hi < MAPPED.0 || lo > MAPPED.1 {
        Mapped::Apart
    } else if MAPPED.0 <= lo && hi <= MAPPED.1 {
        Mapped::Inside
    } else {
        Mapped::Overlaps
    }
}

/// The children of `net` at `new_prefix`, ascending; refused when there would be more than `max_parts`.
pub fn split(net: &IpNet, new_prefix: u8, max_parts: u32) -> Result<Vec<IpNet>, String> {
    let (cur, max) = (net.prefix_len(), net.max_prefix_len());
    if new_prefix <= cur {
        return Err(format!("new prefix /{new_prefix} must be longer than /{cur}"));
    }
    if new_prefix > max {
        return Err(format!("prefix /{new_prefix} is beyond /{max}"));
    }
    let diff = u32::from(new_prefix - cur);
    // A shift of 32 or more already exceeds any u32 limit, and would overflow.
    if diff >= 32 || 1u64 << diff > u64::from(max_parts) {
        return Err(format!(
            "splitting /{cur} into /{new_prefix} gives 2^{diff} parts, more than the limit of {max_parts}"
        ));
    }
    net.trunc()
        .subnets(new_prefix)
        .map(Iterator::collect)
        .map_err(|_| format!("prefix /{new_prefix} is beyond /{max}"))
}

/// The prefix that splits `net` into `parts` equal children; `parts` must be a power of two ≥ 2.
pub fn parts_to_prefix(net: &IpNet, parts: u64) -> Result<u8, String> {
    if parts < 2 || !parts.is_power_of_two() {
        return Err(format!("parts must be a power of two of at least 2, not {parts}"));
    }
    let new = u32::from(net.prefix_len()) + parts.trailing_zeros();
    match u8::try_from(new) {
        Ok(p) if p <= net.max_prefix_len() => Ok(p),
        _ => Err(format!("{net} cannot be split into {parts} parts")),
    }
}

/// Why blocks do not tile one CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotTiling {
    /// The smallest block covering them all (the first block for mixed families, 0.0.0.0/0 for none).
    pub expected: IpNet,
    /// Uncovered key ranges inside `expected`, ascending and merged. It may be empty when the blocks overlap,
    /// and is empty for mixed families or no blocks.
    pub missing: Vec<(u128, u128)>,
}

/// The block that `blocks` (one family, any order) tile exactly, without overlap.
pub fn tile(blocks: &[IpNet]) -> Result<IpNet, NotTiling> {
    let Some(first) = blocks.first() else {
        return Err(NotTiling {
            expected: IpNet::default(),
            missing: Vec::new(),
        });
    };
    let fail = |expected, missing| Err(NotTiling { expected, missing });
    let v4 = is_v4(first);
    if blocks.iter().any(|b| is_v4(b) != v4) {
        return fail(*first, Vec::new());
    }
    let mut ranges: Vec<(u128, u128)> = blocks.iter().map(range).collect();
    ranges.sort_unstable();
    let lo = ranges.iter().map(|r| r.0).min().unwrap_or(0);
    let hi = ranges.iter().map(|r| r.1).max().unwrap_or(0);
    // The covering block keeps the bits lo and hi share; IPv4 keys share their 96 mapped bits.
    let common = (lo ^ hi).leading_zeros();
    let offset = 128 - u32::from(first.max_prefix_len());
    let base = lo & !host_mask(128 - common);
    let prefix = u8::try_from(common.saturating_sub(offset)).unwrap_or(0);
    let Ok(expected) = IpNet::new(from_key(base, v4), prefix) else {
        return fail(*first, Vec::new());
    };
    let (start, end) = range(&expected);
    let mut missing = Vec::new();
    let mut overlap = false;
    // `next` is the lowest key not yet covered; None once coverage reaches u128::MAX.
    let mut next = Some(start);
    for &(s, e) in &ranges {
        match next {
            Some(n) if s > n => missing.push((n, s - 1)),
            Some(n) if s == n => {}
            _ => overlap = true,
        }
        next = match next {
            Some(n) if e >= n => e.checked_add(1),
            other => other,
        };
    }
    if let Some(n) = next.filter(|&n| n <= end) {
        missing.push((n, end));
    }
    if overlap || !missing.is_empty() {
        return fail(expected, missing);
    }
    Ok(expected)
}

/// The maximal aligned blocks that tile the key range `lo..=hi` (`lo <= hi`), ascending, each as its first key and
/// its host bits (a block of `2^bits` keys starting at a multiple of `2^bits`): at most two per bit.
pub fn aligned_blocks(lo: u128, hi: u128) -> Vec<(u128, u32)> {
    let mut out = Vec::new();
    let mut k = lo;
    loop {
        let align = if k == 0 { 128 } else { k.trailing_zeros() };
        // The largest power of two no greater than the keys left, hi - k + 1 (2^128 when all are left).
        let fit = match (hi - k).checked_add(1) {
            Some(left) => 127 - left.leading_zeros(),
            None => 128,
        };
        let bits = align.min(fit);
        out.push((k, bits));
        let last = k | host_mask(bits);
        match last.checked_add(1) {
            Some(next) if last < hi => k = next,
            _ => return out,
        }
    }
}

/// What is left of an aligned block of `bits` host bits when the aligned block at `inner` of `inner_bits` inside it
/// is taken: the other half of each enclosing block between them, one block per bit, smallest first.
pub fn remainder(bits: u32, inner: u128, inner_bits: u32) -> Vec<(u128, u32)> {
    (inner_bits..bits)
        .map(|b| ((inner ^ (1u128 << b)) & !host_mask(b), b))
        .collect()
}

/// The block of `bits + 1` host bits holding the aligned block at `start` of `bits` (`bits < 128`), and its other
/// half (the buddy).
pub fn parent_and_buddy(start: u128, bits: u32) -> (u128, u128) {
    (start & !host_mask(bits + 1), start ^ (1u128 << bits))
}

/// Renders a key range as "a-b", or "a" for a single key.
pub fn format_range(r: (u128, u128), v4: bool) -> String {
    if r.0 == r.1 {
        from_key(r.0, v4).to_string()
    } else {
        format!("{}-{}", from_key(r.0, v4), from_key(r.1, v4))
    }
}

/// The free runs of `usable` above `after` (from its start when None), ascending: the gaps between `taken` intervals (inclusive,
/// sorted by start, possibly overlapping or outside `usable`). Work is linear in the intervals consumed.
fn free_runs<I>(usable: (u128, u128), after: Option<u128>, taken: I) -> impl Iterator<Item = (u128, u128)>
where
    I: IntoIterator<Item = (u128, u128)>,
{
    let start = match after {
        None => Some(usable.0),
        Some(a) => a.checked_add(1).map(|k| k.max(usable.0)),
    };
    // `cursor` is the lowest key still to examine; None once the usable range is exhausted.
    let mut cursor = start.filter(|&k| k <= usable.1);
    let mut taken = taken.into_iter().peekable();
    std::iter::from_fn(move || {
        let mut k = cursor?;
        while let Some(&(s, e)) = taken.peek() {
            if s > k {
                break;
            }
            taken.next();
            if e >= k {
                match e.checked_add(1).filter(|&n| n <= usable.1) {
                    Some(n) => k = n,
                    None => {
                        cursor = None;
                        return None;
                    }
                }
            }
        }
        // The loop stops at an interval starting above k, so `s - 1` cannot underflow.
        let end = taken.peek().map_or(usable.1, |&(s, _)| usable.1.min(s - 1));
        cursor = end.checked_add(1).filter(|&n| n <= usable.1);
        Some((k, end))
    })
}

/// The lowest usable key above `after` (from the start when None) that no `taken` interval covers.
pub fn next_free(
    usable: (u128, u128),
    after: Option<u128>,
    taken: impl IntoIterator<Item = (u128, u128)>,
) -> Option<u128> {
    free_runs(usable, after, taken).next().map(|r| r.0)
}

/// The first key of the lowest run of `n` consecutive free usable keys (`n` ≥ 1), if any.
pub fn free_run(usable: (u128, u128), n: usize, taken: impl IntoIterator<Item = (u128, u128)>) -> Option<u128> {
    let want = (n as u128).saturating_sub(1);
    free_runs(usable, None, taken).find(|(a, b)| b - a >= want).map(|r| r.0)
}

/// Up to `limit` free keys above `after`, ascending.
pub fn free_list(
    usable: (u128, u128),
    after: Option<u128>,
    limit: usize,
    taken: impl IntoIterator<Item = (u128, u128)>,
) -> Vec<u128> {
    free_runs(usable, after, taken)
        .flat_map(|(a, b)| a..=b)
        .take(limit)
        .collect()
}

/// The number of free usable keys; it saturates at u128::MAX, which only a usable range of all 2^128 keys
/// with nothing taken could reach.
pub fn free_count(usable: (u128, u128), taken: impl IntoIterator<Item = (u128, u128)>) -> u128 {
    free_runs(usable, None, taken).fold(0, |n, (a, b)| n.saturating_add((b - a).saturating_add(1)))
}

/// Normalises a MAC address given as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or bare hex to
/// lowercase colon form.
pub fn normalize_mac(s: &str) -> Result<String, String> {
    let t = s.trim_ascii();
    let (sep, groups) = [(':', 6), ('-', 6), ('.', 3)]
        .into_iter()
        .find(|&(c, _)| t.contains(c))
        .map_or((None, 1), |(c, n)| (Some(c), n));
    let parts: Vec<&str> = match sep {
        Some(c) => t.split(c).collect(),
        None => vec![t],
    };
    let ok = parts.len() == groups
        && parts
            .iter()
            .all(|p| p.len() == 12 / groups && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(format!("not a MAC address: '{t}'"));
    }
    // Twelve ASCII hex digits remain, so the byte slices below fall on character boundaries.
    let hex = parts.concat().to_ascii_lowercase();
    let pairs: Vec<&str> = (0..6).map(|i| &hex[2 * i..2 * i + 2]).collect();
    Ok(pairs.join(":"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_client_is_its_ipv4_address_or_its_ipv6_64() {
        let c = |s: &str| client(s.parse().unwrap()).to_string();
        assert_eq!(c("192.0.2.7"), "192.0.2.7");
        assert_eq!(c("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(c("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(c("2001:db8:1:2:ffff::1"), c("2001:db8:1:2::9"));
        assert_ne!(c("2001:db8:1:2::1"), c("2001:db8:1:3::1"));
    }

    fn net(s: &str) -> IpNet {
        parse_cidr(s).unwrap()
    }

    #[test]
    fn aligned_blocks_are_the_largest_that_tile_a_range() {
        assert_eq!(aligned_blocks(0, u128::MAX), vec![(0, 128)]);
        assert_eq!(aligned_blocks(5, 5), vec![(5, 0)]);
        // 1..=14: 1, 2-3, 4-7, 8-11, 12-13, 14.
        assert_eq!(
            aligned_blocks(1, 14),
            vec![(1, 0), (2, 1), (4, 2), (8, 2), (12, 1), (14, 0)]
        );
        assert_eq!(aligned_blocks(u128::MAX, u128::MAX), vec![(u128::MAX, 0)]);
        assert_eq!(aligned_blocks(1u128 << 127, u128::MAX), vec![(1u128 << 127, 127)]);
    }

    #[test]
    fn the_remainder_of_a_taken_block_is_one_half_per_bit() {
        // 0..=15 minus 4..=5: 6-7, 0-3, 8-15.
        assert_eq!(remainder(4, 4, 1), vec![(6, 1), (0, 2), (8, 3)]);
        assert_eq!(remainder(3, 0, 3), vec![]);
        assert_eq!(parent_and_buddy(6, 1), (4, 4));
        assert_eq!(parent_and_buddy(8, 3), (0, 0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The blocks tile the range exactly, each aligned, and none could double inside the range.
        #[test]
        fn aligned_blocks_tile_their_range(lo in 0u128..1 << 20, len in 0u128..1 << 20) {
            let hi = lo + len;
            let blocks = aligned_blocks(lo, hi);
            let mut next = lo;
            for &(start, bits) in &blocks {
                prop_assert_eq!(start, next);
                prop_assert_eq!(start & host_mask(bits), 0);
                let (parent, _) = parent_and_buddy(start, bits);
                prop_assert!(parent < lo || parent + (2u128 << bits) - 1 > hi);
                next = start + (1u128 << bits);
            }
            prop_assert_eq!(next, hi + 1);
            prop_assert!(blocks.len() <= 2 * 21);
        }
    }

    fn ip(s: &str) -> IpAddr {
        parse_addr(s).unwrap()
    }

    fn k(s: &str) -> u128 {
        key(ip(s))
    }

    #[test]
    fn keys_map_ipv4_into_the_ipv6_space() {
        assert_eq!(k("1.2.3.4"), 0xffff_0102_0304);
        assert_eq!(k("::ffff:1.2.3.4"), 0xffff_0102_0304);
        assert_eq!(k("255.255.255.255"), 0xffff_ffff_ffff);
        assert_eq!(k("::"), 0);
        assert_eq!(k("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), u128::MAX);
        assert_eq!(from_key(0xffff_0102_0304, true), ip("1.2.3.4"));
        assert_eq!(from_key(0xffff_0102_0304, false), ip("::ffff:1.2.3.4"));
        assert_eq!(
            from_key(u128::MAX, false),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        for s in ["0.0.0.0", "10.1.2.3", "2001:db8::1", "::1"] {
            assert_eq!(from_key(k(s), s.contains('.')), ip(s));
        }
    }

    #[test]
    fn key_bytes_round_trip_and_sort_like_keys() {
        assert_eq!(bytes_key(&key_bytes(u128::MAX)), Some(u128::MAX));
        assert_eq!(bytes_key(&key_bytes(0)), Some(0));
        assert_eq!(key_bytes(k("1.2.3.4"))[10..], [0xff, 0xff, 1, 2, 3, 4]);
        assert!(key_bytes(k("9.0.0.0")) < key_bytes(k("10.0.0.0")));
        assert!(key_bytes(k("255.255.255.255")) < key_bytes(k("2001:db8::")));
        assert_eq!(bytes_key(&[0; 15]), None);
        assert_eq!(bytes_key(&[0; 17]), None);
        assert_eq!(bytes_key(&[]), None);
    }

    #[test]
    fn parse_addr_is_strict() {
        assert_eq!(parse_addr(" 10.0.0.1\t\n").unwrap(), ip("10.0.0.1"));
        assert_eq!(parse_addr("2001:DB8::1").unwrap(), ip("2001:db8::1"));
        assert!(parse_addr("::ffff:1.2.3.4").unwrap().is_ipv6());
        for bad in [
            "",
            "   ",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "fe80::1%eth0",
            "10.0.0.0/24",
            "::/0",
            "1.2.3.4 x",
            "1 .2.3.4",
            "+1.2.3.4",
            "0x1.2.3.4",
            "12345::1",
            ":::",
            "1.2.3.4\u{a0}",
        ] {
            assert!(parse_addr(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(parse_addr("1.2.3").unwrap_err(), "not an IP address: '1.2.3'");
        assert_eq!(parse_addr(" ").unwrap_err(), "empty IP address");
    }

    #[test]
    fn parse_cidr_accepts_valid_blocks() {
        assert_eq!(net(" 10.0.0.0/24 ").to_string(), "10.0.0.0/24");
        assert_eq!(net("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(net("255.255.255.255/32").to_string(), "255.255.255.255/32");
        assert_eq!(net("::/0").to_string(), "::/0");
        assert_eq!(net("2001:DB8::/32").to_string(), "2001:db8::/32");
        assert_eq!(net("::1/128").to_string(), "::1/128");
    }

    #[test]
    fn parse_cidr_refuses_malformed_input() {
        for bad in [
            "",
            "10.0.0.0",
            "10.0.0.0/",
            "/24",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/024",
            "10.0.0.0/00",
            "10.0.0.0/+24",
            "10.0.0.0/-1",
            "10.0.0.0/2 4",
            "10.0.0.0 /24",
            "10.0.0.0/ 24",
            "10.0.0/24",
            "010.0.0.0/24",
            "10.0.0.0/24/1",
            "fe80::%eth0/64",
            "10.0.0.0/1000",
            "10.0.0.0/256",
        ] {
            assert!(
                matches!(parse_cidr(bad), Err(CidrError::Invalid(_))),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn parse_cidr_reports_host_bits_with_the_normalised_block() {
        assert_eq!(parse_cidr("10.0.0.5/24"), Err(CidrError::HostBits(net("10.0.0.0/24"))));
        assert_eq!(
            parse_cidr("2001:db8::1/64"),
            Err(CidrError::HostBits(net("2001:db8::/64")))
        );
        assert_eq!(parse_cidr("1.2.3.4/0"), Err(CidrError::HostBits(net("0.0.0.0/0"))));
        assert_eq!(
            parse_cidr("10.0.0.5/24").unwrap_err().to_string(),
            "host bits are set: did you mean 10.0.0.0/24?"
        );
    }

    #[test]
    fn cidr_from_parts_checks_like_parse_cidr() {
        assert_eq!(cidr_from_parts("10.0.0.0", 8), Ok(net("10.0.0.0/8")));
        assert_eq!(cidr_from_parts(" ::", 0), Ok(net("::/0")));
        assert_eq!(
            cidr_from_parts("10.0.0.1", 8),
            Err(CidrError::HostBits(net("10.0.0.0/8")))
        );
        assert!(matches!(cidr_from_parts("10.0.0.0", 33), Err(CidrError::Invalid(_))));
        assert!(matches!(cidr_from_parts("::", 129), Err(CidrError::Invalid(_))));
        assert!(matches!(cidr_from_parts("10.0.0.0/8", 8), Err(CidrError::Invalid(_))));
    }

    #[test]
    fn ranges_and_usable_addresses() {
        let v4 = |s: &str| (k(s.split('-').next().unwrap()), k(s.split('-').nth(1).unwrap()));
        assert_eq!(range(&net("10.0.0.0/24")), v4("10.0.0.0-10.0.0.255"));
        assert_eq!(usable(&net("10.0.0.0/24")), v4("10.0.0.1-10.0.0.254"));
        assert_eq!(usable(&net("10.0.0.0/30")), v4("10.0.0.1-10.0.0.2"));
        assert_eq!(usable(&net("10.0.0.0/31")), v4("10.0.0.0-10.0.0.1"));
        assert_eq!(usable(&net("10.0.0.7/32")), v4("10.0.0.7-10.0.0.7"));
        assert_eq!(
            usable(&net("255.255.255.255/32")),
            v4("255.255.255.255-255.255.255.255")
        );
        assert_eq!(usable(&net("0.0.0.0/0")), v4("0.0.0.1-255.255.255.254"));
        assert_eq!(range(&net("::/0")), (0, u128::MAX));
        assert_eq!(usable(&net("::/0")), (1, u128::MAX));
        assert_eq!(usable(&net("2001:db8::/126")), (k("2001:db8::1"), k("2001:db8::3")));
        assert_eq!(usable(&net("2001:db8::/127")), (k("2001:db8::"), k("2001:db8::1")));
        assert_eq!(usable(&net("2001:db8::/128")), (k("2001:db8::"), k("2001:db8::")));
        let top = net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120");
        assert_eq!(range(&top), (u128::MAX - 255, u128::MAX));
    }

    #[test]
    fn usable_counts_are_exact() {
        assert_eq!(usable_count(&net("10.0.0.0/24")), 254);
        assert_eq!(usable_count(&net("10.0.0.0/30")), 2);
        assert_eq!(usable_count(&net("10.0.0.0/31")), 2);
        assert_eq!(usable_count(&net("10.0.0.0/32")), 1);
        assert_eq!(usable_count(&net("0.0.0.0/0")), (1 << 32) - 2);
        assert_eq!(usable_count(&net("2001:db8::/64")), (1 << 64) - 1);
        assert_eq!(usable_count(&net("2001:db8::/126")), 3);
        assert_eq!(usable_count(&net("2001:db8::/127")), 2);
        assert_eq!(usable_count(&net("2001:db8::/128")), 1);
        assert_eq!(usable_count(&net("::/0")), u128::MAX);
    }

    #[test]
    fn containment_and_overlap_respect_families() {
        let (a, b) = (net("10.0.0.0/8"), net("10.1.0.0/16"));
        assert!(contains(&a, &b) && !contains(&b, &a) && contains(&a, &a));
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&net("10.0.0.0/25"), &net("10.0.0.128/25")));
        assert!(contains(&net("::/0"), &net("2001:db8::/32")));
        // An IPv4 block's keys fall inside ::ffff:0:0/96, yet the families stay apart.
        assert!(!contains(&net("::/0"), &a));
        assert!(!overlaps(&net("::ffff:0:0/96"), &a));
        assert!(!contains(&net("0.0.0.0/0"), &net("::/128")));
    }

    #[test]
    fn blocks_meet_the_ipv4_mapped_addresses_inside_overlapping_or_apart() {
        for (block, expected) in [
            ("::ffff:0:0/96", Mapped::Inside),
            ("::ffff:10.0.0.0/104", Mapped::Inside),
            ("::ffff:10.0.0.1/128", Mapped::Inside),
            ("::ffff:255.255.255.255/128", Mapped::Inside),
            // Holding them all, or sharing some, is overlapping: a split or an allocation would reach them.
            ("::fffe:0:0/95", Mapped::Overlaps),
            ("::/0", Mapped::Overlaps),
            ("::/64", Mapped::Overlaps),
            ("::/80", Mapped::Overlaps),
            ("::/1", Mapped::Overlaps),
            // Right below and right above.
            ("::fffe:0:0/96", Mapped::Apart),
            ("::fffe:ffff:ffff/128", Mapped::Apart),
            ("::1:0:0:0/96", Mapped::Apart),
            ("::1:0:0:0/128", Mapped::Apart),
            ("::/96", Mapped::Apart),
            ("8000::/1", Mapped::Apart),
            ("2001:db8::/32", Mapped::Apart),
            // IPv4 blocks never do, although their keys lie there.
            ("0.0.0.0/0", Mapped::Apart),
            ("10.0.0.0/8", Mapped::Apart),
        ] {
            assert_eq!(mapped(&net(block)), expected, "{block}");
        }
    }

    #[test]
    fn split_produces_ascending_children() {
        let parts = split(&net("10.0.0.0/24"), 26, 256).unwrap();
        let shown: Vec<String> = parts.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/26", "10.0.0.192/26"]);
        assert_eq!(split(&net("10.0.0.0/31"), 32, 2).unwrap().len(), 2);
        assert_eq!(split(&net("::/0"), 8, 256).unwrap().len(), 256);
        let top = split(&net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"), 128, 2).unwrap();
        assert_eq!(range(&top[1]), (u128::MAX, u128::MAX));
    }

    #[test]
    fn split_refuses_bad_prefixes_and_too_many_parts() {
        let n = net("10.0.0.0/24");
        assert!(split(&n, 24, 256).is_err());
        assert!(split(&n, 20, 256).is_err());
        assert!(split(&n, 33, 256).is_err());
        assert!(split(&n, 32, 255).is_err());
        assert!(split(&n, 32, 256).is_ok());
        assert!(split(&net("::/0"), 128, u32::MAX).is_err());
        assert!(split(&net("::/0"), 32, u32::MAX).is_err());
    }

    #[test]
    fn parts_map_to_prefixes() {
        let n = net("10.0.0.0/24");
        assert_eq!(parts_to_prefix(&n, 2), Ok(25));
        assert_eq!(parts_to_prefix(&n, 256), Ok(32));
        assert!(parts_to_prefix(&n, 512).is_err());
        for bad in [0, 1, 3, 6, 255] {
            assert!(parts_to_prefix(&n, bad).is_err());
        }
        assert_eq!(parts_to_prefix(&net("::/0"), 1 << 63), Ok(63));
        assert!(parts_to_prefix(&net("::/100"), 1 << 63).is_err());
    }

    #[test]
    fn tile_joins_exact_tilings_in_any_order() {
        let blocks = [net("10.0.1.0/24"), net("10.0.0.0/25"), net("10.0.0.128/25")];
        assert_eq!(tile(&blocks), Ok(net("10.0.0.0/23")));
        assert_eq!(tile(&[net("10.0.0.0/24")]), Ok(net("10.0.0.0/24")));
        assert_eq!(tile(&[net("0.0.0.0/1"), net("128.0.0.0/1")]), Ok(net("0.0.0.0/0")));
        assert_eq!(tile(&[net("8000::/1"), net("::/1")]), Ok(net("::/0")));
        let top = [
            net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"),
            net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128"),
        ];
        assert_eq!(tile(&top), Ok(net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127")));
    }

    #[test]
    fn tile_reports_the_expected_block_and_missing_ranges() {
        let e = tile(&[net("10.0.0.0/24"), net("10.0.3.0/24")]).unwrap_err();
        assert_eq!(e.expected, net("10.0.0.0/22"));
        assert_eq!(e.missing, [(k("10.0.1.0"), k("10.0.2.255"))]);
        assert_eq!(format_range(e.missing[0], true), "10.0.1.0-10.0.2.255");

        // Two adjacent blocks that are not an aligned pair need a larger block.
        let e = tile(&[net("10.0.1.0/24"), net("10.0.2.0/24")]).unwrap_err();
        assert_eq!(e.expected, net("10.0.0.0/22"));
        assert_eq!(
            e.missing,
            [(k("10.0.0.0"), k("10.0.0.255")), (k("10.0.3.0"), k("10.0.3.255"))]
        );

        let e = tile(&[net("10.0.0.0/24"), net("10.0.0.0/25"), net("10.0.1.0/24")]).unwrap_err();
        assert_eq!((e.expected, e.missing), (net("10.0.0.0/23"), vec![]));
        let e = tile(&[net("10.0.0.0/24"), net("10.0.0.0/24")]).unwrap_err();
        assert_eq!((e.expected, e.missing), (net("10.0.0.0/24"), vec![]));
        let e = tile(&[net("::/0"), net("::/1")]).unwrap_err();
        assert_eq!((e.expected, e.missing), (net("::/0"), vec![]));

        let e = tile(&[net("10.0.0.0/24"), net("::/120")]).unwrap_err();
        assert_eq!((e.expected, e.missing), (net("10.0.0.0/24"), vec![]));
        assert!(tile(&[]).is_err());
    }

    #[test]
    fn format_range_renders_one_or_two_addresses() {
        assert_eq!(format_range((k("10.0.0.1"), k("10.0.0.1")), true), "10.0.0.1");
        assert_eq!(
            format_range((0, u128::MAX), false),
            "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
    }

    #[test]
    fn next_free_walks_gaps() {
        let u = usable(&net("10.0.0.0/24"));
        let t = |a: &str, b: &str| (k(a), k(b));
        assert_eq!(next_free(u, None, []), Some(k("10.0.0.1")));
        // A reservation of the network address is outside the usable range and changes nothing.
        let taken = [
            t("10.0.0.0", "10.0.0.0"),
            t("10.0.0.1", "10.0.0.5"),
            t("10.0.0.3", "10.0.0.4"),
            t("10.0.0.7", "10.0.0.7"),
        ];
        assert_eq!(next_free(u, None, taken), Some(k("10.0.0.6")));
        assert_eq!(next_free(u, Some(k("10.0.0.6")), taken), Some(k("10.0.0.8")));
        assert_eq!(next_free(u, Some(k("9.0.0.0")), taken), Some(k("10.0.0.6")));
        assert_eq!(next_free(u, Some(k("10.0.0.254")), []), None);
        assert_eq!(next_free(u, None, [t("9.0.0.0", "11.0.0.0")]), None);
        assert_eq!(next_free(u, None, [t("10.0.0.1", "10.0.0.254")]), None);
        assert_eq!(next_free(u, Some(k("10.0.0.5")), taken), Some(k("10.0.0.6")));
    }

    #[test]
    fn free_walking_handles_the_top_of_the_key_space() {
        let all = usable(&net("::/0"));
        assert_eq!(free_count(all, []), u128::MAX);
        assert_eq!(free_count(all, [(0, 10), (u128::MAX - 4, u128::MAX)]), u128::MAX - 15);
        assert_eq!(free_count(all, [(0, u128::MAX)]), 0);
        assert_eq!(free_count(all, [(5, u128::MAX), (7, 9)]), 4);
        assert_eq!(next_free(all, None, [(0, u128::MAX)]), None);
        assert_eq!(next_free(all, Some(u128::MAX), []), None);
        assert_eq!(next_free(all, Some(u128::MAX - 1), []), Some(u128::MAX));
        assert_eq!(next_free(all, None, [(0, u128::MAX - 1)]), Some(u128::MAX));
        assert_eq!(
            free_list(all, Some(u128::MAX - 3), 10, [(u128::MAX - 1, u128::MAX - 1)]),
            [u128::MAX - 2, u128::MAX]
        );
        assert_eq!(free_list(all, None, 3, []), [1, 2, 3]);
        assert_eq!(free_list(all, None, 0, []), Vec::<u128>::new());
        // Saturation only matters for a caller passing all 2^128 keys as usable.
        assert_eq!(free_count((0, u128::MAX), []), u128::MAX);
        assert_eq!(free_count((0, u128::MAX), [(0, 0)]), u128::MAX);
        assert_eq!(free_count((0, u128::MAX), [(0, 1)]), u128::MAX - 1);
    }

    #[test]
    fn free_walking_is_fast_on_huge_blocks() {
        let u = usable(&net("2001:db8::/48"));
        let taken: Vec<(u128, u128)> = (0..1000).map(|i| (u.0 + 2 * i, u.0 + 2 * i)).collect();
        assert_eq!(next_free(u, None, taken.clone()), Some(u.0 + 1));
        assert_eq!(free_count(u, taken.clone()), usable_count(&net("2001:db8::/48")) - 1000);
        assert_eq!(
            free_list(u, Some(u.0 + 1998), 3, taken),
            [u.0 + 1999, u.0 + 2000, u.0 + 2001]
        );
    }

    #[test]
    fn free_list_respects_after_and_limit() {
        let u = usable(&net("10.0.0.0/29"));
        let taken = [(k("10.0.0.2"), k("10.0.0.3"))];
        assert_eq!(
            free_list(u, None, 10, taken),
            [k("10.0.0.1"), k("10.0.0.4"), k("10.0.0.5"), k("10.0.0.6")]
        );
        assert_eq!(free_list(u, Some(k("10.0.0.4")), 1, taken), [k("10.0.0.5")]);
        assert_eq!(free_count(u, taken), 4);
        assert_eq!(free_count(u, [(0, u128::MAX)]), 0);
    }

    #[test]
    fn macs_normalise_to_lowercase_colons() {
        for ok in [
            "AA:bb:CC:dd:EE:ff",
            "aa-bb-cc-dd-ee-ff",
            "aabb.ccdd.eeff",
            "AABBCCDDEEFF",
            " aa:bb:cc:dd:ee:ff\n",
        ] {
            assert_eq!(normalize_mac(ok).unwrap(), "aa:bb:cc:dd:ee:ff", "{ok:?}");
        }
        for bad in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb-cc:dd:ee:ff",
            "a:b:c:d:e:f",
            "aabb.ccdd.eef",
            "aabbccddeef",
            "aabbccddeeff0",
            "gg:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:+f",
            "aa bb cc dd ee ff",
            "aabb:ccdd:eeff",
            "aa.bb.cc.dd.ee.ff",
            "ａａ:bb:cc:dd:ee:ff",
        ] {
            assert!(normalize_mac(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(normalize_mac("xyz").unwrap_err(), "not a MAC address: 'xyz'");
    }

    fn arb_net() -> impl Strategy<Value = IpNet> {
        let v4 = (any::<u32>(), 0u8..=32).prop_map(|(a, p)| IpNet::new(IpAddr::V4(a.into()), p).unwrap().trunc());
        let addr6 = prop_oneof![any::<u128>(), Just(0u128), Just(u128::MAX)];
        let v6 = (addr6, 0u8..=128).prop_map(|(a, p)| IpNet::new(IpAddr::V6(a.into()), p).unwrap().trunc());
        prop_oneof![v4, v6]
    }

    /// A block of at most 256 addresses, with taken intervals sorted by start that overlap each other and
    /// stray outside the block.
    fn arb_small() -> impl Strategy<Value = (IpNet, Vec<(u128, u128)>)> {
        let v4 = (any::<u32>(), 24u8..=32).prop_map(|(a, p)| IpNet::new(IpAddr::V4(a.into()), p).unwrap().trunc());
        let addr6 = prop_oneof![any::<u128>(), Just(0u128), Just(u128::MAX)];
        let v6 = (addr6, 120u8..=128).prop_map(|(a, p)| IpNet::new(IpAddr::V6(a.into()), p).unwrap().trunc());
        let spans = prop::collection::vec((0u128..270, 0u128..40), 0..12);
        (prop_oneof![v4, v6], spans).prop_map(|(n, spans)| {
            let base = range(&n).0.saturating_sub(4);
            let mut taken: Vec<(u128, u128)> = spans
                .into_iter()
                .map(|(off, len)| {
                    let s = base.saturating_add(off);
                    (s, s.saturating_add(len))
                })
                .collect();
            taken.sort_unstable();
            (n, taken)
        })
    }

    fn brute_free(u: (u128, u128), taken: &[(u128, u128)]) -> Vec<u128> {
        (u.0..=u.1)
            .filter(|&x| !taken.iter().any(|&(s, e)| s <= x && x <= e))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn texts_are_display(n in arb_net(), a in any::<u32>(), b in any::<u128>()) {
            prop_assert_eq!(net_text(&n), n.to_string());
            prop_assert_eq!(ip_text(IpAddr::V4(Ipv4Addr::from(a))), Ipv4Addr::from(a).to_string());
            prop_assert_eq!(ip_text(IpAddr::V6(Ipv6Addr::from(b))), Ipv6Addr::from(b).to_string());
        }

        #[test]
        fn split_then_tile_is_identity(n in arb_net(), diff in 1u8..=6, reverse in any::<bool>()) {
            prop_assume!(n.prefix_len() + diff <= n.max_prefix_len());
            let mut parts = split(&n, n.prefix_len() + diff, 256).unwrap();
            prop_assert_eq!(parts.len(), 1usize << diff);
            prop_assert!(parts.windows(2).all(|w| range(&w[0]).1 + 1 == range(&w[1]).0));
            if reverse {
                parts.reverse();
            }
            prop_assert_eq!(tile(&parts), Ok(n));
        }

        #[test]
        fn tile_without_one_part_reports_it_missing(
            n in arb_net(),
            diff in 1u8..=4,
            drop in any::<prop::sample::Index>()
        ) {
            prop_assume!(n.prefix_len() + diff <= n.max_prefix_len());
            let mut parts = split(&n, n.prefix_len() + diff, 256).unwrap();
            let gone = parts.remove(drop.index(parts.len()));
            // With four or more parts both halves keep a member, so the expected block stays the whole.
            match tile(&parts) {
                Ok(t) => prop_assert_eq!(vec![t], parts),
                Err(e) => prop_assert_eq!((e.expected, e.missing), (n, vec![range(&gone)])),
            }
        }

        #[test]
        fn block_start_is_the_start_of_the_enclosing_block(n in arb_net(), offset in any::<u128>()) {
            let (lo, hi) = range(&n);
            let k = lo + offset % (hi - lo).saturating_add(1).max(1);
            let v4 = matches!(n, IpNet::V4(_));
            prop_assert_eq!(block_start(k, v4, u32::from(n.prefix_len())), Some(lo));
            prop_assert_eq!(block_start(k, v4, u32::from(n.max_prefix_len()) + 1), None);
        }

        #[test]
        fn cidr_text_round_trips(n in arb_net()) {
            prop_assert_eq!(parse_cidr(&n.to_string()), Ok(n));
            prop_assert_eq!(cidr_from_parts(&n.network().to_string(), n.prefix_len()), Ok(n));
        }

        #[test]
        fn next_free_is_the_lowest_free_key((n, taken) in arb_small(), after in prop::option::of(0u128..280)) {
            let u = usable(&n);
            let after = after.map(|a| range(&n).0.saturating_sub(8).saturating_add(a));
            let free = brute_free(u, &taken);
            let expect = free.iter().copied().find(|&x| after.is_none_or(|a| x > a));
            let got = next_free(u, after, taken.iter().copied());
            prop_assert_eq!(got, expect);
            if let Some(x) = got {
                prop_assert!(u.0 <= x && x <= u.1);
                prop_assert!(!taken.iter().any(|&(s, e)| s <= x && x <= e));
            }
        }

        #[test]
        fn free_list_and_count_match_brute_force((n, taken) in arb_small(), limit in 0usize..300) {
            let u = usable(&n);
            let free = brute_free(u, &taken);
            prop_assert_eq!(free_count(u, taken.iter().copied()), free.len() as u128);
            let expect: Vec<u128> = free.iter().copied().take(limit).collect();
            prop_assert_eq!(free_list(u, None, limit, taken.iter().copied()), expect);
            if let Some(&mid) = free.get(free.len() / 2) {
                let rest: Vec<u128> = free.iter().copied().filter(|&x| x > mid).collect();
                prop_assert_eq!(free_list(u, Some(mid), usize::MAX, taken.iter().copied()), rest);
            }
        }
    }
}
