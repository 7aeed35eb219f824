//! Every level boundary of the issue-2 methods: a caller one step too low is refused and nothing changes; a caller
//! exactly at the level succeeds.

use serde_json::{json, Value};

use ipamd::dispatch::{find_method, Access, Level};

use crate::support::{id_of, keys, only, Ident, Server};

/// The level each method needs, as the method table must say (SPEC §2 "Levels").
const TABLE: &[(&str, Option<Level>)] = &[
    ("ping", None),
    ("version", None),
    ("userdata", Some(Level::Readonly)),
    ("org/info", Some(Level::Readonly)),
    ("org/edit", Some(Level::Admin)),
    ("org/delete", Some(Level::Admin)),
    ("org/logs", Some(Level::Admin)),
    ("org/users/get", Some(Level::Readonly)),
    ("org/users/add", Some(Level::Admin)),
    // Readonly for one's own email, realname and password; the handler asks for admin for the rest.
    ("org/users/edit", Some(Level::Readonly)),
    // Any level for one's own keys and tokens; the handlers limit non-admins to those.
    ("org/appkeys/add", Some(Level::Readonly)),
    ("org/appkeys/get", Some(Level::Readonly)),
    ("org/appkeys/edit", Some(Level::Readonly)),
    ("org/appkeys/delete", Some(Level::Readonly)),
    ("org/tokens/add", Some(Level::Readonly)),
    ("org/tokens/get", Some(Level::Readonly)),
    ("org/tokens/delete", Some(Level::Readonly)),
    ("groups/get", Some(Level::Readonly)),
    ("groups/add", Some(Level::Standard)),
    ("groups/edit", Some(Level::Standard)),
    ("groups/delete", Some(Level::Standard)),
];

#[test]
fn the_method_table_has_the_specified_levels() {
    for (name, level) in TABLE {
        let method = find_method(name).unwrap_or_else(|| panic!("{name} is missing from the table"));
        let expected = match level {
            None => Access::AppKey,
            Some(l) => Access::User(*l),
        };
        assert_eq!(method.access, expected, "{name}");
    }
}

/// An org that is not the operator org (so that `org/delete` would really delete), with a user of each level, an
/// extra app key and token of the admin's, and a group.
struct Fixture {
    s: Server,
    admin: Ident,
    standard: Ident,
    readonly: Ident,
    key: i64,
    token: i64,
    group: i64,
}

async fn fixture() -> Fixture {
    let s = Server::start().await;
    let admin = s.org("acme").await;
    let standard = s.user(&admin, "std", "standard").await;
    let readonly = s.user(&admin, "ro", "readonly").await;
    let key = id_of(only(&s.ok(&admin, "org/appkeys/add", json!({"name": "k"})).await));
    let token = id_of(only(&s.ok(&admin, "org/tokens/add", json!({})).await));
    let group = id_of(only(&s.ok(&admin, "groups/add", json!({"description": "g"})).await));
    Fixture {
        s,
        admin,
        standard,
        readonly,
        key,
        token,
        group,
    }
}

