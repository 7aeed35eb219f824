//! Webhook deliveries: the task that posts the outbox `Ctx::log` fills (`webhook_deliveries`, schema.sql migration
//! 12) to each subscription's URL, in commit order per subscription, signed as Standard Webhooks do, only to the
//! destinations `IPAMD_WEBHOOK_ALLOW` permits, over TLS for `https` URLs, retried with exponential backoff and
//! jitter, then marked failed.
//!
//! It runs beside the server (`server::run` starts it) and shares nothing with the calls but the store: a slow or
//! dead receiver holds one of its own tasks, never a database thread, the writer or a request. Deliveries are
//! at-least-once: a delivery is marked delivered after the receiver's 2xx, so a stop in between sends it again.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::db::params;
use base64::Engine;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::app::App;
use crate::error::{Error, Result};

/// Most deliveries in flight at once (one per subscription at a time).
const MAX_IN_FLIGHT: usize = 64;

/// The longest wait between two retries.
const MAX_BACKOFF_MS: u64 = 3_600_000;

/// The prefix of a signing secret, as Standard Webhooks write them: `whsec_` and the key in base64.
const SECRET_PREFIX: &str = "whsec_";

/// How deliveries leave: where they may go, and the TLS client of `https` URLs. Built once from the settings, at
/// start (`serve` refuses to start when it cannot be).
#[derive(Clone)]
pub struct Outbound {
    allow: Allow,
    tls: TlsConnector,
}

impl Outbound {
    pub fn new(settings: &crate::config::Settings) -> Result<Outbound, String> {
        Ok(Outbound {
            allow: Allow::parse(&settings.webhook_allow)?,
            tls: TlsConnector::from(tls(&settings.webhook_ca_file)?),
        })
    }
}

/// The TLS client of `https` deliveries: a receiver's certificate must chain to one of Mozilla's roots
/// (webpki-roots) or of the PEM certificates in `ca_file` (`IPAMD_WEBHOOK_CA_FILE`; empty: none), and name the
/// URL's host; HTTP/1.1 only.
fn tls(ca_file: &str) -> Result<Arc<ClientConfig>, String> {
    let roots = crate::tls::roots(ca_file, "IPAMD_WEBHOOK_CA_FILE")?;
    let mut config = ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Where webhooks may deliver (`IPAMD_WEBHOOK_ALLOW`).
#[derive(Debug, Clone, Default)]
pub struct Allow {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
}

impl Allow {
    /// Comma-separated CIDRs (or single addresses) and host names; empty allows every public address.
    pub fn parse(setting: &str) -> Result<Allow, String> {
        let mut allow = Allow::default();
        for item in setting.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if let Ok(net) = item.parse::<IpNet>() {
                allow.nets.push(net);
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if item
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                allow.hosts.push(item.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "IPAMD_WEBHOOK_ALLOW: '{item}' is neither a CIDR nor a host name"
                ));
            }
        }
        Ok(allow)
    }

    /// Whether a delivery for `host` may go to `ip`: an address in a listed CIDR (loopback and private ones only
    /// so), or a public address of a listed host (any public address when nothing is listed).
    pub fn permits(&self, host: &str, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.nets.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        let listed =
            (self.nets.is_empty() && self.hosts.is_empty()) || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host));
        listed && public(ip)
    }
}

/// Whether `ip` is a globally routable unicast address: not loopback, private, link-local, shared (CGNAT),
/// unique-local, multicast, unspecified or reserved.
fn public(ip: IpAddr) -> bool {
    const INTERNAL: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/3",
        "::/127",
        "64:ff9b::/96",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ];
    !INTERNAL
        .iter()
        .filter_map(|n| n.parse::<IpNet>().ok())
        .any(|n| n.contains(&ip))
}

/// A webhook URL taken apart: `http[s]://host[:port]/path?query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Whether the URL is `https`: the delivery speaks TLS, verifying the receiver's certificate for `host`.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The path and query, `/` at least.
    pub path: String,
}

/// The port of `http` (80) or, with `tls`, of `https` (443): a URL's when it names none, left out of `Host`.
fn scheme_port(tls: bool) -> u16 {
    match tls {
        true => 443,
        false => 80,
    }
}

