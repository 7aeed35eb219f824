//! Backups through `/api/v1/backups` and `ipamd backup …`: create, list, verify and restore round trips, unique
//! names within one second, files that are not ipamd databases, names that try to leave `BACKUP_DIR`, and who may
//! use them at all.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hyper::Method;
use serde_json::{json, Value};

use crate::rest::{assert_keys, assert_no_problems, client, data, error_of, num_id, Client};
use crate::support::{http, is_backup_name, now, only, Server};

const ITEM_KEYS: [&str; 3] = ["name", "size_bytes", "created_at"];
const CREATED_KEYS: [&str; 5] = ["name", "size_bytes", "created_at", "integrity_ok", "integrity_message"];
const VERIFY_KEYS: [&str; 3] = ["name", "integrity_ok", "integrity_message"];
const RESTORE_KEYS: [&str; 5] = ["name", "restored", "integrity_ok", "integrity_message", "safety_backup"];

/// Whether `t` is `YYYY-MM-DDTHH:MM:SSZ`.
fn is_rfc3339_z(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn backup_dir(s: &Server) -> PathBuf {
    s.app.settings.backup_dir.clone()
}

/// The names of the files in a directory.
fn files(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// The names of the listed backups.
async fn listed(c: &Client<'_>) -> BTreeSet<String> {
    let list = c.get("/backups?per_page=1000").await;
    data(&list)
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect()
}

/// The names of the networks, in order.
async fn network_names(c: &Client<'_>) -> Vec<Value> {
    data(&c.get("/networks").await)
        .iter()
        .map(|n| n["name"].clone())
        .collect()
}

async fn create(c: &Client<'_>) -> Value {
    c.ok(Method::POST, "/backups", None, 201).await
}

#[tokio::test]
async fn backup_answers_have_exactly_the_documented_fields() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let made = create(&c).await;
    let name = made["name"].as_str().unwrap().to_string();
    let list = c.get("/backups").await;
    let verified = c.get(&format!("/backups/{name}/verify")).await;
    let restored = c.ok(Method::POST, &format!("/backups/{name}/restore"), None, 200).await;
    // All four before the first assertion, so that one failure does not hide the others.
    let problems: Vec<String> = [
        (&made, &CREATED_KEYS[..]),
        (&list["data"][0], &ITEM_KEYS[..]),
        (&verified, &VERIFY_KEYS[..]),
        (&restored, &RESTORE_KEYS[..]),
    ]
    .iter()
    .filter_map(|(v, keys)| {
        let got: BTreeSet<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = keys.iter().copied().collect();
        (got != want).then(|| format!("{v}: expected the keys {want:?}"))
    })
    .collect();
    assert_no_problems(&problems);
}

#[tokio::test]
async fn create_list_verify_and_restore_round_trip() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let empty = c.get("/backups").await;
    assert_eq!(
        empty,
        json!({"data": [], "pagination": {"page": 1, "per_page": 50, "total_items": 0, "total_pages": 0}})
    );
    let kept = num_id(
        &c.post("/networks", json!({"network": "10.0.0.0", "cidr": 24, "name": "kept"}))
            .await,
    );

    let made = create(&c).await;
    let name = made["name"].as_str().unwrap().to_string();
    assert!(is_backup_name(&name), "{name}");
    for key in CREATED_KEYS {
        assert!(made.get(key).is_some(), "no {key}: {made}");
    }
    assert_eq!(
        (&made["integrity_ok"], &made["integrity_message"]),
        (&json!(true), &json!("ok"))
    );
    let on_disk = std::fs::metadata(backup_dir(&s).join(&name)).unwrap().len();
    assert_eq!(made["size_bytes"], json!(on_disk));
    assert!(on_disk > 0);
    let created_at = made["created_at"].as_str().unwrap();
    assert!(is_rfc3339_z(created_at), "{created_at}");
    assert!(
        name.contains(&created_at[..10].replace('-', "")),
        "{name} is named after its UTC date {created_at}"
    );

    let list = c.get("/backups").await;
    assert_keys(&list, &["data", "pagination"]);
    assert_eq!(data(&list).len(), 1);
    assert_eq!(
        list["data"][0],
        json!({"name": name, "size_bytes": on_disk, "created_at": made["created_at"]})
    );
    assert_eq!(
        list["pagination"],
        json!({"page": 1, "per_page": 50, "total_items": 1, "total_pages": 1})
    );
    for verb in [Method::GET, Method::POST] {
        let v = c.ok(verb.clone(), &format!("/backups/{name}/verify"), None, 200).await;
        assert_eq!(
            v,
            json!({"name": name, "integrity_ok": true, "integrity_message": "ok"}),
            "{verb}"
        );
    }

    // Change the data, then restore: the change is gone, in both APIs.
    let after = num_id(
        &c.post("/networks", json!({"network": "10.1.0.0", "cidr": 24, "name": "after"}))
            .await,
    );
    c.patch(&format!("/networks/{kept}"), json!({"name": "renamed"})).await;
    assert_eq!(network_names(&c).await, [json!("renamed"), json!("after")]);
    let restored = c.ok(Method::POST, &format!("/backups/{name}/restore"), None, 200).await;
    let safety = restored["safety_backup"].as_str().unwrap().to_string();
    assert!(is_backup_name(&safety) && safety != name, "{restored}");
    assert_eq!(
        restored,
        json!({"name": name, "restored": true, "integrity_ok": true, "integrity_message": "ok",
               "safety_backup": safety})
    );
    assert_eq!(network_names(&c).await, [json!("kept")]);
    c.fail(Method::GET, &format!("/networks/{after}"), None, 404, "not_found")
        .await;
    let seen = s.ok(&s.admin, "subnets/get", json!({})).await;
    assert_eq!(only(&seen)["name"], json!("kept"));
    // The safety backup is listed, verified, and holds the data from before the restore.
    assert_eq!(listed(&c).await, BTreeSet::from([name.clone(), safety.clone()]));
    let v = c.get(&format!("/backups/{safety}/verify")).await;
    assert_eq!(v["integrity_ok"], json!(true));
    let logs = s.ok(&s.admin, "org/logs", json!({"method": "backups/restore"})).await;
    assert_eq!(logs["total"], json!("1"), "the restore is in the restored log: {logs}");

    let back = c
        .ok(Method::POST, &format!("/backups/{safety}/restore"), None, 200)
        .await;
    assert_eq!(back["restored"], json!(true));
    assert_eq!(network_names(&c).await, [json!("renamed"), json!("after")]);
    assert_eq!(listed(&c).await.len(), 3, "each restore leaves a safety backup");

    // Paging of the list, newest first.
    let page = c.get("/backups?per_page=2&page=2").await;
    assert_eq!(data(&page).len(), 1);
    assert_eq!(
        page["pagination"],
        json!({"page": 2, "per_page": 2, "total_items": 3, "total_pages": 2})
    );
}

