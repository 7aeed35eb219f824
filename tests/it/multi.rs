//! Several ipamd instances on one PostgreSQL database, as behind a load balancer (issue 16): allocations through
//! both never collide and the counts stay exact; a revocation through one is refused at once through the other;
//! the lockout counts the failures made through all of them; instances started at once on an empty database make
//! one operator org; and an instance killed during allocations loses nothing it acknowledged.
//!
//! PostgreSQL only: these run in the PostgreSQL pass (`IPAMD_TEST_ENGINE=postgres`, `IPAMD_TEST_DATABASE_URL`).

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::support::{id_of, only, operator_api, skip, Ipamd, PgDatabase, Server};
use ipamd::db::params;

/// Whether this pass runs the tests of several instances: they need a PostgreSQL database to share, and run in the
/// PostgreSQL pass. Without `IPAMD_TEST_DATABASE_URL` they skip (and fail under `CI=true`).
fn on_postgres() -> bool {
    if std::env::var("IPAMD_TEST_DATABASE_URL").is_err() {
        skip("IPAMD_TEST_DATABASE_URL is not set: several instances need a PostgreSQL database to share");
        return false;
    }
    if std::env::var("IPAMD_TEST_ENGINE").ok().as_deref() != Some("postgres") {
        println!("not run: a test of several instances on PostgreSQL, run in the pass with IPAMD_TEST_ENGINE=postgres");
        return false;
    }
    true
}

/// `(used, recount)` of every subnet whose stored count differs from its records, read through `s`'s store.
async fn miscounted(s: &Server) -> Vec<(i64, i64, i64)> {
    s.app
        .store
        .run(|db| {
            db.read(|tx| {
                tx.rows(
                    "SELECT s.id, s.used, (SELECT count(*) FROM addresses a WHERE a.subnet_id = s.id) FROM subnets s
                     WHERE s.used <> (SELECT count(*) FROM addresses a WHERE a.subnet_id = s.id)",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
        })
        .await
        .unwrap()
}

/// 64 clients on each of two instances allocate the next free address of one subnet at the same time: 128
/// distinct addresses, the lowest ones, and the subnet's counts equal a recount, as each instance reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_hand_out_distinct_addresses_and_keep_the_counts_exact() {
    if !on_postgres() {
        return;
    }
    let one = Arc::new(Server::start().await);
    let two = Arc::new(one.beside().await);
    let a = one.admin.clone();
    let net = id_of(only(
        &one.ok(&a, "subnets/add", json!({"subnet": "10.90.0.0/24"})).await,
    ));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..128 {
        let (s, a) = (if client % 2 == 0 { one.clone() } else { two.clone() }, a.clone());
        clients.spawn(async move {
            let data = json!({"subnet": net, "hostname": format!("c{client}")});
            let added = s.ok(&a, "ipaddress/add", data).await;
            only(&added)["ip"].as_str().unwrap().to_string()
        });
    }
    let mut got = Vec::new();
    while let Some(ip) = clients.join_next().await {
        got.push(ip.unwrap());
    }
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), 128, "an address was handed out twice");
    let lowest: BTreeSet<String> = (1..=128).map(|i| format!("10.90.0.{i}")).collect();
    assert_eq!(distinct, lowest.iter().collect(), "the lowest addresses, without holes");
    for s in [&one, &two] {
        let rec = s.ok(&a, "subnets/get", json!({"id": net})).await;
        let rec = only(&rec);
        assert_eq!(
            (rec["used_hosts"].as_str(), rec["available_hosts"].as_str()),
            (Some("128"), Some("126"))
        );
        let records = s.ok(&a, "ipaddress/get", json!({"subnet": net})).await;
        assert_eq!(records.as_object().unwrap().len(), 128);
    }
    assert_eq!(miscounted(&one).await, []);
}

