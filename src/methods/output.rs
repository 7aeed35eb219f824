//! `output/get`: the configuration a DNS or DHCP server needs, generated from the address records and DHCP ranges
//! of a subnet, a group's subtree or the org: dnsmasq `dhcp-host`/`host-record` lines, ISC Kea DHCPv4/v6
//! reservations, a BIND zone fragment of A/AAAA records, the reverse zone of PTR records, and the RFC 2317
//! delegation of an IPv4 block smaller than a /24.
//!
//! Hostnames and MACs come from users: a name that is no DNS hostname (letters, digits and hyphens in dot-separated
//! labels) or a MAC that is not six hex pairs is never written into the output; the record is left out and named
//! in `skipped`. The comments the generator writes hold no text of a user's, so nothing a user typed can add a line.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Value};

use crate::db::params;
use crate::error::{Error, Result};
use crate::handler::{Ctx, Params};
use crate::methods::export::Scope;
use crate::methods::subnets::Subnet;
use crate::model::{Generated, Skipped};
use crate::net;
use crate::params::Data;

/// The most address records one configuration is generated from: past it, `too_large` (generate per group or
/// subnet).
pub const MAX_OUTPUT_RECORDS: usize = 100_000;

/// The formats, by the name `format` takes.
const FORMATS: [&str; 6] = ["dnsmasq", "kea4", "kea6", "bind", "bind-reverse", "bind-delegation"];

pub struct GetParams {
    scope: Scope,
    /// Checked by the handler once the scope is known to be the caller's: another org's subnet is `not_found`
    /// whatever the rest of the call.
    format: String,
    zone: Option<String>,
    ttl: i64,
    ns: Vec<String>,
}

impl Params for GetParams {
    fn decode(d: &mut Data) -> Result<Self> {
        let scope = Scope::decode(d)?;
        let format = d.str("format")?.unwrap_or_default();
        let zone = d
            .str("zone")?
            .map(|z| {
                dns_name(&z)
                    .map(|n| n.to_ascii_lowercase())
                    .ok_or_else(|| Error::param("zone", "must be a DNS name"))
            })
            .transpose()?;
        let ttl = d.int("ttl")?.unwrap_or(3600);
        if !(0..=2_147_483_647).contains(&ttl) {
            return Err(Error::param("ttl", "must be between 0 and 2147483647 seconds"));
        }
        let ns = match d.str("ns")? {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|n| {
                    dns_name(n.trim())
                        .filter(|n| n.contains('.'))
                        .map(str::to_string)
                        .ok_or_else(|| Error::param("ns", "must be fully qualified DNS names, separated by commas"))
                })
                .collect::<Result<Vec<_>>>()?,
        };
        Ok(GetParams {
            scope,
            format,
            zone,
            ttl,
            ns,
        })
    }
}

/// The configuration in `format` from the records of the scope. Records of status `inactive` are left out
/// silently; records whose hostname or MAC cannot be written are left out and listed in `skipped`.
pub fn get(ctx: &Ctx, p: GetParams) -> Result<Generated> {
    p.scope.check(ctx)?;
    let format = FORMATS
        .into_iter()
        .find(|f| *f == p.format)
        .ok_or_else(|| Error::param("format", format!("must be one of {}", FORMATS.join(", "))))?;
    if format == "bind-delegation" && p.ns.is_empty() {
        return Err(Error::param(
            "ns",
            "bind-delegation needs the name servers of the delegated zones",
        ));
    }
    let (nets, records) = load(ctx, p.scope)?;
    let mut out = Output {
        text: String::new(),
        skipped: Vec::new(),
    };
    let content_type = match format {
        "dnsmasq" => {
            dnsmasq(&mut out, &nets, &records);
            "text/plain; charset=utf-8"
        }
        "kea4" | "kea6" => {
            kea(&mut out, &nets, &records, format == "kea4");
            "application/json"
        }
        "bind" => {
            let zone = forward_zone(p.zone, &nets)?;
            bind(&mut out, &zone, p.ttl, &records);
            "text/plain; charset=utf-8"
        }
        "bind-reverse" => {
            reverse(&mut out, p.zone.as_deref(), p.ttl, &nets, &records);
            "text/plain; charset=utf-8"
        }
        _ => {
            delegation(&mut out, p.ttl, &p.ns, &nets)?;
            "text/plain; charset=utf-8"
        }
    };
    Ok(Generated {
        format,
        content_type,
        text: out.text,
        skipped: out.skipped,
    })
}

