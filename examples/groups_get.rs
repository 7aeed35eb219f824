//! A small ipamd client to copy: computes `userdata`, calls `groups/get` with `sort:"true"` over the `/1.0`
//! envelope API and prints the reply.
//!
//! Settings come from environment variables, each overridable by a flag:
//!
//! | variable         | flag         | default                 |
//! | ---------------- | ------------ | ----------------------- |
//! | `IPAMD_URL`      | `--url`      | `http://127.0.0.1:5000` |
//! | `IPAMD_ORG`      | `--org`      | `admin`                 |
//! | `IPAMD_USER`     | `--user`     | `admin`                 |
//! | `IPAMD_PASSWORD` | `--password` | (required)              |
//! | `IPAMD_APPKEY`   | `--appkey`   | (required)              |
//!
//! ```text
//! IPAMD_URL=http://127.0.0.1:5000 IPAMD_PASSWORD=... IPAMD_APPKEY=... cargo run --example groups_get
//! cargo run --example groups_get -- --url http://127.0.0.1:5000 --password ... --appkey ...
//! ```
//!
//! It speaks plain HTTP/1.1 with hyper's low-level client, so it needs nothing beyond the crates ipamd already
//! uses. Exits non-zero, with the reason on stderr, when the server cannot be reached or answers with an error.

use std::error::Error;
use std::process::ExitCode;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use tokio::net::TcpStream;

struct Settings {
    url: String,
    org: String,
    user: String,
    password: String,
    appkey: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Errors are printed as sentences, not as the Debug form `main` would print for a returned error.
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("groups_get: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let s = settings()?;

    // userdata = <org>/<user>:sha1hex(lowercase(user) + "-" + password)
    let sha1 = hex(&Sha1::digest(format!("{}-{}", s.user.to_lowercase(), s.password)));
    let envelope = json!({
        "reqid": "groups_get example",
        "appkey": s.appkey,
        "userdata": format!("{}/{}:{}", s.org, s.user, sha1),
        "data": {"sort": "true"},
    });

    let reply = post(&s.url, "groups/get", &envelope).await?;
    println!("{}", serde_json::to_string_pretty(&reply)?);
    match (reply["error"].as_str(), reply["errorCode"].as_str()) {
        (Some(message), code) => Err(format!("ipamd refused the call: {message} ({})", code.unwrap_or("?")).into()),
        (None, _) => Ok(()),
    }
}

/// POSTs `envelope` as raw JSON to `<base>/1.0/<method>` and returns the parsed reply, whatever its HTTP status:
/// ipamd answers errors with a JSON envelope too.
async fn post(base: &str, method: &str, envelope: &Value) -> Result<Value, Box<dyn Error>> {
    let uri: Uri = format!("{}/1.0/{}", base.trim_end_matches('/'), method).parse()?;
    if uri.scheme_str() != Some("http") {
        return Err("this example speaks plain http:// only".into());
    }
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri.authority().ok_or("the URL has no host")?.to_string();

    // An IPv6 literal keeps its brackets in the URL but not as a host to connect to.
    let stream = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .map_err(|e| format!("cannot connect to {base} ({e}); set IPAMD_URL or --url to the server's address"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection future drives the socket; it ends when `sender` is dropped.
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("connection error: {e}");
        }
    });

    let req = Request::post(uri)
        .header(HOST, authority)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(envelope)?)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("HTTP {status}, not JSON ({e})").into())
}

/// Environment variables first, then `--name value` flags over them.
fn settings() -> Result<Settings, Box<dyn Error>> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_string());
    let mut s = Settings {
        url: env("IPAMD_URL", "http://127.0.0.1:5000"),
        org: env("IPAMD_ORG", "admin"),
        user: env("IPAMD_USER", "admin"),
        password: env("IPAMD_PASSWORD", ""),
        appkey: env("IPAMD_APPKEY", ""),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--url" => &mut s.url,
            "--org" => &mut s.org,
            "--user" => &mut s.user,
            "--password" => &mut s.password,
            "--appkey" => &mut s.appkey,
            other => {
                return Err(
                    format!("unknown argument '{other}'; use --url, --org, --user, --password, --appkey").into(),
                )
            }
        };
        *slot = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    }
    if s.password.is_empty() || s.appkey.is_empty() {
        return Err("set IPAMD_PASSWORD and IPAMD_APPKEY (or pass --password and --appkey)".into());
    }
    Ok(s)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