/// A backup is written under a hidden name and appears under its own only when complete: after backups (and the
/// safety backup of a restore) the directory holds exactly the listed backups, and the hidden leftover of a backup
/// a crash cut short is neither listed nor in the way.
#[tokio::test]
async fn a_backup_appears_only_when_complete() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let dir = backup_dir(&s);
    std::fs::create_dir_all(&dir).unwrap();
    // A leftover nothing wrote to for two hours was left by a crash and goes; a recent one may be a backup that
    // another process (`ipamd backup create`) is writing, and stays.
    let stale = ".ipam-backup-0190a1b2c3d4e5f60718293a4b5c6d7e.partial";
    let leftover = ".ipam-backup-0190a1b2c3d4e5f60718293a4b5c6d7f.partial";
    std::fs::write(dir.join(stale), b"half a database").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(dir.join(stale))
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    std::fs::write(dir.join(leftover), b"half a database").unwrap();
    let name = create(&c).await["name"].as_str().unwrap().to_string();
    let restored = c.ok(Method::POST, &format!("/backups/{name}/restore"), None, 200).await;
    let safety = restored["safety_backup"].as_str().unwrap().to_string();
    assert_eq!(listed(&c).await, BTreeSet::from([name.clone(), safety.clone()]));
    assert_eq!(
        files(&dir),
        BTreeSet::from([name, safety, leftover.to_string()]),
        "only complete backups (and the recent leftover) are in the directory"
    );
}