/// A subnet of the scope, with what the generators need of it.
struct Net {
    s: Subnet,
    domain: Option<String>,
    /// The active DHCP ranges.
    pools: Vec<(IpAddr, IpAddr)>,
}

/// An address record that is not `inactive`.
struct Record {
    id: i64,
    /// Index into the subnets.
    net: usize,
    ip: IpAddr,
    hostname: Option<String>,
    mac: Option<String>,
}

/// The text being written and the records left out of it.
struct Output {
    text: String,
    skipped: Vec<Skipped>,
}

impl Output {
    fn skip(&mut self, r: &Record, reason: &'static str) {
        self.skipped.push(Skipped {
            id: r.id,
            ip: net::ip_text(r.ip),
            reason,
        });
    }

    /// The record's hostname if it is a DNS name; `None` (and noted, when it has one) otherwise.
    fn hostname<'r>(&mut self, r: &'r Record) -> Option<&'r str> {
        let name = r.hostname.as_deref()?;
        let valid = dns_name(name);
        if valid.is_none() {
            self.skip(r, "the hostname is not a DNS name");
        }
        valid
    }
}

/// The subnets of the scope (at most [`MAX_OUTPUT_RECORDS`]), their active ranges and their records that are not
/// inactive (at most [`MAX_OUTPUT_RECORDS`] in all).
fn load(ctx: &Ctx, scope: Scope) -> Result<(Vec<Net>, Vec<Record>)> {
    let too_many = || {
        Error::too_large(
            format!("a configuration is made from at most {MAX_OUTPUT_RECORDS} records: generate per group or subnet"),
            MAX_OUTPUT_RECORDS,
        )
    };
    let subnets = scope.subnets(ctx, ", t.domain", 0, MAX_OUTPUT_RECORDS + 1, |r| {
        Ok((crate::methods::subnets::subnet_of(r, 0)?, r.get::<Option<String>>(5)?))
    })?;
    if subnets.len() > MAX_OUTPUT_RECORDS {
        return Err(too_many());
    }
    let mut nets = Vec::with_capacity(subnets.len());
    let mut records = Vec::new();
    for (s, domain) in subnets {
        let v4 = s.v4();
        let ip = |b: Vec<u8>| net::bytes_key(&b).map(|k| net::from_key(k, v4));
        let pools = ctx
            .tx
            .rows(
                "SELECT start_ip, end_ip FROM dhcp_ranges WHERE subnet_id = ?1 AND is_active = 1 ORDER BY start_ip",
                params![s.id],
                |r| Ok((r.get::<Vec<u8>>(0)?, r.get::<Vec<u8>>(1)?)),
            )?
            .into_iter()
            .filter_map(|(a, b)| Some((ip(a)?, ip(b)?)))
            .collect();
        let room = i64::try_from(MAX_OUTPUT_RECORDS + 1 - records.len()).unwrap_or(0);
        // (id, address key, hostname, MAC) of each record.
        type Found = (i64, Vec<u8>, Option<String>, Option<String>);
        let rows: Vec<Found> = ctx.tx.rows(
            "SELECT id, ip, hostname, mac_address FROM addresses WHERE subnet_id = ?1 AND status <> 'inactive'
             ORDER BY ip LIMIT ?2",
            params![s.id, room],
            |r| Ok((r.get::<i64>(0)?, r.get::<Vec<u8>>(1)?, r.get(2)?, r.get(3)?)),
        )?;
        for (id, key, hostname, mac) in rows {
            if let Some(ip) = ip(key) {
                records.push(Record {
                    id,
                    net: nets.len(),
                    ip,
                    hostname,
                    mac,
                });
            }
        }
        if records.len() > MAX_OUTPUT_RECORDS {
            return Err(too_many());
        }
        nets.push(Net { s, domain, pools });
    }
    Ok((nets, records))
}

