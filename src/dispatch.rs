//! The one door every call goes through, whichever front door it came in by: find the method, authenticate,
//! check the level, decode the parameters, run the handler in one transaction, and hand back a typed value.
//!
//! Nothing here knows about the envelope, REST or HTTP: adapters build a [`Call`] and render the [`Outcome`].

use crate::app::App;
use crate::credentials::{authenticate, grant, recheck, Authenticated, Grant, Mode, PasswordCheck, Prior, Stamps};
use crate::error::{Code, Error, Result};
use crate::handler::{
    check_access, closest_methods, find_method, new_respid, Call, Caller, Credentials, Ctx, Kind, Method, Outcome,
    Prepared,
};
use crate::idempotency::Keyed;
use crate::model::Reply;
use crate::params::Data;
use crate::store::{Db, Tx};

/// Runs one call through the whole pipeline.
pub async fn dispatch(app: &App, call: Call) -> Outcome {
    let Some(method) = find_method(app.methods, &call.method) else {
        let e = Error::new(Code::UnknownMethod, unknown_method(app.methods, &call.method));
        return Outcome::failed(e);
    };
    match method.kind {
        Kind::Poll => poll(app, method, call).await,
        Kind::Read | Kind::Write | Kind::Replace => run_call(app, method, call).await,
    }
}

/// A [`Kind::Poll`] call: run as a read; while it answers an empty page of changes that asks to wait, wait for the
/// writer's next commit (up to the wait asked for, counted from the start) and run it again, authentication
/// included. The receiver is marked seen before each run, so a commit during the run wakes the wait at once.
async fn poll(app: &App, method: &'static Method, call: Call) -> Outcome {
    let mut commits = app.store.commits();
    let mut deadline = None;
    // Only the first run sees the key: the method refuses one (a read takes none), and that answer ends the wait.
    let mut key = call.key;
    loop {
        commits.borrow_and_update();
        let again = Call {
            method: String::new(),
            credentials: call.credentials.clone(),
            data: call.data.clone(),
            key: key.take(),
        };
        let outcome = run_call(app, method, again).await;
        let wait = match &outcome.result {
            Ok(Reply::Changes(page)) if page.changes.is_empty() => page.wait,
            _ => 0,
        };
        let deadline =
            *deadline.get_or_insert_with(|| tokio::time::Instant::now() + std::time::Duration::from_secs(wait));
        if wait == 0 || !matches!(tokio::time::timeout_at(deadline, commits.changed()).await, Ok(Ok(()))) {
            return outcome;
        }
    }
}

/// Runs one call of `method` through the whole pipeline once.
async fn run_call(app: &App, method: &'static Method, call: Call) -> Outcome {
    let respid = new_respid();
    let key = match call.key.map(|k| Keyed::new(k, method, &call.data)).transpose() {
        Ok(key) => key,
        Err(e) => {
            return Outcome {
                respid,
                caller: String::new(),
                result: Err(e),
            }
        }
    };
    let data = match Data::new(call.data) {
        Ok(d) => d,
        Err(e) => {
            return Outcome {
                respid,
                caller: String::new(),
                result: Err(e),
            }
        }
    };
    // Authentication and reads run on the database threads. A password that is not in the verification cache is
    // checked with argon2 on tokio's blocking pool, holding no connection and no transaction, and the call is then
    // staged again with that result; the database threads never wait on argon2. Writes go to the group-commit
    // writer, after their slow work (a new password's hash) ran on the blocking pool too.
    let mut staged = stage_on_db(app, call.credentials, method, &respid, data, None).await;
    if let Ok(Stage::Slow(credentials, data, check)) = staged {
        let auth_app = app.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let began = std::time::Instant::now();
            let result = auth_app.auth.verify(check.phc.as_deref(), &check.sha1);
            let ms = began.elapsed().as_secs_f64() * 1e3;
            tracing::debug!(ms, outcome = ?result, "password checked (argon2 unless another call cached it meanwhile)");
            (check.phc, result)
        })
        .await;
        staged = match verified {
            Err(e) => Err(Error::internal(format!("password verification failed: {e}"))),
            Ok(prior) => stage_on_db(app, credentials, method, &respid, data, Some(prior)).await,
        };
    }
    let (caller, result) = match staged {
        Err(e) => {
            return Outcome {
                respid,
                caller: String::new(),
                result: Err(e),
            }
        }
        Ok(Stage::Slow(..)) => {
            return Outcome {
                respid,
                caller: String::new(),
                result: Err(Error::internal("argon2 twice")),
            }
        }
        Ok(Stage::Done(caller, result)) => (caller, result),
        Ok(Stage::Write(caller, prepared, credentials, grant)) => {
            // Held until the answer: a retry with the key meanwhile is told so at once.
            let held = match &key {
                Some(key) => key.hold(&app.in_flight, &caller),
                None => Ok(None),
            };
            let slow = match held {
                Ok(held) => slow_work(prepared).await.map(|prepared| (prepared, held)),
                Err(e) => Err(e),
            };
            let result = match slow {
                Ok((prepared, _held)) => {
                    let (app2, rid, who) = (app.clone(), respid.clone(), caller.clone());
                    // The credentials are checked again in the transaction that applies the write, and a key's
                    // answer is looked up and kept in it.
                    let write = move |tx: &Tx| {
                        let who = recheck(tx, &app2, &credentials, method.access, &grant, &who)?;
                        match &key {
                            None => run(method, tx, &who, &app2, &rid, prepared),
                            Some(key) => {
                                let ttl = app2.settings.idempotency_seconds;
                                key.once(tx, &who, app2.clock.now(), ttl, &rid, || {
                                    run(method, tx, &who, &app2, &rid, prepared)
                                })
                            }
                        }
                    };
                    app.auth.write_queued();
                    match method.kind {
                        Kind::Replace => app.store.write_alone(write).await,
                        Kind::Read | Kind::Poll | Kind::Write => app.store.write(write).await,
                    }
                }
                Err(e) => Err(e),
            };
            (caller, result)
        }
    };
    Outcome {
        respid,
        caller: describe(&caller),
        result,
    }
}

