//! Authentication through the envelope: app keys, `userdata`, the one `auth_failed` message, disabled accounts,
//! the lockout (which another org cannot start), the bounded tables under a flood of made-up identities, and the
//! verification cache dropping an entry the moment its user or key changes.

use std::time::Duration;

use ipamd::clock::ManualClock;
use serde_json::json;

use crate::support::{id_of, only, sha1_hex, Server};

#[tokio::test]
async fn an_appkey_is_required_and_must_be_known() {
    let s = Server::start().await;
    for method in ["ping", "version", "userdata", "groups/get"] {
        for appkey in [json!(null), json!(""), json!("   ")] {
            let env = json!({"appkey": appkey, "userdata": s.admin.userdata});
            let reply = s.post(method, &env).await;
            assert_eq!(reply.status, 401, "{method} {appkey}");
            assert_eq!(reply.json()["errorCode"], "auth_required");
        }
        let unknown = s.admin.with_appkey("01234567-89ab-cdef-0123-456789abcdef");
        s.check(&unknown, method, json!({}), "bad_appkey").await;
    }
    // userdata is required for everything but ping and version.
    let no_user = s.admin.with_userdata("");
    s.ok(&no_user, "ping", json!({})).await;
    s.ok(&no_user, "version", json!({})).await;
    for method in ["userdata", "org/info", "groups/get"] {
        s.check(&no_user, method, json!({}), "auth_required").await;
    }
}

#[tokio::test]
async fn appkeys_compare_case_insensitively() {
    let s = Server::start().await;
    assert_eq!(s.admin.appkey, s.admin.appkey.to_lowercase());
    let upper = s.admin.with_appkey(&s.admin.appkey.to_uppercase());
    s.ok(&upper, "userdata", json!({})).await;
    let padded = s.admin.with_appkey(&format!(" {} ", s.admin.appkey));
    s.ok(&padded, "ping", json!({})).await;
}

#[tokio::test]
async fn userdata_names_compare_case_insensitively() {
    let s = Server::start().await;
    let sha = sha1_hex("admin", crate::support::ADMIN_PASSWORD);
    for userdata in [
        format!("ADMIN/Admin:{sha}"),
        format!("admin/ADMIN:{}", sha.to_uppercase()),
    ] {
        let who = s.admin.with_userdata(&userdata);
        let me = s.ok(&who, "userdata", json!({})).await;
        assert_eq!(me["user"]["username"], "admin", "{userdata}");
    }
}

#[tokio::test]
async fn an_appkey_of_another_org_is_a_bad_appkey() {
    let s = Server::start().await;
    let b = s.org("orgb").await;
    // B's key with A's valid userdata, and A's key with B's.
    s.check(&s.admin.with_appkey(&b.appkey), "userdata", json!({}), "bad_appkey")
        .await;
    s.check(&b.with_appkey(&s.admin.appkey), "org/info", json!({}), "bad_appkey")
        .await;
    // B's key alone is still a valid key for ping.
    s.ok(&b.with_userdata(""), "ping", json!({})).await;
}

/// A claimed org that is not the app key's is refused before the password is looked at: the same answer for
/// the right password, a wrong one, a malformed one, and an org that does not exist.
#[tokio::test]
async fn another_orgs_key_gets_one_answer_whatever_the_password() {
    let s = Server::start().await;
    let b = s.org("orgb").await;
    let foreign = s.admin.with_appkey(&b.appkey);
    let claims = [
        foreign.clone(),
        foreign.with_password("wrong"),
        foreign.with_userdata(&format!("admin/admin:{}", "0".repeat(40))),
        foreign.with_userdata(&format!(
            "noorg/admin:{}",
            sha1_hex("admin", crate::support::ADMIN_PASSWORD)
        )),
        foreign.with_userdata(&format!("noorg/nobody:{}", sha1_hex("nobody", "x"))),
    ];
    let mut answers = Vec::new();
    for who in &claims {
        let body = s.check(who, "userdata", json!({}), "bad_appkey").await;
        answers.push((body["error"].clone(), body.get("errorData").cloned()));
    }
    answers.dedup();
    assert_eq!(answers.len(), 1, "{answers:?}");
}