/// Parses a subscription's URL: `http` or `https`.
pub fn target(url: &str) -> Result<Target, String> {
    if url.len() > 2048 {
        return Err("must be at most 2048 bytes".into());
    }
    let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return Err("must be an http:// or https:// URL".into()),
    };
    let default_port = scheme_port(tls);
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let path = match path.starts_with('?') {
        true => format!("/{path}"),
        false => path.to_string(),
    };
    if authority.contains('@') {
        return Err("must not carry credentials".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => match p.parse::<u16>() {
            Ok(port) if !h.contains(':') || h.starts_with('[') => (h, port),
            _ if authority.starts_with('[') && authority.ends_with(']') => (authority, default_port),
            _ => return Err("has a bad port".into()),
        },
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must name a host and a path without spaces".into());
    }
    Ok(Target {
        tls,
        host: host.to_ascii_lowercase(),
        port,
        path,
    })
}

/// A new signing secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> Result<String> {
    let mut key = [0u8; 32];
    getrandom::getrandom(&mut key).map_err(|e| Error::internal(format!("no random bytes: {e}")))?;
    Ok(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// The `webhook-signature` of a message: `v1,` and the base64 HMAC-SHA256, under the secret's key, of
/// `<id>.<timestamp>.<body>` (Standard Webhooks).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .map_err(|e| Error::internal(format!("a webhook secret is not base64: {e}")))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|e| Error::internal(format!("hmac: {e}")))?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!("v1,{}", b64.encode(mac.finalize().into_bytes())))
}

/// A delivery due now: the oldest pending one of its subscription.
struct Due {
    id: i64,
    webhook: i64,
    change: i64,
    payload: String,
    attempts: i64,
    url: String,
    secret: String,
}

/// Delivers the outbox until the store goes away: wakes on every commit (new deliveries), when a delivery ends
/// (its subscription's next one), and when the earliest retry is due.
pub async fn deliver(app: App) {
    let out = match Outbound::new(&app.settings) {
        Ok(out) => Arc::new(out),
        Err(e) => {
            tracing::error!(error = %e, "webhooks are not delivered");
            return;
        }
    };
    let mut commits = app.store.commits();
    // The subscriptions with a delivery in flight. A delivery's task reports its end here only after its outcome
    // committed, and the loop forgets it before reading the outbox again: a read never finds an attempt pending
    // that has in fact ended, which would send it twice.
    let mut busy: HashSet<i64> = HashSet::new();
    let (ended, mut endings) = tokio::sync::mpsc::unbounded_channel::<i64>();
    loop {
        while let Ok(webhook) = endings.try_recv() {
            busy.remove(&webhook);
        }
        commits.borrow_and_update();
        let now = now_ms(&app);
        let found = app.store.run(move |db| db.read(|tx| due(tx, now))).await;
        let next = match found {
            Ok((due, next)) => {
                for d in due {
                    if busy.len() >= MAX_IN_FLIGHT || !busy.insert(d.webhook) {
                        continue;
                    }
                    let (app, out, ended) = (app.clone(), out.clone(), ended.clone());
                    tokio::spawn(async move {
                        let outcome = send(&app, &out, &d).await;
                        if let Err(e) = record(&app, &d, outcome).await {
                            tracing::warn!(error = %e, delivery = d.id, "a delivery's outcome was not recorded");
                        }
                        let _ = ended.send(d.webhook);
                    });
                }
                next
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the webhook outbox failed");
                Some(now + 1000)
            }
        };
        let pause = next.map_or(60_000, |t| t.saturating_sub(now).clamp(0, 60_000));
        tokio::select! {
            changed = commits.changed() => if changed.is_err() { return },
            Some(webhook) = endings.recv() => { busy.remove(&webhook); }
            _ = tokio::time::sleep(Duration::from_millis(u64::try_from(pause).unwrap_or(0))) => {}
        }
    }
}

/// The time for the outbox's stamps, in unix milliseconds, from the app's clock.
fn now_ms(app: &App) -> i64 {
    app.clock.now_millis()
}

