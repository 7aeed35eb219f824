//! Webhooks through the real server, to a receiver on 127.0.0.1 started by each test: commit order per
//! subscription, Standard Webhooks signatures, no delivery for a rolled-back change, retries after 500s and after a
//! timeout, failure after the last attempt and redelivery, a delivery pending at a stop made after the restart,
//! the destination rules, and `https` receivers' certificates checked (a test CA made here, trusted through
//! `IPAMD_WEBHOOK_CA_FILE`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::TlsAcceptor;

use crate::support::{id_of, only, Ident, Server};

/// A request the receiver took.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// How the receiver answers the next request: a status, after a pause.
type Answer = (u16, Duration);

/// A webhook receiver on 127.0.0.1: records every request and answers from a script (200 once it is used up).
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    /// Whether it speaks TLS (`https` URLs).
    tls: bool,
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Receiver {
    async fn start(script: &[Answer]) -> Receiver {
        Receiver::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), script)
    }

    fn on(listener: TcpListener, script: &[Answer]) -> Receiver {
        Receiver::serve(listener, script, None)
    }

    /// A receiver on 127.0.0.1 that speaks TLS with `certificate` (and its `key`), for `https` URLs.
    async fn tls(certificate: &rcgen::Certificate, key: &rcgen::KeyPair) -> Receiver {
        #[allow(deprecated)]
        let provider = tokio_rustls::rustls::crypto::ring::default_provider();
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![certificate.der().clone()],
                PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve(listener, &[], Some(TlsAcceptor::from(Arc::new(config))))
    }

    fn serve(listener: TcpListener, script: &[Answer], tls: Option<TlsAcceptor>) -> Receiver {
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            tls: tls.is_some(),
            got: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            arrived: Arc::default(),
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (r, tls) = (r.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => r.answer(stream).await,
                        // A client that refuses the certificate ends the handshake: nothing arrives.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                r.answer(stream).await;
                            }
                        }
                    }
                });
            }
        });
        receiver
    }

    /// Serves one connection: records each request and answers it from the script.
    async fn answer<S>(self, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let service = service_fn(move |req: Request<Incoming>| {
            let r = self.clone();
            async move {
                let header = |n: &str| {
                    req.headers()
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let (id, timestamp, signature) = (
                    header("webhook-id"),
                    header("webhook-timestamp"),
                    header("webhook-signature"),
                );
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let (status, pause) = r.script.lock().unwrap().pop_front().unwrap_or((200, Duration::ZERO));
                let body = String::from_utf8(body.to_vec()).unwrap();
                r.got.lock().unwrap().push(Received {
                    id,
                    timestamp,
                    signature,
                    body,
                });
                r.arrived.notify_waiters();
                tokio::time::sleep(pause).await;
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::from("ok")))
                        .unwrap(),
                )
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .await;
    }

    fn url(&self) -> String {
        self.url_of("127.0.0.1")
    }

    /// Its URL naming it `host`.
    fn url_of(&self, host: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{host}:{}/hook", self.addr.port())
    }

    /// Waits until `n` requests have arrived (a minute at most); all of them.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let arrived = self.arrived.notified();
                if self.got.lock().unwrap().len() >= n {
                    return;
                }
                arrived.await;
            }
        })
        .await;
        let got = self.got.lock().unwrap().clone();
        assert!(waited.is_ok(), "{n} deliveries expected, {} came: {got:?}", got.len());
        got
    }
}

/// A server whose webhooks may reach 127.0.0.1 and retry after `retry_ms`, at most `attempts` times.
async fn server(retry_ms: u64, attempts: u32) -> Server {
    Server::start_with(|s| {
        s.webhook_allow = "127.0.0.1/32".into();
        s.webhook_retry_ms = retry_ms;
        s.webhook_attempts = attempts;
        s.webhook_timeout_ms = 1000;
    })
    .await
}

async fn subscribe(s: &Server, who: &Ident, data: Value) -> Value {
    only(&s.ok(who, "webhooks/add", data).await).clone()
}

