//! `export/get` and `import/run`: pages that follow their cursor to the end without a row twice or missed, CSV and
//! JSON through both doors, a round trip, upserts by (network, address), the dry run, all-or-nothing with errors
//! by row and column, phpIPAM's and NetBox's columns, and the bounds.

use hyper::Method;
use serde_json::{json, Value};

use crate::support::{id_of, only, Ident, Server};

/// A group with two networks, a DHCP range and records (one hostname needing CSV quotes); the ids (group, v4, v6).
async fn fixture(s: &Server, a: &Ident) -> (i64, i64, i64) {
    let group = id_of(only(&s.ok(a, "groups/add", json!({"description": "site"})).await));
    let v4 = id_of(only(
        &s.ok(
            a,
            "subnets/add",
            json!({"subnet": "10.7.0.0/24", "group": group, "name": "lan", "vlan_id": 7}),
        )
        .await,
    ));
    let v6 = id_of(only(
        &s.ok(a, "subnets/add", json!({"subnet": "2001:db8:7::/64", "group": group}))
            .await,
    ));
    s.ok(
        a,
        "dhcpranges/add",
        json!({"subnet": v4, "start_ip": "10.7.0.100", "end_ip": "10.7.0.120"}),
    )
    .await;
    for (subnet, ip, desc) in [
        (v4, "10.7.0.1", "gateway"),
        (v4, "10.7.0.2", "says \"hi\", twice"),
        (v4, "10.7.0.3", "=cmd|' /C calc'!A0"),
        (v6, "2001:db8:7::1", "v6 gateway"),
    ] {
        s.ok(
            a,
            "ipaddress/add",
            json!({"subnet": subnet, "ip": ip, "description": desc, "hostname": "h"}),
        )
        .await;
    }
    (group, v4, v6)
}

/// Every row of `export/get` with `data`, following `next` in pages of `limit`.
async fn export(s: &Server, a: &Ident, data: Value, limit: u32) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut call = data.clone();
        call["limit"] = json!(limit);
        call["after"] = after;
        let page = s.ok(a, "export/get", call).await;
        let got = page["rows"].as_array().unwrap();
        assert!(got.len() <= limit as usize);
        rows.extend(got.iter().cloned());
        match &page["next"] {
            Value::Null => return rows,
            next => after = next.clone(),
        }
    }
}

