//! The decoders that face the network, checked on any input: the envelope decoder, the address, CIDR and MAC
//! parsers, the REST route matcher, and whole REST requests through the REST door. Each `check_*` function states
//! what must hold for every input, and panics when it does not.
//!
//! The same functions serve two runners: proptest in the normal suite (the `tests` module below, what CI runs),
//! and the cargo-fuzz targets in `fuzz/`, which include this file. So above the `tests` module this file uses
//! nothing but `ipamd` and `serde_json`.

use std::net::IpAddr;

use serde_json::Value;

use ipamd::app::App;
use ipamd::dispatch::dispatch;
use ipamd::door::{Door, Rendered};
use ipamd::error::Code;
use ipamd::handler::{Credentials, Outcome};
use ipamd::net::{self, CidrError};
use ipamd::rest::{self, RestDoor, ROUTES};
use ipamd::rpc;

/// `rpc::decode`: a body is an envelope exactly when it is a JSON object (after the form layer) whose `appkey` and
/// `userdata` are strings or absent; the call then carries the method and the parts unchanged, and a refusal is
/// a `bad_request` that echoes the `reqid` only when it could be read. Rendering any decoded data the manageips
/// way leaves no scalar that is not a string.
pub fn check_envelope(method: &str, body: &[u8], form: bool) {
    let decoded = rpc::decode(method, body, form);
    let raw_json = body.trim_ascii_start().starts_with(b"{");
    if !form || raw_json {
        let parsed = std::str::from_utf8(body)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        let acceptable = parsed.as_ref().and_then(Value::as_object).is_some_and(|o| {
            ["appkey", "userdata"]
                .iter()
                .all(|k| matches!(o.get(*k), None | Some(Value::Null) | Some(Value::String(_))))
        });
        assert_eq!(
            decoded.is_ok(),
            acceptable,
            "decode({method:?}, {body:?}) disagrees with serde_json"
        );
        if let (Err(rejected), Some(Value::Object(o))) = (&decoded, &parsed) {
            assert_eq!(
                rejected.0,
                o.get("reqid").cloned().unwrap_or(Value::Null),
                "the reqid is not echoed"
            );
        }
        if let (Ok(env), Some(Value::Object(o))) = (&decoded, &parsed) {
            assert_eq!(env.reqid, o.get("reqid").cloned().unwrap_or(Value::Null));
            assert_eq!(env.call.data, o.get("data").cloned().unwrap_or(Value::Null));
            let text = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
            match &env.call.credentials {
                Credentials::Envelope { appkey, userdata } => {
                    assert_eq!((appkey, userdata), (&text("appkey"), &text("userdata")));
                }
                other => panic!("an envelope decoded to {other:?}"),
            }
        }
    }
    match decoded {
        Ok(env) => {
            assert_eq!(env.call.method, method);
            let rendered = serde_json::to_value(rpc::Manageips(&env.call.data)).expect("renders");
            assert_all_strings(&rendered);
        }
        Err(rejected) => {
            let (_, e) = *rejected;
            assert_eq!(e.code, Code::BadRequest, "{e}");
            assert!(!e.message.is_empty());
        }
    }
}

fn assert_all_strings(v: &Value) {
    match v {
        Value::Null | Value::String(_) => {}
        Value::Array(items) => items.iter().for_each(assert_all_strings),
        Value::Object(m) => m.values().for_each(assert_all_strings),
        other => panic!("manageips left the scalar {other}"),
    }
}

/// `net::parse_addr`: exactly what std parses once surrounding ASCII whitespace is trimmed, round-tripping
/// through its text and its database key.
pub fn check_address(s: &str) {
    let std: Option<IpAddr> = s.trim_ascii().parse().ok();
    match net::parse_addr(s) {
        Ok(ip) => {
            assert_eq!(Some(ip), std, "{s:?}");
            assert_eq!(net::parse_addr(&ip.to_string()), Ok(ip));
            let key = net::key(ip);
            assert_eq!(net::from_key(key, ip.is_ipv4()), ip);
            assert_eq!(net::bytes_key(&net::key_bytes(key)), Some(key));
        }
        Err(message) => {
            assert_eq!(std, None, "{s:?} refused: {message}");
            assert!(!message.is_empty());
        }
    }
}