/// The delivery log of webhook `id`, oldest first, once `done(log)` holds (polled: the delivery task writes it).
async fn log_when(s: &Server, id: i64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..600 {
        let log = s.ok(&s.admin, "webhooks/deliveries", json!({"id": id})).await;
        let mut log: Vec<Value> = log
            .as_object()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        log.reverse();
        if done(&log) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery log of webhook {id} never reached the state expected");
}

/// Checks a Standard Webhooks signature as a receiver would: HMAC-SHA256 over `id.timestamp.body` with the key the
/// secret carries after `whsec_`.
fn verify(secret: &str, r: &Received) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!("v1,{}", b64.encode(mac.finalize().into_bytes()));
    r.signature.split(' ').any(|s| s == expected)
}

#[tokio::test]
async fn deliveries_come_in_commit_order_signed_and_only_for_committed_matching_changes() {
    let s = server(20, 5).await;
    let rx = Receiver::start(&[]).await;
    let a = &s.admin;
    let hook = subscribe(&s, a, json!({"url": rx.url(), "objecttypes": ["subnet", "ipaddress"]})).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    // The secret is shown once.
    let listed = s.ok(a, "webhooks/get", json!({"id": id_of(&hook)})).await;
    assert!(only(&listed).get("secret").is_none(), "{listed}");

    let net = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "10.9.0.0/24"})).await));
    s.ok(a, "groups/add", json!({"description": "not sent"})).await;
    let mut hosts = Vec::new();
    for i in 1..=5 {
        let ip = format!("10.9.0.{i}");
        hosts.push(id_of(only(
            &s.ok(a, "ipaddress/add", json!({"subnet": net, "ip": ip})).await,
        )));
    }
    // Rolled back: no delivery.
    s.refused(
        a,
        "ipaddress/add",
        json!({"subnet": net, "ip": "10.9.0.1"}),
        "duplicate",
    )
    .await;
    s.ok(a, "ipaddress/edit", json!({"id": hosts[0], "hostname": "renamed"}))
        .await;

    let got = rx.wait_for(7).await;
    let events: Vec<(String, i64)> = got
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            (
                body["type"].as_str().unwrap().to_string(),
                body["data"]["objectid"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut expected = vec![("subnet.added".to_string(), net)];
    expected.extend(hosts.iter().map(|h| ("ipaddress.added".to_string(), *h)));
    expected.push(("ipaddress.edited".to_string(), hosts[0]));
    assert_eq!(events, expected);
    let ids: Vec<i64> = got
        .iter()
        .map(|r| r.id.strip_prefix("msg_").unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for r in &got {
        assert!(verify(&secret, r), "bad signature: {r:?}");
        assert!(!verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", r));
    }
    let edited: Value = serde_json::from_str(&got[6].body).unwrap();
    assert_eq!(edited["data"]["after"]["hostname"], json!("renamed"));
    assert!(
        edited["data"]["after"].get("ip").is_none(),
        "an unchanged field: {edited}"
    );
    // The log holds the seven, each delivered at the first attempt: nothing for the rolled-back add or the group.
    let log = log_when(&s, id_of(&hook), |l| {
        l.len() == 7 && l.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    assert!(
        log.iter().all(|d| d["attempts"] == "1" && d["last_status"] == "200"),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_subnet_or_group_filter_sends_only_the_changes_inside_it() {
    let s = server(20, 5).await;
    let a = &s.admin;
    let site = id_of(only(&s.ok(a, "groups/add", json!({"description": "site"})).await));
    let inside = id_of(only(
        &s.ok(a, "subnets/add", json!({"subnet": "10.7.0.0/24", "group": site}))
            .await,
    ));
    let outside = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "10.7.1.0/24"})).await));
    let (by_group, by_subnet) = (Receiver::start(&[]).await, Receiver::start(&[]).await);
    subscribe(&s, a, json!({"url": by_group.url(), "group": site})).await;
    subscribe(
        &s,
        a,
        json!({"url": by_subnet.url(), "subnet": outside, "actions": ["added"]}),
    )
    .await;
    let mut expected_group = Vec::new();
    for (subnet, ip) in [(inside, "10.7.0.5"), (outside, "10.7.1.5"), (inside, "10.7.0.6")] {
        let id = id_of(only(
            &s.ok(a, "ipaddress/add", json!({"subnet": subnet, "ip": ip})).await,
        ));
        if subnet == inside {
            expected_group.push(id);
        }
    }
    let range = json!({"subnet": inside, "start_ip": "10.7.0.100", "end_ip": "10.7.0.110"});
    expected_group.push(id_of(only(&s.ok(a, "dhcpranges/add", range).await)));
    s.ok(a, "subnets/edit", json!({"id": inside, "description": "edited"}))
        .await;
    expected_group.push(inside);
    // Last, so that once the subnet receiver has it, every earlier change has been queued for both.
    let last = id_of(only(
        &s.ok(a, "ipaddress/add", json!({"subnet": outside, "ip": "10.7.1.6"}))
            .await,
    ));
    let objects = |got: Vec<Received>| -> Vec<i64> {
        got.iter()
            .map(|r| {
                serde_json::from_str::<Value>(&r.body).unwrap()["data"]["objectid"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(objects(by_subnet.wait_for(2).await)[1], last);
    assert_eq!(objects(by_group.wait_for(4).await), expected_group);
    let got: Vec<Value> = by_group
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap())
        .collect();
    assert_eq!(got.len(), 4, "a change outside the group was sent: {got:?}");
}

#[tokio::test]
async fn failed_attempts_are_retried_in_order_then_marked_failed_and_redelivered() {
    let s = server(20, 4).await;
    let timeout = s.app.settings.webhook_timeout_ms;
    // Two 500s and an answer too slow for the timeout, then 200s.
    let slow = Duration::from_millis(timeout + 500);
    let rx = Receiver::start(&[(500, Duration::ZERO), (500, Duration::ZERO), (200, slow)]).await;
    let a = &s.admin;
    let hook = id_of(&subscribe(&s, a, json!({"url": rx.url(), "objecttypes": "group"})).await);
    let first = id_of(only(&s.ok(a, "groups/add", json!({"description": "first"})).await));
    let second = id_of(only(&s.ok(a, "groups/add", json!({"description": "second"})).await));
    let got = rx.wait_for(5).await;
    let order: Vec<i64> = got
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["data"]["objectid"]
                .as_i64()
                .unwrap()
        })
        .collect();
    // The first is tried until it is taken (the slow answer counts as a failure); the second waits for it.
    assert_eq!(order, [first, first, first, first, second]);
    let log = log_when(&s, hook, |l| {
        l.len() == 2 && l.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(log[0]["attempts"], "4");
    assert_eq!(log[1]["attempts"], "1");

    // A receiver that only fails: after the last attempt the delivery is failed, with the error kept.
    let rx2 = Receiver::start(&[(503, Duration::ZERO); 4]).await;
    s.ok(a, "webhooks/edit", json!({"id": hook, "url": rx2.url()})).await;
    s.ok(a, "groups/add", json!({"description": "third"})).await;
    let log = log_when(&s, hook, |l| l.len() == 3 && l[2]["status"] == "failed").await;
    assert_eq!(log[2]["attempts"], "4");
    assert_eq!(log[2]["last_status"], "503");
    assert!(log[2]["last_error"].as_str().unwrap().contains("503"), "{log:?}");
    // Redelivered on request, now that the receiver answers.
    let failed = id_of(&log[2]);
    s.ok(a, "webhooks/redeliver", json!({"id": failed})).await;
    rx2.wait_for(5).await;
    let log = log_when(&s, hook, |l| l[2]["status"] == "delivered").await;
    assert_eq!(log[2]["attempts"], "1");
    s.refused(a, "webhooks/redeliver", json!({"id": 999_999}), "not_found")
        .await;
}

#[tokio::test]
async fn a_delivery_pending_when_the_server_stops_is_made_after_the_restart() {
    let s = server(20, 1000).await;
    // The receiver is down until the server has stopped: the delivery stays in the outbox.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/hook");
    let hook = id_of(&subscribe(&s, &s.admin, json!({"url": url})).await);
    let net = id_of(only(
        &s.ok(&s.admin, "subnets/add", json!({"subnet": "10.8.0.0/24"})).await,
    ));
    log_when(&s, hook, |l| l.len() == 1 && l[0]["attempts"] != "0").await;
    let s = s.restart().await;
    let rx = Receiver::on(TcpListener::bind(("127.0.0.1", port)).await.unwrap(), &[]);
    let got = rx.wait_for(1).await;
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        (body["type"].clone(), body["data"]["objectid"].clone()),
        (json!("subnet.added"), json!(net))
    );
    log_when(&s, hook, |l| l[0]["status"] == "delivered").await;
}

#[tokio::test]
async fn webhooks_reach_only_allowed_destinations() {
    // By default only public addresses: a loopback URL is refused when it is given as an address.
    let s = Server::start().await;
    let a = &s.admin;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.1/",
        "http://[::1]/",
        "https://10.0.0.1/",
        "https://user:pw@example.org/",
        "ftp://x/",
    ] {
        let body = s
            .refused(a, "webhooks/add", json!({"url": url}), "invalid_params")
            .await;
        assert!(body["errorData"].get("url").is_some(), "{url}: {body}");
    }
    s.refused(a, "webhooks/add", json!({}), "invalid_params").await;
    let long = format!("http://example.org/{}", "x".repeat(2048));
    s.refused(a, "webhooks/add", json!({"url": long}), "invalid_params")
        .await;
    s.refused(
        a,
        "webhooks/add",
        json!({"url": "http://example.org/", "actions": "nuked"}),
        "invalid_params",
    )
    .await;
    s.refused(
        a,
        "webhooks/add",
        json!({"url": "http://example.org/", "subnet": 999}),
        "not_found",
    )
    .await;
    // A name is checked where it resolves, at delivery: localhost is loopback, which no listed CIDR holds.
    let rx = Receiver::start(&[]).await;
    let url = format!("http://localhost:{}/hook", rx.addr.port());
    let hook = id_of(&subscribe(&s, a, json!({"url": url})).await);
    s.ok(a, "groups/add", json!({"description": "never sent"})).await;
    let log = log_when(&s, hook, |l| l.len() == 1 && l[0]["attempts"] != "0").await;
    assert!(
        log[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("not an allowed destination"),
        "{log:?}"
    );
    assert!(rx.got.lock().unwrap().is_empty());
    // Other orgs neither see nor touch the subscription; standard users cannot manage webhooks.
    let other = s.org("other").await;
    s.refused(&other, "webhooks/get", json!({"id": hook}), "not_found")
        .await;
    s.refused(&other, "webhooks/delete", json!({"id": hook}), "not_found")
        .await;
    let standard = s.user(a, "std", "standard").await;
    s.refused(&standard, "webhooks/get", json!({}), "access_denied").await;
    s.ok(a, "webhooks/delete", json!({"id": hook})).await;
    s.refused(a, "webhooks/deliveries", json!({"id": hook}), "not_found")
        .await;
    // Every change is matched against each subscription of its org: an org has at most 50.
    let parked = json!({"url": "http://example.org/", "enabled": false});
    for _ in 0..50 {
        s.ok(a, "webhooks/add", parked.clone()).await;
    }
    s.refused(a, "webhooks/add", parked, "quota_exceeded").await;
}

/// A destination list that does not parse stops the server at start, naming the setting, before it creates
/// anything: deliveries would otherwise all wait for a fix nobody was told of.
#[test]
fn a_malformed_destination_list_is_refused_at_start() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut child = crate::support::Ipamd::command(dir.path())
        .env("IPAMD_WEBHOOK_ALLOW", "10.0.0.0/8, hooks example")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that started anyway would serve until stopped: give it a while, then stop it and fail.
    let began = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if began.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the server started with a malformed IPAMD_WEBHOOK_ALLOW");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("IPAMD_WEBHOOK_ALLOW: 'hooks example' is neither a CIDR nor a host name"),
        "{stderr}"
    );
    assert!(!dir.path().join("ipam.db").exists(), "nothing is created");
}

/// A test CA, and a certificate it signs for `localhost` (the name only, no address) with its key.
fn test_ca() -> (
    rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    rcgen::Certificate,
    rcgen::KeyPair,
) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ipamd test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca, leaf, key)
}