#[tokio::test]
async fn backups_in_one_second_get_distinct_names() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let dir = backup_dir(&s);
    std::fs::create_dir_all(&dir).unwrap();
    // The plain names of the coming seconds are taken already: every backup made now needs a suffix, and none
    // may overwrite a file.
    let t = now();
    let mut taken = Vec::new();
    for ts in t - 1..t + 30 {
        let name = format!("ipam-backup-{}.db", ipamd::time::compact(ts));
        std::fs::write(dir.join(&name), b"placeholder").unwrap();
        taken.push(name);
    }
    let first = create(&c).await["name"].as_str().unwrap().to_string();
    let second = create(&c).await["name"].as_str().unwrap().to_string();
    assert!(first.ends_with("-2.db"), "{first}");
    assert!(is_backup_name(&first) && is_backup_name(&second), "{first} {second}");
    assert_ne!(first, second);
    // Several at once.
    let bearer = format!("Bearer {}", s.admin_token);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (addr, bearer) = (s.addr, bearer.clone());
        tasks.push(tokio::spawn(async move {
            http(
                addr,
                Method::POST,
                "/api/v1/backups",
                &[("authorization", bearer.as_str())],
                "",
            )
            .await
        }));
    }
    let mut names = BTreeSet::from([first, second]);
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert_eq!(v["integrity_ok"], json!(true), "{v}");
        names.insert(v["name"].as_str().unwrap().to_string());
    }
    assert_eq!(names.len(), 6, "{names:?}");
    for name in &taken {
        assert_eq!(
            std::fs::read(dir.join(name)).unwrap(),
            b"placeholder",
            "{name} was overwritten"
        );
    }
    for name in &names {
        let v = c.get(&format!("/backups/{name}/verify")).await;
        assert_eq!(v["integrity_ok"], json!(true), "{name}");
    }
}

