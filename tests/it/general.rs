//! `ping`, `version` and `userdata`.

use serde_json::json;

use crate::support::{now, Server};

#[tokio::test]
async fn ping_answers_pong_and_the_server_time() {
    let s = Server::start().await;
    let before = now();
    let pong = s.ok(&s.admin, "ping", json!({})).await;
    let after = now();
    let keys: Vec<&String> = pong.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["pong", "servertime"]);
    assert_eq!(pong["pong"], "true");
    let servertime: i64 = pong["servertime"].as_str().unwrap().parse().unwrap();
    assert!(
        (before..=after).contains(&servertime),
        "{servertime} not in {before}..={after}"
    );
}

#[tokio::test]
async fn ping_echoes_time() {
    let s = Server::start().await;
    for (sent, echoed) in [
        (json!("1346972079"), "1346972079"),
        (json!(1346972079), "1346972079"),
        (json!("abc"), "abc"),
    ] {
        let pong = s.ok(&s.admin, "ping", json!({"time": sent})).await;
        assert_eq!(pong["time"], echoed, "{sent}");
        assert_eq!(pong["pong"], "true");
    }
    s.check(&s.admin, "ping", json!({"time": {"a": 1}}), "invalid_params")
        .await;
}

#[tokio::test]
async fn version_names_the_api_and_the_server() {
    let s = Server::start().await;
    let v = s.ok(&s.admin, "version", json!({})).await;
    assert_eq!(
        v,
        json!({"version": "1.0", "server": format!("ipamd {}", env!("CARGO_PKG_VERSION"))})
    );
    s.check(&s.admin, "version", json!({"x": 1}), "invalid_params").await;
}

#[tokio::test]
async fn userdata_describes_the_caller_and_their_org() {
    let s = Server::start().await;
    let me = s.ok(&s.admin, "userdata", json!({})).await;
    let keys: Vec<&String> = me.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["user", "org"]);
    let user = &me["user"];
    let user_keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    assert_eq!(
        user_keys,
        [
            "id",
            "username",
            "email",
            "realname",
            "level",
            "disabled",
            "created",
            "lastlogin",
            "version"
        ]
    );
    assert_eq!(user["id"], s.admin.id.to_string());
    assert_eq!(user["username"], "admin");
    assert_eq!(user["level"], "admin");
    assert_eq!(user["disabled"], "false");
    assert!(user["lastlogin"].is_string(), "a login is recorded: {user}");
    let org_keys: Vec<&String> = me["org"].as_object().unwrap().keys().collect();
    assert_eq!(org_keys, ["id", "identifier", "description"]);
    assert_eq!(me["org"]["identifier"], "admin");

    let b = s.org("orgb").await;
    let reader = s.user(&b, "reader", "readonly").await;
    let them = s.ok(&reader, "userdata", json!({})).await;
    assert_eq!(them["user"]["username"], "reader");
    assert_eq!(them["user"]["level"], "readonly");
    assert_eq!(them["user"]["email"], "reader@example.org");
    assert_eq!(them["org"]["identifier"], "orgb");
    assert_ne!(them["org"]["id"], me["org"]["id"]);
    s.check(&reader, "userdata", json!({"id": 1}), "invalid_params").await;
}
