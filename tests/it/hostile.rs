//! Hostile input at both front doors, as tables and as property tests: malformed HTTP over raw TCP (lying
//! lengths, bodies that never end, garbage), bodies that are not JSON or nest without end, values that are not
//! what they claim (huge numbers, floats and negatives as ids, arrays for objects, NUL bytes, 1 MiB strings, bad
//! CIDRs, SQL fragments, backup names that climb out of the backup directory), and random JSON at every method and
//! route. Every answer must be a 4xx (or, for well-formed calls, a 2xx) with a JSON body — never a 5xx, a panic or
//! a dropped connection — and the server must answer `/healthz` afterwards.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;

use ipamd::methods::METHODS;
use ipamd::rest::ROUTES;
use ipamd::server::MAX_BODY;

use crate::support::{http, id_of, only, urlencode, Server};

/// The server's body timeout in these tests, in seconds (the default is 30).
const BODY_TIMEOUT_SECS: u64 = 1;

/// How long a raw exchange waits for the server's next byte before calling the connection open: well past the
/// body timeout above, so that only a server that neither answers nor closes reaches it.
const QUIET: Duration = Duration::from_secs(10);

/// What one malformed request must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// A JSON error from ipamd with this status, then anything that is a 4xx.
    Json(u16),
    /// A request hyper cannot parse as HTTP/1.1: hyper itself answers a bodiless 4xx and closes, before any route
    /// exists to answer JSON.
    Protocol,
    /// Not HTTP/1 at all (an HTTP/2 preface): a clean close is the answer.
    Close,
}