/// Runs a write's [`Params::slow`] work, if any, on tokio's blocking pool.
async fn slow_work(mut prepared: Prepared) -> Result<Prepared> {
    if !prepared.has_slow_work() {
        return Ok(prepared);
    }
    tokio::task::spawn_blocking(move || prepared.slow().map(|()| prepared))
        .await
        .map_err(|e| Error::internal(format!("slow work failed: {e}")))?
}

/// [`stage`] on a database thread.
async fn stage_on_db(
    app: &App,
    credentials: Credentials,
    method: &'static Method,
    respid: &str,
    data: Data,
    prior: Option<Prior>,
) -> Result<Stage> {
    let (app2, rid) = (app.clone(), respid.to_string());
    app.store
        .run(move |db| stage(db, &app2, credentials, method, &rid, data, prior))
        .await
}

/// Authenticates a call and, for a read, answers it: authentication and the handler share one read transaction.
/// `prior` is the argon2 verification [`dispatch`] ran after a first pass found the password not in the cache.
fn stage(
    db: &mut Db,
    app: &App,
    credentials: Credentials,
    method: &'static Method,
    respid: &str,
    mut data: Data,
    prior: Option<Prior>,
) -> Result<Stage> {
    let mut stamps = Stamps::default();
    let checked = db.read(|tx| {
        let caller = match authenticate(tx, app, &credentials, method.access, prior, Mode::Call, &mut stamps)? {
            Authenticated::Caller(caller) => caller,
            Authenticated::NeedsArgon2(check) => return Ok(Checked::NeedsArgon2(check)),
        };
        stamps.seen(tx)?;
        if let Err(e) = check_access(&caller, method.access) {
            return Ok(Checked::Answered(caller, Err(e)));
        }
        if !matches!(method.kind, Kind::Read | Kind::Poll) {
            let grant = grant(tx, &credentials, &caller, stamps.epoch_of(tx)?)?;
            return Ok(Checked::Write(caller, grant));
        }
        let result = (method.prepare)(&mut data).and_then(|prepared| run(method, tx, &caller, app, respid, prepared));
        Ok(Checked::Answered(caller, result))
    });
    stamps.record(db);
    Ok(match checked? {
        Checked::NeedsArgon2(check) => Stage::Slow(credentials, data, check),
        Checked::Answered(caller, result) => Stage::Done(caller, result),
        // Decoded and resolved after the read transaction: resolving reads in transactions of its own.
        Checked::Write(caller, grant) => {
            let prepared = (method.prepare)(&mut data).and_then(|mut p| p.resolve(db, &caller).map(|()| p));
            match prepared {
                Ok(prepared) => Stage::Write(caller, prepared, credentials, grant),
                Err(e) => Stage::Done(caller, Err(e)),
            }
        }
    })
}

/// What the read transaction of [`stage`] found.
enum Checked {
    NeedsArgon2(PasswordCheck),
    Answered(Caller, Result<Reply>),
    Write(Caller, Grant),
}

/// Where a call stands after authentication: answered, a write for the writer, or waiting for argon2.
enum Stage {
    Done(Caller, Result<Reply>),
    Write(Caller, Prepared, Credentials, Grant),
    Slow(Credentials, Data, PasswordCheck),
}

/// Runs a method's handler in a transaction.
fn run(
    method: &'static Method,
    tx: &Tx,
    caller: &Caller,
    app: &App,
    respid: &str,
    prepared: Prepared,
) -> Result<Reply> {
    let ctx = Ctx {
        tx,
        caller,
        settings: &app.settings,
        store: &app.store,
        now: app.clock.now(),
        respid,
        method: method.name,
    };
    prepared.run(&ctx)
}

/// The refusal of a method the table does not hold, with the closest names it does hold.
fn unknown_method(methods: &[Method], name: &str) -> String {
    let shown: String = name.chars().take(64).collect();
    match closest_methods(methods, name).as_slice() {
        [] => format!("unknown method '{shown}'"),
        [one] => format!("unknown method '{shown}'; did you mean '{one}'?"),
        [first @ .., last] => {
            let first: Vec<String> = first.iter().map(|m| format!("'{m}'")).collect();
            format!(
                "unknown method '{shown}'; did you mean {} or '{last}'?",
                first.join(", ")
            )
        }
    }
}

/// `org=<id> user=<name> app=<name>`, for the request log line: written in one allocation of the right size (the
/// formatting machinery cost twice as much, on every call).
fn describe(c: &Caller) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(30 + c.username.len() + c.application.len());
    s.push_str("org=");
    let _ = write!(s, "{}", c.org_id);
    s.push_str(" user=");
    s.push_str(&c.username);
    s.push_str(" app=");
    s.push_str(&c.application);
    s
}
