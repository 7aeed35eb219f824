//! Slow and abusive clients: idle, slow-header and slow-body connections are cut off after their timeouts, the
//! connection cap holds further clients back while every slot is busy, idle connections give way to new ones and
//! one address cannot take every slot, a flood of failed logins locks its target out
//! while other users go on working, and a shutdown lets the requests in flight finish and refuses new ones cleanly.
//!
//! Nothing here asserts how long anything took: each test waits, with a generous bound, for an outcome (a
//! connection closed, an answer) and checks it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use ipamd::app::App;
use ipamd::config::Settings;
use ipamd::methods::METHODS;

use crate::support::{Ident, Server, ADMIN_PASSWORD};

/// Reads what is there, waiting for something (tokio's io-util extension traits are not among our features).
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How long a test waits for the server to act on a one-second timeout before calling it a failure.
const PATIENCE: Duration = Duration::from_secs(20);

/// Reads until the server closes the connection; what it sent, or `None` if it kept the connection open for all
/// of [`PATIENCE`].
async fn read_until_closed(stream: &TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let reading = async {
        loop {
            match read_some(stream, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(PATIENCE, reading).await.ok()?;
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Reads one whole HTTP answer whose body has a `content-length`, leaving the connection open.
async fn read_answer(stream: &TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(PATIENCE, read_some(stream, &mut buf))
            .await
            .expect("no answer")
            .unwrap();
        assert!(n > 0, "closed before a whole answer: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

/// The status and JSON body of a raw HTTP answer.
fn parse_answer(text: &str) -> (u16, Value) {
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
    (status, json)
}

async fn healthy(addr: SocketAddr) {
    let reply = crate::support::http(addr, hyper::Method::GET, "/healthz", &[], "").await;
    assert_eq!(reply.status, 200);
}

/// A server with one-second header and body timeouts.
async fn impatient() -> Server {
    Server::start_with(|s| {
        s.header_timeout_secs = 1;
        s.body_timeout_secs = 1;
    })
    .await
}

#[tokio::test]
async fn idle_and_slow_header_connections_are_closed_after_the_header_timeout() {
    let s = impatient().await;
    // A connection that never sends a byte.
    let idle = TcpStream::connect(s.addr).await.unwrap();
    // A connection that sends a header line every 200 ms, never finishing its headers.
    let slow = TcpStream::connect(s.addr).await.unwrap();
    write_all(&slow, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let trickle = async {
        for i in 0..100 {
            if write_all(&slow, format!("X-Slow-{i}: a\r\n").as_bytes()).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        read_until_closed(&slow).await
    };
    // A keep-alive connection that asks once and then stays silent.
    let kept = TcpStream::connect(s.addr).await.unwrap();
    write_all(&kept, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let first = read_answer(&kept).await;
    assert_eq!(parse_answer(&first).0, 200, "{first}");

    let (idle, slow, kept) = tokio::join!(read_until_closed(&idle), trickle, read_until_closed(&kept));
    assert_eq!(
        idle.as_deref(),
        Some(""),
        "the idle connection stayed open or got an answer"
    );
    let slow = slow.expect("the slow-header connection stayed open");
    assert!(!slow.contains(" 200 "), "the slow headers were answered: {slow}");
    assert_eq!(
        kept.as_deref(),
        Some(""),
        "the silent keep-alive connection stayed open"
    );
    healthy(s.addr).await;
}

#[tokio::test]
async fn a_body_that_never_arrives_is_refused_after_the_body_timeout() {
    let s = impatient().await;
    let requests = [
        // A Content-Length that the body never reaches, on each front door.
        "POST /1.0/ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\"",
        "POST /api/v1/networks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        // A chunked body that never ends.
        "POST /1.0/ping HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n",
    ];
    for request in requests {
        let stream = TcpStream::connect(s.addr).await.unwrap();
        write_all(&stream, request.as_bytes()).await.unwrap();
        let answer = read_until_closed(&stream).await;
        let answer = answer.unwrap_or_else(|| panic!("still waiting for the body: {request:?}"));
        let (status, body) = parse_answer(&answer);
        let code = body.get("errorCode").or_else(|| body.get("code"));
        assert_eq!(
            (status, code),
            (400, Some(&json!("bad_request"))),
            "{request:?}: {answer}"
        );
    }
    healthy(s.addr).await;
}

/// A request in flight that stays in flight: its body never arrives (until the body timeout, thirty seconds by
/// default), from `source`.
async fn busy_connection(addr: SocketAddr, source: [u8; 4]) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let head = "POST /1.0/ping HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    write_all(&stream, head.as_bytes()).await.unwrap();
    stream
}

/// Waits until `n` connections have a request in flight (a connection counts as busy once its request head is read).
async fn until_busy(s: &Server, n: usize) {
    let waiting = async {
        while s.app.slots.busy() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap_or_else(|_| panic!("{} of {n} connections became busy", s.app.slots.busy()));
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_while_every_slot_is_busy() {
    let s = Server::start_with(|s| s.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(busy_connection(s.addr, [127, 0, 0, 1]).await);
    }
    until_busy(&s, 3).await;
    let addr = s.addr;
    let waiting =
        tokio::spawn(async move { crate::support::http(addr, hyper::Method::GET, "/healthz", &[], "").await });
    // The fourth is held back (in the accept loop) however long it waits; a little while shows it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "a fourth connection was served while three busy ones held every slot"
    );
    assert_eq!((s.app.slots.open(), s.app.slots.busy()), (3, 3));
    drop(held.pop());
    let reply = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("the waiting client was not served after a slot freed")
        .unwrap();
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn idle_connections_give_way_when_the_server_is_full() {
    let s = Server::start_with(|s| s.max_connections = 20).await;
    // Twenty keep-alive connections, each asking for /healthz every 200 ms (well inside the idle timeout), hold
    // every slot between their requests.
    let stop = Arc::new(AtomicBool::new(false));
    let mut holders = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (addr, stop) = (s.addr, stop.clone());
        let stream = TcpStream::connect(addr).await.unwrap();
        holders.spawn(async move {
            let ask = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
            let mut answered = 0;
            while !stop.load(Ordering::SeqCst) {
                if write_all(&stream, ask.as_bytes()).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 1024];
                match tokio::time::timeout(PATIENCE, read_some(&stream, &mut buf)).await {
                    Ok(Ok(n)) if n > 0 => answered += 1,
                    _ => break,
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answered
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Authenticated work gets in, every time, while they keep going.
    for _ in 0..5 {
        let call = s.call(&s.admin, "subnets/get", json!({}));
        let (status, body) = tokio::time::timeout(PATIENCE, call)
            .await
            .expect("an authenticated call found no slot while idle connections held them all");
        assert_eq!(status, 200, "{body}");
    }
    stop.store(true, Ordering::SeqCst);
    let mut closed = 0;
    while let Some(answered) = holders.join_next().await {
        closed += usize::from(answered.unwrap() > 0);
    }
    assert_eq!(closed, 20, "every holder was served before it gave way");
}

#[tokio::test]
async fn one_address_cannot_take_every_slot() {
    let s = Server::start_with(|s| {
        s.max_connections = 10;
        s.max_connections_per_address = 4;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(busy_connection(s.addr, [127, 0, 0, 2]).await);
    }
    until_busy(&s, 4).await;
    // The same address's fifth connection is closed without an answer, while every one of its four is busy...
    let fifth = busy_connection(s.addr, [127, 0, 0, 2]).await;
    assert_eq!(read_until_closed(&fifth).await.as_deref(), Some(""));
    // ...and other addresses are served.
    for _ in 0..3 {
        healthy(s.addr).await;
    }
    s.ok(&s.admin, "subnets/get", json!({})).await;
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_failed_logins_locks_its_target_out_while_other_users_go_on() {
    let s = Arc::new(
        Server::start_with(|s| {
            s.ratelimit_enabled = true;
            s.api_rate_limit = "1000 per minute".into();
        })
        .await,
    );
    let a = s.admin.clone();
    let target = s.user(&a, "target", "standard").await;
    let bystander = s.user(&a, "bystander", "standard").await;
    s.ok(&bystander, "subnets/get", json!({})).await;

    let flooding = Arc::new(AtomicBool::new(true));
    let mut flood = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (s, wrong) = (s.clone(), target.with_password(&format!("guess-{worker}")));
        flood.spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..25 {
                let (status, body) = s.call(&wrong, "subnets/get", json!({})).await;
                answers.push((status, body["errorCode"].as_str().unwrap_or_default().to_string()));
            }
            answers
        });
    }
    let done = flooding.clone();
    let watcher = tokio::spawn(async move {
        while flood.join_next().await.is_some_and(|answers| {
            for (status, code) in answers.unwrap() {
                assert!(
                    matches!(
                        (status, code.as_str()),
                        (401, "auth_failed") | (429, "too_many_attempts") | (429, "rate_limited")
                    ),
                    "a failed login answered {status} {code}"
                );
            }
            true
        }) {}
        done.store(false, Ordering::SeqCst);
    });
    // The bystander works all through the flood, and every one of their calls succeeds.
    let mut calls = 0;
    while flooding.load(Ordering::SeqCst) || calls < 5 {
        s.ok(&bystander, "subnets/get", json!({})).await;
        calls += 1;
    }
    watcher.await.unwrap();
    // The target is locked out now, even with the right password; the admin is not.
    let (status, body) = s.call(&target, "subnets/get", json!({})).await;
    assert_eq!(
        (status, &body["errorCode"]),
        (429, &json!("too_many_attempts")),
        "{body}"
    );
    s.ok(&a, "subnets/get", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_finishes_requests_in_flight_and_refuses_new_ones_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::defaults();
    settings.db = dir.path().join("ipam.db");
    settings.backup_dir = dir.path().join("backups");
    settings.ratelimit_enabled = false;
    let (app, creds) = tokio::task::spawn_blocking(move || {
        let app = App::open(settings, METHODS).unwrap();
        let creds = ipamd::cli::first_run(&app.store, Some(ADMIN_PASSWORD.into()), 12)
            .unwrap()
            .unwrap();
        (app, creds)
    })
    .await
    .unwrap();
    let admin = Ident::new(0, &creds.org, &creds.username, &creds.password, &creds.appkey);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ipamd::server::run(listener, app, async {
        let _ = stopped.await;
    }));

    // In flight: a call whose body is half sent.
    let envelope = json!({"reqid": "in-flight", "appkey": admin.appkey, "userdata": admin.userdata}).to_string();
    let (head, tail) = envelope.split_at(envelope.len() / 2);
    let in_flight = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /1.0/userdata HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{head}",
        envelope.len()
    );
    write_all(&in_flight, request.as_bytes()).await.unwrap();
    // Idle: a keep-alive connection between two requests.
    let idle = TcpStream::connect(addr).await.unwrap();
    write_all(&idle, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_answer(&idle).await;

    stop.send(()).unwrap();
    // New connections are refused once the listener is closed.
    let mut refused = false;
    for _ in 0..2000 {
        match TcpStream::connect(addr).await {
            Err(e) => {
                // Refused, or reset when it reached the backlog just as the listener closed.
                use std::io::ErrorKind::{ConnectionRefused, ConnectionReset};
                assert!(matches!(e.kind(), ConnectionRefused | ConnectionReset), "{e}");
                refused = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(refused, "the server still accepts connections after the shutdown began");
    // The idle connection is closed without an answer, the one in flight finishes with a whole answer.
    assert_eq!(read_until_closed(&idle).await.as_deref(), Some(""));
    write_all(&in_flight, tail.as_bytes()).await.unwrap();
    let answer = read_until_closed(&in_flight)
        .await
        .expect("the call in flight never finished");
    let (status, body) = parse_answer(&answer);
    assert_eq!((status, &body["reqid"]), (200, &json!("in-flight")), "{answer}");
    assert_eq!(body["response"]["user"]["username"], json!("admin"), "{answer}");
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("server::run did not return after draining")
        .unwrap()
        .unwrap();
}