/// An `https` receiver whose certificate chains to the CA of `IPAMD_WEBHOOK_CA_FILE` gets signed deliveries; the
/// same receiver named by an address its certificate does not carry is refused, the reason in the delivery log.
#[tokio::test]
async fn https_deliveries_verify_the_certificate_and_the_host_name() {
    let (ca, leaf, key) = test_ca();
    let dir = tempfile::TempDir::new().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let s = Server::start_with(|s| {
        s.webhook_allow = "127.0.0.1/32".into();
        s.webhook_ca_file = ca_file.to_str().unwrap().into();
        s.webhook_attempts = 1;
        s.webhook_timeout_ms = 5000;
    })
    .await;
    let a = &s.admin;
    let rx = Receiver::tls(&leaf, &key).await;
    let hook = subscribe(&s, a, json!({"url": rx.url_of("localhost"), "objecttypes": "group"})).await;
    let group = id_of(only(&s.ok(a, "groups/add", json!({"description": "over tls"})).await));
    let got = rx.wait_for(1).await;
    assert!(verify(hook["secret"].as_str().unwrap(), &got[0]), "{got:?}");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["data"]["objectid"], json!(group));
    let hook = id_of(&hook);
    log_when(&s, hook, |l| l.len() == 1 && l[0]["status"] == "delivered").await;

    // 127.0.0.1 is allowed, but the certificate names localhost only.
    s.ok(a, "webhooks/edit", json!({"id": hook, "url": rx.url_of("127.0.0.1")}))
        .await;
    s.ok(a, "groups/add", json!({"description": "wrong name"})).await;
    let log = log_when(&s, hook, |l| l.len() == 2 && l[1]["status"] == "failed").await;
    let error = log[1]["last_error"].as_str().unwrap();
    assert!(error.contains("certificate not valid for name"), "{error}");
    assert_eq!(rx.got.lock().unwrap().len(), 1, "nothing more arrived");
}