/// `name` without a trailing dot, if it is a DNS hostname: at most 253 characters, dot-separated labels of 1 to 63
/// letters, digits and hyphens, none starting or ending with a hyphen (RFC 1123).
pub fn dns_name(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (name.len() <= 253 && name.split('.').all(label_ok)).then_some(name)
}

/// A MAC as six pairs of hex digits separated by colons (how `ipaddress/add` stores it).
fn mac(m: &str) -> Option<&str> {
    let parts: Vec<&str> = m.split(':').collect();
    (parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit())))
    .then_some(m)
}

/// The record's name fully qualified: as it is when it holds a dot, else under the subnet's domain (or `zone`).
fn fqdn(name: &str, domain: Option<&str>) -> Option<String> {
    if name.contains('.') {
        return Some(name.to_ascii_lowercase());
    }
    domain
        .and_then(dns_name)
        .map(|d| format!("{name}.{d}").to_ascii_lowercase())
}

/// dnsmasq: a `dhcp-range` per active DHCP range, a `dhcp-host` per record with a MAC (with its name, when it is
/// one label or under the subnet's domain), a `host-record` per record with a hostname.
fn dnsmasq(out: &mut Output, nets: &[Net], records: &[Record]) {
    out.text.push_str("# dnsmasq configuration generated by ipamd\n");
    for n in nets {
        for (a, b) in &n.pools {
            let _ = match n.s.net {
                IpNet::V4(v4) => writeln!(out.text, "dhcp-range={a},{b},{}", v4.netmask()),
                IpNet::V6(v6) => writeln!(out.text, "dhcp-range={a},{b},{}", v6.prefix_len()),
            };
        }
    }
    for r in records {
        let n = &nets[r.net];
        let name = out.hostname(r);
        let host = name.and_then(|h| fqdn(h, n.domain.as_deref()).or_else(|| Some(h.to_ascii_lowercase())));
        let addr = match r.ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        match r.mac.as_deref().map(|m| (m, mac(m))) {
            Some((_, Some(m))) => {
                let label = host.as_deref().and_then(|h| h.split('.').next());
                let _ = match label {
                    Some(l) => writeln!(out.text, "dhcp-host={m},{addr},{l}"),
                    None => writeln!(out.text, "dhcp-host={m},{addr}"),
                };
            }
            Some((_, None)) => out.skip(r, "the MAC address is malformed"),
            None => {}
        }
        if let Some(h) = &host {
            let _ = writeln!(out.text, "host-record={h},{}", r.ip);
        }
    }
}

/// Kea: `{"Dhcp4": {"subnet4": [...]}}` (or `Dhcp6`/`subnet6`), a subnet per subnet of the family with its
/// pools and a reservation per record with a MAC. Kea refuses two reservations of one MAC in a subnet: the second
/// is skipped.
fn kea(out: &mut Output, nets: &[Net], records: &[Record], v4: bool) {
    let mut subnets: Vec<Value> = Vec::new();
    for (i, n) in nets.iter().enumerate().filter(|(_, n)| n.s.v4() == v4) {
        let mut reservations = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in records.iter().filter(|r| r.net == i) {
            let Some(m) = r.mac.as_deref() else { continue };
            let Some(m) = mac(m) else {
                out.skip(r, "the MAC address is malformed");
                continue;
            };
            if !seen.insert(m.to_ascii_lowercase()) {
                out.skip(r, "another record of the subnet has the same MAC");
                continue;
            }
            let mut res = json!({"hw-address": m});
            match v4 {
                true => res["ip-address"] = json!(r.ip.to_string()),
                false => res["ip-addresses"] = json!([r.ip.to_string()]),
            }
            if let Some(h) = out.hostname(r) {
                res["hostname"] = json!(fqdn(h, n.domain.as_deref()).unwrap_or_else(|| h.to_ascii_lowercase()));
            }
            reservations.push(res);
        }
        let pools: Vec<Value> = n
            .pools
            .iter()
            .map(|(a, b)| json!({"pool": format!("{a} - {b}")}))
            .collect();
        subnets.push(json!({
            "id": n.s.id,
            "subnet": net::net_text(&n.s.net),
            "pools": pools,
            "reservations": reservations,
        }));
    }
    let config = match v4 {
        true => json!({"Dhcp4": {"subnet4": subnets}}),
        false => json!({"Dhcp6": {"subnet6": subnets}}),
    };
    out.text = serde_json::to_string_pretty(&config).unwrap_or_default();
    out.text.push('\n');
}

