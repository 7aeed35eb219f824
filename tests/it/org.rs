//! `org/info`, `org/edit`, `org/delete` and `org/logs`.

use serde_json::{json, Value};

use crate::support::{id_of, keys, only, sha1_hex, Ident, Server};
use ipamd::db::params;

#[tokio::test]
async fn info_counts_users_groups_subnets_and_addresses() {
    let s = Server::start().await;
    let info = s.ok(&s.admin, "org/info", json!({})).await;
    let k: Vec<&String> = info.as_object().unwrap().keys().collect();
    assert_eq!(
        k,
        [
            "id",
            "identifier",
            "description",
            "created",
            "operator",
            "usercount",
            "groupcount",
            "subnetcount",
            "ipcount"
        ]
    );
    assert_eq!(info["identifier"], "admin");
    assert_eq!(info["operator"], "true");
    let counts = |i: &Value| {
        [
            i["usercount"].clone(),
            i["groupcount"].clone(),
            i["subnetcount"].clone(),
            i["ipcount"].clone(),
        ]
    };
    assert_eq!(counts(&info), [json!("1"), json!("0"), json!("0"), json!("0")]);

    let reader = s.user(&s.admin, "reader", "readonly").await;
    s.user(&s.admin, "writer", "standard").await;
    let g = id_of(only(&s.ok(&s.admin, "groups/add", json!({"description": "g"})).await));
    s.ok(&s.admin, "groups/add", json!({"description": "h", "parent": g}))
        .await;
    let org_id = id_of(&info);
    s.subnet_row(org_id, Some(g), 4).await;
    s.subnet_row(org_id, None, 3).await;
    // Another org's data is not counted.
    let b = s.org("orgb").await;
    let b_id = s.org_id(&b).await;
    s.subnet_row(b_id, None, 100).await;
    s.ok(&b, "groups/add", json!({"description": "b's"})).await;

    let info = s.ok(&reader, "org/info", json!({})).await;
    assert_eq!(counts(&info), [json!("3"), json!("2"), json!("2"), json!("7")]);
    let b_info = s.ok(&b, "org/info", json!({})).await;
    assert_eq!(counts(&b_info), [json!("1"), json!("1"), json!("1"), json!("100")]);
    assert_eq!(b_info["operator"], "false");
    s.check(&reader, "org/info", json!({"id": 1}), "invalid_params").await;
}

#[tokio::test]
async fn edit_changes_the_description_and_the_identifier() {
    let s = Server::start().await;
    let b = s.org("orgb").await;
    let edited = s.ok(&b, "org/edit", json!({"description": "Org B"})).await;
    let org = only(&edited);
    assert_eq!(
        (org["identifier"].clone(), org["description"].clone()),
        (json!("orgb"), json!("Org B"))
    );
    assert_eq!(s.ok(&b, "org/info", json!({})).await["description"], "Org B");

    // Identifiers are normalised to lower case; the userdata prefix changes with them.
    let edited = s.ok(&b, "org/edit", json!({"identifier": "Acme.Corp_1-x"})).await;
    assert_eq!(only(&edited)["identifier"], "acme.corp_1-x");
    // The old prefix is another org than the key's now.
    s.check(&b, "org/info", json!({}), "bad_appkey").await;
    let renamed = Ident::new(b.id, "acme.corp_1-x", "bob", "password-of-bob", &b.appkey);
    assert_eq!(
        s.ok(&renamed, "org/info", json!({})).await["identifier"],
        "acme.corp_1-x"
    );
    // Its own identifier again is no duplicate; an empty description clears it.
    s.ok(
        &renamed,
        "org/edit",
        json!({"identifier": "ACME.corp_1-x", "description": ""}),
    )
    .await;
    assert_eq!(s.ok(&renamed, "org/info", json!({})).await["description"], "");

    let logs = s.ok(&renamed, "org/logs", json!({"objecttype": "org"})).await;
    assert_eq!(logs["total"], "3");
    let newest = logs["logs"].as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(newest["method"], "org/edit");
    assert_eq!(newest["objectid"], s.org_id(&renamed).await.to_string());
}

