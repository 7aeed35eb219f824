//! A write commits only if the credentials that authorised it still hold in the transaction that applies it: a user
//! disabled, or an org replaced or removed by a restore, while their writes wait for the writer. Every assertion is
//! about what committed (audit log ids, rows), never about timing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use crate::support::{status_of, Ident, Server};
use ipamd::db::params;

/// Clients writing at once as one caller.
const CLIENTS: usize = 8;
/// Most writes of one client.
const MOST_WRITES: usize = 300;

/// One answered write: its status, error code (if any) and respid.
struct Answer {
    status: u16,
    code: Option<String>,
    respid: String,
}

/// Writers adding groups as `who`, `CLIENTS` at once, each until its first refusal, `stop`, or `MOST_WRITES`.
struct Writers {
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<Vec<Answer>>,
}

impl Writers {
    fn start(s: &Arc<Server>, who: &Ident, clients: usize, prefix: &str) -> Writers {
        let (acked, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..clients {
            let (s, who, acked, stop) = (s.clone(), who.clone(), acked.clone(), stop.clone());
            let prefix = prefix.to_string();
            tasks.spawn(async move {
                let mut answers = Vec::new();
                for i in 0..MOST_WRITES {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let data = json!({"description": format!("{prefix}-{client}-{i}")});
                    let (status, body) = s.call(&who, "groups/add", data).await;
                    let answer = Answer {
                        status,
                        code: body["errorCode"].as_str().map(str::to_string),
                        respid: body["respid"].as_str().unwrap_or_default().to_string(),
                    };
                    answers.push(answer);
                    if status != 200 {
                        break;
                    }
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                answers
            });
        }
        Writers { acked, stop, tasks }
    }

    /// Waits until `n` writes have been acknowledged, so the clients are in full flow.
    async fn flowing(&self, n: usize) {
        while self.acked.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn finish(mut self) -> Vec<Answer> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        while let Some(done) = self.tasks.join_next().await {
            all.extend(done.unwrap());
        }
        all
    }
}

/// `(respid, id)` of every audit entry of `method`, read straight from the database.
async fn log_ids(s: &Server, method: &'static str) -> HashMap<String, i64> {
    s.app
        .store
        .run(move |db| {
            db.read(|tx| {
                let rows = tx.rows("SELECT respid, id FROM logs WHERE method = ?1", params![method], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                Ok(rows.into_iter().collect::<HashMap<String, i64>>())
            })
        })
        .await
        .unwrap()
}

/// How many groups hold `pattern` (SQL `LIKE`) in their description, in any org.
async fn groups_like(s: &Server, pattern: &'static str) -> i64 {
    s.app
        .store
        .run(move |db| {
            db.read(|tx| {
                tx.query_row(
                    "SELECT count(*) FROM groups WHERE description LIKE ?1",
                    params![pattern],
                    |r| r.get(0),
                )
            })
        })
        .await
        .unwrap()
}

/// The name of a new backup of `s`.
async fn backup(s: &Server) -> String {
    let made = s.ok(&s.admin, "backups/add", json!({})).await;
    made["name"].as_str().unwrap().to_string()
}

/// An admin disables a user who writes from 8 clients at once, three times: every write of that user answered
/// success committed before the disable (its audit entry comes first), every later one was refused with
/// `account_disabled` and left nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_write_of_a_user_commits_after_the_user_is_disabled() {
    let s = Arc::new(Server::start().await);
    let admin = s.admin.clone();
    let writer = s.user(&admin, "writer", "standard").await;
    for trial in 0..3 {
        let writers = Writers::start(&s, &writer, CLIENTS, &format!("trial-{trial}"));
        writers.flowing(16).await;
        let disable = json!({"id": writer.id, "disabled": true});
        let (status, body) = s.call(&admin, "org/users/edit", disable).await;
        assert_eq!(status, 200, "{body}");
        let answers = writers.finish().await;
        let disabled_at = log_ids(&s, "org/users/edit").await[body["respid"].as_str().unwrap()];
        let written = log_ids(&s, "groups/add").await;
        let late: Vec<i64> = answers
            .iter()
            .filter(|a| a.status == 200)
            .map(|a| written[&a.respid])
            .filter(|id| *id > disabled_at)
            .collect();
        assert_eq!(
            late,
            Vec::<i64>::new(),
            "trial {trial}: acknowledged writes committed after the disable"
        );
        for refused in answers.iter().filter(|a| a.status != 200) {
            assert_eq!(refused.code.as_deref(), Some("account_disabled"), "trial {trial}");
            assert!(
                !written.contains_key(&refused.respid),
                "trial {trial}: a refused write left its entry"
            );
        }
        s.ok(&admin, "org/users/edit", json!({"id": writer.id, "disabled": false}))
            .await;
    }
}

/// A restore of another installation's backup, whose org with org B's id has the same identifier, admin and
/// password as B, while B writes: no write of B's lands in that org, and none answers 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_from_another_installation_takes_no_write_of_the_org_that_had_the_id() {
    let other = Server::start().await;
    let theirs = other.org("b").await;
    let name = backup(&other).await;
    let s = Arc::new(Server::start().await);
    let b = s.org("b").await;
    assert_eq!(s.org_id(&b).await, other.org_id(&theirs).await);
    assert_eq!(b.userdata, theirs.userdata, "only the app keys differ");
    let dir = &s.app.settings.backup_dir;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(other.app.settings.backup_dir.join(&name), dir.join(&name)).unwrap();

    let writers = Writers::start(&s, &b, CLIENTS, "b-write");
    writers.flowing(16).await;
    s.ok(&s.admin, "backups/restore", json!({"name": name})).await;
    let answers = writers.finish().await;
    for a in &answers {
        assert!(
            a.status == 200 || a.code.as_deref() == Some("bad_appkey"),
            "{} {:?}",
            a.status,
            a.code
        );
    }
    assert!(
        answers.iter().any(|a| a.status != 200),
        "the writers never saw the restore"
    );
    // The restore replaced every row: any of B's groups now in the database was written after it.
    assert_eq!(
        groups_like(&s, "b-write-%").await,
        0,
        "B's writes landed in the restored org"
    );
    assert_eq!(log_ids(&s, "groups/add").await.len(), 0);
}

/// A restore of a backup that lacks org B while B and org C write: the restore and every call answer without a
/// 500, C's writes all succeed (C is in the backup), B's are refused once B is gone, and nothing of B's stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_that_removes_a_writing_org_fails_no_other_call() {
    let s = Arc::new(Server::start().await);
    let c = s.org("c").await;
    let name = backup(&s).await;
    let b = s.org("b").await;
    let b_writers = Writers::start(&s, &b, CLIENTS, "b-write");
    let c_writers = Writers::start(&s, &c, 4, "c-write");
    b_writers.flowing(16).await;
    c_writers.flowing(4).await;
    s.ok(&s.admin, "backups/restore", json!({"name": name})).await;
    c_writers.flowing(c_writers.acked.load(Ordering::SeqCst) + 8).await;
    let (b_answers, c_answers) = (b_writers.finish().await, c_writers.finish().await);
    for a in &b_answers {
        assert!(
            a.status == 200 || a.code.as_deref() == Some("auth_failed") || a.code.as_deref() == Some("bad_appkey"),
            "{} {:?}",
            a.status,
            a.code
        );
    }
    assert!(
        b_answers.iter().any(|a| a.status != 200),
        "B's writers never saw the restore"
    );
    let refused: Vec<(u16, &Option<String>)> = c_answers
        .iter()
        .filter(|a| a.status != 200)
        .map(|a| (a.status, &a.code))
        .collect();
    assert_eq!(refused, Vec::<(u16, &Option<String>)>::new(), "C's writes");
    assert_eq!(groups_like(&s, "b-write-%").await, 0, "B's writes outlived the restore");
    assert!(groups_like(&s, "c-write-%").await > 0);
    let still: Value = s.ok(&c, "groups/get", json!({})).await;
    assert!(!still.as_object().unwrap().is_empty());
}