/// The forward zone: `zone`, else the domain every subnet of the scope shares.
fn forward_zone(zone: Option<String>, nets: &[Net]) -> Result<String> {
    if let Some(z) = zone {
        return Ok(z);
    }
    let mut domains = nets
        .iter()
        .map(|n| n.domain.as_deref().and_then(dns_name).map(str::to_ascii_lowercase));
    match domains.next() {
        Some(Some(first)) if domains.all(|d| d.as_deref() == Some(first.as_str())) => Ok(first),
        _ => Err(Error::param(
            "zone",
            "name the zone: the subnets have no domain, or not all the same one",
        )),
    }
}

/// BIND: `$ORIGIN` and `$TTL`, then an A or AAAA record per record whose hostname lies in the zone (a name without a
/// dot is in it; a name ending in the zone is written relative to it).
fn bind(out: &mut Output, zone: &str, ttl: i64, records: &[Record]) {
    let _ = writeln!(
        out.text,
        "; zone fragment generated by ipamd\n$ORIGIN {zone}.\n$TTL {ttl}"
    );
    for r in records {
        let Some(h) = out.hostname(r) else { continue };
        let h = h.to_ascii_lowercase();
        let owner = if !h.contains('.') {
            h
        } else if h == zone {
            "@".to_string()
        } else if let Some(rel) = h.strip_suffix(zone).and_then(|x| x.strip_suffix('.')) {
            rel.to_string()
        } else {
            out.skip(r, "the hostname is outside the zone");
            continue;
        };
        let kind = if r.ip.is_ipv4() { "A" } else { "AAAA" };
        let _ = writeln!(out.text, "{owner} IN {kind} {}", r.ip);
    }
}

/// The reverse zone a subnet's PTR records go in, and the number of the address's labels (octets or nibbles, from
/// the right) written relative to it. IPv4: the zone of the enclosing octet boundary, or for a block smaller than a
/// /24 its RFC 2317 zone, named `<first>-<prefix>.<c>.<b>.<a>.in-addr.arpa` (the RFC's own examples write `/`;
/// `-` is the usual variant, since a `/` cannot be a file name and some tools refuse it). IPv6: the zone of the
/// enclosing nibble boundary.
pub fn reverse_zone(block: &IpNet) -> (String, usize) {
    match block {
        IpNet::V4(b) => {
            let octets = b.network().octets();
            let prefix = b.prefix_len();
            if prefix > 24 {
                let zone = format!(
                    "{}-{prefix}.{}.{}.{}.in-addr.arpa",
                    octets[3], octets[2], octets[1], octets[0]
                );
                return (zone, 1);
            }
            let whole = usize::from(prefix / 8);
            let mut labels: Vec<String> = octets[..whole].iter().rev().map(u8::to_string).collect();
            labels.push("in-addr.arpa".into());
            (labels.join("."), 4 - whole)
        }
        IpNet::V6(b) => {
            let whole = usize::from(b.prefix_len() / 4);
            let mut labels: Vec<String> = nibbles(&b.network())[..whole]
                .iter()
                .rev()
                .map(|n| format!("{n:x}"))
                .collect();
            labels.push("ip6.arpa".into());
            (labels.join("."), 32 - whole)
        }
    }
}

fn nibbles(a: &std::net::Ipv6Addr) -> Vec<u8> {
    a.octets().iter().flat_map(|o| [o >> 4, o & 0xf]).collect()
}