#[tokio::test]
async fn verify_never_fails_and_restore_refuses_what_is_not_an_ipamd_database() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    c.post("/networks", json!({"network": "10.0.0.0", "cidr": 24, "name": "live"}))
        .await;
    let real = create(&c).await["name"].as_str().unwrap().to_string();
    let dir = backup_dir(&s);
    let bytes = std::fs::read(dir.join(&real)).unwrap();
    std::fs::write(dir.join("junk.db"), b"this is not a database, just text\n".repeat(200)).unwrap();
    std::fs::write(dir.join("truncated.db"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(dir.join("empty.db"), b"").unwrap();
    {
        let other = rusqlite::Connection::open(dir.join("other.db")).unwrap();
        other
            .execute_batch(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('x');",
            )
            .unwrap();
    }
    let before = listed(&c).await;

    for name in ["junk.db", "truncated.db"] {
        for verb in [Method::GET, Method::POST] {
            let v = c.ok(verb.clone(), &format!("/backups/{name}/verify"), None, 200).await;
            assert_eq!(
                (&v["name"], &v["integrity_ok"]),
                (&json!(name), &json!(false)),
                "{verb} {v}"
            );
            assert!(
                v["integrity_message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty() && m != "ok"),
                "{v}"
            );
        }
    }
    // A sound SQLite file that is not an ipamd database passes the integrity check, but is no backup to restore.
    let v = c.get("/backups/other.db/verify").await;
    assert_eq!(v["integrity_ok"], json!(true), "{v}");
    for name in ["junk.db", "truncated.db", "empty.db", "other.db"] {
        c.fail(
            Method::POST,
            &format!("/backups/{name}/restore"),
            None,
            400,
            "invalid_backup",
        )
        .await;
    }
    for path in [
        "/backups/missing.db/verify",
        "/backups/ipam-backup-20000101-000000Z.db/verify",
    ] {
        c.fail(Method::GET, path, None, 404, "not_found").await;
    }
    c.fail(Method::POST, "/backups/missing.db/restore", None, 404, "not_found")
        .await;
    // Nothing changed: the live data, and no safety backup was taken.
    assert_eq!(network_names(&c).await, [json!("live")]);
    assert_eq!(listed(&c).await, before);
}

#[tokio::test]
async fn names_outside_the_backup_dir_are_never_touched() {
    let s = Server::start().await;
    let c = client(&s, &s.admin_token);
    let marker = num_id(
        &c.post(
            "/networks",
            json!({"network": "10.0.0.0", "cidr": 24, "name": "marker"}),
        )
        .await,
    );
    let real = create(&c).await["name"].as_str().unwrap().to_string();
    let dir = backup_dir(&s);
    let parent = dir.parent().unwrap().to_path_buf();
    // A sound ipamd backup, outside BACKUP_DIR: restoring it would bring "marker" back.
    for outside in ["outside.db", "x.db"] {
        std::fs::copy(dir.join(&real), parent.join(outside)).unwrap();
    }
    std::fs::remove_file(dir.join(&real)).unwrap();
    c.delete(&format!("/networks/{marker}?force=true")).await;
    let outside_bytes = std::fs::read(parent.join("outside.db")).unwrap();
    let parent_before: BTreeSet<String> = files(&parent)
        .into_iter()
        .filter(|f| !f.starts_with("ipam.db"))
        .collect();
    let dir_before = files(&dir);

    let names = [
        "..%2Foutside.db",
        "..%2fx.db",
        "%2e%2e%2fx.db",
        "%2E%2E%2Foutside.db",
        "..%2F..%2Fx.db",
        "%2Fx.db",
        "%2e%2e",
        "..%5Coutside.db",
        "outside.db%00",
        ".hidden.db",
        "x.txt",
        "..",
        ".db",
    ];
    for name in names {
        for (verb, action) in [
            (Method::GET, "verify"),
            (Method::POST, "verify"),
            (Method::POST, "restore"),
        ] {
            let path = format!("/backups/{name}/{action}");
            let r = s.api(verb.clone(), &path, &s.admin_token, None).await;
            assert!(
                [400, 404].contains(&r.status),
                "{verb} {path}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            let code = if r.status == 400 { "invalid_params" } else { "not_found" };
            error_of(&r, r.status, code, &path);
        }
    }
    // A literal ../ in the path.
    for path in [
        "/backups/../x.db/verify",
        "/backups/../x.db/restore",
        "/backups/../../x.db/restore",
    ] {
        let r = s.api(Method::POST, path, &s.admin_token, None).await;
        assert!(
            [400, 404, 405].contains(&r.status),
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    // And through the envelope.
    for name in ["../outside.db", "../x.db", "/x.db", "..\\x.db"] {
        s.refused(&s.admin, "backups/verify", json!({"name": name}), "invalid_params")
            .await;
        s.refused(&s.admin, "backups/restore", json!({"name": name}), "invalid_params")
            .await;
    }

    assert_eq!(network_names(&c).await, Vec::<Value>::new(), "nothing was restored");
    assert_eq!(std::fs::read(parent.join("outside.db")).unwrap(), outside_bytes);
    let parent_after: BTreeSet<String> = files(&parent)
        .into_iter()
        .filter(|f| !f.starts_with("ipam.db"))
        .collect();
    assert_eq!(parent_after, parent_before, "nothing was written outside BACKUP_DIR");
    assert_eq!(files(&dir), dir_before, "no safety backup was taken");
}

#[tokio::test]
async fn only_operator_admins_and_api_tokens_may_use_backups() {
    let s = Server::start_with(|settings| settings.api_tokens = "op-backup-token".into()).await;
    let op = client(&s, "op-backup-token");
    let name = create(&op).await["name"].as_str().unwrap().to_string();
    op.get("/backups").await;
    op.get(&format!("/backups/{name}/verify")).await;
    let admin = client(&s, &s.admin_token);
    create(&admin).await;

    let token_of = |who| {
        let s = &s;
        async move {
            only(&s.ok(&who, "org/tokens/add", json!({})).await)["token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let other_admin = s.org("orgb").await;
    let standard = s.user(&s.admin, "operator-standard", "standard").await;
    let reader = s.user(&s.admin, "operator-reader", "readonly").await;
    let before = listed(&admin).await;
    for who in [other_admin.clone(), standard, reader] {
        let token = token_of(who.clone()).await;
        let c = client(&s, &token);
        c.get("/networks").await;
        for (verb, path) in [
            (Method::GET, "/backups".to_string()),
            (Method::POST, "/backups".into()),
            (Method::GET, format!("/backups/{name}/verify")),
            (Method::POST, format!("/backups/{name}/verify")),
            (Method::POST, format!("/backups/{name}/restore")),
            (Method::GET, "/backups/missing.db/verify".into()),
        ] {
            c.fail(verb, &path, None, 403, "access_denied").await;
        }
        for (method, data) in [
            ("backups/get", json!({})),
            ("backups/add", json!({})),
            ("backups/verify", json!({"name": name})),
            ("backups/restore", json!({"name": name})),
        ] {
            s.refused(&who, method, data, "access_denied").await;
        }
    }
    let nobody = client(&s, "");
    nobody.fail(Method::GET, "/backups", None, 401, "auth_required").await;
    nobody.fail(Method::POST, "/backups", None, 401, "auth_required").await;
    assert_eq!(listed(&admin).await, before, "the refused calls made no backup");
    // The operator org's admin through the envelope may.
    let got = s.ok(&s.admin, "backups/get", json!({})).await;
    assert_eq!(got["total"], json!(before.len().to_string()));
}

/// `ipamd` with `args`, its database and backups in `dir`, and none of the caller's ipamd settings.
fn ipamd(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipamd"));
    cmd.args(args)
        .env("IPAMD_DB", dir.join("ipam.db"))
        .env("BACKUP_DIR", dir.join("backups"))
        .env("RUST_LOG", "warn");
    for var in [
        "IPAMD_LISTEN",
        "IPAMD_ADMIN_PASSWORD",
        "API_TOKENS",
        "IPAMD_LOG_FORMAT",
        "RATELIMIT_STORAGE_URI",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().unwrap()
}

/// The JSON a successful command printed.
fn printed(out: &Output, what: &str) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {stdout}"))
}

/// Asserts that a command failed with a message on stderr.
fn failed(out: &Output, what: &str) {
    assert!(
        !out.status.success(),
        "{what} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!out.stderr.is_empty(), "{what}: no message");
}

/// The names `ipamd backup list --json` printed, newest first, after checking each entry's documented keys.
fn backup_names(list: &Value) -> Vec<String> {
    let list = list.as_array().unwrap_or_else(|| panic!("not an array: {list}"));
    list.iter()
        .map(|b| {
            let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, ["name", "size_bytes", "created_at"], "{b}");
            assert!(b["size_bytes"].as_u64().unwrap() > 0, "{b}");
            b["name"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn the_command_line_lists_creates_verifies_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    printed(&ipamd(d, &["init", "--password", "admin-password", "--json"]), "init");
    let empty = printed(&ipamd(d, &["backup", "list", "--json"]), "list");
    assert_eq!(backup_names(&empty), Vec::<String>::new());

    let made = printed(&ipamd(d, &["backup", "create"]), "create");
    let name = made["name"].as_str().unwrap().to_string();
    assert!(is_backup_name(&name), "{made}");
    assert_eq!(made["integrity_ok"], json!(true), "{made}");
    assert!(d.join("backups").join(&name).is_file());
    let list = printed(&ipamd(d, &["backup", "list", "--json"]), "list");
    assert_eq!(backup_names(&list), std::slice::from_ref(&name));
    // For people, a table: a header and one line per backup.
    let table = ipamd(d, &["backup", "list"]);
    let table = String::from_utf8(table.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("NAME") && lines[1].starts_with(&name), "{table}");

    // A change after the backup: a new org.
    printed(&ipamd(d, &ADD_LATER), "org add");
    failed(&ipamd(d, &ADD_LATER), "a second org add of the same identifier");

    let v = printed(&ipamd(d, &["backup", "verify", &name]), "verify");
    assert_eq!(
        v,
        json!({"name": name, "integrity_ok": true, "integrity_message": "ok"})
    );
    // Not on a terminal, a restore needs --yes, and without it changes nothing.
    failed(&ipamd(d, &["backup", "restore", &name]), "restore without --yes");
    failed(
        &ipamd(d, &ADD_LATER),
        "the org is still there after the refused restore",
    );
    let restored = printed(&ipamd(d, &["backup", "restore", &name, "--yes"]), "restore");
    assert_eq!(restored["restored"], json!(true), "{restored}");
    let safety = restored["safety_backup"].as_str().unwrap().to_string();
    assert!(is_backup_name(&safety) && safety != name, "{restored}");
    // The org made after the backup is gone, so it can be made again.
    printed(&ipamd(d, &ADD_LATER), "org add after the restore");
    let list = printed(&ipamd(d, &["backup", "list", "--json"]), "list");
    let names: BTreeSet<String> = backup_names(&list).into_iter().collect();
    assert_eq!(names, BTreeSet::from([name.clone(), safety]));

    std::fs::write(d.join("backups").join("junk.db"), b"not a database").unwrap();
    // A failed check prints the verdict and exits non-zero.
    let junk = ipamd(d, &["backup", "verify", "junk.db"]);
    failed(&junk, "verify junk");
    let verdict: Value = serde_json::from_slice(&junk.stdout).unwrap();
    assert_eq!(verdict["integrity_ok"], json!(false), "{verdict}");
    failed(&ipamd(d, &["backup", "restore", "junk.db", "--yes"]), "restore junk");
    failed(&ipamd(d, &["backup", "verify", "missing.db"]), "verify missing");
    failed(&ipamd(d, &["backup", "verify", "../ipam.db"]), "verify ../ipam.db");
    failed(
        &ipamd(d, &["backup", "restore", "../ipam.db", "--yes"]),
        "restore ../ipam.db",
    );
    failed(&ipamd(d, &["backup", "restore"]), "restore without a name");
}

/// A backup taken before an upgrade (schema version 1: no `subnet_prefixes`, full-text triggers that index
/// directly, no `credential_epoch`) restores: the restore upgrades a private copy, leaves the backup file as it was, and the restored
/// data answers `search/ip` and `search/find`.
#[tokio::test]
async fn a_backup_of_an_older_schema_is_upgraded_on_a_copy_and_restored() {
    let s = Server::start().await;
    let a = s.admin.clone();
    let subnet = s
        .ok(
            &a,
            "subnets/add",
            json!({"subnet": "10.6.0.0/24", "description": "old"}),
        )
        .await;
    let subnet = crate::support::id_of(only(&subnet));
    s.ok(&a, "ipaddress/add", json!({"subnet": subnet, "hostname": "older-host"}))
        .await;
    let name = s.ok(&a, "backups/add", json!({})).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    let file = backup_dir(&s).join(&name);
    // Take the backup back to version 1, as an ipamd of that version wrote it: the full-text triggers of
    // version 1 come from schema.sql's first section itself.
    let v1 = ipamd::store::SCHEMA.split("-- migration: 2").next().unwrap();
    let v1_triggers: String = v1
        .split_inclusive("END;")
        .filter_map(|chunk| chunk.find("CREATE TRIGGER addresses_fts_").map(|at| &chunk[at..]))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(v1_triggers.matches("CREATE TRIGGER").count(), 3, "{v1_triggers}");
    let epoch_triggers: String = ["orgs", "users", "appkeys", "tokens"]
        .iter()
        .flat_map(|t| ["update", "delete"].map(|w| format!("DROP TRIGGER credential_epoch_{t}_{w};")))
        .collect();
    let versioned = [
        "subnets",
        "addresses",
        "dhcp_ranges",
        "groups",
        "fields",
        "users",
        "appkeys",
        "tokens",
    ];
    let unversioned: String = ["insert", "update", "delete"]
        .map(|w| format!("DROP TRIGGER field_values_version_{w};"))
        .into_iter()
        .chain(
            versioned
                .iter()
                .map(|t| format!("DROP TRIGGER {t}_version; ALTER TABLE {t} DROP COLUMN version;")),
        )
        .collect();
    let old = rusqlite::Connection::open(&file).unwrap();
    old.execute_batch(&format!(
        "DROP TABLE pool_free_counts; DROP TABLE pool_free; DROP INDEX subnets_parent;
         DROP TRIGGER subnets_children_insert; DROP TRIGGER subnets_children_delete; DROP TRIGGER subnets_children_move;
         ALTER TABLE subnets DROP COLUMN child_count; ALTER TABLE subnets DROP COLUMN pool;
         ALTER TABLE subnets DROP COLUMN parent_id;
         DROP TABLE request_keys; {unversioned} DROP TABLE version_seq;
         DROP INDEX groups_sorted;
         DROP TRIGGER groups_count_insert; DROP TRIGGER groups_count_delete; DROP TRIGGER groups_count_move;
         ALTER TABLE groups DROP COLUMN subnet_count;
         DROP INDEX addresses_ip; CREATE INDEX addresses_ip ON addresses (ip);
         DROP TRIGGER address_runs_insert; DROP TRIGGER address_runs_delete; DROP TRIGGER address_runs_update;
         DROP VIEW address_run_changes; DROP TABLE address_runs;
         ALTER TABLE subnets ADD COLUMN floor BLOB;
         DROP INDEX addresses_brief;
         DROP TABLE credential_epoch; {epoch_triggers}
         ALTER TABLE users DROP COLUMN unlocks;
         DROP TABLE subnet_prefixes;
         DROP TRIGGER subnet_prefixes_insert; DROP TRIGGER subnet_prefixes_delete; DROP TRIGGER subnet_prefixes_update;
         DROP TABLE addresses_fts_pending;
         DROP TABLE changes; DROP TABLE changes_purged; DROP TABLE webhook_deliveries; DROP TABLE webhooks;
         DROP INDEX groups_org_id; DROP INDEX users_org_id; DROP INDEX fields_subnet;
         DROP TABLE sessions; DROP TABLE login_failures;
         DROP TRIGGER addresses_fts_insert; DROP TRIGGER addresses_fts_delete; DROP TRIGGER addresses_fts_update;
         {v1_triggers}
         PRAGMA user_version = 1;
         PRAGMA journal_mode = DELETE;"
    ))
    .unwrap();
    drop(old);
    let before = std::fs::read(&file).unwrap();

    s.ok(&a, "subnets/delete", json!({"id": subnet, "force": true})).await;
    let restored = s.ok(&a, "backups/restore", json!({"name": name})).await;
    assert_eq!(restored["restored"], "true", "{restored}");
    assert_eq!(std::fs::read(&file).unwrap(), before, "the backup file itself changed");
    assert!(
        files(&backup_dir(&s)).iter().all(|f| !f.contains("upgrading")),
        "the upgraded copy was left behind: {:?}",
        files(&backup_dir(&s))
    );
    let at = s.ok(&a, "search/ip", json!({"ip": "10.6.0.1"})).await;
    assert_eq!(at["subnets"].as_object().unwrap().len(), 1, "{at}");
    let found = s.ok(&a, "search/find", json!({"query": "older"})).await;
    assert_eq!(found["addresses"].as_object().unwrap().len(), 1, "{found}");
    s.assert_prefixes_derived().await;
    s.assert_fts_consistent().await;
}

/// A restore made by another process (the command line beside a running server) takes effect on the server's
/// next call: a token the restore removed is refused there at once, although the server had used and remembered
/// it. The server learns of the change from the database itself (`credential_epoch`), not from its own writes.
#[tokio::test]
async fn a_restore_by_the_command_line_revokes_what_the_running_server_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = crate::support::Ipamd::start(d);
    let name = printed(&ipamd(d, &["backup", "create"]), "create")["name"]
        .as_str()
        .unwrap()
        .to_string();
    let token = printed(&ipamd(d, &ADD_LATER), "org add")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");
    let list = || async {
        let headers = [("authorization", bearer.as_str())];
        crate::support::try_http(server.addr, Method::GET, "/api/v1/networks", &headers, "")
            .await
            .unwrap()
            .status
    };
    assert_eq!(list().await, 200);
    assert_eq!(list().await, 200);
    let restored = printed(&ipamd(d, &["backup", "restore", &name, "--yes"]), "restore");
    assert_eq!(restored["restored"], json!(true), "{restored}");
    assert_eq!(list().await, 401, "the token of an org the restore removed");
    server.expect(Method::GET, "/networks", None, 200).await;
}

/// `ipamd org add` of the org the command-line backup tests make after a backup, so a restore has something to undo.
const ADD_LATER: [&str; 8] = [
    "org",
    "add",
    "later",
    "--admin",
    "bob",
    "--password",
    "password-of-bob",
    "--json",
];