#[tokio::test]
async fn one_level_too_low_is_refused_and_changes_nothing() {
    let f = fixture().await;
    let (s, g) = (&f.s, f.group);
    let nobody = f.admin.with_userdata("");
    let new_user = json!({"username": "x", "password": "pw", "email": "x@example.org"});
    let cases: Vec<(&Ident, &str, Value, &str)> = vec![
        // Readonly methods: below readonly is an app key without a user.
        (&nobody, "userdata", json!({}), "auth_required"),
        (&nobody, "org/info", json!({}), "auth_required"),
        (&nobody, "org/users/get", json!({}), "auth_required"),
        (
            &nobody,
            "org/users/edit",
            json!({"id": "self", "realname": "x"}),
            "auth_required",
        ),
        (&nobody, "org/appkeys/add", json!({"name": "x"}), "auth_required"),
        (&nobody, "org/appkeys/get", json!({}), "auth_required"),
        (
            &nobody,
            "org/appkeys/edit",
            json!({"id": f.key, "enabled": false}),
            "auth_required",
        ),
        (&nobody, "org/appkeys/delete", json!({"id": f.key}), "auth_required"),
        (&nobody, "org/tokens/add", json!({}), "auth_required"),
        (&nobody, "org/tokens/get", json!({}), "auth_required"),
        (&nobody, "org/tokens/delete", json!({"id": f.token}), "auth_required"),
        (&nobody, "groups/get", json!({}), "auth_required"),
        // Standard methods.
        (&f.readonly, "groups/add", json!({"description": "x"}), "access_denied"),
        (
            &f.readonly,
            "groups/add",
            json!({"description": "x", "parent": g}),
            "access_denied",
        ),
        (
            &f.readonly,
            "groups/edit",
            json!({"id": g, "description": "x"}),
            "access_denied",
        ),
        (&f.readonly, "groups/delete", json!({"id": g}), "access_denied"),
        (
            &f.readonly,
            "groups/delete",
            json!({"id": g, "recursive": true}),
            "access_denied",
        ),
        // Admin methods.
        (&f.standard, "org/edit", json!({"description": "x"}), "access_denied"),
        (
            &f.standard,
            "org/edit",
            json!({"identifier": "taken-over"}),
            "access_denied",
        ),
        (&f.standard, "org/delete", json!({"confirm": "acme"}), "access_denied"),
        (&f.standard, "org/logs", json!({}), "access_denied"),
        (&f.standard, "org/users/add", new_user, "access_denied"),
        // The admin half of org/users/edit: other users, anyone's level or disabled flag.
        (
            &f.standard,
            "org/users/edit",
            json!({"id": f.readonly.id, "realname": "x"}),
            "access_denied",
        ),
        (
            &f.standard,
            "org/users/edit",
            json!({"id": f.admin.id, "password": "mine"}),
            "access_denied",
        ),
        (
            &f.standard,
            "org/users/edit",
            json!({"id": f.admin.id, "disabled": true}),
            "access_denied",
        ),
        (
            &f.standard,
            "org/users/edit",
            json!({"id": "self", "level": "admin"}),
            "access_denied",
        ),
        (
            &f.readonly,
            "org/users/edit",
            json!({"id": "self", "level": "standard"}),
            "access_denied",
        ),
        (
            &f.standard,
            "org/users/edit",
            json!({"id": f.standard.id, "disabled": false}),
            "access_denied",
        ),
        // The admin half of app keys and tokens: other users' ones do not exist for a non-admin.
        (&f.standard, "org/appkeys/get", json!({"id": f.key}), "not_found"),
        (
            &f.standard,
            "org/appkeys/edit",
            json!({"id": f.key, "enabled": false}),
            "not_found",
        ),
        (&f.standard, "org/appkeys/delete", json!({"id": f.key}), "not_found"),
        (&f.standard, "org/tokens/get", json!({"id": f.token}), "not_found"),
        (&f.standard, "org/tokens/delete", json!({"id": f.token}), "not_found"),
    ];
    let before = s.snapshot(&f.admin).await;
    for (who, method, data, code) in cases {
        s.check(who, method, data, code).await;
    }
    assert_eq!(s.snapshot(&f.admin).await, before);
    // Non-admins list only their own keys and tokens (none here).
    assert_eq!(s.ok(&f.standard, "org/appkeys/get", json!({})).await, json!([]));
    assert_eq!(s.ok(&f.readonly, "org/tokens/get", json!({})).await, json!([]));
}

#[tokio::test]
async fn exactly_the_level_is_enough() {
    let f = fixture().await;
    let s = &f.s;
    s.ok(&f.admin.with_userdata(""), "ping", json!({})).await;
    s.ok(&f.admin.with_userdata(""), "version", json!({})).await;
    for method in [
        "userdata",
        "org/info",
        "org/users/get",
        "groups/get",
        "org/appkeys/get",
        "org/tokens/get",
    ] {
        s.ok(&f.readonly, method, json!({})).await;
    }
    s.ok(&f.readonly, "groups/get", json!({"id": f.group, "sort": true}))
        .await;
    s.ok(&f.readonly, "org/users/edit", json!({"id": "self", "realname": "Ro"}))
        .await;
    let key = id_of(only(
        &s.ok(&f.readonly, "org/appkeys/add", json!({"name": "mine"})).await,
    ));
    s.ok(&f.readonly, "org/appkeys/get", json!({"id": key})).await;
    s.ok(&f.readonly, "org/appkeys/edit", json!({"id": key, "enabled": false}))
        .await;
    s.ok(&f.readonly, "org/appkeys/delete", json!({"id": key})).await;
    let token = id_of(only(&s.ok(&f.readonly, "org/tokens/add", json!({})).await));
    s.ok(&f.readonly, "org/tokens/get", json!({"id": token})).await;
    s.ok(&f.readonly, "org/tokens/delete", json!({"id": token})).await;

    let g = id_of(only(
        &s.ok(&f.standard, "groups/add", json!({"description": "s"})).await,
    ));
    s.ok(&f.standard, "groups/edit", json!({"id": g, "parent": f.group}))
        .await;
    s.ok(&f.standard, "groups/delete", json!({"id": f.group, "recursive": true}))
        .await;

    s.ok(&f.admin, "org/logs", json!({})).await;
    s.ok(&f.admin, "org/edit", json!({"description": "Acme"})).await;
    let x = s.user(&f.admin, "x", "readonly").await;
    s.ok(
        &f.admin,
        "org/users/edit",
        json!({"id": x.id, "level": "standard", "disabled": true}),
    )
    .await;
    s.ok(
        &f.admin,
        "org/users/edit",
        json!({"id": f.standard.id, "password": "reset"}),
    )
    .await;
    s.ok(&f.admin, "org/appkeys/edit", json!({"id": f.key, "name": "renamed"}))
        .await;
    s.ok(&f.admin, "org/appkeys/delete", json!({"id": f.key})).await;
    s.ok(&f.admin, "org/tokens/delete", json!({"id": f.token})).await;
    assert_eq!(keys(&s.ok(&f.admin, "org/users/get", json!({})).await).len(), 4);
    s.ok(&f.admin, "org/delete", json!({"confirm": "acme"})).await;
}
