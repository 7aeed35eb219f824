//! Golden output of both doors: one fixture on a fresh server builds a record of every kind (with every optional
//! field set, and a second one with them unset), then calls every method of `methods.md` that answers records and
//! every route of `rest::ROUTES`, errors included, and keeps each reply body. [`golden_replies_are_unchanged`]
//! compares the bodies byte for byte with `tests/it/golden/<name>.json`, after the normaliser of
//! `support::golden` has replaced what differs from run to run (respids, times, secrets, backup names and sizes);
//! ids are the same on every run because the fixture builds its data in one fixed order on a fresh database. On
//! PostgreSQL, whose id sequences keep the gaps a rolled-back insert leaves, record ids run higher: there the
//! replies and the files are compared with their ids masked on both sides (`golden::mask_ids`); the files are
//! recorded on SQLite.
//!
//! To accept a change of output that is intended, run `IPAMD_BLESS=1 cargo test --test it golden`: the test then
//! rewrites the golden files instead of comparing (and deletes those no exchange produces any more); review the
//! diff of `tests/it/golden/` before committing it.
//!
//! [`rest_replies_match_their_openapi_schemas`] checks the REST replies of the same fixture against the response
//! schemas of the OpenAPI document the server serves (`support::schema` validates), for the route and status of
//! each, and that every operation of the document was called.

use std::collections::BTreeSet;
use std::path::Path;

use hyper::body::Bytes;
use hyper::Method;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use crate::support::{golden, id_of, only, schema, sha1_hex, Ident, Server, OPERATOR_TOKEN};

/// One request of the fixture and the answer it got.
pub struct Exchange {
    /// The golden file's name.
    pub name: String,
    pub verb: Method,
    /// The request's path, query included.
    pub path: String,
    pub status: u16,
    pub body: Bytes,
}

/// What the fixture saw: every exchange, in order, and the OpenAPI document of the server.
pub struct Fixture {
    pub exchanges: Vec<Exchange>,
    pub openapi: Value,
    /// Whether record ids may differ from the golden files' (a PostgreSQL server).
    pub ids_vary: bool,
}

/// The fixture, built once for the tests of this module (one server), by whichever runs first.
async fn fixture() -> &'static Fixture {
    static FIXTURE: OnceCell<Fixture> = OnceCell::const_new();
    FIXTURE.get_or_init(build).await
}

#[tokio::test]
async fn golden_replies_are_unchanged() {
    let f = fixture().await;
    let goldens: Vec<(String, String)> = f
        .exchanges
        .iter()
        .map(|x| {
            let text = std::str::from_utf8(&x.body).unwrap_or_else(|e| panic!("{}: not UTF-8: {e}", x.name));
            (x.name.clone(), golden::normalise(text))
        })
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden");
    golden::check(&dir, &goldens, f.ids_vary);
}

/// The fixture calls every method of the table through the envelope, successfully, so a new method fails this test
/// until its golden output is added.
#[tokio::test]
async fn golden_fixture_calls_every_method() {
    let f = fixture().await;
    let called: BTreeSet<&str> = f
        .exchanges
        .iter()
        .filter(|x| x.status == 200)
        .filter_map(|x| x.path.strip_prefix("/1.0/"))
        .collect();
    let missing: Vec<&str> = ipamd::methods::METHODS
        .iter()
        .map(|m| m.name)
        .filter(|m| !called.contains(m))
        .collect();
    assert!(
        missing.is_empty(),
        "the golden fixture never calls {missing:?} successfully"
    );
}

