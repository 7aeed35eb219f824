//! `output/get`: dnsmasq, Kea and BIND configuration from a subnet's or group's records, through both doors; what
//! the real servers make of it (`named-checkzone`, `dnsmasq --test`, `kea-dhcp4 -t`, `kea-dhcp6 -t`, each skipped
//! with a reason when absent); and hostnames and MACs that would break the formats, which never reach them.

use std::path::{Path, PathBuf};
use std::process::Command;

use hyper::Method;
use serde_json::{json, Value};

use crate::support::{id_of, on_path, only, skip, Ident, Server};

/// A group with a v4 /24 (domain lan.example, a DHCP range), a v4 /26 and a v6 /64, and records in each; the ids
/// (group, v4, small v4, v6).
async fn fixture(s: &Server, a: &Ident) -> (i64, i64, i64, i64) {
    let group = id_of(only(&s.ok(a, "groups/add", json!({"description": "site"})).await));
    let net = |cidr: &str, domain: &str| json!({"subnet": cidr, "group": group, "domain": domain});
    let v4 = id_of(only(&s.ok(a, "subnets/add", net("10.9.0.0/24", "lan.example")).await));
    let small = id_of(only(&s.ok(a, "subnets/add", net("192.0.2.64/26", "lan.example")).await));
    let v6 = id_of(only(
        &s.ok(a, "subnets/add", net("2001:db8:9::/64", "lan.example")).await,
    ));
    s.ok(
        a,
        "dhcpranges/add",
        json!({"subnet": v4, "start_ip": "10.9.0.100", "end_ip": "10.9.0.150"}),
    )
    .await;
    for (subnet, ip, host, mac) in [
        (v4, "10.9.0.10", "web1", "aa:bb:cc:00:00:01"),
        (v4, "10.9.0.11", "db1.lan.example", "aa:bb:cc:00:00:02"),
        (v4, "10.9.0.12", "printer", ""),
        (small, "192.0.2.70", "gw", "aa:bb:cc:00:00:03"),
        (v6, "2001:db8:9::10", "web1", "aa:bb:cc:00:00:01"),
    ] {
        let mut data = json!({"subnet": subnet, "ip": ip, "hostname": host});
        if !mac.is_empty() {
            data["mac_address"] = json!(mac);
        }
        s.ok(a, "ipaddress/add", data).await;
    }
    s.ok(
        a,
        "ipaddress/add",
        json!({"subnet": v4, "ip": "10.9.0.13", "hostname": "old", "status": "inactive"}),
    )
    .await;
    (group, v4, small, v6)
}

/// `output/get` through the envelope: the generated text, and the ids of the skipped records.
async fn generate(s: &Server, a: &Ident, data: Value) -> (String, Vec<String>) {
    let r = s.ok(a, "output/get", data).await;
    let skipped = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    (r["text"].as_str().unwrap().to_string(), skipped)
}

