//! The isolation and level matrices, generated from the method table (`METHODS`) and the REST route table
//! (`ROUTES`), so that a method or route added later is covered without anyone remembering to list it.
//!
//! Isolation: every parameter that carries an id, given another org's id, answers `not_found` through both front
//! doors; no answer shows anything of the other org; the other org's data is the same afterwards. Levels: every
//! method called one level too low is refused and changes nothing, and called at its level it works. A method
//! that the tables below do not classify fails the suite, and so does a table that disagrees with the server.
//!
//! Each matrix collects every broken cell and fails once, listing them all.

use hyper::Method as Verb;
use serde_json::{json, Value};

use ipamd::handler::{find_method, Access, Kind, Level};
use ipamd::methods::METHODS;
use ipamd::rest::{Body, Resource, Route, ROUTES};

use crate::support::{id_of, only, status_of_any, Ident, Server};

/// The kinds of record an id can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Obj {
    Group,
    Subnet,
    Field,
    Address,
    Range,
    User,
    AppKey,
    Token,
    Webhook,
    Delivery,
}

/// The parameter names that carry record ids, in any method.
const ID_NAMES: [&str; 5] = ["id", "ids", "subnet", "group", "parent"];

/// `id` and `ids` name a record of the method's own family (first matching prefix), in every method.
const FAMILIES: &[(&str, Obj)] = &[
    ("subnets/fields/", Obj::Field),
    ("subnets/", Obj::Subnet),
    ("groups/", Obj::Group),
    ("ipaddress/", Obj::Address),
    ("dhcpranges/", Obj::Range),
    ("org/users/", Obj::User),
    ("org/appkeys/", Obj::AppKey),
    ("org/tokens/", Obj::Token),
    ("webhooks/redeliver", Obj::Delivery),
    ("webhooks/", Obj::Webhook),
];

/// The other id parameters name the same kind in every method, but a subnet's `parent`, which names its pool.
const NAMED: &[(&str, Obj)] = &[("subnet", Obj::Subnet), ("group", Obj::Group), ("parent", Obj::Group)];

/// The id parameters each method takes. `isolation_matrix` checks this against the server: a method that accepts
/// an id parameter not listed here fails, as does a listed one it refuses.
const TAKES_IDS: &[(&str, &[&str])] = &[
    ("org/users/get", &["id"]),
    ("org/users/edit", &["id"]),
    ("org/appkeys/get", &["id"]),
    ("org/appkeys/edit", &["id"]),
    ("org/appkeys/delete", &["id"]),
    ("org/tokens/get", &["id"]),
    ("org/tokens/delete", &["id"]),
    ("groups/get", &["id"]),
    ("groups/add", &["parent"]),
    ("groups/edit", &["id", "parent"]),
    ("groups/delete", &["id"]),
    ("subnets/get", &["id", "ids", "group", "parent"]),
    ("subnets/add", &["group", "parent"]),
    ("subnets/edit", &["id", "group", "parent"]),
    ("subnets/delete", &["id"]),
    ("subnets/massdelete", &["ids"]),
    ("subnets/split", &["id"]),
    ("subnets/join", &["id", "ids"]),
    ("subnets/available", &["id"]),
    ("subnets/fields/get", &["id", "subnet"]),
    ("subnets/fields/add", &["subnet"]),
    ("subnets/fields/edit", &["id"]),
    ("subnets/fields/delete", &["id"]),
    ("ipaddress/get", &["id", "ids", "subnet"]),
    ("ipaddress/add", &["subnet"]),
    ("ipaddress/edit", &["id", "subnet"]),
    ("ipaddress/delete", &["id"]),
    ("ipaddress/massdelete", &["ids", "subnet"]),
    ("ipaddress/next", &["subnet"]),
    ("ipaddress/available", &["subnet"]),
    ("dhcpranges/get", &["id", "subnet"]),
    ("dhcpranges/add", &["subnet"]),
    ("dhcpranges/edit", &["id", "subnet"]),
    ("dhcpranges/delete", &["id"]),
    ("search/ip", &["group"]),
    ("export/get", &["subnet", "group"]),
    ("import/run", &["group"]),
    ("output/get", &["subnet", "group"]),
    ("webhooks/add", &["subnet", "group"]),
    ("webhooks/get", &["id"]),
    ("webhooks/edit", &["id", "subnet", "group"]),
    ("webhooks/delete", &["id"]),
    ("webhooks/deliveries", &["id"]),
    ("webhooks/redeliver", &["id"]),
];

/// Methods that take no id of a record, and how their isolation is checked instead.
const NO_FOREIGN_ID: &[(&str, &str)] = &[
    ("ping", "no caller data at all"),
    ("version", "no caller data at all"),
    ("userdata", "the caller's own user and org: leak scan"),
    ("org/info", "the caller's own org: leak scan"),
    (
        "org/edit",
        "a taken identifier is `duplicate` and changes nothing: checked below",
    ),
    ("org/delete", "`confirm` must name the caller's own org: checked below"),
    (
        "org/logs",
        "`userid`/`objectid` filter the caller's own log: checked below",
    ),
    ("org/users/add", "creates in the caller's org"),
    ("org/appkeys/add", "creates in the caller's org"),
    ("org/tokens/add", "creates in the caller's org"),
    ("backups/get", "server-wide, operator admins only: the level matrix"),
    ("backups/add", "server-wide, operator admins only: the level matrix"),
    ("backups/verify", "server-wide, operator admins only: the level matrix"),
    ("backups/restore", "server-wide, operator admins only: the level matrix"),
    ("search/find", "free text: leak scan with the other org's words"),
    ("changes/get", "the caller's own org's feed: leak scan"),
];

/// Parameters named like id parameters that carry something else: the CIDR text of subnets/add and subnets/edit.
const NOT_IDS: &[(&str, &str)] = &[("subnets/add", "subnet"), ("subnets/edit", "subnet")];