/// A receiver whose certificate no trusted CA signed never gets the delivery: it fails, and the server's log and
/// the delivery log say why.
#[tokio::test]
async fn an_untrusted_certificate_fails_the_delivery_with_a_logged_reason() {
    let (_, leaf, key) = test_ca();
    let rx = Receiver::tls(&leaf, &key).await;
    let dir = tempfile::TempDir::new().unwrap();
    let mut cmd = crate::support::Ipamd::command(dir.path());
    cmd.env("IPAMD_WEBHOOK_ALLOW", "127.0.0.1/32")
        .env("IPAMD_WEBHOOK_ATTEMPTS", "1");
    let ipamd = crate::support::Ipamd::launch(cmd, dir.path());
    let hook = ipamd
        .expect(
            Method::POST,
            "/webhooks",
            Some(&json!({"url": rx.url_of("localhost")})),
            201,
        )
        .await;
    let hook = hook["id"].as_i64().unwrap();
    ipamd
        .expect(
            Method::POST,
            "/groups",
            Some(&json!({"description": "never sent"})),
            201,
        )
        .await;
    let deliveries = format!("/webhooks/{hook}/deliveries");
    let mut log = Value::Null;
    for _ in 0..600 {
        log = ipamd.expect(Method::GET, &deliveries, None, 200).await;
        if log["data"][0]["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let error = log["data"][0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("invalid peer certificate: UnknownIssuer"), "{log}");
    let logged = ipamd.log();
    assert!(
        logged
            .lines()
            .any(|l| l.contains("a webhook delivery failed") && l.contains("UnknownIssuer")),
        "{logged}"
    );
    assert!(rx.got.lock().unwrap().is_empty());
}
