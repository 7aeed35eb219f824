//! Moving an installation between SQLite and PostgreSQL: a backup made on PostgreSQL is the SQLite file a SQLite
//! server makes of the same data, derived tables included; it verifies and restores on PostgreSQL; and `ipamd
//! migrate` copies a database into an empty one of the other engine and back, record for record. PostgreSQL is the
//! server `IPAMD_TEST_DATABASE_URL` names, whichever engine the rest of the suite runs on: without one these tests
//! say so and pass, except under `CI=true`, where they fail.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use hyper::Method;
use serde_json::{json, Value};

use crate::support::{id_of, only, EmptyDatabase, Server};

/// Data of every kind a backup holds, made by the same calls on any server: nested groups, a subnet in a group with
/// a custom field, records with field values, a DHCP range, a pool with children, a webhook, an edit, and a subnet
/// deleted (its id never given again). Returns the subnet that holds the records.
async fn populate(s: &Server) -> i64 {
    let a = &s.admin;
    let site = id_of(only(&s.ok(a, "groups/add", json!({"description": "site"})).await));
    let rack = id_of(only(
        &s.ok(a, "groups/add", json!({"description": "rack", "parent": site}))
            .await,
    ));
    let lan = json!({"subnet": "10.7.0.0/24", "group": rack, "name": "lan", "vlan_id": 7});
    let lan = id_of(only(&s.ok(a, "subnets/add", lan).await));
    s.ok(a, "subnets/fields/add", json!({"subnet": lan, "name": "owner"}))
        .await;
    for (ip, host) in [
        ("10.7.0.1", "gw"),
        ("10.7.0.2", "web"),
        ("10.7.0.3", "db"),
        ("10.7.0.9", "mail"),
    ] {
        let record = json!({"subnet": lan, "ip": ip, "hostname": host, "fields": {"owner": "ops"}});
        s.ok(a, "ipaddress/add", record).await;
    }
    let range = json!({"subnet": lan, "start_ip": "10.7.0.100", "end_ip": "10.7.0.150"});
    s.ok(a, "dhcpranges/add", range).await;
    let pool = json!({"subnet": "2001:db8:a::/48", "pool": true, "group": site});
    let pool = id_of(only(&s.ok(a, "subnets/add", pool).await));
    for _ in 0..3 {
        s.ok(a, "subnets/add", json!({"parent": pool, "cidr": 52})).await;
    }
    let hook = json!({"url": "http://192.0.2.1/hook", "enabled": false});
    s.ok(a, "webhooks/add", hook).await;
    s.ok(a, "subnets/edit", json!({"id": lan, "description": "office"}))
        .await;
    let gone = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "10.8.0.0/24"})).await));
    s.ok(a, "subnets/delete", json!({"id": gone})).await;
    lan
}

/// Every row of `export/get` for the admin's org, page by page.
async fn export(s: &Server) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut data = json!({"limit": 3});
        if let Some(after) = &after {
            data["after"] = json!(after);
        }
        let page = s.ok(&s.admin, "export/get", data).await;
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) if !page["rows"].as_array().unwrap().is_empty() => after = Some(next.to_string()),
            _ => return rows,
        }
    }
}

/// What the get methods show of the admin's org ([`Server::dump`]) without the audit log, which a restore adds its
/// own entry to, and `version`: a restore moves the versions of what it recounts.
async fn records(s: &Server) -> Value {
    let mut dump = s.dump(&s.admin).await;
    dump.as_object_mut().unwrap().remove("org/logs");
    without_versions(dump)
}

fn without_versions(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k != "version")
                .map(|(k, v)| (k, without_versions(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_versions).collect()),
        other => other,
    }
}

/// The rows of `sql` in a SQLite file, as text.
fn file_rows(path: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let columns = stmt.column_count();
    stmt.query_map([], |r| {
        (0..columns)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => "NULL".to_string(),
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    rusqlite::types::ValueRef::Real(x) => x.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    rusqlite::types::ValueRef::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
                })
            })
            .collect()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Takes a backup through the API; its file.
async fn backup(s: &Server) -> (String, std::path::PathBuf) {
    let made = s.ok(&s.admin, "backups/add", json!({})).await;
    assert_eq!(made["integrity_ok"], json!("true"), "{made}");
    let name = made["name"].as_str().unwrap().to_string();
    let path = s.app.settings.backup_dir.join(&name);
    (name, path)
}