#[tokio::test]
async fn malformed_http_gets_a_4xx_and_the_server_carries_on() {
    let s = Server::start_with(|c| c.body_timeout_secs = BODY_TIMEOUT_SECS).await;
    let token = format!("Authorization: Bearer {}\r\n", s.admin_token);
    let head = |path: &str, extra: &str| format!("POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}");
    let ping = |extra: &str| head("/1.0/ping", extra);
    let networks = |extra: &str| head("/api/v1/networks", &format!("{token}{extra}"));
    let mut long_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
    long_header.extend(vec![b'a'; MAX_BODY]);
    long_header.extend(b"\r\n\r\n");
    let cases: Vec<(&str, Vec<u8>, bool, Want)> = vec![
        (
            "Content-Length larger than the body, then the client closes",
            format!("{}Content-Length: 100\r\n\r\n{{\"reqid\":1}}", ping("")).into_bytes(),
            true,
            Want::Json(400),
        ),
        (
            "Content-Length larger than the body, the client waits",
            format!("{}Content-Length: 100\r\n\r\n{{\"reqid\":1}}", networks("")).into_bytes(),
            false,
            Want::Json(400),
        ),
        (
            "Content-Length smaller than the body",
            format!("{}Content-Length: 5\r\n\r\n{{\"reqid\":1,\"appkey\":\"x\"}}", ping("")).into_bytes(),
            false,
            Want::Json(400),
        ),
        (
            "Content-Length smaller than the body, REST",
            format!("{}Content-Length: 5\r\n\r\n{{\"network\":\"10.0.0.0\"}}", networks("")).into_bytes(),
            false,
            Want::Json(400),
        ),
        (
            "a chunked body that never ends",
            format!("{}Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n", ping("")).into_bytes(),
            false,
            Want::Json(400),
        ),
        (
            "a chunked body that never ends, REST",
            format!("{}Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n", networks("")).into_bytes(),
            false,
            Want::Json(400),
        ),
        (
            "a chunk size that is not hex",
            format!("{}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", ping("")).into_bytes(),
            false,
            Want::Json(400),
        ),
        (
            "a chunk longer than it says",
            format!(
                "{}Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
                networks("")
            )
            .into_bytes(),
            false,
            Want::Json(400),
        ),
        (
            "Content-Length and Transfer-Encoding together",
            format!(
                "{}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                ping("")
            )
            .into_bytes(),
            false,
            Want::Json(400),
        ),
        (
            "just over 1 MiB, chunked, no length",
            chunked(&ping(""), MAX_BODY + 1),
            false,
            Want::Json(413),
        ),
        (
            "just over 1 MiB, chunked, no length, REST",
            chunked(&networks(""), MAX_BODY + 1),
            false,
            Want::Json(413),
        ),
        (
            "an invalid UTF-8 body",
            [ping("Content-Length: 4\r\n\r\n").as_bytes(), b"\xff\xfe{}"].concat(),
            false,
            Want::Json(400),
        ),
        (
            "a percent-encoded NUL in the method",
            b"POST /1.0/ping%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            false,
            Want::Json(404),
        ),
        (
            "a malformed query string",
            format!("GET /api/v1/hosts?page=%ZZ HTTP/1.1\r\nHost: x\r\n{token}Connection: close\r\n\r\n").into_bytes(),
            false,
            Want::Json(400),
        ),
        (
            "an Authorization header that is not UTF-8",
            b"GET /api/v1/hosts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer \xff\xfe\r\n\r\n"
                .to_vec(),
            false,
            Want::Json(401),
        ),
        (
            "a Content-Type that is not UTF-8",
            [
                ping("Content-Length: 2\r\nContent-Type: ").as_bytes(),
                b"\xff\r\n\r\n{}",
            ]
            .concat(),
            false,
            Want::Json(401),
        ),
        (
            "LF line endings",
            b"POST /1.0/ping HTTP/1.1\nHost: x\nConnection: close\nContent-Length: 2\n\n{}".to_vec(),
            false,
            Want::Json(401),
        ),
        (
            "HTTP/1.0",
            b"POST /1.0/ping HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            false,
            Want::Json(401),
        ),
        (
            "a request line that is not HTTP",
            b"GARBAGE\r\n\r\n".to_vec(),
            false,
            Want::Protocol,
        ),
        (
            "two different Content-Lengths",
            format!("{}Content-Length: 3\r\nContent-Length: 4\r\n\r\n{{}}  ", ping("")).into_bytes(),
            false,
            Want::Protocol,
        ),
        (
            "a negative Content-Length",
            format!("{}Content-Length: -1\r\n\r\n{{}}", ping("")).into_bytes(),
            false,
            Want::Protocol,
        ),
        (
            "a Content-Length beyond 2^64",
            format!("{}Content-Length: 99999999999999999999999\r\n\r\n{{}}", ping("")).into_bytes(),
            false,
            Want::Protocol,
        ),
        (
            "a path that is not UTF-8",
            b"POST /1.0/\xff\xfe HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
            false,
            Want::Protocol,
        ),
        (
            "a header line without a colon",
            b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
            false,
            Want::Protocol,
        ),
        (
            "a NUL byte in a header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n".to_vec(),
            false,
            Want::Protocol,
        ),
        ("a 1 MiB header", long_header, false, Want::Protocol),
        (
            "an HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            false,
            Want::Close,
        ),
    ];
    // All at once: the ones that wait for the body timeout overlap, and the server copes with the mix.
    let addr = s.addr;
    let tasks: Vec<_> = cases
        .into_iter()
        .map(|(name, request, close, want)| {
            tokio::spawn(async move {
                let (bytes, end) = exchange(addr, &request, close).await;
                let text = String::from_utf8_lossy(&bytes);
                let verdict = judge(&bytes, &end, want)
                    .map_err(|e| format!("{name}: {e}; ended {end:?}; answer: {}", &text[..text.len().min(400)]));
                let health = http(addr, Method::GET, "/healthz", &[], "").await;
                assert_eq!(health.status, 200, "/healthz after {name}");
                verdict
            })
        })
        .collect();
    let mut fails = Vec::new();
    for task in tasks {
        if let Err(e) = task.await.unwrap() {
            fails.push(e);
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

#[tokio::test]
async fn bodies_that_are_not_envelopes_or_records_get_a_json_4xx() {
    let s = Server::start().await;
    let deep_arrays = "[".repeat(100_000);
    let deep_objects = "{\"a\":".repeat(100_000);
    let creds = format!(r#""appkey":"{}","userdata":"{}""#, s.admin.appkey, s.admin.userdata);
    let deep_data = format!("{{{creds},\"data\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_closed = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let over = format!("{{{creds},\"data\":{{\"description\":\"{}\"}}}}", "x".repeat(MAX_BODY));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8", b"\xff\xfe\xfd".to_vec()),
        (
            "invalid UTF-8 in a string",
            b"{\"reqid\":\"\xff\",\"data\":{}}".to_vec(),
        ),
        ("overlong UTF-8", b"{\"reqid\":\"\xc0\xaf\"}".to_vec()),
        (
            "a UTF-16 surrogate escape alone",
            br#"{"reqid":"\ud800","data":{}}"#.to_vec(),
        ),
        ("a raw NUL in a string", b"{\"reqid\":\"a\x00b\"}".to_vec()),
        ("a raw NUL between tokens", b"{\x00}".to_vec()),
        ("100,000 nested arrays", deep_arrays.into_bytes()),
        ("100,000 nested objects", deep_objects.into_bytes()),
        ("100,000 nested arrays, closed", deep_closed.into_bytes()),
        ("data nested 100,000 deep", deep_data.into_bytes()),
        ("an array", b"[]".to_vec()),
        ("an array of objects", b"[{\"data\":{}}]".to_vec()),
        ("a string", b"\"x\"".to_vec()),
        ("a number", b"1e400".to_vec()),
        ("null", b"null".to_vec()),
        ("truncated", b"{\"reqid\":".to_vec()),
        ("trailing garbage", b"{}{}".to_vec()),
        ("a BOM", b"\xef\xbb\xbf{}".to_vec()),
        ("just over 1 MiB", over.into_bytes()),
    ];
    let mut fails = Vec::new();
    for (name, body) in &bodies {
        // The envelope as JSON and as a form, a REST create and a REST replace.
        let form = [b"data=".to_vec(), urlencode_bytes(body)].concat();
        let doors: [(&str, &str, &str, Vec<u8>); 4] = [
            ("POST", "/1.0/groups/add", "application/json", body.clone()),
            ("POST", "/1.0/groups/add", "application/x-www-form-urlencoded", form),
            ("POST", "/api/v1/networks", "application/json", body.clone()),
            ("PUT", "/api/v1/hosts/1", "application/json", body.clone()),
        ];
        for (verb, path, ct, bytes) in doors {
            let bearer = format!("Bearer {}", s.admin_token);
            let headers = [("content-type", ct), ("authorization", bearer.as_str())];
            let verb = Method::from_bytes(verb.as_bytes()).unwrap();
            let reply = s.request(verb.clone(), path, &headers, bytes).await;
            if let Err(e) = json_4xx(reply.status, &reply.body) {
                fails.push(format!("{verb} {path} ({ct}) with {name}: {e}"));
            }
        }
    }
    // The form itself broken: a bad escape, invalid UTF-8 once decoded, no data field.
    for form in [
        &b"data=%ZZ"[..],
        b"data=%FF%FE",
        b"other=1",
        b"data",
        b"&&&",
        b"data=%7B%00%7D",
    ] {
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let reply = s.request(Method::POST, "/1.0/ping", &headers, form.to_vec()).await;
        if let Err(e) = json_4xx(reply.status, &reply.body) {
            fails.push(format!("form {}: {e}", String::from_utf8_lossy(form)));
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
    let health = s.request(Method::GET, "/healthz", &[], "").await;
    assert_eq!(health.status, 200);
    // Nothing was created by any of it.
    assert_eq!(s.ok(&s.admin, "groups/get", json!({})).await, json!([]));
}

/// Values that are not what the parameter needs: each is refused with a 4xx naming the problem, by both doors.
#[tokio::test]
async fn numbers_ids_arrays_and_cidrs_that_are_not_what_they_claim_are_refused() {
    let s = Server::start().await;
    let a = &s.admin;
    let subnet = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "10.0.0.0/24"})).await));
    let host = id_of(only(&s.ok(a, "ipaddress/add", json!({"ip": "10.0.0.5"})).await));
    let group = id_of(only(&s.ok(a, "groups/add", json!({"description": "g"})).await));
    let before = s.dump(a).await;
    // Raw JSON text, so that numbers beyond every machine type reach the server exactly as written.
    let not_ids = [
        "1e400",
        "-1e400",
        "18446744073709551616",
        "-9223372036854775809",
        "9223372036854775808",
        "1.5",
        "1.0",
        "1e2",
        "-1",
        "0",
        "-0",
        "\"1.5\"",
        "\"-1\"",
        "\"0x10\"",
        "\"1e2\"",
        "\"18446744073709551616\"",
        "\"+1\"",
        "\"1 2\"",
        "\"١\"",
        "true",
        "[]",
        "[[1]]",
        "{}",
        "{\"a\":{}}",
    ];
    let mut fails = Vec::new();
    for raw in not_ids {
        let v: Value = serde_json::from_str(raw).unwrap();
        let calls = [
            ("groups/get", json!({"id": v})),
            ("groups/edit", json!({"id": v, "description": "x"})),
            ("groups/delete", json!({"id": v})),
            ("subnets/get", json!({"ids": [subnet, v]})),
            ("subnets/split", json!({"id": v, "parts": 2})),
            ("subnets/split", json!({"id": subnet, "parts": v})),
            ("ipaddress/get", json!({"id": v})),
            ("ipaddress/edit", json!({"id": host, "subnet": v})),
            ("ipaddress/massdelete", json!({"ids": [host, v]})),
            ("ipaddress/available", json!({"subnet": subnet, "limit": v})),
            ("org/logs", json!({"page": v})),
            ("org/logs", json!({"perpage": v})),
            ("subnets/add", json!({"subnet": "10.9.0.0/24", "vlan_id": v})),
            ("org/users/edit", json!({"id": v, "realname": "x"})),
        ];
        for (method, data) in calls {
            let (status, body) = s.call(a, method, data.clone()).await;
            let code = body["errorCode"].as_str().unwrap_or_default();
            if status != 400 || !["invalid_params", "invalid_split", "bad_request"].contains(&code) {
                fails.push(format!(
                    "{method} {data}: expected 400 invalid_params, got {status} {body}"
                ));
            }
        }
        let path = urlencode(raw);
        for route in [
            format!("/networks/{path}"),
            format!("/hosts/{path}"),
            format!("/dhcp-ranges/{path}"),
            format!("/ip/networks/{path}/next-ip"),
            format!("/hosts?page={path}"),
            format!("/hosts?per_page={path}"),
            format!("/hosts?network_id={path}"),
            format!("/ip/networks/{subnet}/available-ips?limit={path}"),
        ] {
            let reply = s.api(Method::GET, &route, &s.admin_token, None).await;
            if let Err(e) = json_4xx(reply.status, &reply.body) {
                fails.push(format!("GET {route}: {e}"));
            }
        }
    }

    // Arrays where objects are expected, objects where lists or text are expected.
    let shapes = [
        ("groups/add", json!({"description": ["a"]})),
        ("groups/add", json!({"description": {"a": 1}})),
        ("ipaddress/add", json!({"subnet": subnet, "fields": [1, 2]})),
        ("ipaddress/add", json!({"subnet": subnet, "fields": "owner=x"})),
        ("ipaddress/add", json!({"subnet": subnet, "hostname": [["x"]]})),
        ("subnets/add", json!({"subnet": ["10.9.0.0/24"]})),
        ("subnets/add", json!({"subnet": {"a": "10.9.0.0/24"}})),
        ("search/find", json!({"query": {"q": "x"}})),
        ("search/find", json!({"query": "x", "types": [["groups"]]})),
        ("search/find", json!({"query": "x", "types": 5})),
        ("org/edit", json!({"description": [null]})),
        (
            "subnets/fields/add",
            json!({"subnet": subnet, "name": "f", "options": [{"a": 1}], "type": "select"}),
        ),
    ];
    for (method, data) in shapes {
        let (status, body) = s.call(a, method, data.clone()).await;
        if status != 400 {
            fails.push(format!("{method} {data}: expected 400, got {status} {body}"));
        }
    }
    for data in ["[1, 2]", "\"x\"", "5", "true", "[{}]"] {
        let data: Value = serde_json::from_str(data).unwrap();
        let (status, body) = s.call(a, "groups/get", data.clone()).await;
        if (status, body["errorCode"].as_str()) != (400, Some("bad_request")) {
            fails.push(format!(
                "groups/get with data {data}: expected 400 bad_request, got {status} {body}"
            ));
        }
    }

    // CIDRs and addresses that are not, by both doors.
    for bad in [
        "1.2.3.4/33",
        "::/129",
        "01.2.3.4/24",
        "1.2.3/24",
        "1.2.3.4/-1",
        "1.2.3.4/",
        "/24",
        "1.2.3.4/24/24",
        "1.2.3.4/ 24",
        "256.0.0.0/8",
        "1.2.3.4/0x18",
        "::ffff:1.2.3.0/120",
        "1.2.3.4\u{0}/24",
        "１.2.3.4/24",
    ] {
        for (method, data) in [
            ("subnets/add", json!({"subnet": bad})),
            ("subnets/edit", json!({"id": subnet, "subnet": bad})),
            ("search/ip", json!({"ip": bad})),
        ] {
            let (status, body) = s.call(a, method, data.clone()).await;
            let code = body["errorCode"].as_str().unwrap_or_default();
            if status != 400 || !["invalid_params", "invalid_subnet"].contains(&code) {
                fails.push(format!(
                    "{method} {data}: expected 400 invalid_params/invalid_subnet, got {status} {body}"
                ));
            }
        }
    }
    for (network, cidr) in [
        (json!("1.2.3.4"), json!(33)),
        (json!("::"), json!(129)),
        (json!("01.2.3.4"), json!(24)),
        (json!("1.2.3"), json!(24)),
        (json!("10.9.0.0"), json!(-1)),
        (json!("10.9.0.0"), json!(24.0)),
        (json!("10.9.0.0"), json!("1e400")),
        (json!(167_837_696), json!(24)),
    ] {
        let data = json!({"network": network, "cidr": cidr});
        let (status, body) = s.call(a, "subnets/add", data.clone()).await;
        if status != 400 {
            fails.push(format!("subnets/add {data}: expected 400, got {status} {body}"));
        }
        let reply = s.api(Method::POST, "/networks", &s.admin_token, Some(&data)).await;
        if reply.status != 400 || json_4xx(reply.status, &reply.body).is_err() {
            fails.push(format!(
                "POST /networks {data}: expected a JSON 400, got {} {:?}",
                reply.status, reply.body
            ));
        }
    }
    for bad in [
        "01.2.3.4",
        "1.2.3",
        "1.2.3.4.5",
        "10.0.0.256",
        "::g",
        "10.0.0.5%eth0",
        "0x0a000005",
    ] {
        for (method, data) in [
            ("ipaddress/add", json!({"ip": bad, "subnet": subnet})),
            ("ipaddress/get", json!({"ip": bad})),
            (
                "dhcpranges/add",
                json!({"subnet": subnet, "start_ip": bad, "end_ip": "10.0.0.9"}),
            ),
            ("ipaddress/available", json!({"subnet": subnet, "after": bad})),
        ] {
            let (status, body) = s.call(a, method, data.clone()).await;
            if status != 400 {
                fails.push(format!("{method} {data}: expected 400, got {status} {body}"));
            }
        }
        let reply = s
            .api(Method::GET, &format!("/ip/{}", urlencode(bad)), &s.admin_token, None)
            .await;
        if reply.status != 400 || json_4xx(reply.status, &reply.body).is_err() {
            fails.push(format!("GET /ip/{bad}: expected a JSON 400, got {}", reply.status));
        }
    }
    for path in ["/ip/1.2.3.4/33", "/ip/::/129", "/ip/10.0.0.0/24"] {
        let reply = s.api(Method::GET, path, &s.admin_token, None).await;
        if reply.status != 400 || json_4xx(reply.status, &reply.body).is_err() {
            fails.push(format!("GET {path}: expected a JSON 400, got {}", reply.status));
        }
    }
    assert!(s.dump(a).await == before, "a refused call changed the org");
    s.ok(a, "groups/get", json!({"id": group})).await;
    assert!(
        fails.is_empty(),
        "{} refusals missing:\n{}",
        fails.len(),
        fails.join("\n")
    );
}

/// NUL bytes, huge strings and SQL fragments are text like any other: stored and returned exactly, or refused
/// with a 4xx — never a 5xx — and `%` and `_` match only themselves in searches and filters.
#[tokio::test]
async fn nul_bytes_huge_strings_and_sql_fragments_are_plain_text() {
    let s = Arc::new(Server::start().await);
    let a = &s.admin;
    let subnet = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "10.0.0.0/16"})).await));
    s.ok(a, "subnets/fields/add", json!({"subnet": subnet, "name": "owner"}))
        .await;
    let fragments = [
        "'; DROP TABLE addresses; --",
        "\"; DROP TABLE subnets; --",
        "' OR '1'='1",
        "%",
        "_",
        "\\",
        "%_%",
        "a\u{0}b",
        "\u{0}",
        "); DELETE FROM logs WHERE (1=1",
        "*/ SELECT * FROM users /*",
        "?1",
        "\u{202e}txet",
    ];
    // One round per fragment, all at once: writes commit together, and allocation stays atomic under the mix.
    let rounds: Vec<_> = fragments
        .iter()
        .enumerate()
        .map(|(n, frag)| tokio::spawn(fragment_round(s.clone(), subnet, n, frag)))
        .collect();
    let (mut fails, mut hosts) = (Vec::new(), 0);
    for round in rounds {
        let (failed, made) = round.await.unwrap();
        fails.extend(failed);
        hosts += made;
    }
    // Every table is still there and whole.
    let listed = s.ok(a, "ipaddress/get", json!({"subnet": subnet})).await;
    assert_eq!(listed.as_object().map_or(0, Map::len), hosts, "{listed}");
    s.ok(a, "org/logs", json!({})).await;
    s.ok(a, "org/users/get", json!({})).await;

    // `%` and `_` are literal in every substring match.
    for pattern in ["%", "_"] {
        let got = s.ok(a, "subnets/get", json!({"name": pattern})).await;
        let names: Vec<&str> = got
            .as_object()
            .map_or(vec![], |m| m.values().filter_map(|n| n["name"].as_str()).collect());
        assert!(
            !names.is_empty() && names.iter().all(|n| n.contains(pattern)),
            "subnets/get name {pattern}: {names:?}"
        );
    }
    let net = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "10.200.0.0/24"})).await));
    for hostname in ["plain", "with%percent", "with_under", "withXunder"] {
        s.ok(
            a,
            "ipaddress/add",
            json!({"subnet": net, "hostname": hostname, "description": hostname}),
        )
        .await;
    }
    for (pattern, matches) in [
        ("%", vec!["with%percent"]),
        ("_", vec!["with_under"]),
        ("h_u", vec!["with_under"]),
    ] {
        let got = s
            .ok(a, "ipaddress/get", json!({"subnet": net, "hostname": pattern}))
            .await;
        let names: Vec<&str> = got
            .as_object()
            .map_or(vec![], |m| m.values().filter_map(|h| h["hostname"].as_str()).collect());
        assert_eq!(names, matches, "ipaddress/get hostname {pattern}");
        let path = format!("/hosts?network_id={net}&hostname={}", urlencode(pattern));
        let reply = s.api(Method::GET, &path, &s.admin_token, None).await;
        let got = reply.json();
        let names: Vec<&str> = got["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["hostname"].as_str())
            .collect();
        assert_eq!(names, matches, "GET {path}");
        // search/find looks at every text of a record: each one found holds the pattern literally somewhere.
        let find = json!({"query": pattern, "types": ["addresses"], "limit": 1000});
        let found = s.ok(a, "search/find", find).await;
        let records: Vec<&Value> = found["addresses"].as_object().map_or(vec![], |m| m.values().collect());
        for r in &records {
            let mut texts: Vec<&str> = ["hostname", "cname", "mac_address", "description"]
                .iter()
                .filter_map(|k| r[*k].as_str())
                .collect();
            texts.extend(
                r["fields"]
                    .as_object()
                    .into_iter()
                    .flat_map(|f| f.values().filter_map(Value::as_str)),
            );
            assert!(
                texts.iter().any(|t| t.contains(pattern)),
                "search/find {pattern} found {r}"
            );
        }
        let names: Vec<&str> = records.iter().filter_map(|h| h["hostname"].as_str()).collect();
        for m in &matches {
            assert!(names.contains(m), "search/find {pattern} misses {m}: {names:?}");
        }
    }

    // A string of 1 MiB makes a body over the limit: 413 by both doors. Just under the limit is an ordinary call.
    let huge = "x".repeat(MAX_BODY);
    let (status, body) = s.call(a, "groups/add", json!({"description": huge})).await;
    assert_eq!((status, body["errorCode"].clone()), (413, json!("payload_too_large")));
    let reply = s
        .api(
            Method::POST,
            "/networks",
            &s.admin_token,
            Some(&json!({"network": "10.201.0.0", "cidr": 24, "name": huge})),
        )
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["code"], "payload_too_large");
    let big = "é".repeat((MAX_BODY - 4096) / 2);
    let (status, body) = s.call(a, "groups/add", json!({"description": big})).await;
    assert!(
        status == 200 || (400..500).contains(&status),
        "{status} {}",
        &body.to_string()[..200]
    );
    if status == 200 {
        let id = id_of(only(&body["response"]));
        let got = s.ok(a, "groups/get", json!({"id": id})).await;
        assert!(
            only(&got)["description"] == json!(big),
            "a large description came back changed"
        );
    }
    let health = s.request(Method::GET, "/healthz", &[], "").await;
    assert_eq!(health.status, 200);
    assert!(fails.is_empty(), "{}", fails.join("\n"));
}