/// Each change a credential check depends on, made by another connection (as another process would) while a
/// write it authorised waits for the writer: the write is refused with the error a fresh call gets, and leaves
/// nothing. The other connection holds the write lock from before the call until the call was authorised and
/// handed to the writer (counted by `Auth::write_checks`, not guessed with a sleep), so the change commits in
/// between, and the refusal is the writer's check's (counted too).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_credential_changed_while_its_write_waits_for_the_writer_refuses_the_write() {
    let s = Arc::new(Server::start().await);
    // Through the envelope (app key and userdata) or REST (a token); the change; the refusal.
    let cases = [
        (
            false,
            "UPDATE users SET level = 'readonly' WHERE org_id = ?1",
            "access_denied",
        ),
        (
            false,
            "UPDATE users SET disabled = 1 WHERE org_id = ?1",
            "account_disabled",
        ),
        (
            false,
            "UPDATE users SET phc = phc || 'x' WHERE org_id = ?1",
            "auth_failed",
        ),
        (
            false,
            "UPDATE appkeys SET enabled = 0 WHERE org_id = ?1",
            "appkey_disabled",
        ),
        (false, "DELETE FROM appkeys WHERE org_id = ?1", "bad_appkey"),
        // The org deleted (as `org/delete` does): before, the write failed on its foreign key with a 500.
        (false, "DELETE FROM orgs WHERE id = ?1", "bad_appkey"),
        (true, "DELETE FROM orgs WHERE id = ?1", "auth_failed"),
        (true, "DELETE FROM tokens WHERE org_id = ?1", "auth_failed"),
        (true, "UPDATE tokens SET expires = 1 WHERE org_id = ?1", "auth_failed"),
        (
            true,
            "UPDATE users SET disabled = 1 WHERE org_id = ?1",
            "account_disabled",
        ),
        (
            true,
            "UPDATE users SET level = 'readonly' WHERE org_id = ?1",
            "access_denied",
        ),
    ];
    for (case, (token, change, code)) in cases.into_iter().enumerate() {
        let who = s.org(&format!("case-{case}")).await;
        let org = s.org_id(&who).await;
        let (bearer, _) = s.new_token(&who, "writes").await;
        assert_eq!(s.api(Method::GET, "/networks", &bearer, None).await.status, 200);
        let Some(file) = s.sqlite_file() else { return };
        let other = rusqlite::Connection::open(file).unwrap();
        other.busy_timeout(Duration::from_secs(10)).unwrap();
        // Deleting an org deletes its records, whose triggers call the server's SQL functions.
        ipamd::store::add_functions(&other).unwrap();
        other
            .execute_batch("PRAGMA foreign_keys = ON; BEGIN IMMEDIATE")
            .unwrap();
        other.execute(change, [org]).unwrap();
        let before = s.app.auth.write_checks();
        let write = {
            let (s, who) = (s.clone(), who.clone());
            tokio::spawn(async move {
                match token {
                    false => s.call(&who, "groups/add", json!({"description": "held"})).await,
                    true => {
                        let body = json!({"network": format!("10.{case}.0.0"), "cidr": 24, "name": "held"});
                        let reply = s.api(Method::POST, "/networks", &bearer, Some(&body)).await;
                        (reply.status, reply.json())
                    }
                }
            })
        };
        // The change commits only once the write was authorised (at the old snapshot) and handed to the writer,
        // which waits for `other`'s lock: the writer's own check is the one that must refuse it.
        let waited = tokio::time::Instant::now();
        while s.app.auth.write_checks().queued == before.queued {
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "case {case}: the write never reached the writer"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        other.execute_batch("COMMIT").unwrap();
        let (status, body) = write.await.unwrap();
        let what = format!("case {case}: {change} → {status} {body}");
        let after = s.app.auth.write_checks();
        assert_eq!(after.queued, before.queued + 1, "{what}");
        assert_eq!(
            after.rechecked,
            before.rechecked + 1,
            "the writer checked again: {what}"
        );
        let answered = body["errorCode"].as_str().or(body["code"].as_str());
        assert_eq!(answered, Some(code), "{what}");
        assert_eq!(status, status_of(code), "{what}");
        let written: i64 = s
            .app
            .store
            .run(move |db| {
                db.read(|tx| {
                    tx.query_row(
                        "SELECT count(*) FROM logs WHERE org_id = ?1 AND method IN ('groups/add', 'subnets/add')",
                        params![org],
                        |r| r.get(0),
                    )
                })
            })
            .await
            .unwrap();
        assert_eq!(written, 0, "{what}");
    }
}
