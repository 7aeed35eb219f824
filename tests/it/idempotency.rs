//! Idempotency keys through the real server: REST's `Idempotency-Key` and the envelope's `requestkey`. A retry
//! gets the first answer again without a second allocation, under concurrency and across a restart; another body
//! is refused; keys belong to their caller, expire on the app's clock, and keep nothing of a failed request.

use std::sync::Arc;

use hyper::Method;
use serde_json::{json, Value};

use ipamd::clock::ManualClock;
use ipamd::db::params;
use ipamd::handler::{Caller, Level, RequestKey};
use ipamd::idempotency::Keyed;

use crate::support::{only, Reply, Server};

/// A network of `/28` by REST as the operator admin: its id.
async fn network(s: &Server, block: &str) -> i64 {
    let r = s
        .api(
            Method::POST,
            "/networks",
            &s.admin_token,
            Some(&json!({"network": block, "cidr": 28})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_i64().unwrap()
}

/// `POST /api/v1{path}` with `token`, `key` as `Idempotency-Key` and `body`.
async fn keyed(s: &Server, path: &str, token: &str, key: &str, body: &Value) -> Reply {
    let bearer = format!("Bearer {token}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", bearer.as_str()),
        ("idempotency-key", key),
    ];
    s.request(Method::POST, &format!("/api/v1{path}"), &headers, body.to_string())
        .await
}

/// The hosts of a network, by REST.
async fn hosts(s: &Server, net: i64) -> Vec<Value> {
    let r = s
        .api(Method::GET, &format!("/networks/{net}/hosts"), &s.admin_token, None)
        .await;
    assert_eq!(r.status, 200);
    r.json()["hosts"].as_array().unwrap().clone()
}

/// Sends `send` until it is not answered 409 (the first request still in flight): the answer.
async fn until_answered<F, Fut>(send: F) -> Reply
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    loop {
        let r = send().await;
        if r.status != 409 {
            return r;
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_rest_clients_retrying_one_allocation_get_one_address() {
    let s = Arc::new(Server::start().await);
    let net = network(&s, "10.40.0.0").await;
    let path = format!("/ip/networks/{net}/next-ip");
    let body = json!({"hostname": "web-1"});
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let (s, path, body) = (s.clone(), path.clone(), body.clone());
            tokio::spawn(async move { until_answered(|| keyed(&s, &path, &s.admin_token, "alloc-web-1", &body)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for c in clients {
        answers.push(c.await.unwrap());
    }
    let first = &answers[0];
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
    for a in &answers {
        assert_eq!(
            (a.status, &a.body),
            (201, &first.body),
            "every client gets the one answer"
        );
    }
    let fresh = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "one request allocated, the others were replayed");
    let held = hosts(&s, net).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["ip_address"], first.json()["ip_address"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_envelope_clients_retrying_one_allocation_get_one_address() {
    let s = Arc::new(Server::start().await);
    let net = network(&s, "10.41.0.0").await;
    let env = json!({"reqid": "r1", "appkey": s.admin.appkey, "userdata": s.admin.userdata,
                     "requestkey": "alloc-db-1", "data": {"subnet": net, "hostname": "db-1"}});
    let clients: Vec<_> = (0..64)
        .map(|_| {
            let (s, env) = (s.clone(), env.clone());
            tokio::spawn(async move { until_answered(|| s.post("ipaddress/add", &env)).await })
        })
        .collect();
    let mut answers = Vec::new();
    for c in clients {
        answers.push(c.await.unwrap());
    }
    let first = &answers[0];
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    for a in &answers {
        assert_eq!(
            (a.status, &a.body),
            (200, &first.body),
            "every client gets the one answer, respid and all"
        );
    }
    let fresh = answers
        .iter()
        .filter(|a| a.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1);
    let held = hosts(&s, net).await;
    assert_eq!(held.len(), 1, "{held:?}");
    let record = only(&first.json()["response"]).clone();
    assert_eq!(held[0]["ip_address"], record["ip"]);
}

#[tokio::test]
async fn a_key_survives_a_restart() {
    let s = Server::start().await;
    let net = network(&s, "10.42.0.0").await;
    let path = format!("/ip/networks/{net}/next-ip");
    let first = keyed(&s, &path, &s.admin_token, "k-restart", &json!({})).await;
    assert_eq!(first.status, 201);
    let tag = first.header("etag").map(str::to_string);
    assert!(tag.is_some(), "the new host's answer has its ETag");
    let s = s.restart().await;
    let again = keyed(&s, &path, &s.admin_token, "k-restart", &json!({})).await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The first answer again, its ETag included.
    assert_eq!(again.header("etag"), tag.as_deref());
    assert_eq!(hosts(&s, net).await.len(), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_and_changes_nothing() {
    let s = Server::start().await;
    let net = network(&s, "10.43.0.0").await;
    let path = format!("/ip/networks/{net}/next-ip");
    assert_eq!(
        keyed(
            &s,
            &path,
            &s.admin_token,
            "k1",
            &json!({"hostname": "a", "description": "x"})
        )
        .await
        .status,
        201
    );
    // The same parameters in another order are the same request.
    let same = keyed(
        &s,
        &path,
        &s.admin_token,
        "k1",
        &json!({"description": "x", "hostname": "a"}),
    )
    .await;
    assert_eq!(same.status, 201);
    assert_eq!(same.header("idempotent-replayed"), Some("true"));
    let other = keyed(&s, &path, &s.admin_token, "k1", &json!({"hostname": "b"})).await;
    assert_eq!(other.status, 422, "{}", String::from_utf8_lossy(&other.body));
    assert_eq!(other.json()["code"], "key_reused");
    // Another route with the same method and key is another request too.
    let elsewhere = keyed(&s, "/hosts", &s.admin_token, "k1", &json!({"network_id": net})).await;
    assert_eq!(elsewhere.status, 422);
    assert_eq!(hosts(&s, net).await.len(), 1);

    let env = json!({"appkey": s.admin.appkey, "userdata": s.admin.userdata, "requestkey": "e1",
                     "data": {"subnet": net}});
    assert_eq!(s.post("ipaddress/add", &env).await.status, 200);
    let mut changed = env.clone();
    changed["data"]["hostname"] = json!("other");
    let refused = s.post("ipaddress/add", &changed).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["errorCode"], "key_reused");
    assert_eq!(hosts(&s, net).await.len(), 2);
}

#[tokio::test]
async fn keys_belong_to_their_caller() {
    let s = Server::start().await;
    let net = network(&s, "10.44.0.0").await;
    let path = format!("/ip/networks/{net}/next-ip");
    let other = s.user(&s.admin, "other", "standard").await;
    let (token, _) = s.new_token(&other, "t").await;
    let mine = keyed(&s, &path, &s.admin_token, "shared", &json!({})).await;
    let theirs = keyed(&s, &path, &token, "shared", &json!({})).await;
    assert_eq!((mine.status, theirs.status), (201, 201));
    assert!(
        theirs.header("idempotent-replayed").is_none(),
        "another user's key is not replayed"
    );
    assert_ne!(mine.json()["ip_address"], theirs.json()["ip_address"]);
    // Another org's user with the same key and its own network.
    let foreign = s.org("elsewhere").await;
    let (ftoken, _) = s.new_token(&foreign, "t").await;
    let r = s
        .api(
            Method::POST,
            "/networks",
            &ftoken,
            Some(&json!({"network": "10.44.0.0", "cidr": 28})),
        )
        .await;
    let fnet = r.json()["id"].as_i64().unwrap();
    let f = keyed(
        &s,
        &format!("/ip/networks/{fnet}/next-ip"),
        &ftoken,
        "shared",
        &json!({}),
    )
    .await;
    assert_eq!(f.status, 201);
    assert!(f.header("idempotent-replayed").is_none());
    assert_eq!(hosts(&s, net).await.len(), 2);
}

#[tokio::test]
async fn a_failed_request_keeps_no_key() {
    let s = Server::start().await;
    let net = network(&s, "10.45.0.0").await;
    let path = format!("/ip/networks/{net}/next-ip");
    let bad = keyed(&s, &path, &s.admin_token, "k-fail", &json!({"mac_address": "nope"})).await;
    assert_eq!(bad.status, 400);
    // Nothing was kept: the key is free for the corrected request, which runs.
    let good = keyed(
        &s,
        &path,
        &s.admin_token,
        "k-fail",
        &json!({"mac_address": "aa:bb:cc:dd:ee:ff"}),
    )
    .await;
    assert_eq!(good.status, 201, "{}", String::from_utf8_lossy(&good.body));
    assert!(good.header("idempotent-replayed").is_none());
    assert_eq!(hosts(&s, net).await.len(), 1);
}

#[tokio::test]
async fn keys_expire_on_the_apps_clock() {
    let clock = ManualClock::new();
    let s = Server::start_with_clock(&clock, |settings| settings.idempotency_seconds = 3600).await;
    let net = network(&s, "10.46.0.0").await;
    let path = format!("/ip/networks/{net}/next-ip");
    let first = keyed(&s, &path, &s.admin_token, "k-exp", &json!({})).await;
    assert_eq!(first.status, 201);
    clock.advance(std::time::Duration::from_secs(3599));
    let kept = keyed(&s, &path, &s.admin_token, "k-exp", &json!({})).await;
    assert_eq!((kept.status, &kept.body), (201, &first.body));
    assert_eq!(kept.header("idempotent-replayed"), Some("true"));
    clock.advance(std::time::Duration::from_secs(1));
    let expired = keyed(&s, &path, &s.admin_token, "k-exp", &json!({})).await;
    assert_eq!(expired.status, 201);
    assert!(
        expired.header("idempotent-replayed").is_none(),
        "an expired key allocates again"
    );
    assert_ne!(expired.json()["ip_address"], first.json()["ip_address"]);
    assert_eq!(hosts(&s, net).await.len(), 2);
    // The expired row was replaced, and a later keyed write purges what expires.
    clock.advance(std::time::Duration::from_secs(3600));
    assert_eq!(
        keyed(&s, &path, &s.admin_token, "k-other", &json!({})).await.status,
        201
    );
    let rows: i64 = s
        .app
        .store
        .run(|db| db.read(|tx| tx.query_row("SELECT count(*) FROM request_keys", params![], |r| r.get(0))))
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_key_held_in_flight_is_answered_409() {
    let s = Server::start().await;
    let net = network(&s, "10.47.0.0").await;
    let org_id = s.org_id(&s.admin).await;
    let method = ipamd::handler::find_method(ipamd::methods::METHODS, "ipaddress/add").unwrap();
    let request = RequestKey {
        key: "k-busy".into(),
        target: "test".into(),
        render: Box::new(|_, _| unreachable!()),
    };
    let key = Keyed::new(request, method, &json!({})).unwrap();
    let caller = Caller {
        org_id,
        operator_org: true,
        user_id: Some(s.admin.id),
        username: s.admin.username.clone(),
        level: Level::Admin,
        application: String::new(),
    };
    let held = key.hold(&s.app.in_flight, &caller).unwrap();
    let path = format!("/ip/networks/{net}/next-ip");
    let busy = keyed(&s, &path, &s.admin_token, "k-busy", &json!({})).await;
    assert_eq!(busy.status, 409, "{}", String::from_utf8_lossy(&busy.body));
    assert_eq!(busy.json()["code"], "in_progress");
    assert!(hosts(&s, net).await.is_empty());
    drop(held);
    assert_eq!(keyed(&s, &path, &s.admin_token, "k-busy", &json!({})).await.status, 201);
}

#[tokio::test]
async fn malformed_keys_and_keys_on_reads_are_refused() {
    let s = Server::start().await;
    let net = network(&s, "10.48.0.0").await;
    let path = format!("/ip/networks/{net}/next-ip");
    let long = "k".repeat(256);
    let r = keyed(&s, &path, &s.admin_token, &long, &json!({})).await;
    assert_eq!((r.status, r.json()["code"].clone()), (400, json!("bad_request")));
    assert_eq!(
        keyed(&s, &path, &s.admin_token, &"k".repeat(255), &json!({}))
            .await
            .status,
        201
    );
    let env = json!({"appkey": s.admin.appkey, "userdata": s.admin.userdata, "requestkey": "r",
                     "data": {"id": net}});
    let read = s.post("subnets/get", &env).await;
    assert_eq!(
        (read.status, read.json()["errorCode"].clone()),
        (400, json!("bad_request"))
    );
    let env = json!({"appkey": s.admin.appkey, "userdata": s.admin.userdata, "requestkey": 7, "data": {}});
    assert_eq!(s.post("groups/add", &env).await.status, 400);
    // A GET's key is ignored: a GET is idempotent already.
    let bearer = format!("Bearer {}", s.admin_token);
    let headers = [("authorization", bearer.as_str()), ("idempotency-key", "g")];
    assert_eq!(
        s.request(Method::GET, &format!("/api/v1{path}"), &headers, "")
            .await
            .status,
        200
    );
    assert_eq!(hosts(&s, net).await.len(), 1);
}

#[tokio::test]
async fn a_restore_brings_back_the_keys_of_its_backup_with_their_records() {
    let s = Server::start().await;
    let net = network(&s, "10.49.0.0").await;
    let path = format!("/ip/networks/{net}/next-ip");
    let before = keyed(&s, &path, &s.admin_token, "k-before", &json!({})).await;
    assert_eq!(before.status, 201);
    let backup = s.ok(&s.admin, "backups/add", json!({})).await["name"].clone();
    let after = keyed(&s, &path, &s.admin_token, "k-after", &json!({})).await;
    assert_eq!(after.status, 201);
    s.ok(&s.admin, "backups/restore", json!({"name": backup})).await;
    let again = keyed(&s, &path, &s.admin_token, "k-before", &json!({})).await;
    assert_eq!((again.status, &again.body), (201, &before.body));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The key taken after the backup went with the record it made: its retry allocates again.
    let redone = keyed(&s, &path, &s.admin_token, "k-after", &json!({})).await;
    assert_eq!(redone.status, 201);
    assert!(redone.header("idempotent-replayed").is_none());
    assert_eq!(hosts(&s, net).await.len(), 2);
}
