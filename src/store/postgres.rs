//! The store on PostgreSQL: the database setting's URL, connections that say clearly why they failed, migrations
//! of schema.pg.sql under an advisory lock, and transactions with the same semantics as SQLite's: a read is one
//! `REPEATABLE READ READ ONLY` snapshot; writes are serialized across every ipamd process on the database by one
//! transaction-scoped advisory lock, taken first, so a write sees every write committed before it, as SQLite's
//! single writer gives.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use crate::db::pg::Session;
use crate::db::Tx;
use crate::error::{Code, Error, Result};

mod tls;

/// The PostgreSQL twin of [`super::SCHEMA`].
pub const SCHEMA: &str = include_str!("../../schema.pg.sql");

/// The advisory lock every write transaction takes first (ipamd's writers on one database take turns), and the one
/// migrations take. Arbitrary constants, the same in every ipamd.
const WRITE_LOCK: i64 = 0x6970_616d_6401;
const MIGRATION_LOCK: i64 = 0x6970_616d_6402;

/// How long a failed connection is not tried again: a database that is down costs a call microseconds, not a
/// connection attempt each.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Whether the database setting names PostgreSQL (`postgres://` or `postgresql://`) rather than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// Where to connect, parsed once from the setting.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    /// The TLS client, used as the URL's `sslmode` says (see [`tls`]).
    tls: postgres_rustls::MakeTlsConnector,
    /// `user@host:port/database`, for messages: never the password.
    shown: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        let invalid =
            |e: &dyn std::fmt::Display| Error::new(Code::BadRequest, format!("the database URL is not valid: {e}"));
        let tls = tls::Settings::parse(url).map_err(|e| invalid(&e))?;
        let mut config: tokio_postgres::Config = tls.url.parse().map_err(|e| invalid(&e))?;
        config.ssl_mode(tls.ssl_mode());
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let shown = format!(
            "{}@{}:{port}/{}",
            config.get_user().unwrap_or(""),
            hosts.join(","),
            config.get_dbname().unwrap_or("")
        );
        let tls = tls
            .connector()
            .map_err(|e| Error::new(Code::BadRequest, format!("{shown}: {e}")))?;
        Ok(Target { config, tls, shown })
    }

    /// A new session, or a one-line reason it could not be made: the server unreachable, the credentials refused,
    /// the database missing.
    pub fn connect(&self) -> Result<Session> {
        let mut config = self.config.clone();
        config.connect_timeout(Duration::from_secs(5));
        Session::connect(&config, self.tls.clone()).map_err(|reason| {
            let mut err = Error::new(
                Code::Unavailable,
                format!("cannot connect to PostgreSQL at {}: {reason}", self.shown),
            );
            err.retry_after = Some(1);
            err
        })
    }
}

/// A database thread's session, made again when the connection is lost: not before [`RETRY_AFTER`] has passed
/// since the last failure, so a database that is down is answered `unavailable` at once.
pub struct Link {
    target: Target,
    session: Option<RefCell<Session>>,
    failed: Option<Instant>,
}

impl Link {
    pub fn new(target: Target) -> Link {
        Link {
            target,
            session: None,
            failed: None,
        }
    }