/// Every text parameter given `frag`: stored and returned exactly, or refused with a 4xx. The failures, and the
/// number of address records made in `subnet`.
async fn fragment_round(s: Arc<Server>, subnet: i64, n: usize, frag: &'static str) -> (Vec<String>, usize) {
    let a = &s.admin;
    let mut fails = Vec::new();
    let mut hosts = 0;
    // Every text parameter that creates or edits something; each must come back exactly when accepted.
    let creates = [
        ("groups/add", json!({"description": frag}), "description"),
        (
            "subnets/add",
            json!({"subnet": format!("10.{}.0.0/24", n + 1), "name": frag}),
            "name",
        ),
        (
            "subnets/add",
            json!({"subnet": format!("10.{}.1.0/24", n + 1), "description": frag}),
            "description",
        ),
        (
            "subnets/add",
            json!({"subnet": format!("10.{}.2.0/24", n + 1), "domain": frag}),
            "domain",
        ),
        (
            "subnets/add",
            json!({"subnet": format!("10.{}.3.0/24", n + 1), "location": frag}),
            "location",
        ),
        ("ipaddress/add", json!({"subnet": subnet, "hostname": frag}), "hostname"),
        ("ipaddress/add", json!({"subnet": subnet, "cname": frag}), "cname"),
        (
            "ipaddress/add",
            json!({"subnet": subnet, "description": frag}),
            "description",
        ),
        (
            "ipaddress/add",
            json!({"subnet": subnet, "discovery_source": frag}),
            "discovery_source",
        ),
        (
            "ipaddress/add",
            json!({"subnet": subnet, "fields": {"owner": frag}}),
            "",
        ),
        (
            "subnets/fields/add",
            json!({"subnet": subnet, "name": format!("f{n}"), "description": frag}),
            "description",
        ),
        (
            "subnets/fields/add",
            json!({"subnet": subnet, "name": format!("g{n}"), "default": frag}),
            "default",
        ),
        ("subnets/fields/add", json!({"subnet": subnet, "name": frag}), "name"),
        ("org/appkeys/add", json!({"name": frag, "description": frag}), "name"),
        ("org/tokens/add", json!({"description": frag}), "description"),
        ("org/edit", json!({"description": frag}), "description"),
        ("org/users/edit", json!({"id": "self", "realname": frag}), "realname"),
    ];
    for (method, data, field) in creates {
        let (status, body) = s.call(a, method, data.clone()).await;
        match status {
            200 => {
                hosts += usize::from(method == "ipaddress/add");
                let record = match &body["response"] {
                    Value::Object(m) if m.len() == 1 => m.values().next().cloned().unwrap_or_default(),
                    other => other.clone(),
                };
                if !field.is_empty() && record.get(field).is_some() && record[field] != json!(frag) {
                    fails.push(format!("{method} {data}: stored {} as {}", json!(frag), record[field]));
                }
            }
            400..=499 if body.get("errorCode").is_some() => {}
            _ => fails.push(format!("{method} {data}: {status} {body}")),
        }
    }
    // Every text parameter that filters or searches.
    let reads = [
        ("search/find", json!({"query": frag})),
        ("search/ip", json!({"ip": frag})),
        ("ipaddress/get", json!({"hostname": frag})),
        ("ipaddress/get", json!({"cname": frag})),
        ("ipaddress/get", json!({"mac_address": frag})),
        ("ipaddress/get", json!({"status": frag})),
        ("subnets/get", json!({"name": frag, "domain": frag, "location": frag})),
        ("org/logs", json!({"method": frag, "objecttype": frag})),
        ("groups/get", json!({"sort": frag})),
        ("org/users/edit", json!({"id": frag})),
        ("backups/verify", json!({"name": frag})),
        ("ipaddress/add", json!({"ip": frag})),
        ("ipaddress/add", json!({"subnet": subnet, "mac_address": frag})),
        ("ipaddress/add", json!({"subnet": subnet, "status": frag})),
        ("ipaddress/add", json!({"subnet": subnet, "last_seen": frag})),
    ];
    for (method, data) in reads {
        let (status, body) = s.call(a, method, data.clone()).await;
        if !(status == 200 || (400..500).contains(&status) && body.get("errorCode").is_some()) {
            fails.push(format!("{method} {data}: {status} {body}"));
        }
        hosts += usize::from(method == "ipaddress/add" && status == 200);
    }
    // The credentials themselves.
    for who in [
        a.with_userdata(frag),
        a.with_appkey(frag),
        a.with_userdata(&format!("admin/{frag}:00")),
    ] {
        let (status, body) = s.call(&who, "userdata", json!({})).await;
        if !(401..=403).contains(&status) {
            fails.push(format!("userdata as {who:?}: {status} {body}"));
        }
    }
    // And through REST: filters, a token, a record.
    let q = urlencode(frag);
    for path in [
        format!("/hosts?hostname={q}"),
        format!("/hosts?cname={q}"),
        format!("/hosts?mac_address={q}"),
        format!("/hosts?status={q}"),
        format!("/networks?name={q}&domain={q}&location={q}"),
        format!("/ip/{q}"),
    ] {
        let reply = s.api(Method::GET, &path, &s.admin_token, None).await;
        if !(reply.status == 200 || json_4xx(reply.status, &reply.body).is_ok()) {
            fails.push(format!("GET {path}: {}", reply.status));
        }
    }
    if !frag.chars().any(char::is_control) {
        let reply = s.api(Method::GET, "/hosts", frag, None).await;
        if reply.status != 401 || json_4xx(reply.status, &reply.body).is_err() {
            fails.push(format!("GET /hosts with the token {frag:?}: {}", reply.status));
        }
    }
    let body = json!({"network_id": subnet, "hostname": frag, "description": frag});
    let reply = s.api(Method::POST, "/hosts", &s.admin_token, Some(&body)).await;
    match reply.status {
        201 => {
            hosts += 1;
            let host: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            if host["hostname"] != json!(frag) {
                fails.push(format!("POST /hosts {body}: stored as {}", host["hostname"]));
            }
        }
        s if json_4xx(s, &reply.body).is_ok() => {}
        s => fails.push(format!("POST /hosts {body}: {s}")),
    }
    (fails, hosts)
}