#[tokio::test]
async fn generates_each_format_from_a_subnet() {
    let s = Server::start().await;
    let a = &s.admin;
    let (_, v4, small, v6) = fixture(&s, a).await;
    let (dnsmasq, skipped) = generate(&s, a, json!({"subnet": v4, "format": "dnsmasq"})).await;
    assert!(skipped.is_empty());
    assert_eq!(
        dnsmasq.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(),
        [
            "dhcp-range=10.9.0.100,10.9.0.150,255.255.255.0",
            "dhcp-host=aa:bb:cc:00:00:01,10.9.0.10,web1",
            "host-record=web1.lan.example,10.9.0.10",
            "dhcp-host=aa:bb:cc:00:00:02,10.9.0.11,db1",
            "host-record=db1.lan.example,10.9.0.11",
            "host-record=printer.lan.example,10.9.0.12",
        ]
    );
    let (bind, _) = generate(&s, a, json!({"subnet": v4, "format": "bind", "ttl": 300})).await;
    assert_eq!(
        bind.lines().skip(1).collect::<Vec<_>>(),
        [
            "$ORIGIN lan.example.",
            "$TTL 300",
            "web1 IN A 10.9.0.10",
            "db1 IN A 10.9.0.11",
            "printer IN A 10.9.0.12"
        ]
    );
    let (reverse, _) = generate(&s, a, json!({"subnet": small, "format": "bind-reverse"})).await;
    assert_eq!(
        reverse.lines().skip(2).collect::<Vec<_>>(),
        ["$ORIGIN 64-26.2.0.192.in-addr.arpa.", "70 IN PTR gw.lan.example."]
    );
    let (delegation, _) = generate(
        &s,
        a,
        json!({"subnet": small, "format": "bind-delegation", "ns": "ns1.lan.example"}),
    )
    .await;
    let lines: Vec<&str> = delegation.lines().skip(2).collect();
    assert_eq!(
        lines[..3],
        [
            "$ORIGIN 2.0.192.in-addr.arpa.",
            "64-26 IN NS ns1.lan.example.",
            "64 IN CNAME 64.64-26.2.0.192.in-addr.arpa."
        ]
    );
    assert_eq!(lines.len(), 3 + 63);
    let (reverse6, _) = generate(&s, a, json!({"subnet": v6, "format": "bind-reverse"})).await;
    assert!(reverse6.contains("$ORIGIN 0.0.0.0.9.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.\n0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0 IN PTR web1.lan.example.\n"), "{reverse6}");
    let (kea, _) = generate(&s, a, json!({"subnet": v6, "format": "kea6"})).await;
    let kea: Value = serde_json::from_str(&kea).unwrap();
    assert_eq!(
        kea["Dhcp6"]["subnet6"][0]["reservations"],
        json!([{"hw-address": "aa:bb:cc:00:00:01", "ip-addresses": ["2001:db8:9::10"], "hostname": "web1.lan.example"}])
    );
    // A delegation is only for the IPv4 blocks smaller than a /24; the forward zone must be known.
    s.refused(
        a,
        "output/get",
        json!({"subnet": v4, "format": "bind-delegation", "ns": "ns1.lan.example"}),
        "invalid_params",
    )
    .await;
    s.refused(
        a,
        "output/get",
        json!({"subnet": v4, "format": "bind-delegation"}),
        "invalid_params",
    )
    .await;
    s.refused(
        a,
        "output/get",
        json!({"subnet": v4, "format": "hosts"}),
        "invalid_params",
    )
    .await;
    let bare = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "10.99.0.0/24"})).await));
    s.refused(
        a,
        "output/get",
        json!({"subnet": bare, "format": "bind"}),
        "invalid_params",
    )
    .await;
}

#[tokio::test]
async fn rest_serves_the_text_under_its_media_type() {
    let s = Server::start().await;
    let a = &s.admin;
    let (group, v4, _, _) = fixture(&s, a).await;
    let r = s
        .api(
            Method::GET,
            &format!("/networks/{v4}/output?format=bind&zone=lan.example"),
            &s.admin_token,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(String::from_utf8_lossy(&r.body).contains("web1 IN A 10.9.0.10\n"));
    let r = s
        .api(
            Method::GET,
            &format!("/groups/{group}/output?format=kea4"),
            &s.admin_token,
            None,
        )
        .await;
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")));
    let subnets = r.json()["Dhcp4"]["subnet4"].as_array().unwrap().len();
    assert_eq!(subnets, 2, "the group's two IPv4 subnets");
    let r = s
        .api(
            Method::GET,
            &format!("/networks/{v4}/output?format=nope"),
            &s.admin_token,
            None,
        )
        .await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("invalid_params")));
}