    fn session(&mut self) -> Result<&RefCell<Session>> {
        if self.session.as_ref().is_some_and(|s| s.borrow().is_closed()) {
            self.session = None;
        }
        if self.session.is_none() {
            if self.failed.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
                let mut e = Error::new(
                    Code::Unavailable,
                    format!("PostgreSQL at {} is not available", self.target.shown),
                );
                e.retry_after = Some(1);
                return Err(e);
            }
            match self.target.connect() {
                Ok(s) => {
                    self.failed = None;
                    self.session = Some(RefCell::new(s));
                }
                Err(e) => {
                    if self.failed.is_none() {
                        tracing::warn!(error = %e.message, "the database connection is lost");
                    }
                    self.failed = Some(Instant::now());
                    return Err(e);
                }
            }
        }
        self.session
            .as_ref()
            .ok_or_else(|| Error::internal("no database session"))
    }

    /// Runs `f` in a read-only snapshot.
    pub fn read<T>(&mut self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let session = self.session()?;
        session
            .borrow_mut()
            .defer("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        let out = f(&Tx::on_postgres(session));
        // Ended in the round trip of the thread's next statement, or when it runs out of work ([`Link::idle`]): a
        // busy thread spends no round trip of its own on it.
        session.borrow_mut().defer("ROLLBACK");
        out
    }

    /// Sends what the session holds (a read's `ROLLBACK`): when its thread has no more work, so no snapshot is left
    /// open while it waits. A failure is left for the next call to find (a lost connection is made again).
    pub fn idle(&mut self) {
        if let Some(session) = &self.session {
            let _ = session.borrow_mut().batch("");
        }
    }

    /// Runs `f` in a write transaction, after every other ipamd's write on the database: committed when `f`
    /// succeeds, rolled back otherwise. `before` runs first in the transaction (the version count).
    pub fn write<T>(&mut self, before: impl FnOnce(&Tx) -> Result<()>, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let session = self.session()?;
        begin_write(session);
        let tx = Tx::on_postgres(session);
        let out = before(&tx).and_then(|_| f(&tx));
        let ended = match out.is_ok() {
            true => session.borrow_mut().batch("COMMIT"),
            false => session.borrow_mut().batch("ROLLBACK"),
        };
        let out = out?;
        ended?;
        Ok(out)
    }

    /// Runs one group commit: `calls` each in a savepoint of its own, in one transaction. `before` runs at the
    /// start of each call. A round trip to the server costs more than most of a call's statements take to run
    /// there, so what opens a call travels with its first statement, and the one round trip that ends it carries
    /// the statements it held (see [`Session`]) and its `RELEASE`: a held statement that failed fails its own call
    /// only, which is rolled back to its savepoint as a handler's error is. Each call's first statement is
    /// expected to be the query `first` (without parameters, changed by no statement of `before`): after the first
    /// call, it is read in the round trip that ended the call before, which saves each call a round trip.
    pub fn batch<W>(
        &mut self,
        calls: Vec<W>,
        before: &dyn Fn(&Tx) -> Result<()>,
        first: &'static str,
    ) -> Vec<Result<crate::model::Reply>>
    where
        W: FnOnce(&Tx) -> Result<crate::model::Reply>,
    {
        let count = calls.len();
        if count == 0 {
            return Vec::new();
        }
        let session = match self.session() {
            Ok(s) => s,
            Err(e) => return (0..count).map(|_| Err(e.clone())).collect(),
        };
        // The transaction is gone (the connection, most likely): nothing of the batch is kept.
        let lost = |e: Error| {
            let _ = session.borrow_mut().batch("ROLLBACK");
            (0..count).map(|_| Err(e.clone())).collect()
        };
        begin_write(session);
        let mut results = Vec::with_capacity(count);
        for (n, f) in calls.into_iter().enumerate() {
            // Read at the end of the call before; the savepoint and `before` change nothing it read.
            let ahead = session.borrow_mut().take_ahead();
            session.borrow_mut().defer("SAVEPOINT call");
            let tx = Tx::on_postgres(session);
            let mut ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                before(&tx)?;
                session.borrow_mut().put_ahead(ahead);
                f(&tx)
            }))
            .unwrap_or_else(|_| Err(Error::internal("a handler panicked")));
            if ran.is_ok() {
                let settled = match n + 1 < count {
                    true => session.borrow_mut().settle_then_read("RELEASE SAVEPOINT call", first),
                    false => session.borrow_mut().settle("RELEASE SAVEPOINT call"),
                };
                match settled {
                    (None, Ok(())) => {}
                    (Some(held), _) => ran = Err(held),
                    (None, Err(e)) => return lost(e),
                }
            }
            if ran.is_err() {
                // The call's held statements (if any are left) ran in its savepoint: their outcome goes with it.
                let (_, rolled_back) = session
                    .borrow_mut()
                    .settle("ROLLBACK TO SAVEPOINT call; RELEASE SAVEPOINT call");
                if let Err(e) = rolled_back {
                    return lost(e);
                }
            }
            results.push(ran);
        }
        if let Err(e) = session.borrow_mut().batch("COMMIT") {
            return lost(e);
        }
        results
    }
}