/// The same calls on a SQLite and a PostgreSQL server: the PostgreSQL server's backup holds what the SQLite
/// server's does, the tables its triggers derive (address runs, prefix counts, pool free counts, the full-text
/// index) and the counts and versions of every record included, and passes SQLite's own checks.
#[tokio::test]
async fn a_postgresql_backup_is_the_file_a_sqlite_server_makes_of_the_same_data() {
    let Some(pg) = Server::start_postgres().await else {
        return;
    };
    let sqlite = Server::start_sqlite().await;
    populate(&sqlite).await;
    populate(&pg).await;
    let (_, from_sqlite) = backup(&sqlite).await;
    let (name, from_pg) = backup(&pg).await;
    let verified = pg.ok(&pg.admin, "backups/verify", json!({"name": name})).await;
    assert_eq!(verified["integrity_ok"], json!("true"), "{verified}");
    for check in [
        "PRAGMA integrity_check",
        "PRAGMA foreign_key_check",
        "INSERT INTO addresses_fts (addresses_fts) VALUES ('integrity-check')",
    ] {
        if check.starts_with("INSERT") {
            // FTS5's own check, which fails when the index and the records disagree.
            let conn = rusqlite::Connection::open(&from_pg).unwrap();
            conn.execute(check, []).unwrap();
            continue;
        }
        let expected: Vec<Vec<String>> = match check {
            "PRAGMA integrity_check" => vec![vec!["ok".into()]],
            _ => vec![],
        };
        assert_eq!(file_rows(&from_pg, check), expected, "{check}");
    }
    for sql in [
        "PRAGMA user_version",
        "SELECT subnet_id, first_ip, last_ip FROM address_runs ORDER BY 1, 2",
        "SELECT org_id, family, prefix, subnets FROM subnet_prefixes ORDER BY 1, 2, 3",
        "SELECT pool_id, prefix, blocks FROM pool_free_counts ORDER BY 1, 2",
        "SELECT pool_id, start, prefix FROM pool_free ORDER BY 1, 2",
        "SELECT id, parent_id, subnet_count, version FROM groups ORDER BY id",
        "SELECT id, group_id, parent_id, child_count, used, taken, version FROM subnets ORDER BY id",
        "SELECT id, subnet_id, ip, hostname, version FROM addresses ORDER BY id",
        "SELECT address_id, field_id, value FROM field_values ORDER BY 1, 2",
        "SELECT rowid, hostname, cname, mac_address, description FROM addresses_fts ORDER BY rowid",
        "SELECT rowid FROM addresses_fts WHERE addresses_fts MATCH 'web'",
        "SELECT count(*) FROM addresses_fts_pending",
        "SELECT name, seq FROM sqlite_sequence WHERE name NOT IN ('changes', 'logs') ORDER BY name",
        "SELECT n FROM version_seq",
        "SELECT count(*) FROM changes",
    ] {
        let (want, got) = (file_rows(&from_sqlite, sql), file_rows(&from_pg, sql));
        assert_eq!(got, want, "{sql}");
    }
}

/// A backup made on PostgreSQL, restored there after changes: the data is back, new ids continue past every id
/// given before (the discarded changes' too), allocation never hands out an address twice and the counts equal a
/// recount.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_backup_restores_on_postgresql() {
    let Some(s) = Server::start_postgres().await else {
        return;
    };
    let a = s.admin.clone();
    let lan = populate(&s).await;
    let (before, rows) = (records(&s).await, export(&s).await);
    let (name, _) = backup(&s).await;
    let later = id_of(only(&s.ok(&a, "subnets/add", json!({"subnet": "10.9.0.0/24"})).await));
    s.ok(&a, "ipaddress/add", json!({"subnet": lan, "ip": "10.7.0.4"}))
        .await;
    s.ok(&a, "groups/add", json!({"description": "after"})).await;
    assert_ne!(records(&s).await, before);

    let restored = s.ok(&a, "backups/restore", json!({"name": name})).await;
    assert_eq!(restored["restored"], json!("true"), "{restored}");
    assert_eq!(records(&s).await, before);
    assert_eq!(export(&s).await, rows);
    s.refused(&a, "subnets/get", json!({"id": later}), "not_found").await;

    let next = id_of(only(&s.ok(&a, "subnets/add", json!({"subnet": "10.10.0.0/24"})).await));
    assert!(
        next > later,
        "the new subnet's id {next} is past {later}, given before the restore"
    );

    let s = Arc::new(s);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (s, a) = (s.clone(), a.clone());
        tasks.spawn(async move {
            let r = s.ok(&a, "ipaddress/add", json!({"subnet": lan, "count": 2})).await;
            r.as_object()
                .unwrap()
                .values()
                .map(|v| v["ip"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        });
    }
    let mut taken = Vec::new();
    while let Some(got) = tasks.join_next().await {
        taken.extend(got.unwrap());
    }
    let unique: HashSet<&String> = taken.iter().collect();
    assert_eq!((unique.len(), taken.len()), (32, 32), "an address was handed out twice");
    for restored_ip in ["10.7.0.1", "10.7.0.2", "10.7.0.3", "10.7.0.9"] {
        assert!(
            !unique.contains(&restored_ip.to_string()),
            "{restored_ip} was handed out again"
        );
    }
    let records = s.ok(&a, "ipaddress/get", json!({"subnet": lan})).await;
    let count = records.as_object().unwrap().len();
    assert_eq!(count, 4 + 32);
    let subnet = only(&s.ok(&a, "subnets/get", json!({"id": lan})).await).clone();
    assert_eq!(subnet["used_hosts"], json!(count.to_string()), "{subnet}");
}