/// Backup names that try to leave `BACKUP_DIR` are refused by both doors, and nothing is read, restored or written.
#[tokio::test]
async fn backup_names_cannot_climb_out_of_the_backup_directory() {
    let s = Server::start().await;
    let a = &s.admin;
    s.ok(a, "groups/add", json!({"description": "live data"})).await;
    let real = s.ok(a, "backups/add", json!({})).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    // The live database sits next to BACKUP_DIR, under the name `ipam.db`.
    s.ok(a, "groups/add", json!({"description": "after the backup"})).await;
    let before = s.dump(a).await;
    let names = [
        "../ipam.db",
        "../../ipam.db",
        "..",
        "../",
        "./ipam.db",
        ".db",
        "/etc/passwd",
        "/x.db",
        "..\\ipam.db",
        "....//ipam.db",
        "backups/../../ipam.db",
        &format!("../backups/{real}"),
        &format!("./{real}"),
        &format!("{real}/../../ipam.db"),
        "%2e%2e%2fipam.db",
        "..%2fipam.db",
        "ipam.db\u{0}",
        "x.db\u{0}.txt",
        "~/x.db",
        "C:\\x.db",
        "\\\\server\\share\\x.db",
        "file:///etc/passwd",
        "ipam-backup-x.db-wal",
        "ipam-backup-x.db/",
    ];
    let mut fails = Vec::new();
    for name in names {
        for method in ["backups/verify", "backups/restore"] {
            let (status, body) = s.call(a, method, json!({"name": name})).await;
            if !(400..500).contains(&status) || body.get("errorCode").is_none() {
                fails.push(format!("{method} {name:?}: {status} {body}"));
            }
        }
        let encoded = urlencode(name);
        for (verb, path) in [
            (Method::GET, format!("/backups/{encoded}/verify")),
            (Method::POST, format!("/backups/{encoded}/verify")),
            (Method::POST, format!("/backups/{encoded}/restore")),
        ] {
            let reply = s.api(verb.clone(), &path, &s.admin_token, None).await;
            if let Err(e) = json_4xx(reply.status, &reply.body) {
                fails.push(format!("{verb} {path}: {e}"));
            }
        }
        // Unencoded, where the name is a valid URI path: `..` and `/` as path segments.
        if name.bytes().all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'%') {
            let path = format!("/backups/{name}/restore");
            let reply = s.api(Method::POST, &path, &s.admin_token, None).await;
            if let Err(e) = json_4xx(reply.status, &reply.body) {
                fails.push(format!("POST {path}: {e}"));
            }
        }
    }
    assert!(fails.is_empty(), "{}", fails.join("\n"));
    assert!(s.dump(a).await == before, "a refused backup name changed the live data");
    // The real one still verifies: the refusals were about the names.
    let ok = s.ok(a, "backups/verify", json!({"name": real})).await;
    assert_eq!(ok["integrity_ok"], "true");
}