/// Every REST reply of the fixture against the schema the document declares for its route and status, and every
/// operation of the document called successfully at least once. (No reply breaks its schema today: a mismatch
/// found later is a bug of the server or of the document, to be fixed in one or the other.)
#[tokio::test]
async fn rest_replies_match_their_openapi_schemas() {
    let f = fixture().await;
    let doc = &f.openapi;
    let mut problems: Vec<String> = Vec::new();
    let mut covered: BTreeSet<(String, String)> = BTreeSet::new();
    for x in f.exchanges.iter().filter(|x| x.path.starts_with("/api/v1/")) {
        let what = format!("{} {} → {} ({})", x.verb, x.path, x.status, x.name);
        let schema = match response_schema(doc, x, &mut covered) {
            Ok(Some(schema)) => schema,
            Ok(None) if x.body.is_empty() => continue,
            Ok(None) => {
                problems.push(format!("{what}: a body where the document declares none"));
                continue;
            }
            Err(problem) => {
                problems.push(format!("{what}: {problem}"));
                continue;
            }
        };
        match serde_json::from_slice::<Value>(&x.body) {
            Ok(body) => problems.extend(
                schema::validate(doc, &schema, &body)
                    .into_iter()
                    .map(|e| format!("{what}: {e}")),
            ),
            Err(e) => problems.push(format!("{what}: not JSON ({e})")),
        }
    }
    for (p, ops) in doc["paths"].as_object().into_iter().flatten() {
        // The server's own pages (with a server of their own, outside /api/v1) are not REST: docs.rs calls them.
        if ops.get("servers").is_some() {
            continue;
        }
        for verb in ops.as_object().into_iter().flat_map(|o| o.keys()) {
            if !covered.contains(&(verb.clone(), p.clone())) {
                problems.push(format!(
                    "{} {p}: no successful call in the fixture",
                    verb.to_uppercase()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with the REST replies against the OpenAPI document:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The schema `doc` declares for the reply of `x` (`None` when it declares no content, as for a 204), or why
/// there is none. A success adds its (verb, path pattern) to `covered`.
fn response_schema(
    doc: &Value,
    x: &Exchange,
    covered: &mut BTreeSet<(String, String)>,
) -> Result<Option<Value>, String> {
    let path = x.path["/api/v1".len()..].split('?').next().unwrap_or_default();
    let verb = x.verb.as_str().to_ascii_lowercase();
    let paths = doc["paths"].as_object().ok_or("the document has no paths")?;
    // `/networks/join` is an instance of `/networks/{id}` too: the pattern that has the verb answers.
    let mut patterns = paths.iter().filter(|(p, _)| matches_pattern(p, path));
    let Some((pattern, operation)) = patterns.find_map(|(p, ops)| Some((p, ops.get(&verb)?))) else {
        // No operation of the document answers a path it lacks (404) or a verb it lacks on a path it has (405):
        // the server answers those with the same error body, the document's `Error`.
        return match x.status {
            404 | 405 => Ok(Some(json!({"$ref": "#/components/schemas/Error"}))),
            _ => Err("no operation of the document".into()),
        };
    };
    if (200..300).contains(&x.status) {
        covered.insert((verb, pattern.clone()));
    }
    let response = operation["responses"]
        .get(x.status.to_string())
        .ok_or_else(|| format!("the document declares no response {}", x.status))?;
    Ok(response.pointer("/content/application~1json/schema").cloned())
}

/// Whether a request path (below `/api/v1`, without its query) is an instance of the document's path `pattern`,
/// whose `{…}` segments stand for any one non-empty segment.
fn matches_pattern(pattern: &str, path: &str) -> bool {
    let (p, s): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == s.len()
        && p.iter()
            .zip(&s)
            .all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}') && !s.is_empty()))
}

/// Records the exchanges of the fixture with one server.
struct Recorder<'a> {
    s: &'a Server,
    exchanges: Vec<Exchange>,
}

impl Recorder<'_> {
    /// `POST /1.0/<method>` as `who` (its `reqid` the golden's name), expecting the HTTP `status`: the JSON reply's
    /// `response`, or the whole reply when it has none (an error).
    async fn rpc(&mut self, name: &str, who: &Ident, method: &str, data: Value, status: u16) -> Value {
        let envelope = json!({"reqid": name, "appkey": who.appkey, "userdata": who.userdata, "data": data});
        let path = format!("/1.0/{method}");
        let headers = [("content-type", "application/json")];
        let mut reply = self
            .http(name, Method::POST, &path, &headers, envelope.to_string(), status)
            .await;
        match reply.get_mut("response") {
            Some(response) => response.take(),
            None => reply,
        }
    }

    /// [`Recorder::rpc`] expecting success.
    async fn ok(&mut self, name: &str, who: &Ident, method: &str, data: Value) -> Value {
        self.rpc(name, who, method, data, 200).await
    }

    /// `/api/v1<path>` with `token` as a bearer token (none when empty) and `body` as JSON, expecting `status`.
    async fn rest(
        &mut self,
        name: &str,
        verb: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("content-type", "application/json")];
        if !token.is_empty() {
            headers.push(("authorization", bearer.as_str()));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.http(name, verb, &format!("/api/v1{path}"), &headers, body, status)
            .await
    }

    /// One request, expecting `status`; records the exchange and returns the body as JSON (`null` when empty).
    async fn http(
        &mut self,
        name: &str,
        verb: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
        status: u16,
    ) -> Value {
        let reply = self.s.request(verb.clone(), path, headers, body.clone()).await;
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        assert_eq!(reply.status, status, "{name}: {verb} {path} {body} → {text}");
        let json = match reply.body.is_empty() {
            true => Value::Null,
            false => reply.json(),
        };
        self.exchanges.push(Exchange {
            name: name.to_string(),
            verb,
            path: path.to_string(),
            status,
            body: reply.body,
        });
        json
    }
}

/// The id of the one record of an envelope reply.
fn id(response: &Value) -> i64 {
    id_of(only(response))
}

/// The id of a REST record.
fn rest_id(record: &Value) -> i64 {
    record["id"].as_i64().unwrap_or_else(|| panic!("no id: {record}"))
}

/// 2025-12-28T10:01:58Z in unix seconds.
const SEEN: i64 = 1_766_916_118;

/// The exchanges of [`backups`] not named after backups: the audit log around them.
const BACKUPS_LOGS: [&str; 2] = ["rpc-org-logs-all", "rpc-org-logs-after-restores"];

async fn build() -> Fixture {
    let s = Server::start_with(|settings| {
        settings.api_tokens = OPERATOR_TOKEN.into();
        // One attempt: a delivery the default settings refuse (see `webhooks`) ends failed at once.
        settings.webhook_attempts = 1;
    })
    .await;
    let mut r = Recorder {
        s: &s,
        exchanges: Vec::new(),
    };
    let (site, lan) = envelope(&mut r).await;
    rest(&mut r, site, lan).await;
    webhooks(&mut r).await;
    backups(&mut r).await;
    let ids_vary = s.app.store.sqlite_path().is_none();
    let openapi = s.request(Method::GET, "/api/v1/openapi.json", &[], "").await.json();
    let exchanges = r.exchanges;
    s.stop().await.unwrap();
    Fixture {
        exchanges,
        openapi,
        ids_vary,
    }
}

/// Webhooks on both doors. The receiver is a name the default settings refuse (localhost is loopback), and the
/// server makes one attempt: each delivery ends `failed` at once with the same error every run, and the replies
/// are recorded once it has.
async fn webhooks(r: &mut Recorder<'_>) {
    let a = r.s.admin.clone();
    let hook =
        json!({"url": "http://localhost/hook", "description": "ops", "objecttypes": ["group"], "actions": "added"});
    let id = id_of(only(&r.ok("rpc-webhooks-add", &a, "webhooks/add", hook).await));
    r.ok("rpc-webhooks-get", &a, "webhooks/get", json!({})).await;
    let edit = json!({"id": id, "description": "ops team"});
    r.ok("rpc-webhooks-edit", &a, "webhooks/edit", edit).await;
    r.s.ok(&a, "groups/add", json!({"description": "hooked"})).await;
    let failed = failed_delivery(r.s, &a, id).await;
    r.ok("rpc-webhooks-deliveries", &a, "webhooks/deliveries", json!({"id": id}))
        .await;
    r.ok(
        "rpc-webhooks-redeliver",
        &a,
        "webhooks/redeliver",
        json!({"id": failed}),
    )
    .await;
    failed_delivery(r.s, &a, id).await;

    let t = OPERATOR_TOKEN;
    let body =
        json!({"url": "http://localhost/other", "objecttypes": ["subnet"], "network_id": null, "enabled": false});
    let other = rest_id(
        &r.rest("rest-webhooks-post", Method::POST, "/webhooks", t, Some(body), 201)
            .await,
    );
    r.rest("rest-webhooks-list", Method::GET, "/webhooks", t, None, 200)
        .await;
    let path = format!("/webhooks/{other}");
    r.rest("rest-webhooks-get", Method::GET, &path, t, None, 200).await;
    let patch = json!({"description": "disabled", "actions": ["deleted"]});
    r.rest("rest-webhooks-patch", Method::PATCH, &path, t, Some(patch), 200)
        .await;
    let log = format!("/webhooks/{id}/deliveries?status=failed");
    r.rest("rest-webhooks-deliveries", Method::GET, &log, t, None, 200)
        .await;
    let again = format!("/webhook-deliveries/{failed}/redeliver");
    r.rest("rest-webhooks-redeliver", Method::POST, &again, t, None, 200)
        .await;
    failed_delivery(r.s, &a, id).await;
    r.rest("rest-webhooks-delete", Method::DELETE, &path, t, None, 204)
        .await;
    r.ok("rpc-webhooks-delete", &a, "webhooks/delete", json!({"id": id}))
        .await;
}

/// The id of webhook `id`'s one delivery once it has failed (polled: the delivery task records it).
async fn failed_delivery(s: &Server, a: &Ident, id: i64) -> i64 {
    for _ in 0..600 {
        let log = s.ok(a, "webhooks/deliveries", json!({"id": id})).await;
        if only(&log)["status"] == "failed" {
            return id_of(only(&log));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the delivery of webhook {id} never failed");
}

/// Every method of the `/1.0` door that answers records, on a record of each kind, and its error shapes: the ids of
/// the top-level group and of the IPv4 subnet the REST door reuses.
async fn envelope(r: &mut Recorder<'_>) -> (i64, i64) {
    let a = r.s.admin.clone();
    general_and_org(r, &a).await;
    let (site, rack) = groups(r, &a).await;
    credentials(r, &a).await;
    let (lan, v6, empty) = subnets(r, &a, site, rack).await;
    fields_and_addresses(r, &a, lan, empty).await;
    ranges_and_free_space(r, &a, lan, v6).await;
    transfer(r, &a, site, lan).await;
    subnet_reads_and_changes(r, &a, lan).await;
    searches(r, &a, site).await;
    r.ok("rpc-org-logs-page", &a, "org/logs", json!({"perpage": 3})).await;
    r.ok("rpc-org-logs-filtered", &a, "org/logs", json!({"objecttype": "token"}))
        .await;
    envelope_errors(r, &a, site).await;
    (site, lan)
}

async fn general_and_org(r: &mut Recorder<'_>, a: &Ident) {
    r.ok("rpc-ping", a, "ping", json!({"time": "1234"})).await;
    r.ok("rpc-ping-bare", a, "ping", json!({})).await;
    r.ok("rpc-version", a, "version", json!({})).await;
    r.ok("rpc-userdata", a, "userdata", json!({})).await;
    r.ok("rpc-org-info", a, "org/info", json!({})).await;
    r.ok("rpc-org-edit", a, "org/edit", json!({"description": "Operations"}))
        .await;
    r.ok("rpc-org-edit-cleared", a, "org/edit", json!({"description": ""}))
        .await;
    let doomed = r.s.org("doomed").await;
    r.ok("rpc-org-delete", &doomed, "org/delete", json!({"confirm": "doomed"}))
        .await;
}

/// A top-level group and a child: their ids.
async fn groups(r: &mut Recorder<'_>, a: &Ident) -> (i64, i64) {
    r.ok("rpc-groups-get-empty", a, "groups/get", json!({})).await;
    let site = id(&r
        .ok("rpc-groups-add", a, "groups/add", json!({"description": "Site A"}))
        .await);
    let rack = id(&r
        .ok(
            "rpc-groups-add-child",
            a,
            "groups/add",
            json!({"description": "Rack 1", "parent": site}),
        )
        .await);
    let scratch = id(&r
        .ok(
            "rpc-groups-add-scratch",
            a,
            "groups/add",
            json!({"description": "Scratch"}),
        )
        .await);
    let edit = json!({"id": scratch, "description": "Scratch (old)", "parent": site});
    r.ok("rpc-groups-edit", a, "groups/edit", edit).await;
    r.ok("rpc-groups-get", a, "groups/get", json!({})).await;
    r.ok("rpc-groups-get-tree", a, "groups/get", json!({"sort": true}))
        .await;
    r.ok("rpc-groups-get-one", a, "groups/get", json!({"id": site})).await;
    r.ok(
        "rpc-groups-get-subtree",
        a,
        "groups/get",
        json!({"id": site, "sort": true}),
    )
    .await;
    r.ok("rpc-groups-delete", a, "groups/delete", json!({"id": scratch}))
        .await;
    (site, rack)
}

/// Users, app keys and tokens, each with every optional field and without.
async fn credentials(r: &mut Recorder<'_>, a: &Ident) {
    let full = json!({"username": "carol", "password": "password-of-carol", "email": "carol@example.org",
                      "realname": "Carol C", "level": "standard"});
    let carol = id(&r.ok("rpc-users-add", a, "org/users/add", full).await);
    let bare = json!({"username": "dave", "hash": sha1_hex("dave", "password-of-dave"), "email": "dave@example.org"});
    let dave = id(&r.ok("rpc-users-add-bare", a, "org/users/add", bare).await);
    let edit = json!({"id": dave, "realname": "Dave D", "level": "readonly", "disabled": true});
    r.ok("rpc-users-edit", a, "org/users/edit", edit).await;
    r.ok("rpc-users-get", a, "org/users/get", json!({})).await;
    r.ok("rpc-users-get-one", a, "org/users/get", json!({"id": carol}))
        .await;

    let key = json!({"name": "script", "description": "cron job"});
    let script = id(&r.ok("rpc-appkeys-add", a, "org/appkeys/add", key).await);
    let bare = id(&r
        .ok("rpc-appkeys-add-bare", a, "org/appkeys/add", json!({"name": "bare"}))
        .await);
    let edit = json!({"id": script, "enabled": false, "disabledreason": "rotated"});
    r.ok("rpc-appkeys-edit", a, "org/appkeys/edit", edit).await;
    r.ok("rpc-appkeys-get", a, "org/appkeys/get", json!({})).await;
    r.ok("rpc-appkeys-get-one", a, "org/appkeys/get", json!({"id": script}))
        .await;
    r.ok("rpc-appkeys-delete", a, "org/appkeys/delete", json!({"id": bare}))
        .await;

    let token = json!({"description": "ci", "expires": 4_102_444_800_i64});
    let ci = id(&r.ok("rpc-tokens-add", a, "org/tokens/add", token).await);
    let bare = id(&r.ok("rpc-tokens-add-bare", a, "org/tokens/add", json!({})).await);
    r.ok("rpc-tokens-get", a, "org/tokens/get", json!({})).await;
    r.ok("rpc-tokens-get-one", a, "org/tokens/get", json!({"id": ci})).await;
    r.ok("rpc-tokens-delete", a, "org/tokens/delete", json!({"id": bare}))
        .await;
}

/// The subnets the other parts use: a fully described IPv4 /24 in `site`, a bare IPv6 /48 and an IPv4 /24 that
/// stays empty; and the same block in two groups, for the searches and the REST door.
async fn subnets(r: &mut Recorder<'_>, a: &Ident, site: i64, rack: i64) -> (i64, i64, i64) {
    let full = json!({"subnet": "10.0.0.0/24", "group": site, "name": "lan", "description": "office",
                      "domain": "a.example", "vlan_id": 10, "location": "rack 1"});
    let lan = id(&r.ok("rpc-subnets-add", a, "subnets/add", full).await);
    let v6 = id(&r
        .ok(
            "rpc-subnets-add-bare",
            a,
            "subnets/add",
            json!({"subnet": "2001:db8::/48"}),
        )
        .await);
    let by_parts = json!({"network": "192.168.0.0", "cidr": 24});
    let empty = id(&r.ok("rpc-subnets-add-network-cidr", a, "subnets/add", by_parts).await);
    // The same block in two groups: `GET /ip/{ip}` counts both.
    r.ok(
        "rpc-subnets-add-twin",
        a,
        "subnets/add",
        json!({"subnet": "10.5.0.0/24"}),
    )
    .await;
    r.ok(
        "rpc-subnets-add-twin-in-group",
        a,
        "subnets/add",
        json!({"subnet": "10.5.0.0/24", "group": rack}),
    )
    .await;
    (lan, v6, empty)
}

async fn fields_and_addresses(r: &mut Recorder<'_>, a: &Ident, lan: i64, empty: i64) {
    let select = json!({"subnet": lan, "name": "rack", "description": "where it is", "type": "select",
                        "options": ["r1", "r2"], "default": "r1", "required": true, "position": 1});
    let rack = id(&r.ok("rpc-fields-add", a, "subnets/fields/add", select).await);
    let owner = id(&r
        .ok(
            "rpc-fields-add-bare",
            a,
            "subnets/fields/add",
            json!({"subnet": lan, "name": "owner"}),
        )
        .await);
    let number = json!({"subnet": lan, "name": "temp", "type": "number"});
    let temp = id(&r.ok("rpc-fields-add-number", a, "subnets/fields/add", number).await);
    let edit = json!({"id": owner, "description": "team", "position": 2});
    r.ok("rpc-fields-edit", a, "subnets/fields/edit", edit).await;
    r.ok("rpc-fields-delete", a, "subnets/fields/delete", json!({"id": temp}))
        .await;
    r.ok("rpc-fields-get", a, "subnets/fields/get", json!({"subnet": lan}))
        .await;
    r.ok("rpc-fields-get-one", a, "subnets/fields/get", json!({"id": rack}))
        .await;

    let full = json!({"ip": "10.0.0.20", "subnet": lan, "hostname": "web1", "cname": "www",
                      "mac_address": "AA-BB-CC-DD-EE-0F", "status": "reserved", "is_assigned": false,
                      "last_seen": SEEN, "discovery_source": "arp", "description": "front",
                      "fields": {"rack": "r2", "owner": "ops"}});
    let web = id(&r.ok("rpc-ipaddress-add", a, "ipaddress/add", full).await);
    let next = id(&r
        .ok("rpc-ipaddress-add-next", a, "ipaddress/add", json!({"subnet": lan}))
        .await);
    let v6 = id(&r
        .ok(
            "rpc-ipaddress-add-ip-only",
            a,
            "ipaddress/add",
            json!({"ip": "2001:db8::10"}),
        )
        .await);
    let mut doomed = Vec::new();
    for ip in ["10.0.0.30", "10.0.0.31", "10.0.0.32"] {
        let added = r.s.ok(a, "ipaddress/add", json!({"ip": ip, "hostname": "tmp"})).await;
        doomed.push(id(&added));
    }
    let edit = json!({"id": next, "hostname": "db1", "mac_address": "aabbccddee01", "fields": {"owner": "dba"},
                      "description": null});
    r.ok("rpc-ipaddress-edit", a, "ipaddress/edit", edit).await;
    r.ok("rpc-ipaddress-delete", a, "ipaddress/delete", json!({"id": doomed[0]}))
        .await;
    let ids = json!({"ids": [doomed[1], doomed[2]]});
    r.ok("rpc-ipaddress-massdelete", a, "ipaddress/massdelete", ids).await;
    let none = json!({"subnet": empty, "all": true});
    r.ok("rpc-ipaddress-massdelete-none", a, "ipaddress/massdelete", none)
        .await;
    r.ok("rpc-ipaddress-get", a, "ipaddress/get", json!({})).await;
    r.ok("rpc-ipaddress-get-one", a, "ipaddress/get", json!({"id": web}))
        .await;
    r.ok("rpc-ipaddress-get-ids", a, "ipaddress/get", json!({"ids": [v6, web]}))
        .await;
    let page = json!({"subnet": lan, "page": 1, "perpage": 1});
    r.ok("rpc-ipaddress-get-subnet-page", a, "ipaddress/get", page).await;
    r.ok(
        "rpc-ipaddress-get-page",
        a,
        "ipaddress/get",
        json!({"page": 2, "perpage": 2}),
    )
    .await;
    r.ok(
        "rpc-ipaddress-get-filtered",
        a,
        "ipaddress/get",
        json!({"hostname": "web*", "status": "reserved"}),
    )
    .await;
    r.ok(
        "rpc-ipaddress-get-none",
        a,
        "ipaddress/get",
        json!({"hostname": "nothing"}),
    )
    .await;
}

async fn ranges_and_free_space(r: &mut Recorder<'_>, a: &Ident, lan: i64, v6: i64) {
    let full = json!({"subnet": lan, "start_ip": "10.0.0.100", "end_ip": "10.0.0.199", "description": "pool"});
    let pool = id(&r.ok("rpc-dhcpranges-add", a, "dhcpranges/add", full).await);
    let inactive = json!({"subnet": lan, "start_ip": "10.0.0.200", "end_ip": "10.0.0.209", "is_active": false});
    let spare = id(&r.ok("rpc-dhcpranges-add-inactive", a, "dhcpranges/add", inactive).await);
    let bare = json!({"subnet": lan, "start_ip": "10.0.0.220", "end_ip": "10.0.0.229"});
    let doomed = id(&r.ok("rpc-dhcpranges-add-bare", a, "dhcpranges/add", bare).await);
    r.ok(
        "rpc-dhcpranges-edit",
        a,
        "dhcpranges/edit",
        json!({"id": spare, "description": "spare"}),
    )
    .await;
    r.ok("rpc-dhcpranges-delete", a, "dhcpranges/delete", json!({"id": doomed}))
        .await;
    r.ok("rpc-dhcpranges-get", a, "dhcpranges/get", json!({})).await;
    r.ok("rpc-dhcpranges-get-one", a, "dhcpranges/get", json!({"id": pool}))
        .await;
    let page = json!({"subnet": lan, "page": 1, "perpage": 1});
    r.ok("rpc-dhcpranges-get-page", a, "dhcpranges/get", page).await;

    r.ok("rpc-ipaddress-next", a, "ipaddress/next", json!({"subnet": lan}))
        .await;
    r.ok(
        "rpc-ipaddress-available",
        a,
        "ipaddress/available",
        json!({"subnet": lan, "limit": 3}),
    )
    .await;
    let after = json!({"subnet": lan, "limit": 5, "after": "10.0.0.250"});
    r.ok("rpc-ipaddress-available-after", a, "ipaddress/available", after)
        .await;
    r.ok(
        "rpc-ipaddress-available-v6",
        a,
        "ipaddress/available",
        json!({"subnet": v6, "limit": 2}),
    )
    .await;
}

/// Export, import and the generated configuration, through both doors (the JSON answers: CSV and text are checked
/// in transfer.rs and output.rs).
async fn transfer(r: &mut Recorder<'_>, a: &Ident, site: i64, lan: i64) {
    let first = r
        .ok("rpc-export-get", a, "export/get", json!({"subnet": lan, "limit": 2}))
        .await;
    let after = json!({"subnet": lan, "limit": 2, "after": first["next"]});
    r.ok("rpc-export-get-after", a, "export/get", after).await;
    let rows = "kind,network,ip,hostname\naddress,10.0.0.0/24,10.0.0.77,imported\naddress,10.0.0.0/24,10.0.0.300,\n";
    r.ok(
        "rpc-import-run-dry",
        a,
        "import/run",
        json!({"data": rows, "dry_run": true}),
    )
    .await;
    r.rpc("rpc-import-run-refused", a, "import/run", json!({"data": rows}), 400)
        .await;
    r.ok(
        "rpc-output-get-dnsmasq",
        a,
        "output/get",
        json!({"subnet": lan, "format": "dnsmasq"}),
    )
    .await;
    r.ok(
        "rpc-output-get-bind",
        a,
        "output/get",
        json!({"group": site, "format": "bind", "zone": "a.example"}),
    )
    .await;
    let t = r.s.admin_token.clone();
    r.rest(
        "rest-export",
        Method::GET,
        &format!("/export?network_id={lan}&limit=2"),
        &t,
        None,
        200,
    )
    .await;
    let dry = json!({"data": "ip,hostname\n10.0.0.78,imported\n", "dry_run": true});
    r.rest("rest-import-dry", Method::POST, "/import", &t, Some(dry), 200)
        .await;
    r.rest(
        "rest-output-kea4",
        Method::GET,
        &format!("/networks/{lan}/output?format=kea4"),
        &t,
        None,
        200,
    )
    .await;
    r.rest(
        "rest-output-kea6-group",
        Method::GET,
        &format!("/groups/{site}/output?format=kea6"),
        &t,
        None,
        200,
    )
    .await;
}

async fn subnet_reads_and_changes(r: &mut Recorder<'_>, a: &Ident, lan: i64) {
    r.ok("rpc-subnets-get", a, "subnets/get", json!({})).await;
    r.ok("rpc-subnets-get-one", a, "subnets/get", json!({"id": lan})).await;
    r.ok(
        "rpc-subnets-get-page",
        a,
        "subnets/get",
        json!({"page": 2, "perpage": 2, "order": "id"}),
    )
    .await;
    let nested = json!({"id": lan, "addresses": true, "fields": true});
    r.ok("rpc-subnets-get-addresses-fields", a, "subnets/get", nested).await;
    r.ok(
        "rpc-subnets-get-filtered",
        a,
        "subnets/get",
        json!({"name": "LA", "vlan_id": 10}),
    )
    .await;
    r.ok("rpc-subnets-get-top-level", a, "subnets/get", json!({"group": 0}))
        .await;

    let p2p = id(&r.s.ok(a, "subnets/add", json!({"subnet": "172.16.0.0/30"})).await);
    let edit = json!({"id": p2p, "name": "p2p", "vlan_id": 20, "description": "link"});
    r.ok("rpc-subnets-edit", a, "subnets/edit", edit).await;
    r.ok("rpc-subnets-delete", a, "subnets/delete", json!({"id": p2p}))
        .await;

    let split = id(&r
        .s
        .ok(a, "subnets/add", json!({"subnet": "10.8.0.0/24", "name": "halves"}))
        .await);
    let halves = r
        .ok(
            "rpc-subnets-split",
            a,
            "subnets/split",
            json!({"id": split, "parts": 2}),
        )
        .await;
    let ids: Vec<i64> = halves.as_object().unwrap().values().map(id_of).collect();
    r.ok("rpc-subnets-join", a, "subnets/join", json!({"ids": ids})).await;

    let first = id(&r.s.ok(a, "subnets/add", json!({"subnet": "10.9.0.0/24"})).await);
    let third = id(&r.s.ok(a, "subnets/add", json!({"subnet": "10.9.2.0/24"})).await);
    let apart = json!({"ids": [first, third]});
    r.rpc("rpc-error-not-contiguous", a, "subnets/join", apart.clone(), 400)
        .await;
    r.ok("rpc-subnets-massdelete", a, "subnets/massdelete", apart).await;

    let pool = json!({"subnet": "10.64.0.0/16", "pool": true, "name": "site pool"});
    let pool = id(&r.ok("rpc-subnets-add-pool", a, "subnets/add", pool).await);
    let child = json!({"parent": pool, "cidr": 24, "strategy": "best-fit", "name": "rack"});
    r.ok("rpc-subnets-add-allocate", a, "subnets/add", child).await;
    r.ok(
        "rpc-subnets-available",
        a,
        "subnets/available",
        json!({"id": pool, "cidr": 22, "limit": 3}),
    )
    .await;
    r.ok(
        "rpc-subnets-get-tree",
        a,
        "subnets/get",
        json!({"id": pool, "tree": true}),
    )
    .await;
}

async fn searches(r: &mut Recorder<'_>, a: &Ident, site: i64) {
    for (name, ip) in [
        ("rpc-search-ip-address", "10.0.0.20"),
        ("rpc-search-ip-block", "10.0.0.0/16"),
        ("rpc-search-ip-v6", "2001:db8::10"),
    ] {
        r.ok(name, a, "search/ip", json!({"ip": ip})).await;
    }
    r.ok(
        "rpc-search-ip-truncated",
        a,
        "search/ip",
        json!({"ip": "10.0.0.0/8", "limit": 1}),
    )
    .await;
    r.ok(
        "rpc-search-ip-group",
        a,
        "search/ip",
        json!({"ip": "10.0.0.20", "group": site}),
    )
    .await;
    for (name, ip) in [
        ("rpc-search-ip-status-assigned", "10.0.0.20"),
        ("rpc-search-ip-status-dhcp", "10.0.0.150"),
        ("rpc-search-ip-status-available", "10.0.0.5"),
        ("rpc-search-ip-status-unusable", "10.0.0.255"),
        ("rpc-search-ip-status-unmanaged", "192.0.2.1"),
        ("rpc-search-ip-status-twins", "10.5.0.9"),
    ] {
        r.ok(name, a, "search/ip", json!({"ip": ip, "status": true})).await;
    }
    let brief = json!({"ip": "10.0.0.20", "status": true, "brief": true});
    r.ok("rpc-search-ip-status-brief", a, "search/ip", brief).await;
    r.ok("rpc-search-find", a, "search/find", json!({"query": "web"})).await;
    r.ok(
        "rpc-search-find-address",
        a,
        "search/find",
        json!({"query": "10.0.0.20"}),
    )
    .await;
    r.ok(
        "rpc-search-find-truncated",
        a,
        "search/find",
        json!({"query": "a", "limit": 1}),
    )
    .await;
    let groups = json!({"query": "site", "types": ["groups"]});
    r.ok("rpc-search-find-groups", a, "search/find", groups).await;
    r.ok("rpc-changes-get", a, "changes/get", json!({"after": 2, "limit": 2}))
        .await;
}

/// The error shapes of the envelope door: a method's errors (with and without `errorData`), and the answers given
/// before any method runs.
async fn envelope_errors(r: &mut Recorder<'_>, a: &Ident, site: i64) {
    r.rpc("rpc-error-not-found", a, "groups/get", json!({"id": 999}), 404)
        .await;
    r.rpc(
        "rpc-error-invalid-params",
        a,
        "groups/get",
        json!({"srot": true, "id": "x"}),
        400,
    )
    .await;
    r.rpc(
        "rpc-error-unknown-parameters",
        a,
        "groups/get",
        json!({"srot": true, "zz": 1}),
        400,
    )
    .await;
    let overlap = json!({"subnet": "10.0.0.0/25", "group": site});
    r.rpc("rpc-error-overlap", a, "subnets/add", overlap, 400).await;
    r.rpc("rpc-error-unknown-method", a, "nope/get", json!({}), 404).await;
    r.rpc(
        "rpc-error-auth-failed",
        &a.with_password("wrong"),
        "groups/get",
        json!({}),
        401,
    )
    .await;
    let json = [("content-type", "application/json")];
    r.http(
        "rpc-error-bad-request",
        Method::POST,
        "/1.0/ping",
        &json,
        "not json".into(),
        400,
    )
    .await;
    r.http(
        "rpc-error-method-not-allowed",
        Method::GET,
        "/1.0/ping",
        &[],
        String::new(),
        405,
    )
    .await;
    r.http(
        "rpc-error-unsupported-version",
        Method::POST,
        "/2.0/ping",
        &json,
        "{}".into(),
        404,
    )
    .await;
}

/// Every route of `rest::ROUTES` but the backups', and the REST error shapes; `site` and `lan` are the envelope's
/// top-level group and IPv4 subnet.
async fn rest(r: &mut Recorder<'_>, site: i64, lan: i64) {
    let t = r.s.admin_token.clone();
    let t = t.as_str();
    r.rest("rest-changes", Method::GET, "/changes?after=3&limit=2", t, None, 200)
        .await;
    let full = json!({"network": "10.20.0.0", "cidr": 24, "name": "dmz", "domain": "d.example", "vlan_id": 30,
                      "description": "edge", "location": "rack 2", "group_id": site});
    let dmz = rest_id(
        &r.rest("rest-networks-post", Method::POST, "/networks", t, Some(full), 201)
            .await,
    );
    let bare = json!({"network": "2001:db8:1::", "cidr": 64});
    let lab = rest_id(
        &r.rest("rest-networks-post-bare", Method::POST, "/networks", t, Some(bare), 201)
            .await,
    );
    r.rest("rest-networks-list", Method::GET, "/networks?per_page=2", t, None, 200)
        .await;
    r.rest(
        "rest-networks-list-page-2",
        Method::GET,
        "/networks?page=2&per_page=3",
        t,
        None,
        200,
    )
    .await;
    r.rest(
        "rest-networks-list-filtered",
        Method::GET,
        "/networks?name=dmz",
        t,
        None,
        200,
    )
    .await;
    let one = format!("/networks/{dmz}");
    r.rest("rest-networks-get", Method::GET, &one, t, None, 200).await;
    let lab_path = format!("/networks/{lab}");
    let put = json!({"network": "2001:db8:1::", "cidr": 64, "name": "v6 lab"});
    r.rest("rest-networks-put", Method::PUT, &lab_path, t, Some(put), 200)
        .await;
    let patch = json!({"vlan_id": 31, "description": "lab"});
    r.rest("rest-networks-patch", Method::PATCH, &lab_path, t, Some(patch), 200)
        .await;

    let host = json!({"ip_address": "10.20.0.10", "hostname": "fw", "cname": "gw", "mac_address": "aa:bb:cc:00:00:01",
                      "status": "active", "is_assigned": true, "last_seen": "2025-12-28T10:01:58Z",
                      "discovery_source": "scan", "description": "firewall", "network_id": dmz});
    let fw = rest_id(
        &r.rest("rest-hosts-post", Method::POST, "/hosts", t, Some(host), 201)
            .await,
    );
    let bare = json!({"network_id": dmz});
    let auto = rest_id(
        &r.rest("rest-hosts-post-bare", Method::POST, "/hosts", t, Some(bare), 201)
            .await,
    );
    r.rest("rest-hosts-list", Method::GET, "/hosts?per_page=2", t, None, 200)
        .await;
    let filtered = format!("/hosts?network_id={dmz}&hostname=fw");
    r.rest("rest-hosts-list-filtered", Method::GET, &filtered, t, None, 200)
        .await;
    r.rest("rest-hosts-get", Method::GET, &format!("/hosts/{fw}"), t, None, 200)
        .await;
    let auto_path = format!("/hosts/{auto}");
    let put = json!({"ip_address": "10.20.0.12", "hostname": "put"});
    r.rest("rest-hosts-put", Method::PUT, &auto_path, t, Some(put), 200)
        .await;
    let patch = json!({"hostname": "patched", "status": "inactive", "fields": {}});
    r.rest("rest-hosts-patch", Method::PATCH, &auto_path, t, Some(patch), 200)
        .await;
    r.rest("rest-hosts-delete", Method::DELETE, &auto_path, t, None, 204)
        .await;
    let of_net = format!("/networks/{dmz}/hosts");
    r.rest("rest-network-hosts", Method::GET, &of_net, t, None, 200).await;
    let lan_hosts = format!("/networks/{lan}/hosts?page=2&per_page=1");
    r.rest("rest-network-hosts-page", Method::GET, &lan_hosts, t, None, 200)
        .await;

    let ranges = format!("/networks/{dmz}/dhcp-ranges");
    let pool = json!({"start_ip": "10.20.0.100", "end_ip": "10.20.0.150", "description": "pool"});
    let pool = rest_id(
        &r.rest("rest-network-ranges-post", Method::POST, &ranges, t, Some(pool), 201)
            .await,
    );
    let spare = json!({"network_id": dmz, "start_ip": "10.20.0.200", "end_ip": "10.20.0.210", "is_active": false});
    let spare = rest_id(
        &r.rest("rest-ranges-post", Method::POST, "/dhcp-ranges", t, Some(spare), 201)
            .await,
    );
    r.rest("rest-network-ranges", Method::GET, &ranges, t, None, 200).await;
    r.rest("rest-ranges-list", Method::GET, "/dhcp-ranges?per_page=2", t, None, 200)
        .await;
    let filtered = format!("/dhcp-ranges?network_id={dmz}");
    r.rest("rest-ranges-list-filtered", Method::GET, &filtered, t, None, 200)
        .await;
    r.rest(
        "rest-ranges-get",
        Method::GET,
        &format!("/dhcp-ranges/{pool}"),
        t,
        None,
        200,
    )
    .await;
    let spare_path = format!("/dhcp-ranges/{spare}");
    let put = json!({"start_ip": "10.20.0.200", "end_ip": "10.20.0.205"});
    r.rest("rest-ranges-put", Method::PUT, &spare_path, t, Some(put), 200)
        .await;
    let patch = json!({"description": "spare", "is_active": false});
    r.rest("rest-ranges-patch", Method::PATCH, &spare_path, t, Some(patch), 200)
        .await;
    r.rest("rest-ranges-delete", Method::DELETE, &spare_path, t, None, 204)
        .await;

    let next = format!("/ip/networks/{dmz}/next-ip");
    r.rest("rest-next-ip", Method::GET, &next, t, None, 200).await;
    let take = json!({"hostname": "auto", "description": "allocated"});
    r.rest("rest-next-ip-post", Method::POST, &next, t, Some(take), 201)
        .await;
    let free = format!("/ip/networks/{dmz}/available-ips?limit=3");
    r.rest("rest-available-ips", Method::GET, &free, t, None, 200).await;
    let free = format!("/ip/networks/{dmz}/available-ips?limit=5&after=10.20.0.250");
    r.rest("rest-available-ips-after", Method::GET, &free, t, None, 200)
        .await;
    let free = format!("/ip/networks/{lab}/available-ips?limit=2");
    r.rest("rest-available-ips-v6", Method::GET, &free, t, None, 200).await;
    let bulk = json!({"count": 2, "contiguous": true, "hostname": "bulk-{n}"});
    r.rest("rest-next-ip-post-count", Method::POST, &next, t, Some(bulk), 201)
        .await;

    let pool = json!({"network": "2001:db8:1000::", "cidr": 36, "pool": true, "name": "v6 pool"});
    let pool = r
        .rest("rest-networks-post-pool", Method::POST, "/networks", t, Some(pool), 201)
        .await["id"]
        .as_i64()
        .unwrap();
    let nets = format!("/networks/{pool}/available-networks");
    let take = json!({"cidr": 48, "strategy": "last", "name": "site 1"});
    r.rest("rest-available-networks-post", Method::POST, &nets, t, Some(take), 201)
        .await;
    let list = format!("{nets}?cidr=40&limit=3");
    r.rest("rest-available-networks", Method::GET, &list, t, None, 200)
        .await;

    for (name, ip) in [
        ("rest-ip-assigned", "10.20.0.10"),
        ("rest-ip-assigned-with-fields", "10.0.0.20"),
        ("rest-ip-assigned-v6", "2001:db8::10"),
        ("rest-ip-dhcp", "10.20.0.120"),
        ("rest-ip-available", "10.20.0.50"),
        ("rest-ip-unusable", "10.20.0.0"),
        ("rest-ip-unmanaged", "192.0.2.1"),
        ("rest-ip-twins", "10.5.0.9"),
    ] {
        r.rest(name, Method::GET, &format!("/ip/{ip}"), t, None, 200).await;
    }
    r.rest("rest-networks-delete", Method::DELETE, &lab_path, t, None, 204)
        .await;
    rest_errors(r, t, dmz, site).await;
    rest_families(r, t, site).await;
}

/// The routes of the method families beyond networks, hosts and ranges: groups, custom fields, split and join, mass
/// deletes, search, the audit log, the org, users, app keys, tokens, and the general ones.
async fn rest_families(r: &mut Recorder<'_>, t: &str, site: i64) {
    let group = json!({"description": "rest group", "parent_id": site});
    let g = rest_id(
        &r.rest("rest-groups-post", Method::POST, "/groups", t, Some(group), 201)
            .await,
    );
    r.rest("rest-groups-list", Method::GET, "/groups", t, None, 200).await;
    r.rest("rest-groups-tree", Method::GET, "/groups?tree=true", t, None, 200)
        .await;
    let subtree = format!("/groups/{site}?tree=true");
    r.rest("rest-groups-subtree", Method::GET, &subtree, t, None, 200).await;
    let g_path = format!("/groups/{g}");
    r.rest("rest-groups-get", Method::GET, &g_path, t, None, 200).await;
    let moved = json!({"description": "rest group, top", "parent_id": null});
    r.rest("rest-groups-patch", Method::PATCH, &g_path, t, Some(moved), 200)
        .await;

    let net = json!({"network": "10.30.0.0", "cidr": 24, "name": "split me", "group_id": g});
    let net = rest_id(
        &r.rest("rest-families-network", Method::POST, "/networks", t, Some(net), 201)
            .await,
    );
    let fields = format!("/networks/{net}/custom-fields");
    let rack = json!({"name": "rack", "type": "select", "options": ["r1", "r2"], "default": "r1", "required": true});
    let f = rest_id(
        &r.rest("rest-fields-post", Method::POST, &fields, t, Some(rack), 201)
            .await,
    );
    r.rest("rest-fields-list", Method::GET, &fields, t, None, 200).await;
    let f_path = format!("/custom-fields/{f}");
    r.rest("rest-fields-get", Method::GET, &f_path, t, None, 200).await;
    let edit = json!({"description": "where it stands", "position": 2});
    r.rest("rest-fields-patch", Method::PATCH, &f_path, t, Some(edit), 200)
        .await;
    let host = json!({"ip_address": "10.30.0.200", "hostname": "racked", "fields": {"rack": "r2"}});
    let h = rest_id(
        &r.rest("rest-families-host", Method::POST, "/hosts", t, Some(host), 201)
            .await,
    );
    let split = format!("/networks/{net}/split");
    r.rest(
        "rest-networks-split",
        Method::POST,
        &split,
        t,
        Some(json!({"parts": 4})),
        200,
    )
    .await;
    let join = json!({"network_id": net, "cidr": 24});
    r.rest("rest-networks-join", Method::POST, "/networks/join", t, Some(join), 200)
        .await;
    r.rest("rest-fields-delete", Method::DELETE, &f_path, t, None, 204)
        .await;
    r.rest(
        "rest-hosts-massdelete",
        Method::DELETE,
        &format!("/hosts?ids={h}"),
        t,
        None,
        204,
    )
    .await;
    let auto = json!({"network_id": net});
    r.rest("rest-families-host-2", Method::POST, "/hosts", t, Some(auto), 201)
        .await;
    let emptied = format!("/networks/{net}/hosts");
    r.rest("rest-network-hosts-delete", Method::DELETE, &emptied, t, None, 204)
        .await;
    r.rest("rest-search", Method::GET, "/search?query=rack&limit=5", t, None, 200)
        .await;
    r.rest("rest-search-ip", Method::GET, "/search?query=10.20.0.10", t, None, 200)
        .await;
    let mass = format!("/networks?ids={net}&force=true");
    r.rest("rest-networks-massdelete", Method::DELETE, &mass, t, None, 204)
        .await;
    r.rest("rest-groups-delete", Method::DELETE, &g_path, t, None, 204)
        .await;

    r.rest("rest-audit-log", Method::GET, "/audit-log?per_page=3", t, None, 200)
        .await;
    let filtered = "/audit-log?object_type=group&user_id=1&per_page=2&page=2";
    r.rest("rest-audit-log-filtered", Method::GET, filtered, t, None, 200)
        .await;
    r.rest("rest-org-get", Method::GET, "/org", t, None, 200).await;
    let org = json!({"description": "operators"});
    r.rest("rest-org-patch", Method::PATCH, "/org", t, Some(org), 200).await;
    r.rest("rest-me", Method::GET, "/me", t, None, 200).await;
    r.rest("rest-me-operator", Method::GET, "/me", OPERATOR_TOKEN, None, 200)
        .await;
    r.rest("rest-ping", Method::GET, "/ping", t, None, 200).await;
    r.rest("rest-version", Method::GET, "/version", t, None, 200).await;

    let user = json!({"username": "rest-user", "email": "rest@example.org", "password": "rest-user-password",
                      "realname": "Rest User", "level": "readonly"});
    let u = rest_id(
        &r.rest("rest-users-post", Method::POST, "/users", t, Some(user), 201)
            .await,
    );
    r.rest("rest-users-list", Method::GET, "/users", t, None, 200).await;
    let u_path = format!("/users/{u}");
    r.rest("rest-users-get", Method::GET, &u_path, t, None, 200).await;
    let promote = json!({"level": "standard", "realname": null, "disabled": true});
    r.rest("rest-users-patch", Method::PATCH, &u_path, t, Some(promote), 200)
        .await;

    let key = json!({"name": "rest key", "description": "made over REST"});
    let k = rest_id(
        &r.rest("rest-app-keys-post", Method::POST, "/app-keys", t, Some(key), 201)
            .await,
    );
    r.rest("rest-app-keys-list", Method::GET, "/app-keys", t, None, 200)
        .await;
    let k_path = format!("/app-keys/{k}");
    r.rest("rest-app-keys-get", Method::GET, &k_path, t, None, 200).await;
    let off = json!({"enabled": false, "disabled_reason": "rotated"});
    r.rest("rest-app-keys-patch", Method::PATCH, &k_path, t, Some(off), 200)
        .await;
    r.rest("rest-app-keys-delete", Method::DELETE, &k_path, t, None, 204)
        .await;

    let token = json!({"description": "rest token", "expires_at": "2100-01-01T00:00:00Z"});
    let tk = rest_id(
        &r.rest("rest-tokens-post", Method::POST, "/tokens", t, Some(token), 201)
            .await,
    );
    r.rest("rest-tokens-list", Method::GET, "/tokens", t, None, 200).await;
    let tk_path = format!("/tokens/{tk}");
    r.rest("rest-tokens-get", Method::GET, &tk_path, t, None, 200).await;
    r.rest("rest-tokens-delete", Method::DELETE, &tk_path, t, None, 204)
        .await;

    let other = r.s.org("doomed").await;
    let (doomed, _) = r.s.new_token(&other, "doomed").await;
    r.rest(
        "rest-org-delete",
        Method::DELETE,
        "/org?confirm=doomed",
        &doomed,
        None,
        204,
    )
    .await;
    let read_only = json!({"subnet": "10.9.0.0/24"});
    r.rest(
        "rest-error-400-read-only",
        Method::POST,
        "/networks",
        t,
        Some(read_only),
        400,
    )
    .await;
}

/// The REST error bodies: 400 with `errors` and with `details`, 401, 404 for an id and for a route, 405, 415.
async fn rest_errors(r: &mut Recorder<'_>, t: &str, dmz: i64, site: i64) {
    let typed = json!({"ip_address": "10.20.0.30", "hostname": 12, "is_assigned": "yes"});
    r.rest("rest-error-400-types", Method::POST, "/hosts", t, Some(typed), 400)
        .await;
    let overlap = json!({"network": "10.20.0.0", "cidr": 25, "group_id": site});
    r.rest(
        "rest-error-400-overlap",
        Method::POST,
        "/networks",
        t,
        Some(overlap),
        400,
    )
    .await;
    r.rest(
        "rest-error-400-query",
        Method::GET,
        "/networks?colour=red",
        t,
        None,
        400,
    )
    .await;
    let outside = json!({"start_ip": "10.21.0.1", "end_ip": "10.21.0.9"});
    let ranges = format!("/networks/{dmz}/dhcp-ranges");
    r.rest("rest-error-400-range", Method::POST, &ranges, t, Some(outside), 400)
        .await;
    let held = format!("/networks/{dmz}");
    r.rest("rest-error-400-force", Method::DELETE, &held, t, None, 400)
        .await;
    r.rest("rest-error-401", Method::GET, "/networks", "", None, 401).await;
    r.rest("rest-error-404-id", Method::GET, "/networks/999", t, None, 404)
        .await;
    r.rest("rest-error-404-route", Method::GET, "/nope", t, None, 404).await;
    r.rest("rest-error-405", Method::PUT, "/networks", t, None, 405).await;
    let bearer = format!("Bearer {t}");
    let text = [("content-type", "text/plain"), ("authorization", bearer.as_str())];
    r.http(
        "rest-error-415",
        Method::POST,
        "/api/v1/hosts",
        &text,
        "ip=1".into(),
        415,
    )
    .await;
    let json = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    r.http(
        "rest-error-400-not-json",
        Method::POST,
        "/api/v1/hosts",
        &json,
        "{".into(),
        400,
    )
    .await;
}

/// The backups of both doors, the REST ones with an `API_TOKENS` operator token; the restores come last, as they
/// replace the data, and the log's newest entries show them.
async fn backups(r: &mut Recorder<'_>) {
    let a = r.s.admin.clone();
    r.ok(BACKUPS_LOGS[0], &a, "org/logs", json!({"perpage": 500})).await;
    r.ok("rpc-backups-get-empty", &a, "backups/get", json!({})).await;
    let made = r.ok("rpc-backups-add", &a, "backups/add", json!({})).await;
    let first = made["name"].as_str().unwrap().to_string();
    r.ok("rpc-backups-get", &a, "backups/get", json!({})).await;
    r.ok("rpc-backups-verify", &a, "backups/verify", json!({"name": first}))
        .await;

    let t = OPERATOR_TOKEN;
    let made = r
        .rest("rest-backups-post", Method::POST, "/backups", t, None, 201)
        .await;
    let second = made["name"].as_str().unwrap().to_string();
    r.rest("rest-backups-list", Method::GET, "/backups?per_page=1", t, None, 200)
        .await;
    let verify = format!("/backups/{second}/verify");
    r.rest("rest-backups-verify", Method::GET, &verify, t, None, 200).await;
    r.rest("rest-backups-verify-post", Method::POST, &verify, t, None, 200)
        .await;
    r.rest("rest-backups-404", Method::GET, "/backups/none.db/verify", t, None, 404)
        .await;

    r.ok("rpc-backups-restore", &a, "backups/restore", json!({"name": first}))
        .await;
    let restore = format!("/backups/{second}/restore");
    r.rest("rest-backups-restore", Method::POST, &restore, t, None, 200)
        .await;
    r.ok(BACKUPS_LOGS[1], &a, "org/logs", json!({"perpage": 3})).await;
}