/// More calls per method on the other org's records, each merged into the sample: the flags that would do the
/// most damage if a foreign id got through.
const VARIANTS: &[(&str, &str)] = &[
    ("org/users/edit", r#"{"password": "taken-over-now"}"#),
    ("org/users/edit", r#"{"disabled": true}"#),
    ("org/users/edit", r#"{"level": "readonly"}"#),
    ("org/users/edit", r#"{"email": "taken@example.org"}"#),
    ("org/appkeys/edit", r#"{"enabled": false}"#),
    ("org/appkeys/edit", r#"{"name": "mine now"}"#),
    ("groups/get", r#"{"sort": true}"#),
    ("groups/edit", r#"{"parent": null}"#),
    ("groups/delete", r#"{"recursive": true}"#),
    ("subnets/delete", r#"{"force": true}"#),
    ("subnets/massdelete", r#"{"force": true}"#),
    ("subnets/join", r#"{"force": true}"#),
    ("subnets/split", r#"{"parts": 256}"#),
    ("ipaddress/edit", r#"{"ip": "10.0.0.99"}"#),
    ("dhcpranges/edit", r#"{"is_active": false}"#),
];

/// Parameters of a method that exclude each other: setting one drops the others from a sample call.
const EXCLUSIVE: &[(&str, &[&str])] = &[
    ("subnets/get", &["id", "ids", "group", "parent"]),
    ("ipaddress/get", &["id", "ids"]),
    ("ipaddress/massdelete", &["ids", "subnet"]),
    ("subnets/join", &["ids", "id"]),
    ("subnets/fields/get", &["subnet", "id"]),
    ("export/get", &["subnet", "group"]),
    ("output/get", &["subnet", "group"]),
];

/// Parameters that another needs: (method, parameter, companion, companion's value as JSON).
const COMPANIONS: &[(&str, &str, &str, &str)] = &[
    ("subnets/join", "id", "cidr", "23"),
    ("ipaddress/massdelete", "subnet", "all", "true"),
];

/// The level methods.md gives each method; the generated level matrix trusts the table, this checks the table.
const DOCUMENTED_LEVELS: &[(&str, Access)] = &[
    ("ping", Access::AppKey),
    ("version", Access::AppKey),
    ("userdata", READ),
    ("org/info", READ),
    ("org/edit", ADMIN),
    ("org/delete", ADMIN),
    ("org/logs", ADMIN),
    ("org/users/get", READ),
    ("org/users/add", ADMIN),
    // Readonly for one's own email, realname and password; the handler asks for admin for the rest.
    ("org/users/edit", READ),
    // Any level for one's own keys and tokens; the handlers limit non-admins to those.
    ("org/appkeys/add", READ),
    ("org/appkeys/get", READ),
    ("org/appkeys/edit", READ),
    ("org/appkeys/delete", READ),
    ("org/tokens/add", READ),
    ("org/tokens/get", READ),
    ("org/tokens/delete", READ),
    ("groups/get", READ),
    ("groups/add", STANDARD),
    ("groups/edit", STANDARD),
    ("groups/delete", STANDARD),
    ("backups/get", Access::Operator),
    ("backups/add", Access::Operator),
    ("backups/verify", Access::Operator),
    ("backups/restore", Access::Operator),
    ("subnets/get", READ),
    ("subnets/add", STANDARD),
    ("subnets/edit", STANDARD),
    ("subnets/delete", STANDARD),
    ("subnets/massdelete", STANDARD),
    ("subnets/split", STANDARD),
    ("subnets/join", STANDARD),
    ("subnets/available", READ),
    ("subnets/fields/get", READ),
    ("subnets/fields/add", STANDARD),
    ("subnets/fields/edit", STANDARD),
    ("subnets/fields/delete", STANDARD),
    ("ipaddress/get", READ),
    ("ipaddress/add", STANDARD),
    ("ipaddress/edit", STANDARD),
    ("ipaddress/delete", STANDARD),
    ("ipaddress/massdelete", STANDARD),
    ("ipaddress/next", READ),
    ("ipaddress/available", READ),
    ("dhcpranges/get", READ),
    ("dhcpranges/add", STANDARD),
    ("dhcpranges/edit", STANDARD),
    ("dhcpranges/delete", STANDARD),
    ("search/ip", READ),
    ("search/find", READ),
    ("export/get", READ),
    ("import/run", STANDARD),
    ("output/get", READ),
    ("changes/get", ADMIN),
    ("webhooks/add", ADMIN),
    ("webhooks/get", ADMIN),
    ("webhooks/edit", ADMIN),
    ("webhooks/delete", ADMIN),
    ("webhooks/deliveries", ADMIN),
    ("webhooks/redeliver", ADMIN),
];

const READ: Access = Access::User(Level::Readonly);
const STANDARD: Access = Access::User(Level::Standard);
const ADMIN: Access = Access::User(Level::Admin);

/// Methods whose sample call undoes or ends everything else: the level matrix runs them last, in this order.
const LAST: [&str; 2] = ["backups/restore", "org/delete"];

/// An `API_TOKENS` operator token of the isolation server.
const OPERATOR_TOKEN: &str = "operator-token-for-the-isolation-matrix";

/// A record id no org has.
const NOBODY: i64 = 987_654_321;

#[test]
fn every_method_is_classified_for_isolation() {
    for m in METHODS {
        let takes = TAKES_IDS.iter().any(|(n, _)| *n == m.name);
        let none = NO_FOREIGN_ID.iter().any(|(n, _)| *n == m.name);
        assert!(
            takes != none,
            "{} must be in exactly one of TAKES_IDS and NO_FOREIGN_ID in tests/it/matrix.rs",
            m.name
        );
        for p in takes_ids(m.name) {
            assert!(ID_NAMES.contains(p), "{}: {p} is not an id parameter name", m.name);
            assert!(kind_of(m.name, p).is_some(), "{}: no record kind for {p}", m.name);
        }
    }
    let classified = TAKES_IDS
        .iter()
        .map(|(n, _)| *n)
        .chain(NO_FOREIGN_ID.iter().map(|(n, _)| *n));
    for name in classified {
        assert!(
            find_method(METHODS, name).is_some(),
            "{name} is classified but not in METHODS"
        );
    }
}

#[test]
fn the_method_table_has_the_levels_of_the_spec() {
    for m in METHODS {
        let spec = DOCUMENTED_LEVELS.iter().find(|(n, _)| *n == m.name);
        let (_, access) =
            spec.unwrap_or_else(|| panic!("{}: add its level in methods.md to DOCUMENTED_LEVELS", m.name));
        assert_eq!(m.access, *access, "{} has the wrong level in METHODS", m.name);
    }
    assert_eq!(
        DOCUMENTED_LEVELS.len(),
        METHODS.len(),
        "DOCUMENTED_LEVELS names a method the table lacks"
    );
}

/// Org B's admin (envelope) and B's tokens (REST) try every id parameter of every method and route on org A's
/// records, then the operator org tries the same on B: `not_found` every time, no answer shows a word of the
/// other org, and the other org's dump is unchanged. First, the id parameter table is checked against the server.
#[tokio::test]
async fn isolation_matrix() {
    let s = Server::start_with(|c| c.api_tokens = OPERATOR_TOKEN.into()).await;
    // Both orgs get the same address plan: the second fixture's subnets and addresses can only be made if
    // overlap checks and address lookups stay inside the org.
    let a = Fixture::build(&s, s.admin.clone(), "alphamark").await;
    let b_admin = s.org("orgb").await;
    let b = Fixture::build(&s, b_admin, "bravomark").await;
    let mut fails = Failures::default();

    // The table of id parameters against the server: with a sample call valid for the caller, an id parameter the
    // method does not take is an "unknown parameter"; any other answer means the method takes it.
    for m in METHODS {
        let sample = a.sample(m.name);
        let mut taken: Vec<&str> = Vec::new();
        for p in ID_NAMES {
            if NOT_IDS.contains(&(m.name, p)) {
                continue;
            }
            if sample.get(p).is_some() {
                taken.push(p);
                continue;
            }
            let value = if p == "ids" {
                json!([NOBODY, NOBODY + 1])
            } else {
                json!(NOBODY)
            };
            let (_, body) = s.call(&a.admin, m.name, case(m.name, sample.clone(), p, value)).await;
            let unknown = body["errorCode"] == "invalid_params" && body["errorData"][p] == "unknown parameter";
            if !unknown {
                taken.push(p);
            }
        }
        let listed = takes_ids(m.name);
        fails.check(taken == listed, || {
            format!(
                "{} takes the id parameters {taken:?}, TAKES_IDS says {listed:?}",
                m.name
            )
        });
    }

    // Both directions at once: each only reads or is refused, and each compares only its own victim.
    let (mut one, mut two) = (Failures::default(), Failures::default());
    let b_tokens = [(b.admin_token.as_str(), false)];
    let a_tokens = [(a.admin_token.as_str(), true), (OPERATOR_TOKEN, true)];
    tokio::join!(
        isolate(&s, &b, &a, &b_tokens, &mut one),
        isolate(&s, &a, &b, &a_tokens, &mut two)
    );
    fails.0.extend(one.0.into_iter().chain(two.0));
    // Both orgs still work for their own people.
    s.ok(&a.standard, "userdata", json!({})).await;
    s.ok(&b.readonly, "userdata", json!({})).await;
    fails.assert_none("isolation matrix");
}

/// `own` (its admin and each of `tokens`, flagged when they act for the operator org) against `victim`'s records.
async fn isolate(s: &Server, own: &Fixture, victim: &Fixture, tokens: &[(&str, bool)], fails: &mut Failures) {
    let who = &own.admin;
    let hidden = Some(victim.tag.as_str());
    let mut before = s.dump(&victim.admin).await;

    // The envelope: every id parameter of every method.
    for m in METHODS {
        for p in takes_ids(m.name) {
            let kind = kind_of(m.name, p).unwrap_or_else(|| panic!("{}: no kind for {p}", m.name));
            for value in foreign_values(p, kind, own, victim) {
                for extra in variants(m.name) {
                    let mut sample = own.sample(m.name);
                    sample.as_object_mut().unwrap().extend(extra);
                    let data = case(m.name, sample, p, value.clone());
                    expect(s, fails, who, m.name, data, "not_found", hidden).await;
                }
            }
        }
        // Reads run in read transactions: only writers with cases could have changed anything.
        if m.kind == Kind::Write && !takes_ids(m.name).is_empty() {
            before = unchanged(s, fails, victim, before, || {
                format!("{} with another org's ids", m.name)
            })
            .await;
        }
    }

    // Methods without ids: what they show holds nothing of the other org, even asked with its words.
    for m in METHODS
        .iter()
        .filter(|m| matches!(m.kind, Kind::Read | Kind::Poll) && m.access != Access::Operator)
    {
        let mut sample = own.sample(m.name);
        expect(s, fails, who, m.name, sample.clone(), "ok", hidden).await;
        // The whole list, where the sample asked for one record (`subnets/available` reads one pool: no list).
        if m.name != "subnets/available" && sample.as_object_mut().unwrap().shift_remove("id").is_some() {
            expect(s, fails, who, m.name, sample, "ok", hidden).await;
        }
    }
    for (method, data) in [
        ("groups/get", json!({"sort": true})),
        ("subnets/get", json!({"addresses": true, "fields": true})),
        ("ipaddress/get", json!({})),
        ("dhcpranges/get", json!({})),
        ("org/users/get", json!({})),
        ("org/appkeys/get", json!({})),
        ("org/tokens/get", json!({})),
        ("search/find", json!({"query": victim.tag})),
        ("search/find", json!({"query": "10.0.0.10"})),
        ("search/find", json!({"query": "host"})),
        ("search/ip", json!({"ip": "10.0.0.0/8"})),
        ("search/ip", json!({"ip": "2001:db8::/32"})),
        ("search/ip", json!({"ip": "10.0.0.10"})),
    ] {
        expect(s, fails, who, method, data, "ok", hidden).await;
    }
    // The counts are the caller's own (the fixtures make the same number of records in every org).
    let info = expect(s, fails, who, "org/info", json!({}), "ok", hidden).await;
    let counts = ["usercount", "groupcount", "subnetcount", "ipcount"].map(|k| info["response"][k].clone());
    fails.check(counts == ["3", "3", "8", "5"].map(Value::from), || {
        format!("org/info as {} counts another org's records: {info}", who.username)
    });
    for filter in [
        json!({"userid": victim.admin.id}),
        json!({"objectid": victim.group, "objecttype": "group"}),
        json!({"objectid": victim.v4, "objecttype": "subnet"}),
    ] {
        let logs = expect(s, fails, who, "org/logs", filter.clone(), "ok", hidden).await;
        fails.check(logs["response"]["total"] == "0", || {
            format!(
                "org/logs {filter} as {} shows another org's entries: {logs}",
                who.username
            )
        });
    }
    // Org identifiers are one namespace, so a taken one is reported, but nothing changes.
    let taken = json!({"identifier": victim.org});
    expect(s, fails, who, "org/edit", taken, "duplicate", hidden).await;
    let confirm = json!({"confirm": victim.org});
    // The operator org cannot be deleted at all, whatever it confirms.
    let code = if own.org == s.admin.org {
        "conflict"
    } else {
        "invalid_params"
    };
    expect(s, fails, who, "org/delete", confirm, code, hidden).await;
    before = unchanged(s, fails, victim, before, || "org/edit and org/delete".into()).await;

    // REST: every route with a record id in its path, query or body, with each token.
    for (n, (token, operator)) in tokens.iter().enumerate() {
        for route in ROUTES {
            for (path, body) in rest_foreign_cases(route, own, victim, *operator) {
                let (status, code) = match find_method(METHODS, route.method).map(|m| m.access) {
                    Some(Access::Operator) if !operator => (403, "access_denied"),
                    _ => (404, "not_found"),
                };
                expect_rest(s, fails, route, &path, token, body.as_ref(), status, code, hidden).await;
            }
        }
        // One comparison per token: a change would name its route in the new log entry of the difference.
        let what = || format!("REST calls with another org's ids (token {n})");
        before = unchanged(s, fails, victim, before, what).await;
        // The one route without an id: an address's status shows only the caller's own records.
        for ip in ["10.0.0.10", "10.0.0.100", "2001:db8::10", "10.0.1.5"] {
            let path = format!("/ip/{ip}");
            let route = route_of("GET", "/ip/{ip}");
            expect_rest(s, fails, route, &path, token, None, 200, "", hidden).await;
        }
    }
    unchanged(s, fails, victim, before, || "the whole matrix".into()).await;
}

/// Every method, called one level too low — an app key alone for readonly methods, no app key for `ping` — is
/// refused and changes nothing; so is every REST route with a token one level too low. Then each method's sample
/// call at exactly its level works.
#[tokio::test]
async fn level_matrix() {
    let s = Server::start().await;
    let admin = s.org("acme").await;
    let mut f = Fixture::build(&s, admin, "acmemark").await;
    // A real backup for the operator methods, then one more change, so that a restore would show.
    f.backup = s.ok(&s.admin, "backups/add", json!({})).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(&f.admin, "groups/add", json!({"description": "after the backup"}))
        .await;
    let mut fails = Failures::default();
    let mut before = s.dump(&f.admin).await;

    for m in METHODS {
        let (who, code) = below(&f, m.access);
        expect(&s, &mut fails, &who, m.name, f.sample(m.name), code, None).await;
        if !matches!(m.kind, Kind::Read | Kind::Poll) {
            before = unchanged(&s, &mut fails, &f, before, || format!("{} one level too low", m.name)).await;
        }
    }

    // Rules inside handlers that the table's level does not show: the admin half of org/users/edit, and other
    // users' app keys and tokens, which do not exist for a non-admin.
    let (std, ro) = (&f.standard, &f.readonly);
    let rules: Vec<(&Ident, &str, Value, &str)> = vec![
        (
            std,
            "org/users/edit",
            json!({"id": ro.id, "realname": "x"}),
            "access_denied",
        ),
        (
            std,
            "org/users/edit",
            json!({"id": f.admin.id, "password": "mine-mine-mine"}),
            "access_denied",
        ),
        (
            std,
            "org/users/edit",
            json!({"id": f.admin.id, "disabled": true}),
            "access_denied",
        ),
        (
            std,
            "org/users/edit",
            json!({"id": "self", "level": "admin"}),
            "access_denied",
        ),
        (
            ro,
            "org/users/edit",
            json!({"id": "self", "level": "standard"}),
            "access_denied",
        ),
        (
            std,
            "org/users/edit",
            json!({"id": std.id, "disabled": false}),
            "access_denied",
        ),
        (std, "org/appkeys/get", json!({"id": f.admin_key}), "not_found"),
        (std, "org/appkeys/get", json!({"id": f.key}), "not_found"),
        (
            std,
            "org/appkeys/edit",
            json!({"id": f.admin_key, "enabled": false}),
            "not_found",
        ),
        (
            ro,
            "org/appkeys/edit",
            json!({"id": f.admin_key, "name": "mine"}),
            "not_found",
        ),
        (std, "org/appkeys/delete", json!({"id": f.key}), "not_found"),
        (std, "org/tokens/get", json!({"id": f.admin_token_id}), "not_found"),
        (std, "org/tokens/delete", json!({"id": f.admin_token_id}), "not_found"),
        (std, "org/tokens/delete", json!({"id": f.token}), "not_found"),
    ];
    for (who, method, data, code) in rules {
        expect(&s, &mut fails, who, method, data, code, None).await;
    }
    before = unchanged(&s, &mut fails, &f, before, || "the handlers' own level rules".into()).await;

    // REST: each route with a token one level too low (none for readonly routes).
    for route in ROUTES {
        let access = find_method(METHODS, route.method).map(|m| m.access).unwrap();
        let (token, status, code) = match access {
            Access::AppKey | Access::User(Level::Readonly) => ("", 401, "auth_required"),
            Access::User(Level::Standard) => (f.readonly_token.as_str(), 403, "access_denied"),
            Access::User(Level::Admin) => (f.standard_token.as_str(), 403, "access_denied"),
            Access::Operator => (f.admin_token.as_str(), 403, "access_denied"),
        };
        let path = rest_path(route, &f, |kind| f.records(kind)[0]);
        let body = rest_body(route, &f, false);
        expect_rest(&s, &mut fails, route, &path, token, body.as_ref(), status, code, None).await;
        if route.verb != "GET" {
            let what = || format!("{} {} one level too low", route.verb, route.path);
            before = unchanged(&s, &mut fails, &f, before, what).await;
        }
    }

    // Non-admins see only their own keys and tokens.
    let keys = expect(&s, &mut fails, std, "org/appkeys/get", json!({}), "ok", None).await;
    fails.check(keys["response"] == json!([]), || {
        format!("a standard user sees others' app keys: {keys}")
    });
    let tokens = expect(&s, &mut fails, ro, "org/tokens/get", json!({}), "ok", None).await;
    let owners: Vec<&Value> = tokens["response"]
        .as_object()
        .map_or(vec![], |m| m.values().map(|t| &t["user"]).collect());
    fails.check(
        owners.iter().all(|u| **u == json!(ro.id.to_string())) && owners.len() == 2,
        || format!("a readonly user's own tokens: {tokens}"),
    );

    // Exactly the level is enough: each sample call at its method's level.
    let order = METHODS
        .iter()
        .filter(|m| !LAST.contains(&m.name))
        .chain(LAST.iter().map(|n| find_method(METHODS, n).unwrap()));
    let mut admin_half_done = false;
    for m in order {
        if LAST.contains(&m.name) && !admin_half_done {
            // The admin half of the handlers' rules, before the sample calls that end it all.
            admin_half_done = true;
            for (method, data) in [
                (
                    "org/users/edit",
                    json!({"id": ro.id, "level": "standard", "disabled": true}),
                ),
                ("org/users/edit", json!({"id": std.id, "password": "reset-password"})),
                ("org/appkeys/edit", json!({"id": f.key, "name": "renamed by the admin"})),
                ("org/appkeys/delete", json!({"id": f.key})),
                ("org/tokens/delete", json!({"id": f.token})),
            ] {
                expect(&s, &mut fails, &f.admin, method, data, "ok", None).await;
            }
        }
        let who = at_level(&s, &f, m.access);
        expect(&s, &mut fails, &who, m.name, f.sample(m.name), "ok", None).await;
    }
    fails.assert_none("level matrix");
}

/// One org's records, the same plan in every org, each text marked with the org's `tag`.
struct Fixture {
    org: String,
    tag: String,
    admin: Ident,
    standard: Ident,
    readonly: Ident,
    admin_token: String,
    admin_token_id: i64,
    standard_token: String,
    readonly_token: String,
    admin_key: i64,
    /// The readonly user's own app keys and tokens.
    key: i64,
    key_del: i64,
    token: i64,
    token_del: i64,
    group: i64,
    group2: i64,
    group_del: i64,
    v4: i64,
    v6: i64,
    join: [i64; 2],
    split: i64,
    /// A pool, for `subnets/available` and the `parent` of a subnet.
    pool: i64,
    del: i64,
    mdel: i64,
    field: i64,
    field_del: i64,
    addr: i64,
    addr2: i64,
    addr6: i64,
    addr_del: i64,
    addr_mdel: i64,
    range: i64,
    range_del: i64,
    /// Webhooks (to a documentation address, never reached in time), one to delete, and a delivery of `webhook`.
    webhook: i64,
    webhook_del: i64,
    delivery: i64,
    /// A valid backup name (a real backup in the level matrix).
    backup: String,
}

impl Fixture {
    async fn build(s: &Server, admin: Ident, tag: &str) -> Fixture {
        let org = s.ok(&admin, "userdata", json!({})).await["org"]["identifier"]
            .as_str()
            .unwrap()
            .to_string();
        s.ok(&admin, "org/edit", json!({"description": format!("{tag} org")}))
            .await;
        let standard = s.user(&admin, "std", "standard").await;
        let readonly = s.user(&admin, "ro", "readonly").await;
        for u in [&admin, &standard, &readonly] {
            let realname = format!("{tag} {}", u.username);
            s.ok(&admin, "org/users/edit", json!({"id": u.id, "realname": realname}))
                .await;
        }
        let (admin_token, admin_token_id) = s.new_token(&admin, tag).await;
        let (standard_token, _) = s.new_token(&standard, tag).await;
        let (readonly_token, token) = s.new_token(&readonly, tag).await;
        let (_, token_del) = s.new_token(&readonly, tag).await;
        let key = |name: &str| json!({"name": format!("{tag} {name}"), "description": tag});
        let admin_key = add(s, &admin, "org/appkeys/add", key("admin key")).await;
        let key_del = add(s, &readonly, "org/appkeys/add", key("doomed key")).await;
        let key = add(s, &readonly, "org/appkeys/add", key("key")).await;
        let group = add(s, &admin, "groups/add", json!({"description": format!("{tag} group")})).await;
        let child = json!({"description": format!("{tag} child"), "parent": group});
        let group2 = add(s, &admin, "groups/add", child).await;
        let doomed = json!({"description": format!("{tag} doomed")});
        let group_del = add(s, &admin, "groups/add", doomed).await;
        let net = |cidr: &str, group: Option<i64>| {
            json!({"subnet": cidr, "group": group, "name": tag, "description": format!("{tag} net"),
                   "domain": format!("{tag}.example"), "location": tag, "vlan_id": 10})
        };
        let v4 = add(s, &admin, "subnets/add", net("10.0.0.0/24", Some(group))).await;
        let v6 = add(s, &admin, "subnets/add", net("2001:db8::/64", Some(group))).await;
        let join = [
            add(s, &admin, "subnets/add", net("10.0.1.0/25", None)).await,
            add(s, &admin, "subnets/add", net("10.0.1.128/25", None)).await,
        ];
        let split = add(s, &admin, "subnets/add", net("10.0.2.0/24", None)).await;
        let del = add(s, &admin, "subnets/add", net("10.0.3.0/24", None)).await;
        let mdel = add(s, &admin, "subnets/add", net("10.0.4.0/24", None)).await;
        let pool = add(s, &admin, "subnets/add", json!({"subnet": "10.1.0.0/16", "pool": true})).await;
        let field = |name: &str| json!({"subnet": v4, "name": name, "description": tag});
        let field_del = add(s, &admin, "subnets/fields/add", field("doomed")).await;
        let field = add(s, &admin, "subnets/fields/add", field("owner")).await;
        let host = |ip: &str| {
            json!({"ip": ip, "subnet": v4, "hostname": format!("{tag}-host"), "description": tag,
                   "cname": format!("{tag}.example"), "fields": {"owner": tag}})
        };
        let addr = add(s, &admin, "ipaddress/add", host("10.0.0.10")).await;
        let addr2 = add(s, &admin, "ipaddress/add", host("10.0.0.11")).await;
        let addr_del = add(s, &admin, "ipaddress/add", host("10.0.0.12")).await;
        let addr_mdel = add(s, &admin, "ipaddress/add", host("10.0.0.13")).await;
        let host6 = json!({"ip": "2001:db8::10", "hostname": format!("{tag}-host6"), "description": tag});
        let addr6 = add(s, &admin, "ipaddress/add", host6).await;
        let range = |from: &str, to: &str| json!({"subnet": v4, "start_ip": from, "end_ip": to, "description": tag});
        let range_del = add(s, &admin, "dhcpranges/add", range("10.0.0.160", "10.0.0.170")).await;
        let range = add(s, &admin, "dhcpranges/add", range("10.0.0.100", "10.0.0.150")).await;
        let hook = json!({"url": "http://192.0.2.1/hook", "description": tag, "subnet": v4, "group": group,
                          "objecttypes": "subnet"});
        let webhook = add(s, &admin, "webhooks/add", hook.clone()).await;
        let webhook_del = add(s, &admin, "webhooks/add", hook).await;
        s.ok(
            &admin,
            "subnets/edit",
            json!({"id": v4, "description": format!("{tag} net")}),
        )
        .await;
        let deliveries = s.ok(&admin, "webhooks/deliveries", json!({"id": webhook})).await;
        let delivery = crate::support::id_of(crate::support::only(&deliveries));
        Fixture {
            org,
            tag: tag.to_string(),
            admin,
            standard,
            readonly,
            admin_token,
            admin_token_id,
            standard_token,
            readonly_token,
            admin_key,
            key,
            key_del,
            token,
            token_del,
            group,
            group2,
            group_del,
            v4,
            v6,
            join,
            split,
            pool,
            del,
            mdel,
            field,
            field_del,
            addr,
            addr2,
            addr6,
            addr_del,
            addr_mdel,
            range,
            range_del,
            webhook,
            webhook_del,
            delivery,
            backup: "ipam-backup-20000101-000000Z.db".into(),
        }
    }

    /// A call of `method` that works for a caller of the method's level in this org, on this org's records (the
    /// level matrix makes each once, in table order). Every method of the table needs one.
    fn sample(&self, method: &str) -> Value {
        let tag = &self.tag;
        match method {
            "ping" => json!({"time": "1"}),
            "version" | "userdata" | "org/info" | "org/tokens/get" | "backups/get" | "backups/add" => json!({}),
            "org/edit" => json!({"description": format!("{tag} org, edited")}),
            "org/delete" => json!({"confirm": self.org}),
            "org/logs" => json!({"perpage": 10}),
            "org/users/get" => json!({"id": self.standard.id}),
            "org/users/add" => {
                json!({"username": "newcomer", "password": "password-of-newcomer", "email": "newcomer@example.org"})
            }
            "org/users/edit" => json!({"id": "self", "realname": format!("{tag} me")}),
            "org/appkeys/add" => json!({"name": format!("{tag} new key")}),
            "org/appkeys/get" => json!({"id": self.key}),
            "org/appkeys/edit" => json!({"id": self.key, "description": format!("{tag} edited")}),
            "org/appkeys/delete" => json!({"id": self.key_del}),
            "org/tokens/add" => json!({"description": format!("{tag} new token")}),
            "org/tokens/delete" => json!({"id": self.token_del}),
            "groups/get" => json!({"id": self.group}),
            "groups/add" => json!({"description": format!("{tag} new"), "parent": self.group}),
            "groups/edit" => json!({"id": self.group2, "description": format!("{tag} moved"), "parent": self.group}),
            "groups/delete" => json!({"id": self.group_del}),
            "backups/verify" | "backups/restore" => json!({"name": self.backup}),
            "subnets/get" => json!({"id": self.v4, "addresses": true, "fields": true}),
            "subnets/add" => json!({"subnet": "10.0.9.0/24", "group": self.group, "name": tag}),
            "subnets/edit" => json!({"id": self.v4, "description": format!("{tag} edited"), "group": self.group}),
            "subnets/delete" => json!({"id": self.del}),
            "subnets/massdelete" => json!({"ids": [self.mdel]}),
            "subnets/split" => json!({"id": self.split, "parts": 2}),
            "subnets/join" => json!({"ids": self.join}),
            "subnets/available" => json!({"id": self.pool, "cidr": 24}),
            "subnets/fields/get" => json!({"subnet": self.v4}),
            "subnets/fields/add" => json!({"subnet": self.v4, "name": "extra", "description": tag}),
            "subnets/fields/edit" => json!({"id": self.field, "description": format!("{tag} edited")}),
            "subnets/fields/delete" => json!({"id": self.field_del}),
            "ipaddress/get" => json!({"id": self.addr}),
            "ipaddress/add" => json!({"subnet": self.v4, "hostname": format!("{tag}-new")}),
            "ipaddress/edit" => json!({"id": self.addr, "hostname": format!("{tag}-edited"), "subnet": self.v4}),
            "ipaddress/delete" => json!({"id": self.addr_del}),
            "ipaddress/massdelete" => json!({"ids": [self.addr_mdel]}),
            "ipaddress/next" => json!({"subnet": self.v4}),
            "ipaddress/available" => json!({"subnet": self.v4, "limit": 5}),
            "dhcpranges/get" => json!({"id": self.range}),
            "dhcpranges/add" => json!({"subnet": self.v4, "start_ip": "10.0.0.200", "end_ip": "10.0.0.210"}),
            "dhcpranges/edit" => json!({"id": self.range, "description": format!("{tag} edited"), "subnet": self.v4}),
            "dhcpranges/delete" => json!({"id": self.range_del}),
            "search/ip" => json!({"ip": "10.0.0.10", "group": self.group}),
            "search/find" => json!({"query": tag}),
            "changes/get" => json!({"limit": 1000}),
            "export/get" => json!({"subnet": self.v4}),
            "import/run" => json!({"group": self.group, "dry_run": true,
                                   "data": format!("kind,network,name\nnetwork,10.0.8.0/24,{tag}\n")}),
            "output/get" => json!({"subnet": self.v4, "format": "dnsmasq"}),
            "webhooks/add" => json!({"url": "http://192.0.2.1/new", "subnet": self.v4, "group": self.group}),
            "webhooks/get" | "webhooks/deliveries" => json!({"id": self.webhook}),
            "webhooks/edit" => json!({"id": self.webhook, "description": format!("{tag} edited"), "subnet": self.v4,
                                      "group": self.group}),
            "webhooks/delete" => json!({"id": self.webhook_del}),
            "webhooks/redeliver" => json!({"id": self.delivery}),
            other => panic!("no sample call for {other}: add one to Fixture::sample in tests/it/matrix.rs"),
        }
    }

    /// This org's records of `kind` that another org tries to reach.
    fn records(&self, kind: Obj) -> Vec<i64> {
        match kind {
            Obj::Group => vec![self.group, self.group2],
            Obj::Subnet => vec![self.v4, self.v6, self.pool],
            Obj::Field => vec![self.field],
            Obj::Address => vec![self.addr, self.addr6],
            Obj::Range => vec![self.range],
            Obj::User => vec![self.admin.id, self.standard.id],
            Obj::AppKey => vec![self.key, self.admin_key],
            Obj::Token => vec![self.token, self.admin_token_id],
            Obj::Webhook => vec![self.webhook],
            Obj::Delivery => vec![self.delivery],
        }
    }

    /// Two records of `kind` that a list parameter may name together (two halves of one block, for a join).
    fn pair(&self, kind: Obj) -> [i64; 2] {
        match kind {
            Obj::Subnet => self.join,
            Obj::Address => [self.addr, self.addr2],
            Obj::Field => [self.field, self.field_del],
            Obj::Group => [self.group, self.group2],
            Obj::Range => [self.range, self.range_del],
            Obj::User => [self.admin.id, self.standard.id],
            Obj::AppKey => [self.key, self.admin_key],
            Obj::Token => [self.token, self.admin_token_id],
            Obj::Webhook => [self.webhook, self.webhook_del],
            Obj::Delivery => [self.delivery, self.delivery],
        }
    }
}

async fn add(s: &Server, who: &Ident, method: &str, data: Value) -> i64 {
    id_of(only(&s.ok(who, method, data).await))
}

/// The empty variant, then the method's [`VARIANTS`].
fn variants(method: &str) -> Vec<serde_json::Map<String, Value>> {
    let extra = VARIANTS.iter().filter(|(m, _)| *m == method);
    let extra = extra.map(|(_, v)| serde_json::from_str::<serde_json::Map<String, Value>>(v).unwrap());
    std::iter::once(serde_json::Map::new()).chain(extra).collect()
}

fn takes_ids(method: &str) -> &'static [&'static str] {
    TAKES_IDS.iter().find(|(n, _)| *n == method).map_or(&[], |(_, p)| p)
}

fn kind_of(method: &str, param: &str) -> Option<Obj> {
    match param {
        "id" | "ids" => FAMILIES.iter().find(|(f, _)| method.starts_with(f)).map(|(_, k)| *k),
        "parent" if method.starts_with("subnets/") => Some(Obj::Subnet),
        _ => NAMED.iter().find(|(n, _)| *n == param).map(|(_, k)| *k),
    }
}

/// `sample` with `param` set to `value`, the parameters that exclude it dropped and the ones it needs added.
fn case(method: &str, mut sample: Value, param: &str, value: Value) -> Value {
    let m = sample.as_object_mut().unwrap();
    for (_, group) in EXCLUSIVE.iter().filter(|(n, g)| *n == method && g.contains(&param)) {
        for other in *group {
            m.shift_remove(*other);
        }
    }
    for (_, _, key, v) in COMPANIONS.iter().filter(|(n, p, _, _)| *n == method && *p == param) {
        m.insert((*key).into(), serde_json::from_str(v).unwrap());
    }
    m.insert(param.into(), value);
    sample
}

/// The values of `param` that name `victim`'s records: each record, or for a list, two of the victim's and one
/// of the caller's own with one of the victim's (all or nothing must hold).
fn foreign_values(param: &str, kind: Obj, own: &Fixture, victim: &Fixture) -> Vec<Value> {
    if param == "ids" {
        let [a, b] = victim.pair(kind);
        vec![json!([a, b]), json!([own.pair(kind)[0], b])]
    } else {
        victim.records(kind).into_iter().map(|id| json!(id)).collect()
    }
}

/// Who is one level too low for `access`, and the code they get.
fn below(f: &Fixture, access: Access) -> (Ident, &'static str) {
    match access {
        Access::AppKey => (f.admin.with_appkey(""), "auth_required"),
        Access::User(Level::Readonly) => (f.readonly.with_userdata(""), "auth_required"),
        Access::User(Level::Standard) => (f.readonly.clone(), "access_denied"),
        Access::User(Level::Admin) => (f.standard.clone(), "access_denied"),
        // An admin, but of an org that is not the operator org.
        Access::Operator => (f.admin.clone(), "access_denied"),
    }
}

/// Who has exactly the level `access` asks for.
fn at_level(s: &Server, f: &Fixture, access: Access) -> Ident {
    match access {
        Access::AppKey => f.admin.with_userdata(""),
        Access::User(Level::Readonly) => f.readonly.clone(),
        Access::User(Level::Standard) => f.standard.clone(),
        Access::User(Level::Admin) => f.admin.clone(),
        Access::Operator => s.admin.clone(),
    }
}

/// The REST body fields that carry record ids, per resource: (REST name, method parameter, kind).
fn body_ids(r: Resource) -> &'static [(&'static str, &'static str, Obj)] {
    match r {
        Resource::Network => &[("group_id", "group", Obj::Group), ("parent_id", "parent", Obj::Subnet)],
        Resource::Host => &[("network_id", "subnet", Obj::Subnet)],
        Resource::DhcpRange => &[("network_id", "subnet", Obj::Subnet)],
        Resource::Group => &[("parent_id", "parent", Obj::Group)],
        // A list: see `rest_foreign_cases`.
        Resource::Join => &[("network_ids", "ids", Obj::Subnet)],
        Resource::Backup
        | Resource::Field
        | Resource::User
        | Resource::AppKey
        | Resource::Token
        | Resource::Org
        | Resource::AuditEntry
        | Resource::Split
        | Resource::Allocation
        | Resource::Delivery => &[],
        Resource::Webhook => &[("network_id", "subnet", Obj::Subnet), ("group_id", "group", Obj::Group)],
        Resource::Import => &[("group_id", "group", Obj::Group)],
    }
}

fn route_of(verb: &str, path: &str) -> &'static Route {
    ROUTES.iter().find(|r| r.verb == verb && r.path == path).unwrap()
}

/// The method parameter a route's path or query parameter becomes.
fn param_of<'a>(route: &Route, name: &'a str) -> &'a str {
    route
        .params
        .iter()
        .find(|(rest, _)| *rest == name)
        .map_or(name, |(_, p)| p)
}

/// `route`'s path with `{id}` set to `id_of(kind)` (own or foreign), `{name}` to the fixture's backup and `{ip}`
/// to one of its addresses.
fn rest_path(route: &Route, f: &Fixture, id_of: impl Fn(Obj) -> i64) -> String {
    let mut out = String::new();
    for seg in route.path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        match seg {
            "{id}" => {
                let kind = kind_of(route.method, param_of(route, "id"))
                    .unwrap_or_else(|| panic!("{} {}: no record kind for {{id}}", route.verb, route.path));
                out.push_str(&id_of(kind).to_string());
            }
            "{name}" => out.push_str(&f.backup),
            "{ip}" => out.push_str("10.0.0.10"),
            other if other.starts_with('{') => panic!("{} {}: unclassified path parameter", route.verb, route.path),
            other => out.push_str(other),
        }
    }
    out
}

/// A body `route` accepts, naming `own`'s records; its addresses are IPv6 when `v6`.
fn rest_body(route: &Route, own: &Fixture, v6: bool) -> Option<Value> {
    let ip = |n: u32| {
        if v6 {
            format!("2001:db8::{n:x}")
        } else {
            format!("10.0.0.{n}")
        }
    };
    let post = route.verb == "POST";
    Some(match route.body {
        Body::None => return None,
        Body::Fields(Resource::Network) if post => {
            json!({"network": "10.0.9.0", "cidr": 24, "group_id": own.group, "name": "pwned"})
        }
        Body::Fields(Resource::Network) => json!({"name": "pwned", "group_id": own.group}),
        Body::Replace(Resource::Network) => {
            let (network, cidr) = if v6 { ("2001:db8::", 64) } else { ("10.0.0.0", 24) };
            json!({"network": network, "cidr": cidr, "name": "pwned", "group_id": own.group})
        }
        Body::Fields(Resource::Host) => json!({"hostname": "pwned", "network_id": own.v4}),
        Body::Replace(Resource::Host) => {
            json!({"ip_address": "10.0.0.10", "hostname": "pwned", "network_id": own.v4})
        }
        Body::Fields(Resource::DhcpRange) if post => {
            json!({"start_ip": ip(220), "end_ip": ip(230), "network_id": own.v4})
        }
        Body::Fields(Resource::DhcpRange) => json!({"description": "pwned", "network_id": own.v4}),
        Body::Replace(Resource::DhcpRange) => {
            json!({"start_ip": ip(100), "end_ip": ip(150), "network_id": own.v4})
        }
        Body::Fields(Resource::Webhook) if post => {
            json!({"url": "http://192.0.2.1/pwned", "network_id": own.v4, "group_id": own.group})
        }
        Body::Fields(Resource::Webhook) => json!({"description": "pwned", "network_id": own.v4, "group_id": own.group}),
        Body::Fields(Resource::Group) => json!({"description": "pwned", "parent_id": own.group}),
        Body::Fields(Resource::Field) if post => json!({"name": "pwned"}),
        Body::Fields(Resource::User) if post => {
            json!({"username": "pwned", "email": "pwned@example.org", "password": "pwned-password"})
        }
        Body::Fields(Resource::User) => json!({"realname": "pwned"}),
        Body::Fields(Resource::AppKey) if post => json!({"name": "pwned"}),
        Body::Fields(Resource::Field | Resource::AppKey | Resource::Token | Resource::Org) => {
            json!({"description": "pwned"})
        }
        Body::Fields(Resource::Split) => json!({"parts": 2}),
        Body::Fields(Resource::Join) => json!({"network_ids": own.join}),
        Body::Fields(Resource::Allocation) => json!({"cidr": 24, "name": "pwned"}),
        Body::Fields(Resource::Import) => json!({"dry_run": true, "group_id": own.group,
                                                 "data": "kind,network\nnetwork,10.0.8.0/24\n"}),
        Body::Fields(_) | Body::Replace(_) => json!({}),
    })
}

/// The REST calls of `route` that name one of `victim`'s records: in the path, in a query filter, or in a body
/// field (on the caller's own record). Backup names are server-wide: an operator caller has no foreign ones.
fn rest_foreign_cases(route: &Route, own: &Fixture, victim: &Fixture, operator: bool) -> Vec<(String, Option<Value>)> {
    let mut cases = Vec::new();
    if route.path.contains("{name}") && !operator {
        cases.push((
            rest_path(route, own, |k| own.records(k)[0]),
            rest_body(route, own, false),
        ));
    }
    if route.path.contains("{id}") {
        let kind = kind_of(route.method, param_of(route, "id")).unwrap();
        for (i, id) in victim.records(kind).into_iter().enumerate() {
            let v6 = kind == Obj::Subnet && i == 1;
            cases.push((rest_path(route, own, |_| id), rest_body(route, own, v6)));
        }
    }
    for q in route.query {
        let param = param_of(route, q);
        let Some(kind) = kind_of(route.method, param).filter(|_| ID_NAMES.contains(&param)) else {
            continue;
        };
        {
            for id in victim.records(kind) {
                let path = format!("{}?{q}={id}", rest_path(route, own, |k| own.records(k)[0]));
                cases.push((path, None));
            }
        }
    }
    if let Body::Fields(r) | Body::Replace(r) = route.body {
        let path_param = route.path.contains("{id}").then(|| param_of(route, "id"));
        for (field, param, kind) in body_ids(r) {
            if path_param == Some(*param) {
                // The path's id wins over the same field in the body.
                continue;
            }
            for id in victim.records(*kind) {
                let mut body = rest_body(route, own, false).unwrap();
                body[*field] = match field.ends_with("_ids") {
                    true => json!([own.pair(*kind)[0], id]),
                    false => json!(id),
                };
                cases.push((rest_path(route, own, |k| own.records(k)[0]), Some(body)));
            }
        }
    }
    cases
}

/// Every broken cell of a matrix, reported together.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn assert_none(self, title: &str) {
        assert!(
            self.0.is_empty(),
            "{title}: {} broken cells:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Calls `method` as `who` and records a failure unless the answer is `code` ("ok" for success) with its HTTP
/// status, and unless it is free of `hidden` (another org's mark). The whole body.
async fn expect(
    s: &Server,
    fails: &mut Failures,
    who: &Ident,
    method: &str,
    data: Value,
    code: &str,
    hidden: Option<&str>,
) -> Value {
    let (status, body) = s.call(who, method, data.clone()).await;
    let ok = if code == "ok" {
        status == 200 && body.get("response").is_some()
    } else {
        status == status_of_any(code) && body["errorCode"] == code
    };
    fails.check(ok, || {
        format!(
            "{method} {data} as {}: expected {code}, got {status} {body}",
            who.username
        )
    });
    if let Some(mark) = hidden {
        fails.check(!body.to_string().contains(mark), || {
            format!("{method} {data} as {} shows another org's data: {body}", who.username)
        });
    }
    body
}

/// The REST counterpart of [`expect`]: `code` is empty for a success.
#[allow(clippy::too_many_arguments)]
async fn expect_rest(
    s: &Server,
    fails: &mut Failures,
    route: &Route,
    path: &str,
    token: &str,
    body: Option<&Value>,
    status: u16,
    code: &str,
    hidden: Option<&str>,
) {
    let verb = Verb::from_bytes(route.verb.as_bytes()).unwrap();
    let reply = s.api(verb, path, token, body).await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let ok = reply.status == status && (code.is_empty() || json["code"] == code);
    let who = if token.is_empty() {
        "no token"
    } else {
        &token[..token.len().min(8)]
    };
    let sent = body.map(Value::to_string).unwrap_or_default();
    fails.check(ok, || {
        format!(
            "{} {path} {sent} ({who}): expected {status} {code}, got {} {text}",
            route.verb, reply.status
        )
    });
    if let Some(mark) = hidden {
        fails.check(!text.contains(mark), || {
            format!("{} {path} {sent} ({who}) shows another org's data: {text}", route.verb)
        });
    }
}

/// Records a failure when `f`'s org is not as `before`; the dump now, to compare the next step with.
async fn unchanged(
    s: &Server,
    fails: &mut Failures,
    f: &Fixture,
    before: Value,
    what: impl FnOnce() -> String,
) -> Value {
    let after = s.dump(&f.admin).await;
    let mut found = Vec::new();
    differences("", &before, &after, &mut found);
    fails.check(found.is_empty(), || {
        format!("{} changed org {}: {}", what(), f.org, found.join("; "))
    });
    after
}

/// Where two values differ (the first few places), as paths and the two sides.
fn differences(path: &str, a: &Value, b: &Value, found: &mut Vec<String>) {
    if found.len() >= 4 {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => differences(&format!("{path}/{k}"), v, w, found),
                    None => found.push(format!("{path}/{k} is gone (was {v})")),
                }
            }
            for (k, w) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                found.push(format!("{path}/{k} is new: {w}"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}/{i}"), v, w, found);
            }
        }
        _ if a == b => {}
        _ => found.push(format!("{path}: {a} became {b}")),
    }
}