/// Random JSON as `data` at every method of the table, as an operator admin (so that every method runs): a JSON
/// answer, 2xx or 4xx, every time.
#[test]
fn random_data_at_every_method() {
    let rt = runtime();
    let s = rt.block_on(Server::start());
    let fx = rt.block_on(fuzz_fixture(&s));
    let caller = RefCell::new(s.admin.clone());
    let strategy = (0..METHODS.len(), data(PARAMS, fx.ids.clone()));
    let mut runner = runner(320);
    let result = runner.run(&strategy, |(i, data)| {
        let method = METHODS[i].name;
        let who = caller.borrow().clone();
        let (status, body) = rt.block_on(async {
            let env = json!({"reqid": "fuzz", "appkey": who.appkey, "userdata": who.userdata, "data": data});
            let reply = s.post(method, &env).await;
            (reply.status, reply.body)
        });
        let v = json_answer(status, &body).map_err(|e| TestCaseError::fail(format!("{method} {data}: {e}")))?;
        prop_assert!(
            v.get("response").is_some() || v.get("errorCode").is_some(),
            "{method} {data}: {v}"
        );
        // Random ids may delete or disable the caller's own app key: give it a new one, to keep going deep.
        if ["bad_appkey", "appkey_disabled"].contains(&v["errorCode"].as_str().unwrap_or_default()) {
            let key = rt.block_on(new_appkey(&s, fx.org, who.id));
            *caller.borrow_mut() = who.with_appkey(&key);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let health = rt.block_on(s.request(Method::GET, "/healthz", &[], ""));
    assert_eq!(health.status, 200);
}

/// Random JSON bodies at every REST route, with the caller's real record ids in the paths.
#[test]
fn random_bodies_at_every_route() {
    let rt = runtime();
    let s = rt.block_on(Server::start());
    let fx = rt.block_on(fuzz_fixture(&s));
    let strategy = (0..ROUTES.len(), data(REST_FIELDS, fx.ids.clone()), any::<bool>());
    let mut runner = runner(160);
    let result = runner.run(&strategy, |(i, body, as_text)| {
        let route = &ROUTES[i];
        let path: String = route
            .path
            .split('/')
            .filter(|p| !p.is_empty())
            .map(|seg| match seg {
                "{id}" if route.method.starts_with("ipaddress/") && !route.path.contains("networks") => {
                    format!("/{}", fx.host)
                }
                "{id}" if route.method.starts_with("dhcpranges/") && !route.path.contains("networks") => {
                    format!("/{}", fx.range)
                }
                "{id}" => format!("/{}", fx.subnet),
                "{name}" => "/nothing-here.db".to_string(),
                "{ip}" => "/10.0.0.5".to_string(),
                other => format!("/{other}"),
            })
            .collect();
        let verb = Method::from_bytes(route.verb.as_bytes()).unwrap();
        // Sometimes the body as JSON text, sometimes a JSON string of it: both are bodies a client may send.
        let text = if as_text {
            json!(body.to_string()).to_string()
        } else {
            body.to_string()
        };
        let bearer = format!("Bearer {}", s.admin_token);
        let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
        let reply = rt.block_on(s.request(verb, &format!("/api/v1{path}"), &headers, text));
        if reply.status == 204 {
            prop_assert!(reply.body.is_empty(), "{} {path}: a 204 with a body", route.verb);
            return Ok(());
        }
        json_answer(reply.status, &reply.body)
            .map_err(|e| TestCaseError::fail(format!("{} {path} {body}: {e}", route.verb)))?;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let health = rt.block_on(s.request(Method::GET, "/healthz", &[], ""));
    assert_eq!(health.status, 200);
}

/// Random bytes as the whole body at both doors: a JSON 4xx every time.
#[test]
fn random_bytes_at_both_doors() {
    let rt = runtime();
    let s = rt.block_on(Server::start());
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        "[\\[\\]{}\",:0-9a-z \\\\]{0,64}".prop_map(String::into_bytes),
    ];
    let doors = prop::sample::select(vec![
        ("/1.0/groups/add", "application/json"),
        ("/1.0/groups/add", "application/x-www-form-urlencoded"),
        ("/api/v1/networks", "application/json"),
        ("/api/v1/hosts", "application/json"),
    ]);
    let mut runner = runner(128);
    let result = runner.run(&(doors, bodies), |((path, ct), body)| {
        let bearer = format!("Bearer {}", s.admin_token);
        let headers = [("content-type", ct), ("authorization", bearer.as_str())];
        let reply = rt.block_on(s.request(Method::POST, path, &headers, body.clone()));
        json_4xx(reply.status, &reply.body)
            .map_err(|e| TestCaseError::fail(format!("{path} {:?}: {e}", String::from_utf8_lossy(&body))))?;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The parameter names random `data` draws its keys from: every parameter of the table, except the few that
/// would lock the fuzzing caller out for good (its password, level, disabled flag, the org's identifier).
const PARAMS: &[&str] = &[
    "id",
    "ids",
    "subnet",
    "group",
    "parent",
    "description",
    "name",
    "sort",
    "recursive",
    "addresses",
    "fields",
    "force",
    "cidr",
    "parts",
    "network",
    "domain",
    "location",
    "vlan_id",
    "order",
    "page",
    "perpage",
    "ip",
    "hostname",
    "cname",
    "mac_address",
    "status",
    "is_assigned",
    "last_seen",
    "discovery_source",
    "all",
    "after",
    "limit",
    "start_ip",
    "end_ip",
    "is_active",
    "type",
    "options",
    "default",
    "required",
    "position",
    "query",
    "types",
    "time",
    "email",
    "realname",
    "username",
    "expires",
    "since",
    "until",
    "userid",
    "objectid",
    "objecttype",
    "method",
    "disabledreason",
    "owner",
];

/// The field names random REST bodies draw their keys from.
const REST_FIELDS: &[&str] = &[
    "id",
    "network",
    "cidr",
    "name",
    "domain",
    "vlan_id",
    "description",
    "location",
    "group_id",
    "ip_address",
    "hostname",
    "cname",
    "mac_address",
    "status",
    "is_assigned",
    "last_seen",
    "discovery_source",
    "network_id",
    "start_ip",
    "end_ip",
    "is_active",
    "broadcast_address",
    "total_hosts",
    "fields",
    "subnet",
    "ip",
];

/// Records for random calls to find: their ids go into the random values.
struct FuzzFixture {
    org: i64,
    subnet: i64,
    host: i64,
    range: i64,
    ids: Vec<i64>,
}

async fn fuzz_fixture(s: &Server) -> FuzzFixture {
    let a = &s.admin;
    let org = s.org_id(a).await;
    let group = id_of(only(&s.ok(a, "groups/add", json!({"description": "g"})).await));
    let subnet = id_of(only(
        &s.ok(a, "subnets/add", json!({"subnet": "10.0.0.0/24", "group": group}))
            .await,
    ));
    let v6 = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "2001:db8::/64"})).await));
    let field = id_of(only(
        &s.ok(a, "subnets/fields/add", json!({"subnet": subnet, "name": "owner"}))
            .await,
    ));
    let host = id_of(only(
        &s.ok(a, "ipaddress/add", json!({"ip": "10.0.0.5", "fields": {"owner": "x"}}))
            .await,
    ));
    let range = json!({"subnet": subnet, "start_ip": "10.0.0.100", "end_ip": "10.0.0.120"});
    let range = id_of(only(&s.ok(a, "dhcpranges/add", range).await));
    FuzzFixture {
        org,
        subnet,
        host,
        range,
        ids: vec![group, subnet, v6, field, host, range],
    }
}

/// A new app key for `user` of `org`, made straight in the database (the caller's own ones may all be gone).
async fn new_appkey(s: &Server, org: i64, user: i64) -> String {
    s.app
        .store
        .run(move |db| db.write(|tx| ipamd::methods::appkeys::insert(tx, org, user, "fuzz", None, 0)))
        .await
        .unwrap()
        .1
}

/// Random `data`: mostly objects whose keys are parameter names and whose values are the shapes clients send
/// (and some they should not), sometimes any JSON at all.
fn data(keys: &'static [&'static str], ids: Vec<i64>) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        8 => prop::sample::select(keys).prop_map(str::to_string),
        1 => "[a-z_]{1,8}",
    ];
    let object =
        prop::collection::btree_map(key, value(ids.clone()), 0..5).prop_map(|m| Value::Object(m.into_iter().collect()));
    prop_oneof![6 => object, 1 => value(ids)]
}