/// Opens a write transaction and waits for the write lock, in the round trip of the transaction's first statement.
fn begin_write(session: &RefCell<Session>) {
    session
        .borrow_mut()
        .defer(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"));
}

/// Applies the sections of schema.pg.sql above the database's version, in one transaction under the migration
/// lock: of several instances starting on an empty database, one migrates and the others find nothing to do.
/// Refuses a database whose schema is newer than this build, and names what is missing when the role may not
/// create a table or an extension.
pub fn migrate(target: &Target, latest: i64) -> Result<()> {
    let session = RefCell::new(target.connect()?);
    let mut s = session.borrow_mut();
    let refused = |what: &str, e: Error| {
        Error::new(
            Code::Unavailable,
            format!(
                "PostgreSQL at {}: {what}: {}",
                target.shown,
                e.message.trim_start_matches("database: ")
            ),
        )
    };
    s.batch(&format!(
        "BEGIN; SELECT pg_advisory_xact_lock({MIGRATION_LOCK});
         CREATE TABLE IF NOT EXISTS schema_version (n BIGINT NOT NULL)"
    ))
    .map_err(|e| {
        refused(
            "cannot create the schema_version table (does the role own the database?)",
            e,
        )
    })?;
    drop(s);
    let tx = Tx::on_postgres(&session);
    let current: i64 = tx
        .query_opt("SELECT n FROM schema_version", crate::db::params![], |r| r.get(0))?
        .unwrap_or(0);
    if current > latest {
        return Err(Error::new(
            Code::Unavailable,
            format!(
                "PostgreSQL at {}: the database's schema is version {current}, newer than this ipamd's {latest}: run a newer ipamd",
                target.shown
            ),
        ));
    }
    for (version, sql) in super::sections(SCHEMA)? {
        if version <= current {
            continue;
        }
        tx.batch(sql).map_err(|e| match e.message.contains("extension") {
            true => refused(
                "cannot create the extensions ipamd needs (citext, pg_trgm): ask an administrator to run CREATE EXTENSION citext; CREATE EXTENSION pg_trgm; in the database",
                e,
            ),
            false => refused(&format!("migration {version} failed"), e),
        })?;
    }
    tx.execute("DELETE FROM schema_version", crate::db::params![])?;
    tx.execute("INSERT INTO schema_version (n) VALUES (?1)", crate::db::params![latest])?;
    session.borrow_mut().batch("COMMIT")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::params;
    use crate::model::{Replayed, Reply};

    /// A call of a group commit that holds an insert: of `name`, and when `twice`, of it again (refused by the key).
    fn insert(name: &'static str, twice: bool) -> impl FnOnce(&Tx) -> Result<Reply> {
        move |tx| {
            tx.execute_later("INSERT INTO t (name) VALUES (?1)", params![name])?;
            if twice {
                tx.execute_later("INSERT INTO t (name) VALUES (?1)", params![name])?;
            }
            Ok(answer(Vec::new()))
        }
    }

    /// A call of a group commit that reads the rows of `t` (first, when `first`; else after an insert of its own),
    /// then holds an insert of `name`, and answers the count it read.
    fn count_then_insert(name: &'static str, first: bool) -> impl FnOnce(&Tx) -> Result<Reply> {
        move |tx| {
            if !first {
                tx.execute("INSERT INTO t (name) VALUES (?1)", params![format!("{name} first")])?;
            }
            let n = tx.query_row(COUNT, params![], |r| r.get::<i64>(0))?;
            tx.execute_later("INSERT INTO t (name) VALUES (?1)", params![name])?;
            Ok(answer(n.to_string().into_bytes()))
        }
    }

    const COUNT: &str = "SELECT count(*) FROM t";

    /// A fresh database with a table `t` of unique names, and a link to it (`None` when no server is configured).
    fn table() -> Option<(crate::db::pg::testing::Fresh, Link)> {
        let mut db = crate::db::pg::testing::Fresh::new()?;
        db.client()
            .batch_execute("CREATE TABLE t (name TEXT PRIMARY KEY)")
            .unwrap();
        let link = Link::new(Target::parse(&db.url()).unwrap());
        Some((db, link))
    }

    /// A call's answer: `body`.
    fn answer(body: Vec<u8>) -> Reply {
        Reply::Replayed(Box::new(Replayed {
            status: 200,
            body,
            etag: None,
        }))
    }

    /// Each call's first query is read in the round trip that ended the call before, after that call's held
    /// statements: it sees them. A call whose first statement is another gets the query's answer anew.
    #[test]
    fn a_group_commit_reads_each_calls_first_query_with_the_end_of_the_call_before() {
        let Some((_db, mut link)) = table() else {
            return;
        };
        let batch = |link: &mut Link, calls: Vec<(&'static str, bool)>| -> Vec<String> {
            let calls = calls
                .into_iter()
                .map(|(name, first)| count_then_insert(name, first))
                .collect();
            let results = link.batch(calls, &|_| Ok(()), COUNT);
            let counts = results.into_iter().map(|r| match r {
                Ok(Reply::Replayed(r)) => String::from_utf8(r.body).unwrap(),
                other => panic!("{:?}", other.err()),
            });
            counts.collect()
        };
        // Once to prepare the statements (a statement's first use is a round trip of its own).
        assert_eq!(batch(&mut link, vec![("w", true), ("x", false)]), ["0", "2"]);
        let trips = |link: &Link| link.session.as_ref().map_or(0, |s| s.borrow().round_trips());
        let before = trips(&link);
        let calls = vec![("a", true), ("b", true), ("c", true), ("d", false)];
        assert_eq!(batch(&mut link, calls), ["3", "4", "5", "7"]);
        // The first query and the lock; three ends, each with the next call's query (the last's was dropped by its
        // insert, sent in a round trip of its own, and the query then needs one too); the last end; the commit.
        assert_eq!(trips(&link) - before, 1 + 3 + 2 + 1 + 1);
    }

    #[test]
    fn a_held_statement_that_fails_fails_its_own_call_of_a_group_commit_and_no_other() {
        let Some((_db, mut link)) = table() else {
            return;
        };
        let calls = vec![insert("a", false), insert("b", true), insert("c", false)];
        let results = link.batch(calls, &|_| Ok(()), crate::store::CREDENTIAL_EPOCH);
        let codes: Vec<Option<Code>> = results.iter().map(|r| r.as_ref().err().map(|e| e.code)).collect();
        assert_eq!(codes, [None, Some(Code::Duplicate), None]);
        let names = link
            .read(|tx| tx.rows("SELECT name FROM t ORDER BY name", params![], |r| r.get::<String>(0)))
            .unwrap();
        assert_eq!(names, ["a", "c"]);
        // The session is usable after: a write alone whose held statement fails keeps nothing either.
        let alone = link.write(|_| Ok(()), insert("a", false));
        assert_eq!(alone.err().map(|e| e.code), Some(Code::Duplicate));
        link.idle();
        assert_eq!(
            link.read(|tx| tx.query_row("SELECT count(*) FROM t", params![], |r| r.get::<i64>(0)))
                .unwrap(),
            2
        );
    }
}