/// An app key disabled, a password changed and a token deleted through one instance are refused through the other
/// on the very next call, though the other had just accepted them and remembers them.
#[tokio::test]
async fn a_revocation_through_one_instance_is_refused_at_once_through_the_other() {
    if !on_postgres() {
        return;
    }
    let one = Server::start().await;
    let two = one.beside().await;
    let admin = one.admin.clone();

    let added = one.ok(&admin, "org/appkeys/add", json!({"name": "sync"})).await;
    let key = only(&added);
    let with_key = admin.with_appkey(key["key"].as_str().unwrap());
    // Twice: the second call is answered from what the instance remembers.
    two.ok(&with_key, "userdata", json!({})).await;
    two.ok(&with_key, "userdata", json!({})).await;
    one.ok(
        &admin,
        "org/appkeys/edit",
        json!({"id": id_of(key), "enabled": "false"}),
    )
    .await;
    two.check(&with_key, "userdata", json!({}), "appkey_disabled").await;

    let carol = one.user(&admin, "carol", "standard").await;
    two.ok(&carol, "userdata", json!({})).await;
    two.ok(&carol, "userdata", json!({})).await;
    one.ok(
        &admin,
        "org/users/edit",
        json!({"id": carol.id, "password": "carols-new-password"}),
    )
    .await;
    two.check(&carol, "userdata", json!({}), "auth_failed").await;
    two.ok(&carol.with_password("carols-new-password"), "userdata", json!({}))
        .await;

    let (token, id) = one.new_token(&admin, "deploy").await;
    for _ in 0..2 {
        assert_eq!(two.api(Method::GET, "/networks", &token, None).await.status, 200);
    }
    one.ok(&admin, "org/tokens/delete", json!({"id": id})).await;
    assert_eq!(two.api(Method::GET, "/networks", &token, None).await.status, 401);
}

/// The lockout's ten failures, made five through each instance, lock the user out through both: even with the
/// right password, and even where the user's login was remembered. Neither instance alone saw ten.
#[tokio::test]
async fn the_lockout_counts_the_failures_made_through_every_instance() {
    if !on_postgres() {
        return;
    }
    let one = Server::start().await;
    let two = one.beside().await;
    let dave = one.user(&one.admin, "dave", "standard").await;
    for s in [&one, &two] {
        s.ok(&dave, "userdata", json!({})).await;
    }
    let bad = dave.with_password("guess");
    assert_eq!(one.app.settings.lockout_attempts, 10);
    for attempt in 0..10 {
        let s = if attempt % 2 == 0 { &one } else { &two };
        s.check(&bad, "userdata", json!({}), "auth_failed").await;
    }
    for s in [&one, &two] {
        for who in [&dave, &bad] {
            let env = json!({"appkey": who.appkey, "userdata": who.userdata, "data": {}});
            let reply = s.post("userdata", &env).await;
            assert_eq!(reply.status, 429, "{}", reply.json());
            assert_eq!(reply.json()["errorCode"], "too_many_attempts");
        }
    }
    // Another user of the org is not locked out.
    one.ok(&one.admin, "userdata", json!({})).await;
    two.ok(&two.admin, "userdata", json!({})).await;
}

/// The count `sql` answers on the database at `url`. (The driver runs a runtime of its own: not on the test's.)
fn count(url: &str, sql: &str) -> i64 {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
                client.query_one(sql, &[]).unwrap().get(0)
            })
            .join()
            .unwrap()
    })
}

/// A fresh database for server processes of the test's.
async fn fresh_database() -> PgDatabase {
    tokio::task::spawn_blocking(PgDatabase::create).await.unwrap().unwrap()
}

/// `ipamd serve` on the database at `url`, its files in `dir`.
fn instance(dir: &std::path::Path, url: &str) -> Ipamd {
    let mut cmd = Ipamd::command(dir);
    cmd.env("IPAMD_DB", url);
    Ipamd::launch(cmd, dir)
}

/// Four ipamd processes started at the same moment on an empty database: all start and serve, the schema is
/// migrated once and exactly one operator org is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_started_at_once_on_an_empty_database_make_one_operator_org() {
    if !on_postgres() {
        return;
    }
    let database = fresh_database().await;
    let dirs: Vec<TempDir> = (0..4).map(|_| TempDir::new().unwrap()).collect();
    let url = database.url().to_string();
    let instances: Vec<Ipamd> = std::thread::scope(|scope| {
        let started: Vec<_> = dirs
            .iter()
            .map(|dir| scope.spawn(|| instance(dir.path(), &url)))
            .collect();
        started.into_iter().map(|s| s.join().unwrap()).collect()
    });
    for ipamd in &instances {
        ipamd.expect(Method::GET, "/networks", None, 200).await;
    }
    assert_eq!(count(&url, "SELECT count(*) FROM orgs WHERE operator <> 0"), 1);
    let banners = dirs
        .iter()
        .filter(|dir| {
            std::fs::read_to_string(dir.path().join("ipamd-1.out"))
                .is_ok_and(|out| out.contains("created the operator organisation"))
        })
        .count();
    assert_eq!(
        banners, 1,
        "one instance made the operator org and printed its credentials"
    );
}