/// The deliveries due at `now` (each enabled subscription's oldest pending one, if its time has come) and when
/// the next pending one falls due.
fn due(tx: &crate::store::Tx, now: i64) -> Result<(Vec<Due>, Option<i64>)> {
    let due = tx.rows(
        "SELECT d.id, d.webhook_id, d.change_id, d.payload, d.attempts, w.url, w.secret
         FROM webhooks w JOIN webhook_deliveries d ON d.id = (
             SELECT min(p.id) FROM webhook_deliveries p WHERE p.webhook_id = w.id AND p.status = 'pending')
         WHERE w.enabled = 1 AND d.next_attempt <= ?1
         LIMIT 256",
        params![now],
        |r| {
            Ok(Due {
                id: r.get(0)?,
                webhook: r.get(1)?,
                change: r.get(2)?,
                payload: r.get(3)?,
                attempts: r.get(4)?,
                url: r.get(5)?,
                secret: r.get(6)?,
            })
        },
    )?;
    let next = tx.query_row(
        "SELECT min(next_attempt) FROM webhook_deliveries WHERE status = 'pending' AND next_attempt > ?1",
        params![now],
        |r| r.get(0),
    )?;
    Ok((due, next))
}

/// Posts one delivery: the receiver's HTTP status, or why there is none.
async fn send(app: &App, out: &Outbound, d: &Due) -> Result<u16, String> {
    let allow = &out.allow;
    let target = target(&d.url)?;
    let timeout = Duration::from_millis(app.settings.webhook_timeout_ms);
    let id = format!("msg_{}", d.change);
    let timestamp = app.clock.now();
    let signed = signature(&d.secret, &id, timestamp, &d.payload).map_err(|e| e.message)?;
    let post = async {
        let addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", target.host))?;
        let addrs: Vec<SocketAddr> = addrs.filter(|a| allow.permits(&target.host, a.ip())).collect();
        let Some(addr) = addrs.first() else {
            return Err(format!(
                "{} is not an allowed destination (IPAMD_WEBHOOK_ALLOW)",
                target.host
            ));
        };
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        // The address actually connected to, checked again.
        match stream.peer_addr() {
            Ok(peer) if allow.permits(&target.host, peer.ip()) => {}
            _ => return Err(format!("{addr} is not an allowed destination")),
        }
        let name = match target.host.contains(':') {
            true => format!("[{}]", target.host),
            false => target.host.clone(),
        };
        let host = match target.port {
            port if port == scheme_port(target.tls) => name,
            port => format!("{name}:{port}"),
        };
        let request = hyper::Request::post(target.path.as_str())
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, concat!("ipamd/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed.as_str())
            .body(Full::new(Bytes::from(d.payload.clone())))
            .map_err(|e| format!("request: {e}"))?;
        if !target.tls {
            return exchange(stream, request).await;
        }
        // The certificate is verified for the URL's host (a name, or an address literal), over the connection
        // checked above.
        let server = ServerName::try_from(target.host.clone())
            .map_err(|e| format!("{} cannot be verified by TLS: {e}", target.host))?;
        let stream = out
            .tls
            .connect(server, stream)
            .await
            .map_err(|e| format!("tls with {}: {e}", target.host))?;
        exchange(stream, request).await
    };
    match tokio::time::timeout(timeout, post).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// Sends `request` over `stream` (plain or TLS): the status of the answer. Redirects are not followed: a 3xx is a
/// failed attempt like any answer but a 2xx.
async fn exchange<S>(stream: S, request: hyper::Request<Full<Bytes>>) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    let answer = sender.send_request(request).await.map_err(|e| format!("http: {e}"))?;
    Ok(answer.status().as_u16())
}

/// Records how an attempt went: delivered on a 2xx; otherwise retried after a doubling, jittered pause, or
/// failed after `IPAMD_WEBHOOK_ATTEMPTS` attempts. Only a delivery still pending is touched (a redelivery asked
/// for meanwhile starts afresh).
async fn record(app: &App, d: &Due, outcome: Result<u16, String>) -> Result<()> {
    let attempts = d.attempts + 1;
    let error = match &outcome {
        Ok(code) if (200..300).contains(code) => None,
        Ok(code) => Some(format!("the receiver answered {code}")),
        Err(e) => Some(e.clone()),
    };
    if let Some(e) = &error {
        tracing::warn!(delivery = d.id, webhook = d.webhook, attempt = attempts, error = %e, "a webhook delivery failed");
    }
    let delivered = error.is_none();
    let last_status = outcome.as_ref().ok().map(|c| i64::from(*c));
    let state = match (delivered, attempts >= i64::from(app.settings.webhook_attempts)) {
        (true, _) => "delivered",
        (false, true) => "failed",
        (false, false) => "pending",
    };
    let now = now_ms(app);
    let doubling = 1u64 << u32::try_from(attempts - 1).unwrap_or(0).min(30);
    let backoff = app
        .settings
        .webhook_retry_ms
        .saturating_mul(doubling)
        .min(MAX_BACKOFF_MS);
    // Full jitter over the upper half: retries of many subscriptions spread out, none comes early by more than half.
    let mut r = [0u8; 2];
    let _ = getrandom::getrandom(&mut r);
    let pause = backoff / 2 + backoff / 2 * u64::from(u16::from_le_bytes(r)) / u64::from(u16::MAX);
    let next = now.saturating_add(i64::try_from(pause).unwrap_or(i64::MAX / 2));
    let id = d.id;
    app.store
        .run(move |db| {
            db.write(|tx| {
                tx.execute(
                    "UPDATE webhook_deliveries SET status = ?1, attempts = ?2, last_status = ?3, last_error = ?4,
                                                   next_attempt = ?5, updated = ?6
                     WHERE id = ?7 AND status = 'pending'",
                    params![state, attempts, last_status, error, next, now / 1000, id],
                )?;
                Ok(())
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_taken_apart_and_only_http_and_https_are_accepted() {
        let t = target("http://127.0.0.1:8080/hook?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8080, "/hook?x=1")
        );
        let t = target("http://Example.org").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("example.org", 80, "/"));
        let t = target("http://[::1]:9000/h").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        let t = target("https://Hooks.example.org/in").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (true, "hooks.example.org", 443, "/in")
        );
        assert_eq!(target("https://[::1]").unwrap().port, 443);
        assert!(!target("http://x/").unwrap().tls);
        for bad in [
            "https://user:pw@x/",
            "https:/x/",
            "ftp://x/",
            "http://user:pw@x/",
            "http://x:99999/",
            "http:///p",
            "http://x/a b",
        ] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_public_addresses_go_unless_a_listed_cidr_holds_them() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let any = Allow::parse("").unwrap();
        assert!(any.permits("example.org", ip("93.184.216.34")));
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!any.permits("x", ip(internal)), "{internal}");
        }
        let listed = Allow::parse("127.0.0.1/32, hooks.example.org").unwrap();
        assert!(listed.permits("localhost", ip("127.0.0.1")));
        assert!(!listed.permits("localhost", ip("127.0.0.2")));
        assert!(listed.permits("hooks.example.org", ip("93.184.216.34")));
        assert!(!listed.permits("other.example.org", ip("93.184.216.34")));
        assert!(!listed.permits("hooks.example.org", ip("10.0.0.1")));
        assert!(Allow::parse("not a host!").is_err());
    }

    /// The CA file of `https` deliveries adds to the built-in roots; one that cannot be read or holds no
    /// certificate is refused, naming the setting (`serve` does not start with it).
    #[test]
    fn a_ca_file_must_hold_certificates() {
        assert!(tls("").is_ok());
        let dir = tempfile::TempDir::new().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = tls(missing.to_str().unwrap()).unwrap_err();
        assert!(e.starts_with("IPAMD_WEBHOOK_CA_FILE: "), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = tls(empty.to_str().unwrap()).unwrap_err();
        assert!(e.ends_with("holds no PEM certificate"), "{e}");
    }

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signatures_are_those_of_standard_webhooks() {
        let signed = signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(new_secret().unwrap().starts_with("whsec_"));
    }
}