#[tokio::test]
async fn edit_refuses_bad_and_taken_identifiers() {
    let s = Server::start().await;
    let b = s.org("orgb").await;
    let long = "a".repeat(65);
    for bad in [" ", "a b", "x/y", "a:b", "ümlaut", "semi;colon", long.as_str()] {
        let body = s
            .check(&b, "org/edit", json!({"identifier": bad}), "invalid_params")
            .await;
        assert!(body["errorData"]["identifier"].is_string(), "{bad}: {body}");
    }
    s.ok(&b, "org/edit", json!({"identifier": "a".repeat(64)})).await;
    let b = Ident::new(b.id, &"a".repeat(64), "bob", "password-of-bob", &b.appkey);
    for taken in ["admin", "ADMIN", " Admin "] {
        s.check(&b, "org/edit", json!({"identifier": taken}), "duplicate").await;
    }
    s.check(&b, "org/edit", json!({"name": "x"}), "invalid_params").await;
    assert_eq!(s.ok(&b, "org/info", json!({})).await["identifier"], "a".repeat(64));
    assert_eq!(s.ok(&s.admin, "org/info", json!({})).await["identifier"], "admin");
}

#[tokio::test]
async fn delete_needs_the_identifier_as_confirmation() {
    let s = Server::start().await;
    let b = s.org("orgb").await;
    for data in [
        json!({}),
        json!({"confirm": "wrong"}),
        json!({"confirm": "admin"}),
        json!({"confirm": ""}),
    ] {
        let body = s.check(&b, "org/delete", data.clone(), "invalid_params").await;
        assert!(body["errorData"]["confirm"].is_string(), "{data}: {body}");
    }
    s.ok(&b, "org/info", json!({})).await;
}

#[tokio::test]
async fn the_operator_org_cannot_be_deleted() {
    let s = Server::start().await;
    let before = s.snapshot(&s.admin).await;
    s.check(&s.admin, "org/delete", json!({"confirm": "admin"}), "conflict")
        .await;
    assert_eq!(s.snapshot(&s.admin).await, before);
}

#[tokio::test]
async fn delete_removes_the_org_and_everything_in_it() {
    let s = Server::start().await;
    let a_before = s.snapshot(&s.admin).await;
    let b = s.org("orgb").await;
    let b_id = s.org_id(&b).await;
    let carol = s.user(&b, "carol", "standard").await;
    let g = id_of(only(&s.ok(&carol, "groups/add", json!({"description": "g"})).await));
    s.subnet_row(b_id, Some(g), 2).await;
    s.ok(&carol, "org/appkeys/add", json!({"name": "carol's"})).await;
    s.ok(&carol, "org/tokens/add", json!({})).await;

    let gone = s.ok(&b, "org/delete", json!({"confirm": "ORGB"})).await;
    assert_eq!(
        gone,
        json!({b_id.to_string(): {"id": b_id.to_string(), "deleted": "true"}})
    );
    // Its credentials stop working: the key is gone, and so are its users.
    s.check(&b, "org/info", json!({}), "bad_appkey").await;
    s.check(&carol, "userdata", json!({}), "bad_appkey").await;
    // With another org's key, a claim of the deleted org is refused like any claim of another org.
    s.check(&b.with_appkey(&s.admin.appkey), "userdata", json!({}), "bad_appkey")
        .await;
    // Nothing of it is left in the database.
    let left: i64 = s
        .app
        .store
        .run(move |db| {
            db.read(|tx| {
                tx.query_row(
                    "SELECT (SELECT count(*) FROM users WHERE org_id = ?1) + (SELECT count(*) FROM groups WHERE org_id = ?1)
                          + (SELECT count(*) FROM subnets WHERE org_id = ?1) + (SELECT count(*) FROM appkeys WHERE org_id = ?1)
                          + (SELECT count(*) FROM tokens WHERE org_id = ?1) + (SELECT count(*) FROM logs WHERE org_id = ?1)
                          + (SELECT count(*) FROM orgs WHERE id = ?1)",
                    params![b_id],
                    |r| r.get(0),
                )
            })
        })
        .await
        .unwrap();
    assert_eq!(left, 0);
    // The operator org is untouched, and the identifier is free again.
    assert_eq!(s.snapshot(&s.admin).await, a_before);
    let again = s.org("orgb").await;
    assert_eq!(s.ok(&again, "org/info", json!({})).await["usercount"], "1");
}