/// Two instances allocate into one network, 4 clients each, until one instance is killed with SIGKILL: every
/// allocation either acknowledged (201 with an address) is in the database after, at its address, with its audit
/// entry; no address twice; the counts equal a recount; and the survivor goes on allocating.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_instance_loses_nothing_it_acknowledged() {
    if !on_postgres() {
        return;
    }
    let database = fresh_database().await;
    let (dir_a, dir_b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let victim = instance(dir_a.path(), database.url());
    let survivor = instance(dir_b.path(), database.url());
    let body = json!({"network": "10.91.0.0", "cidr": 22, "name": "shared"});
    let net = survivor.expect(Method::POST, "/networks", Some(&body), 201).await["id"]
        .as_i64()
        .unwrap();
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..8 {
        let addr = if client % 2 == 0 { victim.addr } else { survivor.addr };
        let acknowledged = acknowledged.clone();
        clients.spawn(async move {
            let mut done: Vec<(String, String)> = Vec::new();
            // The survivor's clients stop at 60 each; the victim's when it stops answering.
            for n in 0..if client % 2 == 0 { usize::MAX } else { 60 } {
                let name = format!("h-{client}-{n}");
                let path = format!("/ip/networks/{net}/next-ip");
                match operator_api(addr, Method::POST, &path, Some(&json!({"hostname": name}))).await {
                    Ok(r) if r.status == 201 => {
                        let ip = r.json()["ip_address"].as_str().unwrap().to_string();
                        done.push((name, ip));
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => panic!("allocation answered {}: {}", r.status, String::from_utf8_lossy(&r.body)),
                    Err(_) => break,
                }
            }
            done
        });
    }
    while acknowledged.load(Ordering::SeqCst) < 120 {
        assert!(!clients.is_empty(), "the clients stopped early: {}", victim.log());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    victim.kill();
    let mut allocations = Vec::new();
    while let Some(done) = clients.join_next().await {
        allocations.extend(done.unwrap());
    }
    assert!(allocations.len() >= 120);
    let client_of = |name: &str| name.split('-').nth(1).and_then(|c| c.parse::<usize>().ok()).unwrap();
    let victims = allocations.iter().filter(|(name, _)| client_of(name) % 2 == 0).count();
    assert!(victims > 0, "the killed instance had acknowledged allocations");

    let page = survivor
        .expect(
            Method::GET,
            &format!("/hosts?network_id={net}&per_page=1000"),
            None,
            200,
        )
        .await;
    let stored: HashSet<(String, String)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["hostname"].as_str().unwrap().to_string(),
                h["ip_address"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for allocation in &allocations {
        assert!(
            stored.contains(allocation),
            "the acknowledged allocation {allocation:?} is lost"
        );
    }
    let addresses: HashSet<&String> = stored.iter().map(|(_, ip)| ip).collect();
    assert_eq!(addresses.len(), stored.len(), "an address is recorded twice");

    let url = database.url();
    assert_eq!(
        count(
            url,
            "SELECT count(*) FROM subnets s WHERE s.used <> (SELECT count(*) FROM addresses a WHERE a.subnet_id = s.id)"
        ),
        0,
        "a subnet's count differs from its records"
    );
    // Each allocation and its audit entry were one transaction.
    assert_eq!(
        count(url, "SELECT count(*) FROM logs WHERE method = 'ipaddress/add'"),
        i64::try_from(stored.len()).unwrap()
    );
    let path = format!("/ip/networks/{net}/next-ip");
    let fresh: Value = survivor
        .expect(Method::POST, &path, Some(&json!({"hostname": "after"})), 201)
        .await;
    assert!(!addresses.contains(&fresh["ip_address"].as_str().unwrap().to_string()));
}