fn value(ids: Vec<i64>) -> impl Strategy<Value = Value> {
    let literals = [
        "1e400",
        "-1e400",
        "18446744073709551616",
        "-9223372036854775809",
        "9223372036854775807",
        "0.5",
        "-0",
        "1e2",
    ]
    .map(|n| serde_json::from_str::<Value>(n).unwrap());
    let texts = [
        "10.0.0.0/24",
        "10.0.0.7",
        "10.0.0.0",
        "2001:db8::/64",
        "2001:db8::1",
        "::",
        "1.2.3.4/33",
        "::/129",
        "01.2.3.4",
        "1.2.3",
        "true",
        "false",
        "yes",
        "0",
        "1",
        "-1",
        "",
        " ",
        "self",
        "text",
        "select",
        "active",
        "reserved",
        "aa:bb:cc:dd:ee:ff",
        "2024-01-01T00:00:00Z",
        "groups",
        "subnets,addresses",
        "%",
        "_",
        "'; DROP TABLE addresses; --",
        "a\u{0}b",
        "ipam-backup-20000101-000000Z.db",
        "../ipam.db",
    ]
    .map(Value::from);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(ids).prop_map(Value::from),
        (-2i64..40).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        prop::sample::select(literals.to_vec()),
        prop::sample::select(texts.to_vec()),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        // Each case is an HTTP call: shrink a little, not for minutes.
        max_shrink_iters: 256,
        ..Config::default()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A 2xx or 4xx answer with a JSON body.
fn json_answer(status: u16, body: &[u8]) -> Result<Value, String> {
    if !(200..300).contains(&status) && !(400..500).contains(&status) {
        return Err(format!("status {status}: {}", String::from_utf8_lossy(body)));
    }
    serde_json::from_slice(body)
        .map_err(|e| format!("status {status}, not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

/// A 4xx answer whose body is a JSON error object (either door's shape).
fn json_4xx(status: u16, body: &[u8]) -> Result<Value, String> {
    let v = json_answer(status, body)?;
    if !(400..500).contains(&status) {
        return Err(format!("status {status}, expected a 4xx: {v}"));
    }
    if v.get("errorCode")
        .or_else(|| v.get("code"))
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(format!("status {status} without an error code: {v}"));
    }
    Ok(v)
}

/// `head` (request line and headers, without the blank line) with a chunked body of `len` spaces.
fn chunked(head: &str, len: usize) -> Vec<u8> {
    let mut out = format!("{head}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
    let mut left = len;
    while left > 0 {
        let n = left.min(64 * 1024);
        out.extend(format!("{n:x}\r\n").into_bytes());
        out.extend(vec![b' '; n]);
        out.extend(b"\r\n");
        left -= n;
    }
    out.extend(b"0\r\n\r\n");
    out
}

/// Percent-encodes every byte but the unreserved ones (for bodies that are not UTF-8).
fn urlencode_bytes(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => vec![*b],
            _ => format!("%{b:02X}").into_bytes(),
        })
        .collect()
}

/// How a raw exchange ended.
#[derive(Debug, PartialEq)]
enum End {
    /// The server closed the connection (FIN).
    Closed,
    /// The connection was reset or failed.
    Failed(String),
    /// The server said nothing for [`QUIET`] and left the connection open.
    Silent,
}

/// Writes `request` on a fresh connection (then closes the write half when `close`), and reads until the server
/// closes or goes quiet for [`QUIET`].
async fn exchange(addr: SocketAddr, request: &[u8], close: bool) -> (Vec<u8>, End) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut sent = 0;
    // The server may answer and close before it has read everything: a failed write is not the test's concern.
    while sent < request.len() {
        if stream.writable().await.is_err() {
            break;
        }
        match stream.try_write(&request[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        }
    }
    if close {
        let std = stream.into_std().unwrap();
        let _ = std.shutdown(std::net::Shutdown::Write);
        stream = TcpStream::from_std(std).unwrap();
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = async {
            loop {
                stream.readable().await?;
                match stream.try_read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    other => return other,
                }
            }
        };
        match tokio::time::timeout(QUIET, read).await {
            Err(_) => return (out, End::Silent),
            Ok(Ok(0)) => return (out, End::Closed),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (out, End::Failed(e.to_string())),
        }
    }
}

/// One HTTP response read off a raw connection.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// The responses in `bytes`, in order (ipamd and hyper always send a Content-Length).
fn answers(mut bytes: &[u8]) -> Result<Vec<Answer>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("a response head without its end")?;
        let head = std::str::from_utf8(&bytes[..end]).map_err(|_| "a response head that is not UTF-8")?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("a response without a status")?;
        let len: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .ok_or("a response without a Content-Length")?;
        let body = bytes.get(end + 4..end + 4 + len).ok_or("a truncated response body")?;
        out.push(Answer {
            status,
            body: body.to_vec(),
        });
        bytes = &bytes[end + 4 + len..];
    }
    Ok(out)
}

/// Whether a raw exchange went as `want` says.
fn judge(bytes: &[u8], end: &End, want: Want) -> Result<(), String> {
    let answers = answers(bytes)?;
    if let Some(a) = answers.iter().find(|a| !(400..500).contains(&a.status)) {
        return Err(format!("a {} answer", a.status));
    }
    match (want, answers.first()) {
        (Want::Close, None) if *end == End::Closed => Ok(()),
        (Want::Close, _) => Err("expected a clean close".into()),
        (_, None) => Err("no answer".into()),
        // Anything after the first answer is hyper's, for bytes that were left over: a 4xx (checked above).
        (Want::Json(status), Some(first)) => {
            let v = json_4xx(first.status, &first.body)?;
            if first.status != status {
                return Err(format!("expected {status}, got {} {v}", first.status));
            }
            if *end != End::Closed {
                return Err("the connection was not closed after Connection: close".into());
            }
            Ok(())
        }
        (Want::Protocol, Some(_)) if *end == End::Closed => Ok(()),
        (Want::Protocol, Some(_)) => Err("expected a close after the protocol error".into()),
    }
}
