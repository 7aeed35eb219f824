//! `org/users/get`, `org/users/add` and `org/users/edit`.

use serde_json::{json, Value};

use crate::support::{id_of, keys, only, sha1_hex, Ident, Server};
use ipamd::db::params;

const USER_KEYS: [&str; 9] = [
    "id",
    "username",
    "email",
    "realname",
    "level",
    "disabled",
    "created",
    "lastlogin",
    "version",
];

fn record_keys(r: &Value) -> Vec<&str> {
    r.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn get_lists_the_orgs_users_without_secrets() {
    let s = Server::start().await;
    let reader = s.user(&s.admin, "reader", "readonly").await;
    let writer = s.user(&s.admin, "writer", "standard").await;
    let all = s.ok(&reader, "org/users/get", json!({})).await;
    assert_eq!(keys(&all), [s.admin.id, reader.id, writer.id].map(|i| i.to_string()));
    for user in all.as_object().unwrap().values() {
        assert_eq!(record_keys(user), USER_KEYS);
    }
    let text = all.to_string();
    assert!(
        !text.contains("argon2") && !text.contains(&sha1_hex("reader", "password-of-reader")),
        "{text}"
    );
    assert_eq!(all[writer.id.to_string()]["level"], "standard");
    assert_eq!(all[writer.id.to_string()]["email"], "writer@example.org");

    let one = s.ok(&reader, "org/users/get", json!({"id": writer.id})).await;
    assert_eq!(only(&one)["username"], "writer");
    s.check(&reader, "org/users/get", json!({"id": 999}), "not_found").await;
    s.check(&reader, "org/users/get", json!({"id": "x"}), "invalid_params")
        .await;
    s.check(&reader, "org/users/get", json!({"id": 0}), "invalid_params")
        .await;
}

#[tokio::test]
async fn add_creates_a_user_who_can_log_in() {
    let s = Server::start().await;
    let added = s
        .ok(
            &s.admin,
            "org/users/add",
            json!({"username": "Alice.B@corp", "password": "s3cret-s3cret", "email": "alice@example.org",
                   "realname": "Alice B"}),
        )
        .await;
    let alice = only(&added);
    assert_eq!(record_keys(alice), USER_KEYS);
    assert_eq!(alice["username"], "Alice.B@corp");
    assert_eq!(alice["level"], "standard", "the default level");
    assert_eq!(alice["realname"], "Alice B");
    assert_eq!(alice["disabled"], "false");
    assert_eq!(alice["lastlogin"], Value::Null);
    let who = Ident::new(id_of(alice), "admin", "Alice.B@corp", "s3cret-s3cret", &s.admin.appkey);
    let me = s.ok(&who, "userdata", json!({})).await;
    assert_eq!(me["user"]["id"], alice["id"]);
    // The username compares case-insensitively at login too.
    s.ok(
        &Ident::new(who.id, "admin", "alice.b@CORP", "s3cret-s3cret", &s.admin.appkey),
        "userdata",
        json!({}),
    )
    .await;
    let logs = s.ok(&s.admin, "org/logs", json!({"method": "org/users/add"})).await;
    assert_eq!(logs["total"], "1");
}

#[tokio::test]
async fn add_takes_a_hash_instead_of_a_password() {
    let s = Server::start().await;
    for (username, hash) in [
        ("hashed", sha1_hex("hashed", "pw1")),
        ("Upper", sha1_hex("upper", "pw2").to_uppercase()),
    ] {
        let added = s
            .ok(
                &s.admin,
                "org/users/add",
                json!({"username": username, "hash": hash, "email": "h@example.org", "level": "readonly"}),
            )
            .await;
        let id = id_of(only(&added));
        let pw = if username == "hashed" { "pw1" } else { "pw2" };
        s.ok(
            &Ident::new(id, "admin", username, pw, &s.admin.appkey),
            "userdata",
            json!({}),
        )
        .await;
    }
    let email = "x@example.org";
    for (data, field) in [
        (json!({"username": "x", "email": email}), "password"),
        (
            json!({"username": "x", "email": email, "password": "a", "hash": sha1_hex("x", "a")}),
            "hash",
        ),
        (json!({"username": "x", "email": email, "hash": "abc"}), "hash"),
        (json!({"username": "x", "email": email, "hash": "g".repeat(40)}), "hash"),
    ] {
        let body = s.check(&s.admin, "org/users/add", data.clone(), "invalid_params").await;
        assert!(body["errorData"][field].is_string(), "{data}: {body}");
    }
}

#[tokio::test]
async fn add_refuses_bad_and_duplicate_users() {
    let s = Server::start().await;
    s.user(&s.admin, "alice", "standard").await;
    let long = "a".repeat(65);
    let base = json!({"username": "ok", "password": "password-ok-1", "email": "ok@example.org"});
    let with = |key: &str, v: Value| {
        let mut d = base.clone();
        d[key] = v;
        d
    };
    for (data, field) in [
        (with("username", json!("bad name")), "username"),
        (with("username", json!("a/b")), "username"),
        (with("username", json!("a:b")), "username"),
        (with("username", json!(long)), "username"),
        (with("username", json!("")), "username"),
        (with("email", json!("not-an-email")), "email"),
        (with("email", json!("a @b")), "email"),
        (with("email", json!(null)), "email"),
        (with("level", json!("superuser")), "level"),
        (with("level", json!("Admin")), "level"),
        (with("disabled", json!(true)), "disabled"),
    ] {
        let body = s.check(&s.admin, "org/users/add", data.clone(), "invalid_params").await;
        assert!(body["errorData"][field].is_string(), "{data}: {body}");
    }
    for taken in ["alice", "ALICE", "Alice"] {
        s.check(&s.admin, "org/users/add", with("username", json!(taken)), "duplicate")
            .await;
    }
    // A password under IPAMD_MIN_PASSWORD_LENGTH (12) is refused, here and when changed; 12 characters pass.
    let short = with("password", json!("eleven-char"));
    let body = s.check(&s.admin, "org/users/add", short, "weak_password").await;
    assert!(body["error"].as_str().unwrap().contains("at least 12"), "{body}");
    let change = json!({"id": "self", "password": "eleven-char"});
    s.check(&s.admin, "org/users/edit", change, "weak_password").await;
    s.ok(&s.admin, "org/users/add", with("password", json!("twelve-chars")))
        .await;
    s.ok(
        &s.admin,
        "org/users/edit",
        json!({"id": "self", "realname": "unchanged password"}),
    )
    .await;
    // The same username in another org is a different user.
    let b = s.org("orgb").await;
    s.user(&b, "alice", "readonly").await;
    s.ok(&s.admin, "org/users/add", with("username", json!("a".repeat(64))))
        .await;
    assert_eq!(keys(&s.ok(&s.admin, "org/users/get", json!({})).await).len(), 4);
}

#[tokio::test]
async fn an_admin_edits_other_users() {
    let s = Server::start().await;
    let carol = s.user(&s.admin, "carol", "standard").await;
    let edited = s
        .ok(
            &s.admin,
            "org/users/edit",
            json!({"id": carol.id, "email": "c@example.org", "realname": "Carol", "level": "readonly"}),
        )
        .await;
    let c = only(&edited);
    assert_eq!(
        (c["email"].clone(), c["realname"].clone(), c["level"].clone()),
        (json!("c@example.org"), json!("Carol"), json!("readonly"))
    );
    let edited = s
        .ok(
            &s.admin,
            "org/users/edit",
            json!({"id": carol.id.to_string(), "realname": null}),
        )
        .await;
    assert_eq!(only(&edited)["realname"], Value::Null);
    assert_eq!(only(&edited)["email"], "c@example.org", "untouched fields stay");

    let logs = s
        .ok(
            &s.admin,
            "org/logs",
            json!({"method": "org/users/edit", "objectid": carol.id}),
        )
        .await;
    assert_eq!(logs["total"], "2");
    let first = logs["logs"].as_object().unwrap().values().next_back().unwrap().clone();
    assert_eq!(first["changes"]["level"], json!(["standard", "readonly"]));

    // Another user's new password is hashed with that user's name, before the writer (which refuses argon2).
    s.ok(
        &s.admin,
        "org/users/edit",
        json!({"id": carol.id, "password": "set-by-admin"}),
    )
    .await;
    s.check(&carol, "userdata", json!({}), "auth_failed").await;
    let carol = carol.with_password("set-by-admin");
    assert_eq!(s.ok(&carol, "userdata", json!({})).await["user"]["username"], "carol");
    let hash = sha1_hex("carol", "hashed-by-client");
    s.ok(&s.admin, "org/users/edit", json!({"id": carol.id, "hash": hash}))
        .await;
    s.check(&carol, "userdata", json!({}), "auth_failed").await;
    let carol = carol.with_password("hashed-by-client");
    s.ok(&carol, "userdata", json!({})).await;

    for (data, code) in [
        (json!({"id": 999, "email": "x@example.org"}), "not_found"),
        (json!({"email": "x@example.org"}), "invalid_params"),
        (json!({"id": "abc"}), "invalid_params"),
        (json!({"id": carol.id, "username": "caroline"}), "invalid_params"),
        (json!({"id": carol.id, "email": "nope"}), "invalid_params"),
        (json!({"id": carol.id, "level": "root"}), "invalid_params"),
        (json!({"id": carol.id, "disabled": "maybe"}), "invalid_params"),
        (
            json!({"id": carol.id, "password": "a", "hash": sha1_hex("carol", "a")}),
            "invalid_params",
        ),
    ] {
        s.check(&s.admin, "org/users/edit", data, code).await;
    }
}

#[tokio::test]
async fn a_readonly_user_edits_their_own_email_realname_and_password_only() {
    let s = Server::start().await;
    let reader = s.user(&s.admin, "reader", "readonly").await;
    let other = s.user(&s.admin, "other", "readonly").await;
    let edited = s
        .ok(
            &reader,
            "org/users/edit",
            json!({"id": "self", "email": "me@example.org", "realname": "Me"}),
        )
        .await;
    assert_eq!(only(&edited)["email"], "me@example.org");
    s.ok(&reader, "org/users/edit", json!({"id": reader.id, "realname": ""}))
        .await;
    s.ok(
        &reader,
        "org/users/edit",
        json!({"id": "SELF", "password": "mine-mine-mine"}),
    )
    .await;
    let reader = reader.with_password("mine-mine-mine");
    let me = s.ok(&reader, "userdata", json!({})).await;
    assert_eq!(
        (me["user"]["realname"].clone(), me["user"]["level"].clone()),
        (Value::Null, json!("readonly"))
    );

    let before = s.snapshot(&s.admin).await;
    for data in [
        json!({"id": "self", "level": "admin"}),
        json!({"id": reader.id, "level": "readonly"}),
        json!({"id": "self", "disabled": false}),
        json!({"id": other.id, "email": "hijack@example.org"}),
        json!({"id": other.id, "password": "taken-over-now"}),
        json!({"id": s.admin.id, "realname": "x"}),
    ] {
        s.check(&reader, "org/users/edit", data, "access_denied").await;
    }
    assert_eq!(s.snapshot(&s.admin).await, before);
    s.ok(&other, "userdata", json!({})).await;
}

#[tokio::test]
async fn the_last_enabled_admin_cannot_be_demoted_or_disabled() {
    let s = Server::start().await;
    for data in [
        json!({"id": "self", "level": "standard"}),
        json!({"id": s.admin.id, "level": "readonly"}),
        json!({"id": "self", "disabled": true}),
    ] {
        s.check(&s.admin, "org/users/edit", data, "last_admin").await;
    }
    // A disabled admin does not count.
    let second = s.user(&s.admin, "second", "admin").await;
    s.ok(&s.admin, "org/users/edit", json!({"id": second.id, "disabled": true}))
        .await;
    s.check(
        &s.admin,
        "org/users/edit",
        json!({"id": "self", "level": "standard"}),
        "last_admin",
    )
    .await;
    // An enabled one does: the first admin may step down, and then the second is the last.
    s.ok(&s.admin, "org/users/edit", json!({"id": second.id, "disabled": false}))
        .await;
    s.ok(&s.admin, "org/users/edit", json!({"id": "self", "level": "standard"}))
        .await;
    let me = s.ok(&s.admin, "userdata", json!({})).await;
    assert_eq!(me["user"]["level"], "standard");
    s.check(
        &second,
        "org/users/edit",
        json!({"id": "self", "disabled": true}),
        "last_admin",
    )
    .await;
    s.check(
        &second,
        "org/users/edit",
        json!({"id": "self", "level": "readonly"}),
        "last_admin",
    )
    .await;
    // Keeping the level, or editing other fields, is no demotion.
    s.ok(
        &second,
        "org/users/edit",
        json!({"id": "self", "level": "admin", "realname": "Second"}),
    )
    .await;
    let users = s.ok(&second, "org/users/get", json!({})).await;
    let admins = users
        .as_object()
        .unwrap()
        .values()
        .filter(|u| u["level"] == "admin" && u["disabled"] == "false");
    assert_eq!(admins.count(), 1);
}

/// The lists of users, app keys, tokens and field definitions (also in `subnets/get`) hold at most 5,000 entries: one more is `too_large`,
/// refused after reading it, not after loading every row (on the old code each answered with all of them).
#[tokio::test]
async fn credential_and_field_lists_are_bounded() {
    let s = Server::start().await;
    let a = &s.admin;
    let org = s.org_id(a).await;
    let sub = id_of(only(&s.ok(a, "subnets/add", json!({"subnet": "10.0.0.0/24"})).await));
    let (admin_id, count) = (a.id, 5000);
    s.app
        .store
        .run(move |db| {
            db.write(|tx| {
                let rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3)";
                tx.execute(
                    &format!(
                        "{rows} INSERT INTO users (org_id, username, email, level, phc, created)
                                     SELECT ?1, 'u' || i, 'u@x', 'readonly', 'x', 0 FROM n
                                     WHERE i < ?3 AND CAST(?2 AS BIGINT) IS NOT NULL"
                    ),
                    params![org, admin_id, count],
                )?;
                for table in [
                    "appkeys (org_id, owner_id, name, digest, prefix, created)",
                    "tokens (org_id, user_id, description, digest, prefix, created)",
                ] {
                    tx.execute(
                        &format!(
                            "{rows} INSERT INTO {table}
                                         SELECT ?1, ?2, 'k', '{table}' || i, 'p', 0 FROM n WHERE i < ?3"
                        ),
                        params![org, admin_id, count],
                    )?;
                }
                tx.execute(
                    &format!(
                        "{rows} INSERT INTO fields (subnet_id, name, type, created, modifiedat, modby_name)
                                     SELECT ?2, 'f' || i, 'text', 0, 0, 'seed' FROM n
                                     WHERE i <= ?3 AND CAST(?1 AS BIGINT) IS NOT NULL"
                    ),
                    params![org, sub, count],
                )?;
                Ok(())
            })
        })
        .await
        .unwrap();
    // The lists without paging, each at its bound of 5000 records, then one past it.
    let lists = [
        ("org/users/get", json!({})),
        ("org/appkeys/get", json!({})),
        ("org/tokens/get", json!({})),
        ("subnets/fields/get", json!({"subnet": sub})),
        ("subnets/get", json!({"id": sub, "fields": true})),
    ];
    for (method, data) in &lists {
        let list = s.ok(a, method, data.clone()).await;
        let list = match *method {
            "subnets/get" => &list[sub.to_string()]["fields"],
            _ => &list,
        };
        assert_eq!(keys(list).len(), 5000, "{method}");
    }
    s.app
        .store
        .run(move |db| {
            db.write(|tx| {
                tx.batch(&format!(
                    "INSERT INTO users (org_id, username, email, level, phc, created)
                         VALUES ({org}, 'one-more', 'u@x', 'readonly', 'x', 0);
                     INSERT INTO appkeys (org_id, owner_id, name, digest, prefix, created)
                         VALUES ({org}, {admin_id}, 'k', 'one-more', 'p', 0);
                     INSERT INTO tokens (org_id, user_id, digest, prefix, created)
                         VALUES ({org}, {admin_id}, 'one-more', 'p', 0);
                     INSERT INTO fields (subnet_id, name, type, created, modifiedat, modby_name)
                         VALUES ({sub}, 'one-more', 'text', 0, 0, 'seed');"
                ))?;
                Ok(())
            })
        })
        .await
        .unwrap();
    for (method, data) in &lists {
        let e = s.check(a, method, data.clone(), "too_large").await;
        assert_eq!(e["errorData"], json!({"limit": "5000"}), "{method}");
    }
}