/// A network's rows: the network, its ranges, its records by address.
fn kinds(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["kind"].as_str().unwrap(),
                r["network"].as_str().unwrap(),
                r["ip"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn pages_of_any_size_give_every_row_once_in_order() {
    let s = Server::start().await;
    let a = &s.admin;
    let (group, v4, _) = fixture(&s, a).await;
    let all = export(&s, a, json!({}), 5000).await;
    assert_eq!(
        kinds(&all),
        [
            "network 10.7.0.0/24 ",
            "dhcp_range 10.7.0.0/24 10.7.0.100",
            "address 10.7.0.0/24 10.7.0.1",
            "address 10.7.0.0/24 10.7.0.2",
            "address 10.7.0.0/24 10.7.0.3",
            "network 2001:db8:7::/64 ",
            "address 2001:db8:7::/64 2001:db8:7::1",
        ]
    );
    for limit in 1..=7 {
        assert_eq!(export(&s, a, json!({}), limit).await, all, "pages of {limit}");
    }
    assert_eq!(export(&s, a, json!({"group": group}), 2).await, all);
    assert_eq!(export(&s, a, json!({"subnet": v4}), 2).await, all[..5]);
    s.refused(a, "export/get", json!({"after": "not-a-cursor"}), "invalid_params")
        .await;
    s.refused(a, "export/get", json!({"limit": 5001}), "invalid_params")
        .await;
    s.refused(a, "export/get", json!({"subnet": 987654}), "not_found").await;
}

#[tokio::test]
async fn rest_pages_csv_and_json_with_a_link_to_the_next() {
    let s = Server::start().await;
    let a = &s.admin;
    fixture(&s, a).await;
    let mut csv = String::new();
    let mut path = "/export?format=csv&limit=3".to_string();
    let mut pages = 0;
    loop {
        let r = s.api(Method::GET, &path, &s.admin_token, None).await;
        assert_eq!(
            (r.status, r.header("content-type")),
            (200, Some("text/csv; charset=utf-8"))
        );
        csv.push_str(&String::from_utf8_lossy(&r.body));
        pages += 1;
        match r.header("link") {
            Some(link) => {
                path = link
                    .trim_start_matches("</api/v1")
                    .split('>')
                    .next()
                    .unwrap()
                    .to_string();
                assert!(link.ends_with("; rel=\"next\""), "{link}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "kind,network,group,ip,end_ip,name,domain,vlan_id,location,hostname,cname,mac_address,status,description"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("kind,")).count(),
        1,
        "one header for the whole file"
    );
    assert!(
        lines.contains(&"address,10.7.0.0/24,1,10.7.0.2,,,,,,h,,,active,\"says \"\"hi\"\", twice\""),
        "{csv}"
    );
    // A formula is written so that a spreadsheet shows it as text.
    assert!(csv.contains("\"'=cmd|' /C calc'!A0\""), "{csv}");
    let r = s.api(Method::GET, "/export?limit=2", &s.admin_token, None).await;
    let page = r.json();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert!(page["next"].is_string());
    assert_eq!(page["data"][0]["vlan_id"], json!(7));
}

#[tokio::test]
async fn an_export_imports_back_to_the_same_records() {
    let s = Server::start().await;
    let a = &s.admin;
    let (group, v4, v6) = fixture(&s, a).await;
    let before = export(&s, a, json!({}), 5000).await;
    let csv = String::from_utf8(
        s.api(Method::GET, "/export?format=csv", &s.admin_token, None)
            .await
            .body
            .to_vec(),
    )
    .unwrap();
    let json_rows = Value::Array(before.clone());
    // Again as it is: every row updates what it names, nothing is created.
    let again = s.ok(a, "import/run", json!({"data": csv})).await;
    assert_eq!(
        [&again["created"], &again["updated"], &again["refused"]],
        ["0", "7", "0"]
    );
    assert_eq!(export(&s, a, json!({}), 5000).await, before);
    for id in [v4, v6] {
        s.ok(a, "subnets/delete", json!({"id": id, "force": true})).await;
    }
    let dry = s.ok(a, "import/run", json!({"data": csv, "dry_run": true})).await;
    assert_eq!([&dry["created"], &dry["updated"], &dry["refused"]], ["7", "0", "0"]);
    assert_eq!(
        dry["rows"][1],
        json!({"row": "3", "kind": "dhcp_range", "action": "created", "id": dry["rows"][1]["id"]})
    );
    assert_eq!(
        export(&s, a, json!({}), 5000).await,
        Vec::<Value>::new(),
        "a dry run changes nothing"
    );
    let done = s
        .ok(a, "import/run", json!({"format": "json", "data": json_rows}))
        .await;
    assert_eq!([&done["created"], &done["refused"]], ["7", "0"]);
    assert_eq!(export(&s, a, json!({"group": group}), 5000).await, before);
    // Every change is in the audit log, by import/run.
    let logs = s
        .ok(a, "org/logs", json!({"method": "import/run", "perpage": 100}))
        .await;
    assert_eq!(logs["total"], "14");
}

#[tokio::test]
async fn a_refused_row_imports_nothing_and_is_named_by_row_and_column() {
    let s = Server::start().await;
    let a = &s.admin;
    fixture(&s, a).await;
    let state = s.dump(a).await;
    let csv = "kind,network,ip,mac_address,hostname\n\
               network,10.8.0.0/24,,,\n\
               address,10.8.0.0/24,10.8.0.300,,\n\
               address,10.8.0.0/24,10.8.0.4,nope,\n\
               address,10.9.0.0/24,10.9.0.4,,\n\
               address,10.8.0.0/24,10.8.0.5,,fine\n";
    let e = s.refused(a, "import/run", json!({"data": csv}), "invalid_params").await;
    assert_eq!(e["errorData"]["refused"], "3", "{e}");
    let rows = &e["errorData"]["rows"];
    let named: Vec<(String, String)> = (0..3)
        .map(|i| {
            (
                rows[i]["row"].as_str().unwrap().into(),
                rows[i]["errors"][0]["column"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            ("3".into(), "ip".into()),
            ("4".into(), "mac_address".into()),
            ("5".into(), "network".into())
        ]
    );
    assert_eq!(s.dump(a).await, state, "all or nothing");
    let dry = s.ok(a, "import/run", json!({"data": csv, "dry_run": true})).await;
    let actions: Vec<&str> = dry["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["created", "refused", "refused", "refused", "created"]);
    for (data, column) in [
        ("kind,network,colour\nnetwork,10.8.0.0/24,red\n", "data"),
        ("kind,network\nnetwork,\"10.8.0.0/24\n", "data"),
        ("kind,network\nrouter,10.8.0.0/24\n", "data"),
    ] {
        let e = s
            .refused(a, "import/run", json!({"data": data}), "invalid_params")
            .await;
        assert!(e["errorData"].get(column).is_some(), "{e}");
    }
    s.refused(
        a,
        "import/run",
        json!({"data": csv, "source": "infoblox"}),
        "invalid_params",
    )
    .await;
    let too_many = format!("ip\n{}", "10.7.0.9\n".repeat(100_001));
    s.refused(a, "import/run", json!({"data": too_many}), "too_large").await;
    let reader = s.user(a, "reader", "readonly").await;
    s.refused(
        &reader,
        "import/run",
        json!({"data": csv, "dry_run": true}),
        "access_denied",
    )
    .await;
}

#[tokio::test]
async fn phpipam_and_netbox_exports_map_onto_networks_and_records() {
    let s = Server::start().await;
    let a = &s.admin;
    let netbox_prefixes = "prefix,vrf,tenant,site,vlan,status,role,is_pool,description\n\
                           10.20.0.0/24,,,,,active,,false,servers\n";
    let netbox_addresses = "address,vrf,tenant,status,role,dns_name,description\n\
                            10.20.0.5/24,,,active,,web1.example.com,front\n\
                            10.20.0.6/24,,,deprecated,,old.example.com,\n";
    let phpipam = "IP address,Hostname,Description,MAC address,Owner,Device,Port,Note,State\n\
                   10.20.0.7,printer,2nd floor,AA-BB-CC-DD-EE-01,ops,,,,Reserved\n\
                   10.20.0.5,web1,front door,,,,,,Used\n";
    for (source, data) in [
        ("netbox", netbox_prefixes),
        ("netbox", netbox_addresses),
        ("phpipam", phpipam),
    ] {
        let r = s
            .api(
                Method::POST,
                "/import",
                &s.admin_token,
                Some(&json!({"source": source, "data": data})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["refused"], 0);
    }
    let rows = export(&s, a, json!({}), 5000).await;
    let hosts: Vec<Value> = rows[1..]
        .iter()
        .map(|r| json!([r["ip"], r["hostname"], r["status"], r["mac_address"], r["description"]]))
        .collect();
    assert_eq!(rows[0]["description"], "servers");
    assert_eq!(
        hosts,
        [
            json!(["10.20.0.5", "web1", "active", null, "front door"]),
            json!(["10.20.0.6", "old.example.com", "inactive", null, null]),
            json!(["10.20.0.7", "printer", "reserved", "aa:bb:cc:dd:ee:01", "2nd floor"]),
        ]
    );
    let r = s
        .api(
            Method::POST,
            "/import",
            &s.admin_token,
            Some(&json!({"source": "netbox", "data": "address,status\n10.20.0.9/24,bogus\n", "dry_run": true})),
        )
        .await;
    assert_eq!(r.json()["rows"][0]["errors"][0]["column"], "status");
}

#[tokio::test]
async fn rest_streams_a_whole_export_in_one_answer() {
    let s = Server::start().await;
    let a = &s.admin;
    let mut csv = String::from("kind,network,ip,hostname\nnetwork,10.40.0.0/18,,\n");
    for i in 1..=6000u32 {
        csv.push_str(&format!("address,10.40.0.0/18,10.40.{}.{},h{i}\n", i / 256, i % 256));
    }
    let r = s
        .api(Method::POST, "/import", &s.admin_token, Some(&json!({"data": csv})))
        .await;
    assert_eq!((r.status, &r.json()["created"]), (200, &json!(6001)));
    let pages = export(&s, a, json!({}), 5000).await;
    // Without limit or after: every row in one answer, read from the database a page (1000 rows) at a time: seven parts.
    let r = s.api(Method::GET, "/export", &s.admin_token, None).await;
    assert_eq!(
        (r.status, r.header("content-type"), r.header("link")),
        (200, Some("application/json"), None)
    );
    assert_eq!(r.header("content-length"), None, "streamed, not counted in advance");
    let streamed: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(streamed.len(), 6001);
    let strings = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["ip"].to_string() + &r["hostname"].to_string())
            .collect()
    };
    assert_eq!(strings(&streamed), strings(&pages));
    let r = s.api(Method::GET, "/export?format=csv", &s.admin_token, None).await;
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert_eq!(text.lines().count(), 1 + 6001);
    assert_eq!(text.lines().filter(|l| l.starts_with("kind,")).count(), 1);
    assert!(
        text.ends_with("address,10.40.0.0/18,,10.40.23.112,,,,,,h6000,,,active,\r\n"),
        "{}",
        &text[text.len() - 200..]
    );
}