/// `ipamd migrate` with the server's database and backup directory.
fn migrate(s: &Server, to: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipamd"));
    cmd.arg("migrate")
        .arg("--db")
        .arg(&s.app.settings.db)
        .arg("--to")
        .arg(to)
        .arg("--backup-dir")
        .arg(&s.app.settings.backup_dir)
        .arg("--json")
        .env("RUST_LOG", "warn");
    for var in [
        "IPAMD_DB",
        "BACKUP_DIR",
        "IPAMD_ADMIN_PASSWORD",
        "API_TOKENS",
        "IPAMD_LOG_FORMAT",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

/// What a migration printed, after checking it succeeded and copied every row of every table (the target's audit
/// log holds the restore's entry too).
fn migrated(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "migrate failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    for t in printed["tables"].as_array().unwrap() {
        let (backup, target) = (t["backup"].as_i64().unwrap(), t["target"].as_i64().unwrap());
        match t["table"].as_str().unwrap() {
            "logs" => assert_eq!(target, backup + 1, "{t}"),
            _ => assert_eq!(target, backup, "{t}"),
        }
    }
    printed
}

/// SQLite to PostgreSQL and back with `ipamd migrate`: each copy answers every get method and the export as its
/// source does, field for field, takes the same logins, and allocates the address the source would; a target
/// that is not empty is refused, and nothing in it changes.
#[tokio::test]
async fn migrate_moves_an_installation_from_sqlite_to_postgresql_and_back() {
    // The driver runs a runtime of its own: not on the test's.
    let Some(target) = tokio::task::spawn_blocking(EmptyDatabase::postgres).await.unwrap() else {
        return;
    };
    let source = Server::start_sqlite().await;
    let lan = populate(&source).await;
    let (records_before, rows) = (records(&source).await, export(&source).await);

    let printed = migrated(&migrate(&source, &target.db));
    let subnets = printed["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "subnets")
        .unwrap();
    assert_eq!(subnets["target"], json!(5), "{printed}");
    let pg = source.serve_copy(target).await;
    assert!(pg.app.store.sqlite_path().is_none());
    assert_eq!(records(&pg).await, records_before);
    assert_eq!(export(&pg).await, rows);

    // A target that holds data is refused, whichever engine it is on, and keeps its data.
    let again = migrate(&source, &pg.app.settings.db);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(records(&pg).await, records_before);

    // And back into a new SQLite file, from PostgreSQL.
    let back = EmptyDatabase::sqlite();
    migrated(&migrate(&pg, &back.db));
    let sqlite = pg.serve_copy(back).await;
    assert!(sqlite.app.store.sqlite_path().is_some());
    assert_eq!(records(&sqlite).await, records_before);
    assert_eq!(export(&sqlite).await, rows);

    // The copies allocate as the source does.
    let mut next = Vec::new();
    for s in [&source, &pg, &sqlite] {
        let r = s
            .api(
                Method::POST,
                &format!("/ip/networks/{lan}/next-ip"),
                &s.admin_token,
                Some(&json!({})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        next.push(r.json()["ip_address"].clone());
    }
    assert_eq!(next, [json!("10.7.0.4"), json!("10.7.0.4"), json!("10.7.0.4")]);
    let refused = migrate(&sqlite, &sqlite.app.settings.db);
    assert!(!refused.status.success());
}