/// `net::parse_cidr`: a block comes back as the network it names and round-trips through its text; a refusal for
/// host bits suggests a block that parses; anything accepted has a std-parsable address and a prefix in range.
pub fn check_cidr(s: &str) {
    match net::parse_cidr(s) {
        Ok(block) => {
            assert_eq!(block.addr(), block.network(), "{s:?}");
            assert_eq!(net::parse_cidr(&block.to_string()), Ok(block), "{s:?}");
            let (addr, len) = s
                .trim_ascii()
                .split_once('/')
                .unwrap_or_else(|| panic!("{s:?} has no '/'"));
            assert_eq!(addr.parse::<IpAddr>().ok(), Some(block.addr()), "{s:?}");
            assert_eq!(len.parse::<u8>().ok(), Some(block.prefix_len()), "{s:?}");
            let (first, last) = net::range(&block);
            assert!(first <= last);
            let (lo, hi) = net::usable(&block);
            assert!(first <= lo && hi <= last, "{s:?}");
        }
        Err(CidrError::HostBits(suggested)) => {
            assert_eq!(net::parse_cidr(&suggested.to_string()), Ok(suggested), "{s:?}");
        }
        Err(CidrError::Invalid(message)) => assert!(!message.is_empty(), "{s:?}"),
    }
}

/// `net::normalize_mac`: the answer is twelve lowercase hex digits in colon pairs, the same digits as the input,
/// and normalising it again changes nothing.
pub fn check_mac(s: &str) {
    if let Ok(mac) = net::normalize_mac(s) {
        assert_eq!(mac.len(), 17, "{s:?} → {mac}");
        assert!(
            mac.split(':')
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))),
            "{s:?} → {mac}"
        );
        let digits = |t: &str| -> String {
            t.chars()
                .filter(char::is_ascii_hexdigit)
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        assert_eq!(digits(s), digits(&mac), "{s:?} → {mac}");
        assert_eq!(net::normalize_mac(&mac), Ok(mac.clone()));
    }
}

/// `rest::route`: a match has the request's verb and one non-empty value per placeholder of its pattern; a miss
/// is `not_found`, or `method_not_allowed` naming verbs that do match the path.
pub fn check_route(verb: &str, path: &str) {
    match rest::route(verb, path) {
        Ok((r, params)) => {
            assert_eq!(r.verb, verb);
            let placeholders: Vec<&str> = r
                .path
                .split('/')
                .filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
                .collect();
            let names: Vec<&str> = params.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, placeholders, "{verb} {path:?} → {}", r.path);
            assert!(params.iter().all(|(_, v)| !v.is_empty()), "{verb} {path:?}");
        }
        Err(e) => match e.code {
            Code::NotFound => {}
            Code::MethodNotAllowed => {
                let Some(Value::String(allowed)) = &e.data else {
                    panic!("405 without the allowed verbs: {e}");
                };
                for other in allowed.split(", ") {
                    assert_ne!(other, verb);
                    assert!(ROUTES.iter().any(|r| r.verb == other), "{allowed}");
                    assert!(
                        rest::route(other, path).is_ok(),
                        "{other} {path:?} is said to be allowed"
                    );
                }
            }
            other => panic!("route({verb:?}, {path:?}) failed with {other:?}"),
        },
    }
}

/// A REST answer to any request: never a server error, a JSON body unless 204, and an error body whose code
/// matches the status.
pub fn check_rest_answer(what: &str, answer: &Rendered) {
    let text = answer.body.as_deref().map(String::from_utf8_lossy);
    assert!(answer.status < 500, "{what} → {} {text:?}", answer.status);
    match (&answer.error, &answer.body) {
        (None, None) => assert_eq!(answer.status, 204, "{what}"),
        (None, Some(_)) => assert!((200..300).contains(&answer.status), "{what} → {}", answer.status),
        (Some(e), Some(body)) => {
            let body: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(e.code.http_status(), answer.status, "{what}");
            assert_eq!(body["code"], Value::from(e.code.as_str()), "{what}: {body}");
            assert!(
                body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: {body}"
            );
        }
        (Some(e), None) => panic!("{what}: the error {e} has no body"),
    }
}