/// The last `n` labels of the reverse name of `ip`, most specific first, as written relative to its zone.
fn reverse_labels(ip: IpAddr, n: usize) -> String {
    let labels: Vec<String> = match ip {
        IpAddr::V4(a) => a.octets().iter().rev().map(u8::to_string).collect(),
        IpAddr::V6(a) => nibbles(&a).iter().rev().map(|x| format!("{x:x}")).collect(),
    };
    labels[..n].join(".")
}

/// BIND reverse: per subnet, `$ORIGIN` of its reverse zone ([`reverse_zone`]) and a PTR record per record with a
/// hostname (fully qualified by the subnet's domain, or `zone`, when it has no dot).
fn reverse(out: &mut Output, zone: Option<&str>, ttl: i64, nets: &[Net], records: &[Record]) {
    let _ = writeln!(out.text, "; reverse zone fragment generated by ipamd\n$TTL {ttl}");
    for (i, n) in nets.iter().enumerate() {
        let (origin, labels) = reverse_zone(&n.s.net);
        let _ = writeln!(out.text, "$ORIGIN {origin}.");
        for r in records.iter().filter(|r| r.net == i) {
            let Some(h) = out.hostname(r) else { continue };
            let Some(target) = fqdn(h, n.domain.as_deref().or(zone)) else {
                out.skip(r, "the hostname has no domain: give the subnet one, or zone");
                continue;
            };
            let _ = writeln!(out.text, "{} IN PTR {target}.", reverse_labels(r.ip, labels));
        }
    }
}

/// RFC 2317, for the parent zone of each IPv4 subnet smaller than a /24: the NS records delegating its classless
/// zone to `ns`, and a CNAME for every address of the block pointing into that zone.
fn delegation(out: &mut Output, ttl: i64, ns: &[String], nets: &[Net]) -> Result<()> {
    let _ = writeln!(out.text, "; RFC 2317 delegation generated by ipamd\n$TTL {ttl}");
    for n in nets {
        let IpNet::V4(b) = n.s.net else {
            return Err(Error::param(
                "format",
                "bind-delegation is for IPv4 blocks smaller than a /24",
            ));
        };
        if b.prefix_len() <= 24 {
            return Err(Error::param(
                "format",
                "bind-delegation is for IPv4 blocks smaller than a /24",
            ));
        }
        let o = b.network().octets();
        let (child, _) = reverse_zone(&n.s.net);
        let label = format!("{}-{}", o[3], b.prefix_len());
        let _ = writeln!(out.text, "$ORIGIN {}.{}.{}.in-addr.arpa.", o[2], o[1], o[0]);
        for server in ns {
            let _ = writeln!(out.text, "{label} IN NS {server}.");
        }
        for last in o[3]..=b.broadcast().octets()[3] {
            let _ = writeln!(out.text, "{last} IN CNAME {last}.{child}.");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_letters_digits_and_hyphens() {
        assert_eq!(dns_name("web-1.example.com."), Some("web-1.example.com"));
        for bad in [
            "",
            "a b",
            "a\nb",
            "-a",
            "a-",
            "a..b",
            "a_b",
            "a;b",
            "ä",
            &"a".repeat(64),
        ] {
            assert_eq!(dns_name(bad), None, "{bad:?}");
        }
        assert_eq!(mac("aa:bb:cc:dd:ee:ff"), Some("aa:bb:cc:dd:ee:ff"));
        assert_eq!(mac("aa:bb:cc:dd:ee:f\n"), None);
    }

    #[test]
    fn reverse_zones_follow_octets_nibbles_and_rfc_2317() {
        let zone = |s: &str| reverse_zone(&s.parse().unwrap());
        assert_eq!(zone("10.1.2.0/24"), ("2.1.10.in-addr.arpa".into(), 1));
        assert_eq!(zone("10.1.0.0/20"), ("1.10.in-addr.arpa".into(), 2));
        assert_eq!(zone("192.0.2.64/26"), ("64-26.2.0.192.in-addr.arpa".into(), 1));
        assert_eq!(
            zone("2001:db8::/64"),
            ("0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa".into(), 16)
        );
        assert_eq!(reverse_labels("10.1.2.3".parse().unwrap(), 2), "3.2");
    }
}
