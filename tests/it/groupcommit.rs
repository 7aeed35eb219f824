//! The group-commit writer: concurrent writes share transactions, yet each call succeeds or fails alone, no
//! address is handed out twice, and what was acknowledged is what the database holds.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::{id_of, only, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicting_concurrent_writes_fail_alone_and_allocations_stay_distinct() {
    let s = Arc::new(Server::start().await);
    let a = s.admin.clone();
    let subnet = id_of(only(&s.ok(&a, "subnets/add", json!({"subnet": "10.77.0.0/24"})).await));
    let mut tasks = tokio::task::JoinSet::new();
    // 64 clients at once: a third allocate, a third all claim 10.77.0.200, a third send a call that fails.
    for client in 0..64 {
        let (s, a) = (s.clone(), a.clone());
        tasks.spawn(async move {
            let data = match client % 3 {
                0 => json!({"subnet": subnet, "hostname": format!("alloc-{client}")}),
                1 => json!({"subnet": subnet, "ip": "10.77.0.200", "hostname": format!("claim-{client}")}),
                _ => json!({"subnet": subnet, "ip": "10.99.0.1"}),
            };
            let (status, body) = s.call(&a, "ipaddress/add", data).await;
            (client % 3, status, body)
        });
    }
    let (mut allocated, mut claims_won, mut failures) = (Vec::new(), 0, 0);
    while let Some(done) = tasks.join_next().await {
        let (kind, status, body) = done.unwrap();
        match (kind, status) {
            (0, 200) => allocated.push(only(&body["response"])["ip"].as_str().unwrap().to_string()),
            (1, 200) => claims_won += 1,
            (1, 400) => assert_eq!(body["errorCode"], "duplicate", "{body}"),
            (2, 400) => failures += 1,
            other => panic!("unexpected answer {other:?}: {body}"),
        }
    }
    assert_eq!(claims_won, 1, "exactly one claim of the same address wins");
    assert_eq!(failures, 21, "every bad call fails, alone");
    assert_eq!(allocated.len(), 22, "every allocation succeeds");
    let distinct: HashSet<&String> = allocated.iter().collect();
    assert_eq!(distinct.len(), allocated.len(), "an address was handed out twice");
    assert!(!allocated.contains(&"10.77.0.200".to_string()));
    // What was acknowledged is exactly what is stored, and the counts agree.
    let records = s.ok(&a, "ipaddress/get", json!({"subnet": subnet})).await;
    let stored: HashSet<String> = records
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["ip"].as_str().unwrap().to_string())
        .collect();
    let mut expected: HashSet<String> = allocated.iter().cloned().collect();
    expected.insert("10.77.0.200".into());
    assert_eq!(stored, expected);
    let sub = s.ok(&a, "subnets/get", json!({"id": subnet})).await;
    assert_eq!(only(&sub)["used_hosts"], Value::from("23"));
    assert_eq!(only(&sub)["available_hosts"], Value::from((254 - 23).to_string()));
    // One log entry per acknowledged change, none for the failures.
    let logs = s
        .ok(&a, "org/logs", json!({"method": "ipaddress/add", "perpage": 500}))
        .await;
    assert_eq!(logs["total"], "23");
    // The full-text index, maintained once per batch, holds exactly the acknowledged records: a failed call's
    // queued index change rolled back with its savepoint.
    let found = s
        .ok(
            &a,
            "search/find",
            json!({"query": "-", "types": ["addresses"], "limit": 1000}),
        )
        .await;
    let mut names: Vec<String> = found["addresses"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["hostname"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names.iter().filter(|n| n.starts_with("claim-")).count(), 1);
    assert_eq!(names.iter().filter(|n| n.starts_with("alloc-")).count(), 22);
    s.assert_fts_consistent().await;
}