/// Finding: ten `userdata` calls with org B's own key claiming the operator's admin with a wrong password locked
/// the admin out. They are refused before the lockout counts anything now.
#[tokio::test]
async fn another_org_cannot_lock_out_a_user() {
    let s = Server::start().await;
    let b = s.org("orgb").await;
    let attack = s
        .admin
        .with_appkey(&b.appkey)
        .with_userdata(&format!("admin/admin:{}", "0".repeat(40)));
    for _ in 0..15 {
        s.check(&attack, "userdata", json!({}), "bad_appkey").await;
    }
    // The admin is not locked out (the lockout is checked on every call, cached or not).
    s.ok(&s.admin, "userdata", json!({})).await;
}

/// Finding 1: a flood of made-up identities with megabyte-long names (the rate limiter keyed its budgets, and
/// the lockout its failures, by the claimed text) leaves every table small: those names are refused before
/// anything is kept, and the longest names allowed are kept as fixed-size digests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_identities_leaves_the_tables_small() {
    let s = std::sync::Arc::new(
        Server::start_with(|s| {
            s.ratelimit_enabled = true;
            s.api_rate_limit = "100000 per minute".into();
        })
        .await,
    );
    let huge = "x".repeat(1_000_000);
    let mut flood = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (s, huge) = (s.clone(), huge.clone());
        flood.spawn(async move {
            // Pings with made-up keys, logins with a valid key: each with a megabyte of username (the finding
            // sent 300 and 150; fewer show the same, faster).
            for i in (worker..32).step_by(4) {
                let env = json!({"appkey": format!("made-up-{i}"), "userdata": format!("{i}/{huge}:")});
                let r = s.post("ping", &env).await;
                assert_eq!(
                    r.status,
                    403,
                    "{}",
                    String::from_utf8_lossy(&r.body[..200.min(r.body.len())])
                );
            }
            for i in (worker..16).step_by(4) {
                let who = s.admin.with_userdata(&format!("admin/{i}{huge}:{}", "0".repeat(40)));
                s.check(&who, "userdata", json!({}), "bad_request").await;
            }
        });
    }
    while let Some(done) = flood.join_next().await {
        done.unwrap();
    }
    // And 150 failed logins with the longest names allowed, all different.
    for i in 0..150 {
        let name = format!("{i:0>64}");
        let who = s.admin.with_userdata(&format!("admin/{name}:{}", "0".repeat(40)));
        s.check(&who, "userdata", json!({}), "auth_failed").await;
    }
    let limiter = s.app.limiter.as_ref().unwrap().held();
    let auth = s.app.auth.held();
    println!("rate limiter {limiter:?}; authentication {auth:?}");
    // One client address and one proven user spent budgets.
    assert!(limiter.entries <= 2, "{limiter:?}");
    assert!(limiter.bytes < 4096, "{limiter:?}");
    assert!(auth.failures.entries <= 150, "{auth:?}");
    assert!(auth.failures.bytes < 64 << 10, "{auth:?}");
    assert!(auth.callers.bytes < 4096 && auth.cache.bytes < 4096, "{auth:?}");
}