#[tokio::test]
async fn hostnames_and_macs_that_would_break_a_format_are_left_out() {
    let s = Server::start().await;
    let a = &s.admin;
    let v4 = id_of(only(
        &s.ok(
            a,
            "subnets/add",
            json!({"subnet": "10.8.0.0/24", "domain": "lan.example"}),
        )
        .await,
    ));
    let mut hostile = Vec::new();
    for (i, host) in [
        "a b",
        "x\nhost-record=evil.example,6.6.6.6",
        "evil.example. IN NS",
        "y;z",
        "ok",
    ]
    .iter()
    .enumerate()
    {
        let data = json!({"subnet": v4, "ip": format!("10.8.0.{}", i + 1), "hostname": host, "mac_address": format!("aa:00:00:00:00:0{i}")});
        let (_, body) = s.call(a, "ipaddress/add", data).await;
        if let Some(id) = body["response"].as_object().and_then(|r| r.keys().next()) {
            hostile.push(id.clone());
        }
    }
    assert!(
        hostile.len() >= 4,
        "the API stores such names: the generator is what must refuse them"
    );
    for format in ["dnsmasq", "kea4", "bind", "bind-reverse"] {
        let (text, skipped) = generate(&s, a, json!({"subnet": v4, "format": format})).await;
        assert_eq!(
            skipped.len(),
            hostile.len() - 1,
            "{format}: every name but 'ok' skipped"
        );
        for bad in ["evil", "a b", "y;z", "IN NS"] {
            assert!(!text.contains(bad), "{format} wrote {bad:?}:\n{text}");
        }
        assert!(text.contains("ok"), "{format}");
        // Every line is one of the generator's: a comment, a directive, or one record of the expected shape.
        for line in text.lines().filter(|l| !l.starts_with(['#', ';', '$'])) {
            match format {
                "dnsmasq" => assert!(!line.contains(char::is_whitespace), "{line:?}"),
                "kea4" => {}
                _ => assert_eq!(line.split_whitespace().count(), 4, "{line:?}"),
            }
        }
        if format == "kea4" {
            serde_json::from_str::<Value>(&text).unwrap();
        }
    }
}

/// The records of the fixture, checked by the programs that read them.
#[tokio::test]
async fn the_servers_accept_what_is_generated() {
    let s = Server::start().await;
    let a = &s.admin;
    let (group, v4, small, v6) = fixture(&s, a).await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    match tool("named-checkzone") {
        None => skip("named-checkzone is not installed (Debian: bind9-utils)"),
        Some(tool) => {
            for (zone, data) in [
                ("lan.example", json!({"group": group, "format": "bind"})),
                ("0.9.10.in-addr.arpa", json!({"subnet": v4, "format": "bind-reverse"})),
                (
                    "64-26.2.0.192.in-addr.arpa",
                    json!({"subnet": small, "format": "bind-reverse"}),
                ),
                (
                    "2.0.192.in-addr.arpa",
                    json!({"subnet": small, "format": "bind-delegation", "ns": "ns1.lan.example"}),
                ),
                (
                    "0.0.0.0.9.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
                    json!({"subnet": v6, "format": "bind-reverse"}),
                ),
            ] {
                let (text, _) = generate(&s, a, data).await;
                let head = format!("$TTL 3600\n@ IN SOA ns1.lan.example. hostmaster.lan.example. 1 3600 600 86400 300\n@ IN NS ns1.lan.example.\n$INCLUDE {}\n", file(&format!("{zone}.inc"), &text).display());
                let zonefile = file(&format!("{zone}.zone"), &head);
                // The NS of lan.example needs an address inside the zone.
                let glue = if zone == "lan.example" {
                    "ns1 IN A 10.9.0.1\n"
                } else {
                    ""
                };
                std::fs::write(&zonefile, format!("{head}{glue}")).unwrap();
                run(&tool, &["-k", "fail", zone, zonefile.to_str().unwrap()], &text);
            }
        }
    }
    match tool("dnsmasq") {
        None => skip("dnsmasq is not installed (Debian: dnsmasq-base)"),
        Some(tool) => {
            let (text, _) = generate(&s, a, json!({"group": group, "format": "dnsmasq"})).await;
            let conf = file("dnsmasq.conf", &text);
            run(&tool, &["--test", &format!("--conf-file={}", conf.display())], &text);
        }
    }
    for (name, format) in [("kea-dhcp4", "kea4"), ("kea-dhcp6", "kea6")] {
        match tool(name) {
            None => skip(&format!("{name} is not installed (Debian: {name}-server)")),
            Some(path) => {
                let (text, _) = generate(&s, a, json!({"group": group, "format": format})).await;
                let conf = file(&format!("{format}.json"), &text);
                run(&path, &["-t", conf.to_str().unwrap()], &text);
            }
        }
    }
}

/// A program on the PATH, or in /usr/sbin where Debian puts the servers (off a non-root user's PATH).
fn tool(name: &str) -> Option<PathBuf> {
    on_path(&[name]).or_else(|| Some(Path::new("/usr/sbin").join(name)).filter(|p| p.is_file()))
}

/// Runs `tool` with `args`, failing with its output and the text it checked when it refuses.
fn run(tool: &Path, args: &[&str], text: &str) {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} refused:\n{}{}\n--- the text:\n{text}",
        tool.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