/// Groups made by the admin and by a standard user, for the log tests: `(user's id, [g1, g2, g3])`.
async fn some_history(s: &Server) -> (Ident, [i64; 3]) {
    let w = s.user(&s.admin, "writer", "standard").await;
    let g1 = id_of(only(&s.ok(&s.admin, "groups/add", json!({"description": "one"})).await));
    let g2 = id_of(only(&s.ok(&s.admin, "groups/add", json!({"description": "two"})).await));
    s.ok(&s.admin, "groups/edit", json!({"id": g1, "description": "uno"}))
        .await;
    let g3 = id_of(only(
        &s.ok(&w, "groups/add", json!({"description": "three", "parent": g1}))
            .await,
    ));
    (w, [g1, g2, g3])
}

#[tokio::test]
async fn logs_are_newest_first_and_paged() {
    let s = Server::start().await;
    let (_, [g1, g2, g3]) = some_history(&s).await;
    // users/add, 2 × groups/add, groups/edit, groups/add.
    let all = s.ok(&s.admin, "org/logs", json!({})).await;
    assert_eq!(
        (all["page"].clone(), all["pages"].clone(), all["total"].clone()),
        (json!("1"), json!("1"), json!("5"))
    );
    let entries: Vec<Value> = all["logs"].as_object().unwrap().values().cloned().collect();
    let ids: Vec<i64> = entries.iter().map(id_of).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let methods: Vec<&str> = entries.iter().map(|e| e["method"].as_str().unwrap()).collect();
    assert_eq!(
        methods,
        ["groups/add", "groups/edit", "groups/add", "groups/add", "org/users/add"]
    );
    let objectids: Vec<&str> = entries.iter().map(|e| e["objectid"].as_str().unwrap()).collect();
    assert_eq!(
        objectids[..4],
        [g3.to_string(), g1.to_string(), g2.to_string(), g1.to_string()]
    );
    let k: Vec<&String> = entries[0].as_object().unwrap().keys().collect();
    assert_eq!(
        k,
        [
            "id",
            "time",
            "userid",
            "user",
            "application",
            "respid",
            "method",
            "objecttype",
            "objectid",
            "summary",
            "changes"
        ]
    );
    assert_eq!(entries[0]["user"], "writer");
    assert_eq!(entries[0]["application"], "default");
    assert_eq!(entries[1]["changes"]["description"], json!(["one", "uno"]));

    let p1 = s.ok(&s.admin, "org/logs", json!({"perpage": 2})).await;
    assert_eq!((p1["pages"].clone(), p1["total"].clone()), (json!("3"), json!("5")));
    assert_eq!(
        keys(&p1["logs"]),
        ids[..2].iter().map(|i| i.to_string()).collect::<Vec<_>>()
    );
    let p3 = s.ok(&s.admin, "org/logs", json!({"perpage": "2", "page": "3"})).await;
    assert_eq!(keys(&p3["logs"]), [ids[4].to_string()]);
    let p4 = s.ok(&s.admin, "org/logs", json!({"perpage": 2, "page": 4})).await;
    assert_eq!(p4["logs"], json!([]));
    s.ok(&s.admin, "org/logs", json!({"perpage": 500})).await;
    for bad in [
        json!({"perpage": 501}),
        json!({"perpage": 0}),
        json!({"page": 0}),
        json!({"page": "x"}),
    ] {
        let body = s.check(&s.admin, "org/logs", bad.clone(), "invalid_params").await;
        let field = bad.as_object().unwrap().keys().next().unwrap().clone();
        assert!(body["errorData"][&field].is_string(), "{bad}: {body}");
    }
}

