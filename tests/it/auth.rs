//! Authentication through the envelope: app keys, `userdata`, the one `auth_failed` message, disabled accounts,
//! the lockout, and the verification cache dropping an entry the moment its user or key changes.

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

#[tokio::test]
async fn every_wrong_credential_gets_one_identical_message() {
    let s = Server::start().await;
    let sha = sha1_hex("admin", crate::support::ADMIN_PASSWORD);
    let wrong = [
        s.admin.with_password("not-the-password").userdata,
        format!("admin/nobody:{sha}"),
        format!("noorg/admin:{sha}"),
        format!("admin/admin:{}", &sha[..39]),
        format!("admin/admin:{sha}0"),
        format!("admin/admin:{}", "z".repeat(40)),
        format!("admin admin:{sha}"),
        format!("admin/admin{sha}"),
        format!("/admin:{sha}"),
        format!("admin/:{sha}"),
        "garbage".to_string(),
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
    assert_eq!(messages.len(), 1, "{messages:?}");
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

#[tokio::test]
async fn ten_failures_lock_the_user_out_even_with_the_right_password() {
    let s = Server::start().await;
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
        let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=300).contains(&retry), "Retry-After {retry}");
    }
    // Other users, and app-key-only methods, are unaffected.
    s.ok(&erin, "userdata", json!({})).await;
    s.ok(&s.admin, "userdata", json!({})).await;
    s.ok(&dave.with_userdata(""), "ping", json!({})).await;
}

#[tokio::test]
async fn unknown_users_are_locked_out_too() {
    let s = Server::start().await;
    let ghost = s
        .admin
        .with_userdata(&format!("admin/ghost:{}", sha1_hex("ghost", "x")));
    for _ in 0..10 {
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
    s.ok(&s.admin, "org/users/edit", json!({"id": gina.id, "password": "new-pw"}))
        .await;
    s.check(&gina, "userdata", json!({}), "auth_failed").await;
    let gina = gina.with_password("new-pw");
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