#[tokio::test]
async fn every_wrong_credential_gets_one_identical_message() {
    let s = Server::start().await;
    let sha = sha1_hex("admin", crate::support::ADMIN_PASSWORD);
    // Well-formed userdata that is wrong: one message, whichever part is wrong.
    let wrong = [
        s.admin.with_password("not-the-password").userdata,
        format!("admin/nobody:{sha}"),
    ];
    let mut messages = Vec::new();
    for userdata in &wrong {
        let body = s
            .check(&s.admin.with_userdata(userdata), "userdata", json!({}), "auth_failed")
            .await;
        assert!(body.get("errorData").is_none(), "{body}");
        messages.push(body["error"].as_str().unwrap().to_string());
    }
    messages.dedup();
    assert_eq!(messages, ["authentication failed"]);
    // Malformed userdata: one message too, which says the form expected (what was sent tells the sender nothing new).
    let malformed = [
        format!("admin/admin:{}", &sha[..39]),
        format!("admin/admin:{sha}0"),
        format!("admin/admin:{}", "z".repeat(40)),
        format!("admin admin:{sha}"),
        format!("admin/admin{sha}"),
        format!("/admin:{sha}"),
        format!("admin/:{sha}"),
        "garbage".to_string(),
        format!("admin/admin:{}", crate::support::ADMIN_PASSWORD),
    ];
    let mut messages = Vec::new();
    for userdata in &malformed {
        let body = s
            .check(&s.admin.with_userdata(userdata), "userdata", json!({}), "auth_failed")
            .await;
        assert!(body.get("errorData").is_none(), "{body}");
        messages.push(body["error"].as_str().unwrap().to_string());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("org/user:sha1, where sha1 is 40 hex digits"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn a_disabled_user_is_told_only_with_the_right_password() {
    let s = Server::start().await;
    let carol = s.user(&s.admin, "carol", "standard").await;
    s.ok(&carol, "userdata", json!({})).await;
    s.ok(&s.admin, "org/users/edit", json!({"id": carol.id, "disabled": true}))
        .await;
    // The cache held carol's verification: the disabled flag applies on the very next call all the same.
    s.check(&carol, "userdata", json!({}), "account_disabled").await;
    s.check(&carol.with_password("wrong"), "userdata", json!({}), "auth_failed")
        .await;
    s.ok(&s.admin, "org/users/edit", json!({"id": carol.id, "disabled": "false"}))
        .await;
    s.ok(&carol, "userdata", json!({})).await;
}

/// Ten failures lock the user out for the lockout's five minutes (`IPAMD_LOCKOUT_SECONDS`), to the second.
#[tokio::test]
async fn ten_failures_lock_the_user_out_even_with_the_right_password() {
    let clock = ManualClock::new();
    let s = Server::start_with_clock(&clock, |_| {}).await;
    let dave = s.user(&s.admin, "dave", "standard").await;
    let erin = s.user(&s.admin, "erin", "standard").await;
    let bad = dave.with_password("guess");
    for attempt in 1..=10 {
        let body = s.check(&bad, "userdata", json!({}), "auth_failed").await;
        assert!(body["error"].is_string(), "attempt {attempt}");
    }
    for who in [&dave, &bad, &dave.with_userdata(&dave.userdata.replace("dave", "DAVE"))] {
        let env = json!({"appkey": who.appkey, "userdata": who.userdata, "data": {}});
        let reply = s.post("userdata", &env).await;
        assert_eq!(reply.status, 429, "{}", reply.json());
        assert_eq!(reply.json()["errorCode"], "too_many_attempts");
        assert_eq!(reply.header("retry-after"), Some("300"));
    }
    // Other users, and app-key-only methods, are unaffected.
    s.ok(&erin, "userdata", json!({})).await;
    s.ok(&s.admin, "userdata", json!({})).await;
    s.ok(&dave.with_userdata(""), "ping", json!({})).await;
    // Locked out to the last second of the lockout, and no longer.
    clock.advance(Duration::from_secs(299));
    let env = json!({"appkey": dave.appkey, "userdata": dave.userdata, "data": {}});
    let reply = s.post("userdata", &env).await;
    assert_eq!((reply.status, reply.header("retry-after")), (429, Some("1")));
    clock.advance(Duration::from_secs(1));
    s.ok(&dave, "userdata", json!({})).await;
}

/// A name that names nobody is locked out like a user, so no answer tells the two apart. (Made-up names give way
/// to users' counts when the table is full: `auth::tests`.)
#[tokio::test]
async fn unknown_users_are_locked_out_too() {
    let s = Server::start().await;
    let ghost = s
        .admin
        .with_userdata(&format!("admin/ghost:{}", sha1_hex("ghost", "x")));
    for _ in 0..s.app.settings.lockout_attempts {
        s.check(&ghost, "userdata", json!({}), "auth_failed").await;
    }
    s.check(&ghost, "userdata", json!({}), "too_many_attempts").await;
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let s = Server::start().await;
    let frank = s.user(&s.admin, "frank", "readonly").await;
    let bad = frank.with_password("guess");
    for _ in 0..9 {
        s.check(&bad, "userdata", json!({}), "auth_failed").await;
    }
    s.ok(&frank, "userdata", json!({})).await;
    for _ in 0..9 {
        s.check(&bad, "userdata", json!({}), "auth_failed").await;
    }
    s.ok(&frank, "userdata", json!({})).await;
}

#[tokio::test]
async fn a_password_change_drops_the_cached_verification_at_once() {
    let s = Server::start().await;
    let gina = s.user(&s.admin, "gina", "standard").await;
    // Twice: the second call is answered from the cache.
    s.ok(&gina, "userdata", json!({})).await;
    s.ok(&gina, "userdata", json!({})).await;
    s.ok(
        &s.admin,
        "org/users/edit",
        json!({"id": gina.id, "password": "new-password-1"}),
    )
    .await;
    s.check(&gina, "userdata", json!({}), "auth_failed").await;
    let gina = gina.with_password("new-password-1");
    s.ok(&gina, "userdata", json!({})).await;
    // Her own change through "self", with a hash this time.
    let hash = sha1_hex("gina", "third-pw");
    s.ok(&gina, "org/users/edit", json!({"id": "self", "hash": hash})).await;
    s.check(&gina, "userdata", json!({}), "auth_failed").await;
    s.ok(&gina.with_password("third-pw"), "userdata", json!({})).await;
}

#[tokio::test]
async fn a_level_change_applies_on_the_next_call() {
    let s = Server::start().await;
    let hank = s.user(&s.admin, "hank", "standard").await;
    s.ok(&hank, "groups/add", json!({"description": "by hank"})).await;
    s.check(&hank, "org/logs", json!({}), "access_denied").await;
    s.ok(&s.admin, "org/users/edit", json!({"id": hank.id, "level": "admin"}))
        .await;
    s.ok(&hank, "org/logs", json!({})).await;
    s.ok(&s.admin, "org/users/edit", json!({"id": hank.id, "level": "readonly"}))
        .await;
    s.check(&hank, "groups/add", json!({"description": "again"}), "access_denied")
        .await;
    let me = s.ok(&hank, "userdata", json!({})).await;
    assert_eq!(me["user"]["level"], "readonly");
}

#[tokio::test]
async fn a_disabled_or_deleted_appkey_stops_working_at_once() {
    let s = Server::start().await;
    let added = s.ok(&s.admin, "org/appkeys/add", json!({"name": "second"})).await;
    let key = only(&added);
    let who = s.admin.with_appkey(key["key"].as_str().unwrap());
    s.ok(&who, "userdata", json!({})).await;
    s.ok(&who, "userdata", json!({})).await;
    s.ok(
        &s.admin,
        "org/appkeys/edit",
        json!({"id": id_of(key), "enabled": false, "disabledreason": "leaked"}),
    )
    .await;
    s.check(&who, "userdata", json!({}), "appkey_disabled").await;
    s.check(&who, "ping", json!({}), "appkey_disabled").await;
    s.ok(&s.admin, "org/appkeys/edit", json!({"id": id_of(key), "enabled": "1"}))
        .await;
    s.ok(&who, "userdata", json!({})).await;
    s.ok(&s.admin, "org/appkeys/delete", json!({"id": id_of(key)})).await;
    s.check(&who, "userdata", json!({}), "bad_appkey").await;
}

/// With the verification cache off (`IPAMD_AUTH_CACHE_SECONDS=0`) every call runs argon2 (outside any transaction)
/// and is then staged with that result: right passwords pass every time, wrong ones fail, reads and writes alike.
#[tokio::test]
async fn without_the_verification_cache_every_call_verifies_its_password() {
    let s = Server::start_with(|settings| settings.auth_cache_seconds = 0).await;
    let hana = s.user(&s.admin, "hana", "standard").await;
    for _ in 0..3 {
        s.ok(&hana, "userdata", json!({})).await;
    }
    s.ok(&hana, "groups/add", json!({"description": "verified each time"}))
        .await;
    s.check(&hana.with_password("guess"), "userdata", json!({}), "auth_failed")
        .await;
    s.check(
        &hana.with_password("guess"),
        "groups/add",
        json!({"description": "x"}),
        "auth_failed",
    )
    .await;
    s.ok(&hana, "userdata", json!({})).await;
}