#[tokio::test]
async fn logs_filter() {
    let s = Server::start().await;
    let (w, [g1, _, g3]) = some_history(&s).await;
    let count = |v: Value| v["total"].as_str().unwrap().parse::<i64>().unwrap();
    let mut cases = vec![
        (json!({"objecttype": "group"}), 4),
        (json!({"objecttype": "user"}), 1),
        (json!({"method": "groups/edit"}), 1),
        (json!({"method": "groups/add"}), 3),
        (json!({"userid": w.id}), 1),
        (json!({"userid": s.admin.id}), 4),
        (json!({"objectid": g1}), 2),
        (json!({"objectid": g1, "method": "groups/add"}), 1),
        (json!({"objectid": g3, "userid": s.admin.id}), 0),
        (json!({"since": crate::support::now() + 1000}), 0),
        (json!({"until": 0}), 0),
        (json!({"since": 0, "until": crate::support::now() + 1000}), 5),
    ];
    cases.push((json!({"objecttype": "nothing"}), 0));
    for (filter, expected) in cases {
        let got = s.ok(&s.admin, "org/logs", filter.clone()).await;
        assert_eq!(count(got.clone()), expected, "{filter}: {got}");
        assert_eq!(keys(&got["logs"]).len() as i64, expected, "{filter}");
    }
    s.check(&s.admin, "org/logs", json!({"userid": "me"}), "invalid_params")
        .await;
    s.check(&s.admin, "org/logs", json!({"sort": "asc"}), "invalid_params")
        .await;
}

#[tokio::test]
async fn one_log_entry_per_change_with_the_responses_respid() {
    let s = Server::start().await;
    let (_, [g1, _, g3]) = some_history(&s).await;
    let g4 = id_of(only(
        &s.ok(&s.admin, "groups/add", json!({"description": "four", "parent": g3}))
            .await,
    ));
    let (status, body) = s
        .call(&s.admin, "groups/delete", json!({"id": g1, "recursive": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let respid = body["respid"].as_str().unwrap();
    let logs = s.ok(&s.admin, "org/logs", json!({"method": "groups/delete"})).await;
    assert_eq!(logs["total"], "3");
    let entries: Vec<&Value> = logs["logs"].as_object().unwrap().values().collect();
    assert!(entries.iter().all(|e| e["respid"] == respid), "{logs}");
    let mut deleted: Vec<String> = entries
        .iter()
        .map(|e| e["objectid"].as_str().unwrap().to_string())
        .collect();
    deleted.sort();
    let mut expected = vec![g1.to_string(), g3.to_string(), g4.to_string()];
    expected.sort();
    assert_eq!(deleted, expected);

    // A refused call leaves no entry; a read leaves none either.
    s.check(&s.admin, "groups/delete", json!({"id": g1}), "not_found").await;
    s.ok(&s.admin, "groups/get", json!({})).await;
    let total = s.ok(&s.admin, "org/logs", json!({})).await["total"].clone();
    assert_eq!(total, "9", "5 of the history, 1 add, 3 deletes");
}

#[tokio::test]
async fn logs_stay_inside_the_org() {
    let s = Server::start().await;
    some_history(&s).await;
    let b = s.org("orgb").await;
    let logs = s.ok(&b, "org/logs", json!({})).await;
    assert_eq!((logs["total"].clone(), logs["logs"].clone()), (json!("0"), json!([])));
    s.ok(&b, "groups/add", json!({"description": "b"})).await;
    assert_eq!(s.ok(&b, "org/logs", json!({})).await["total"], "1");
    assert_eq!(s.ok(&s.admin, "org/logs", json!({})).await["total"], "5");
    // The password sha1 never shows in a log.
    let all = s.ok(&s.admin, "org/logs", json!({"perpage": 500})).await.to_string();
    assert!(!all.contains(&sha1_hex("writer", "password-of-writer")));
}