/// A whole REST request with a JSON body (or none) and `token`, the way the server runs it once the body is read
/// (decode, dispatch, render), without HTTP and without a rate limit.
pub async fn rest_answer(app: &App, verb: &str, path: &str, query: &str, token: &str, body: &[u8]) -> Rendered {
    let mut door = RestDoor::new(
        verb.into(),
        path.into(),
        query.into(),
        Some(token.into()),
        true,
        Default::default(),
    );
    let outcome = match door.decode(body) {
        Ok(call) => dispatch(app, call).await,
        Err(e) => Outcome::failed(e),
    };
    door.render(outcome)
}

/// The verbs a REST request may carry, for generated requests.
pub const VERBS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use serde_json::json;

    use super::*;
    use crate::support::Server;

    /// Strings made of the characters addresses, prefixes and MACs are made of, with some noise.
    fn addressy() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ \t]?[0-9a-fA-F:.\\-/%]{0,45}[ \t\n]?(/[0-9]{0,4})?").unwrap()
    }

    /// A body that is often an envelope, sometimes nearly one, sometimes anything.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let scalar = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::from),
        ];
        let value = scalar.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        let key = prop_oneof![
            Just("reqid".to_string()),
            Just("appkey".to_string()),
            Just("userdata".to_string()),
            Just("data".to_string()),
            "[a-z]{1,5}"
        ];
        let envelope = proptest::collection::btree_map(key, value.clone(), 0..5)
            .prop_map(|m| serde_json::to_vec(&Value::Object(m.into_iter().collect())).unwrap());
        prop_oneof![
            4 => envelope.clone(),
            1 => value.prop_map(|v| serde_json::to_vec(&v).unwrap()),
            1 => envelope.prop_map(|b| {
                let text = String::from_utf8(b).unwrap();
                format!("x=1&data={}", crate::support::urlencode(&text)).into_bytes()
            }),
            1 => proptest::collection::vec(any::<u8>(), 0..64),
        ]
    }

    /// Paths built from the segments of the route table, numbers and noise.
    fn path() -> impl Strategy<Value = String> {
        let mut words: Vec<String> = ROUTES
            .iter()
            .flat_map(|r| r.path.split('/'))
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
            .map(str::to_string)
            .collect();
        words.sort();
        words.dedup();
        let segment = prop_oneof![
            3 => proptest::sample::select(words),
            2 => (0u64..5).prop_map(|n| n.to_string()),
            1 => Just("10.0.0.1".to_string()),
            1 => Just(String::new()),
            1 => "[a-zA-Z0-9.:%_-]{1,8}",
        ];
        proptest::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/")))
    }

    /// A value for a REST field or path parameter: ids, addresses, CIDR parts, booleans, junk.
    fn field_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0i64..4).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            Just(json!(1.5)),
            Just(json!(24)),
            Just(json!(33)),
            any::<bool>().prop_map(Value::from),
            Just(Value::Null),
            Just(json!("10.0.0.7")),
            Just(json!("10.0.0.0")),
            Just(json!("2001:db8::1")),
            Just(json!("aa:bb:cc:dd:ee:ff")),
            Just(json!("active")),
            Just(json!([1, 2])),
            Just(json!({"a": 1})),
            addressy().prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
        ]
    }

    /// A REST request shaped after a line of the route table: its verb (mostly), its path with the placeholders
    /// filled, a query of its own parameters and others, and a body of REST field names.
    fn rest_request() -> impl Strategy<Value = (&'static str, String, String, Vec<u8>)> {
        const FIELDS: &[&str] = &[
            "network",
            "cidr",
            "name",
            "domain",
            "vlan_id",
            "description",
            "location",
            "group_id",
            "ip_address",
            "network_id",
            "hostname",
            "cname",
            "mac_address",
            "status",
            "is_assigned",
            "last_seen",
            "discovery_source",
            "start_ip",
            "end_ip",
            "is_active",
            "id",
            "fields",
            "ip",
            "subnet",
        ];
        let segment = prop_oneof![
            (0u64..4).prop_map(|n| n.to_string()),
            Just("99999999999999999999".to_string()),
            Just("-1".to_string()),
            Just("10.0.0.7".to_string()),
            Just("ipam-backup-20000101-000000Z.db".to_string()),
            Just("..%2F..%2Fetc%2Fpasswd".to_string()),
            "[a-zA-Z0-9.:%_-]{1,10}",
        ];
        let route = proptest::sample::select((0..ROUTES.len()).collect::<Vec<_>>());
        let query_key = prop_oneof![
            3 => proptest::sample::select(vec!["page", "per_page", "name", "network_id", "limit", "after", "force",
                                                "hostname", "status", "is_assigned", "vlan_id", "group_id"]),
            1 => Just("bogus"),
        ];
        let query = proptest::collection::vec((query_key, segment.clone()), 0..3)
            .prop_map(|q| q.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&"));
        let fields = proptest::collection::btree_map(proptest::sample::select(FIELDS.to_vec()), field_value(), 0..6)
            .prop_map(|m| {
                let object: serde_json::Map<String, Value> = m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                serde_json::to_vec(&Value::Object(object)).unwrap()
            });
        let body = prop_oneof![6 => fields, 1 => body()];
        let verb = prop_oneof![6 => Just(None), 1 => proptest::sample::select(VERBS.to_vec()).prop_map(Some)];
        (route, segment, verb, query, body).prop_map(|(i, value, verb, query, body)| {
            let r = &ROUTES[i];
            let path = r
                .path
                .split('/')
                .map(|p| if p.starts_with('{') { value.as_str() } else { p })
                .collect::<Vec<_>>()
                .join("/");
            (verb.unwrap_or(r.verb), path, query, body)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn envelopes_decode_as_serde_reads_them(method in "[a-z/]{0,16}", body in body(), form in any::<bool>()) {
            check_envelope(&method, &body, form);
        }

        #[test]
        fn addresses_cidrs_and_macs_parse_strictly_and_round_trip(s in addressy()) {
            check_address(&s);
            check_cidr(&s);
            check_mac(&s);
        }

        #[test]
        fn any_string_is_parsed_or_refused_cleanly(s in "\\PC{0,40}") {
            check_address(&s);
            check_cidr(&s);
            check_mac(&s);
        }

        #[test]
        fn routes_match_their_patterns_or_say_why_not(verb in proptest::sample::select(VERBS.to_vec()), path in path()) {
            check_route(verb, &path);
        }
    }

    /// Whole REST requests through the REST door as the operator, 256 of them on one database that they change as
    /// they go: never a server error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generated_rest_requests_never_fail_on_the_server() {
        let s = Server::start().await;
        s.api(
            hyper::Method::POST,
            "/networks",
            &s.admin_token,
            Some(&json!({"network": "10.0.0.0", "cidr": 24})),
        )
        .await;
        let strategy = rest_request();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
        let mut statuses = std::collections::BTreeMap::new();
        let mut cases: Vec<(&str, String, String, Vec<u8>)> = Vec::new();
        for _ in 0..256 {
            cases.push(strategy.new_tree(&mut runner).unwrap().current());
        }
        for (verb, path, query, body) in cases {
            let answer = rest_answer(&s.app, verb, &path, &query, &s.admin_token, &body).await;
            check_rest_answer(
                &format!("{verb} {path}?{query} {}", String::from_utf8_lossy(&body)),
                &answer,
            );
            *statuses.entry(answer.status).or_insert(0) += 1;
        }
        // The generator must reach the handlers, not only the route matcher's 404s and 405s.
        let reached: usize = statuses
            .iter()
            .filter(|(s, _)| ![404, 405].contains(*s))
            .map(|(_, n)| n)
            .sum();
        assert!(
            reached >= 32,
            "too few generated requests reached a method: {statuses:?}"
        );
        eprintln!("REST answers by status: {statuses:?}");
    }
}
