//! The SQLite store: the connection pool, schema migrations, and the one door to blocking database work.
//!
//! SQL lives here and in the method handlers only. Handlers see a [`Tx`]; the adapters never see rusqlite.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::Reply;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::db::{params, Prepare, Statements};
use crate::error::{Code, Error, Result};
use crate::metrics::{Histogram, BATCH_BOUNDS, LATENCY_BOUNDS};
use crate::net;

/// The text of a statement that is the same on every call but is assembled from column lists: built once, on first
/// use, instead of formatted per call. The expression must not depend on the call's values.
macro_rules! cached_sql {
    ($text:expr) => {{
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| $text);
        SQL.as_str()
    }};
}
pub(crate) use cached_sql;

/// The whole schema, applied section by section (see the header of `schema.sql`).
pub const SCHEMA: &str = include_str!("../schema.sql");

mod postgres;

/// A handle on the database, cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// The group-commit writer's queue (see [`Store::write`]).
    writer: Sender<Job>,
    /// The database threads' queue (see [`Store::run`]).
    tasks: Sender<Task>,
    /// Writers queue here, in order, instead of spinning in SQLite's busy handler.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Moved on by the writer after each commit that kept a call's change: what the change feed's long polls and
    /// the webhook deliveries wait on (see [`Store::commits`]).
    commits: Arc<tokio::sync::watch::Sender<u64>>,
    stats: Arc<StoreStats>,
}

/// The engine that holds the data: a SQLite file (its pool of connections) or a PostgreSQL database.
#[derive(Clone)]
enum Backend {
    Sqlite {
        pool: Pool<SqliteConnectionManager>,
        path: PathBuf,
    },
    Postgres(Box<postgres::Target>),
}

impl Backend {
    /// A new connection of the engine, for a database thread, the writer or the command line.
    fn conn(&self) -> Result<Conn> {
        Ok(match self {
            Backend::Sqlite { pool, .. } => Conn::Sqlite(pool.get()?),
            Backend::Postgres(target) => Conn::Postgres(postgres::Link::new((**target).clone())),
        })
    }
}

/// What the database threads and the writer did, for `GET /metrics`: a few atomic additions per task or batch.
#[derive(Debug)]
pub struct StoreStats {
    /// How long tasks waited in the database threads' queue.
    pub wait: Histogram,
    /// Calls per group commit.
    pub batch: Histogram,
    /// How long each group commit took, from `BEGIN IMMEDIATE` to its `COMMIT`.
    pub commit: Histogram,
}

/// One connection, lent to a closure on a database thread.
pub struct Db<'c> {
    conn: Engine<'c>,
    write_lock: &'c tokio::sync::Mutex<()>,
}

/// A connection of either engine: one per database thread, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Conn {
    Sqlite(PooledConnection<SqliteConnectionManager>),
    Postgres(postgres::Link),
}

/// A [`Conn`] as its thread uses it: a SQLite connection with its prepared statements.
enum Engine<'c> {
    Sqlite(&'c dyn Prepare),
    Postgres(&'c mut postgres::Link),
}

impl Conn {
    /// Runs `f` with the connection as a [`Db`] (a SQLite connection's statements are kept while `f` runs: for a
    /// thread's life).
    fn with_db<T>(&mut self, write_lock: &tokio::sync::Mutex<()>, f: impl FnOnce(&mut Db) -> T) -> T {
        match self {
            Conn::Sqlite(conn) => {
                let statements = Statements::new(conn);
                f(&mut Db {
                    conn: Engine::Sqlite(&statements),
                    write_lock,
                })
            }
            Conn::Postgres(link) => f(&mut Db {
                conn: Engine::Postgres(link),
                write_lock,
            }),
        }
    }
}

pub use crate::db::Tx;

impl Store {
    /// Whether the database setting names a PostgreSQL database (`postgres://` or `postgresql://`) rather than a
    /// SQLite file.
    pub fn names_postgres(db: &Path) -> bool {
        db.to_str().is_some_and(postgres::is_url)
    }

    /// Opens the database the setting names and brings its schema up to date: a `postgres://` (or
    /// `postgresql://`) URL, or else a SQLite file, created (with its directory) when missing.
    pub fn open(path: &Path) -> Result<Store> {
        let backend = match path.to_str().filter(|p| postgres::is_url(p)) {
            Some(url) => {
                let target = postgres::Target::parse(url)?;
                let latest = schema_version()?;
                // The driver blocks on a runtime of its own, which must not be started on the caller's (async) one.
                std::thread::scope(|s| s.spawn(|| postgres::migrate(&target, latest)).join())
                    .map_err(|_| Error::internal("the migration failed"))??;
                Backend::Postgres(Box::new(target))
            }
            None => Self::open_sqlite(path)?,
        };
        Self::start(backend)
    }

    /// Opens (creating when missing) the SQLite database at `path` and brings its schema up to date.
    fn open_sqlite(path: &Path) -> Result<Backend> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::new(Code::Unavailable, format!("cannot create {}: {e}", dir.display())))?;
        }
        // WAL is a property of the file: set it once, before the pool opens its connections. Another process (or
        // store) opening the same file at the same time waits for this one's lock, here and in `migrate`.
        let first = Connection::open(path)?;
        first.busy_timeout(MIGRATION_WAIT)?;
        set_wal(&first)?;
        migrate(&first)?;
        drop(first);
        let manager = SqliteConnectionManager::file(path).with_init(|c| {
            c.busy_timeout(Duration::from_secs(5))?;
            add_functions(c)?;
            // FULL: an acknowledged change is on disk before the answer leaves. An 8 MB page cache (SQLite's default
            // is 2 MB) keeps the subnets and their index cached while lookups read random record pages.
            c.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = -8192;")
        });
        let pool = Pool::builder()
            .max_size(DB_THREADS as u32 + 8)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Backend::Sqlite {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// Starts the database threads and the writer of `backend`.
    fn start(backend: Backend) -> Result<Store> {
        let write_lock = Arc::new(tokio::sync::Mutex::new(()));
        let stats = Arc::new(StoreStats {
            wait: Histogram::seconds(LATENCY_BOUNDS),
            batch: Histogram::numbers(BATCH_BOUNDS),
            commit: Histogram::seconds(LATENCY_BOUNDS),
        });
        // Every idle database thread waits on the queue itself, so a task wakes one thread. (Threads sharing a
        // single-consumer receiver behind a mutex woke a second one per task, only to put it back to sleep.)
        let (tasks, queue) = crossbeam_channel::bounded::<Task>(WRITE_QUEUE);
        for n in 0..DB_THREADS {
            let mut conn = backend.conn()?;
            let (queue, stats, lock) = (queue.clone(), stats.clone(), write_lock.clone());
            std::thread::Builder::new()
                .name(format!("{DB_THREAD}{n}"))
                .spawn(move || conn.with_db(&lock, |db| task_loop(db, queue, &stats)))
                .map_err(|e| Error::internal(format!("cannot start a database thread: {e}")))?;
        }
        let (writer, jobs) = crossbeam_channel::bounded::<Job>(WRITE_QUEUE);
        let mut conn = backend.conn()?;
        let (lock, writer_stats) = (write_lock.clone(), stats.clone());
        let commits = Arc::new(tokio::sync::watch::Sender::new(0u64));
        let committed = commits.clone();
        std::thread::Builder::new()
            .name(WRITER_THREAD.into())
            .spawn(move || conn.with_db(&lock, |db| write_loop(db, jobs, &writer_stats, &committed)))
            .map_err(|e| Error::internal(format!("cannot start the writer: {e}")))?;
        Ok(Store {
            backend,
            writer,
            tasks,
            write_lock,
            commits,
            stats,
        })
    }

    /// What the database threads and the writer did.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// How many tasks wait for a database thread, and how many writes for the writer.
    pub fn queued(&self) -> (usize, usize) {
        (self.tasks.len(), self.writer.len())
    }

    /// Runs a write `f` in the group-commit writer: calls that arrive together share one transaction and one
    /// fsync, each in a savepoint of its own, so one failing call rolls back alone. The answer comes after the
    /// commit, so an acknowledged change is on disk.
    pub async fn write<F>(&self, f: F) -> Result<Reply>
    where
        F: FnOnce(&Tx) -> Result<Reply> + Send + 'static,
    {
        self.queue_write(f, false).await
    }

    /// Runs a write `f` in the group-commit writer like [`Store::write`], but alone: in a transaction of its own,
    /// shared with no other call (a restore, which defers foreign keys until its commit).
    pub async fn write_alone<F>(&self, f: F) -> Result<Reply>
    where
        F: FnOnce(&Tx) -> Result<Reply> + Send + 'static,
    {
        self.queue_write(f, true).await
    }

    async fn queue_write<F>(&self, f: F, alone: bool) -> Result<Reply>
    where
        F: FnOnce(&Tx) -> Result<Reply> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Job {
            work: Box::new(f),
            alone,
            answer,
        };
        enqueue(&self.writer, job, "the writer has stopped").await?;
        answered
            .await
            .map_err(|_| Error::new(Code::Unavailable, "the writer has stopped"))?
    }

    /// A receiver of the writer's commits: `changed()` completes after the next commit that kept a change of the
    /// group-commit writer. Waiting on it holds no connection and no thread.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// The SQLite file, when the data is in one (a backup copies it).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite { path, .. } => Some(path),
            Backend::Postgres(_) => None,
        }
    }

    /// Runs `f` on one of the database threads, each of which keeps its own connection. Async code never
    /// holds a connection. `f` must not block for long (argon2 runs on tokio's blocking pool, see `dispatch`).
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move |db: &mut Db| {
            let _ = answer.send(f(db));
        });
        let task = (Instant::now(), work);
        enqueue(&self.tasks, task, "the database threads have stopped").await?;
        answered.await.map_err(|_| Error::internal("a database task failed"))?
    }

    /// Whether the database can be used, for `GET /readyz`: a read on a database thread finds the schema and the
    /// operator org.
    pub async fn usable(&self) -> Result<()> {
        let sql = "SELECT count(*) FROM orgs WHERE operator = 1";
        let operators = self
            .run(move |db| db.read(|tx| tx.query_row(sql, params![], |r| r.get::<i64>(0))))
            .await?;
        match operators {
            0 => Err(Error::new(Code::Unavailable, "the database is not initialised")),
            _ => Ok(()),
        }
    }

    /// The same as [`Store::run`] for callers already off the async runtime (the command line).
    pub fn run_blocking<T>(&self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        self.backend.conn()?.with_db(&self.write_lock, |db| {
            let out = f(db);
            db.idle();
            out
        })
    }
}

impl Db<'_> {
    /// Sends what a PostgreSQL session holds back for its next round trip (a read's `ROLLBACK`): when the thread
    /// runs out of work.
    fn idle(&mut self) {
        if let Engine::Postgres(link) = &mut self.conn {
            link.idle();
        }
    }

    /// Runs `f` in a read transaction (a consistent snapshot), ended by a rollback, so nothing a read wrote by
    /// mistake is kept. `BEGIN` and `ROLLBACK` go through the statement cache: a read is often a single indexed
    /// lookup, and parsing the two statements anew cost as much.
    pub fn read<T>(&mut self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let conn = match &mut self.conn {
            Engine::Sqlite(conn) => *conn,
            Engine::Postgres(link) => return link.read(f),
        };
        if !conn.connection().is_autocommit() {
            // Left open by a task that panicked: end it rather than fail every later call of this thread.
            conn.connection().execute_batch("ROLLBACK")?;
        }
        let tx = Tx::on_sqlite(conn);
        tx.execute("BEGIN", params![])?;
        let out = f(&tx);
        let ended = tx.execute("ROLLBACK", params![]);
        let out = out?;
        ended?;
        Ok(out)
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE`): committed when `f` succeeds, rolled back otherwise.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx) -> Result<T>) -> Result<T> {
        let _turn = self.write_lock.blocking_lock();
        let conn = match &mut self.conn {
            Engine::Sqlite(conn) => *conn,
            Engine::Postgres(link) => return link.write(next_version, f),
        };
        if !conn.connection().is_autocommit() {
            // Left open by a call that panicked (as in `read`).
            conn.connection().execute_batch("ROLLBACK")?;
        }
        let tx = Tx::on_sqlite(conn);
        tx.execute("BEGIN IMMEDIATE", params![])?;
        let out = next_version(&tx)
            .and_then(|_| f(&tx))
            .and_then(|out| flush_fts(&tx).map(|_| out))
            .and_then(|out| tx.execute("COMMIT", params![]).map(|_| out));
        if out.is_err() && !conn.connection().is_autocommit() {
            let _ = conn.connection().execute_batch("ROLLBACK");
        }
        out
    }
}

/// Puts `item` on a bounded queue: tries first, and waits for room on the blocking pool (never on the runtime) only
/// when the queue is full. `stopped` is the error when the queue's thread has gone.
async fn enqueue<T: Send + 'static>(queue: &Sender<T>, item: T, stopped: &'static str) -> Result<()> {
    match queue.try_send(item) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(item)) => {
            let queue = queue.clone();
            tokio::task::spawn_blocking(move || queue.send(item))
                .await
                .map_err(|e| Error::internal(format!("queue: {e}")))?
                .map_err(|_| Error::new(Code::Unavailable, stopped))
        }
        Err(TrySendError::Disconnected(_)) => Err(Error::new(Code::Unavailable, stopped)),
    }
}

/// Work for a database thread, with when it was queued.
type Task = (Instant, Work);
type Work = Box<dyn FnOnce(&mut Db) + Send>;

/// Database threads: SQLite reads scale to about three threads on two cores, and these threads never wait on
/// argon2 or the network.
const DB_THREADS: usize = 4;

/// A database thread: runs queued tasks with its own connection until every [`Store`] is gone.
fn task_loop(db: &mut Db, queue: Receiver<Task>, stats: &StoreStats) {
    loop {
        let (queued, task) = match queue.try_recv() {
            Ok(next) => next,
            Err(_) => {
                db.idle();
                match queue.recv() {
                    Ok(next) => next,
                    Err(_) => return,
                }
            }
        };
        stats.wait.time(queued.elapsed());
        // A panicking task drops its answer (the caller sees an internal error); the thread lives on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(db)));
    }
}

/// A write for the group-commit writer.
type WriteFn = Box<dyn FnOnce(&Tx) -> Result<Reply> + Send>;

/// A queued write, with where its answer goes.
struct Job {
    work: WriteFn,
    /// Whether it runs in a transaction of its own (see [`Store::write_alone`]).
    alone: bool,
    answer: tokio::sync::oneshot::Sender<Result<Reply>>,
}

/// Most writes waiting in the queue, and most writes in one transaction.
const WRITE_QUEUE: usize = 4096;
const MAX_BATCH: usize = 512;

/// The writer thread: takes every queued write, runs them in one transaction (a savepoint each), commits once,
/// then answers them all. A write queued to run alone ends the batch before it and is a batch of its own. Ends when
/// every [`Store`] is gone.
fn write_loop(db: &mut Db, jobs: Receiver<Job>, stats: &StoreStats, commits: &tokio::sync::watch::Sender<u64>) {
    // A write that must run alone, taken from the queue while a batch was being gathered: it starts the next one.
    let mut next: Option<Job> = None;
    while let Some(first) = next.take().or_else(|| jobs.recv().ok()) {
        let alone = first.alone;
        let mut batch = vec![first];
        while !alone && batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) if job.alone => {
                    next = Some(job);
                    break;
                }
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (work, answers): (Vec<WriteFn>, Vec<_>) = batch.into_iter().map(|j| (j.work, j.answer)).unzip();
        stats.batch.observe(work.len() as u64);
        let results = {
            let _turn = db.write_lock.blocking_lock();
            let (began, calls) = (Instant::now(), work.len());
            let results = match &mut db.conn {
                Engine::Sqlite(conn) => run_batch(*conn, work),
                Engine::Postgres(link) => link.batch(work, &next_version, CREDENTIAL_EPOCH),
            };
            stats.commit.time(began.elapsed());
            tracing::debug!(calls, ms = began.elapsed().as_secs_f64() * 1e3, "group commit");
            results
        };
        // Before the answers: a client that reads the feed once answered finds the change there, and a long poll
        // waiting since before the commit wakes.
        if results.iter().any(Result::is_ok) {
            commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        for (answer, result) in answers.into_iter().zip(results) {
            let _ = answer.send(result);
        }
    }
}

/// One group commit. When the commit itself fails every call gets the error: nothing of the batch was kept.
fn run_batch(conn: &dyn Prepare, work: Vec<WriteFn>) -> Vec<Result<Reply>> {
    if let Err(e) = Tx::on_sqlite(conn).execute("BEGIN IMMEDIATE", params![]) {
        return work.iter().map(|_| Err(e.clone())).collect();
    }
    let calls = work.len();
    let mut results = Vec::with_capacity(calls);
    for f in work {
        let tx = Tx::on_sqlite(conn);
        let result = match tx.execute("SAVEPOINT call", params![]) {
            Err(e) => Err(e),
            Ok(_) => {
                // A panicking handler must not take the writer, and every later write, down with it.
                let ran =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| next_version(&tx).and_then(|_| f(&tx))))
                        .unwrap_or_else(|_| Err(Error::internal("a handler panicked")));
                // An I/O error or a full disk inside a statement can make SQLite roll the whole transaction back
                // by itself. Then nothing of the batch is kept, whatever the calls before were told, and no later
                // call may run: outside a transaction its savepoint would commit on its own.
                if conn.connection().is_autocommit() {
                    let e = match ran {
                        Err(e) if e.code == Code::Unavailable => e,
                        _ => Error::new(Code::Unavailable, "the database rolled the write back"),
                    };
                    return (0..calls).map(|_| Err(e.clone())).collect();
                }
                let rolled_back = match ran.is_ok() {
                    true => Ok(0),
                    false => tx.execute("ROLLBACK TO call", params![]),
                };
                rolled_back.and_then(|_| tx.execute("RELEASE call", params![])).and(ran)
            }
        };
        results.push(result);
    }
    let committed = flush_fts(&Tx::on_sqlite(conn)).and_then(|_| Tx::on_sqlite(conn).execute("COMMIT", params![]));
    if let Err(e) = committed {
        let _ = conn.connection().execute_batch("ROLLBACK");
        return results.iter().map(|_| Err(e.clone())).collect();
    }
    results
}

/// The names of the group-commit writer's thread and of the database threads (a number follows).
const WRITER_THREAD: &str = "ipamd-writer";
const DB_THREAD: &str = "ipamd-db-";

/// Whether the current thread is the group-commit writer or a database thread, which must never wait on slow work
/// such as argon2: every queued write, or every read, would wait behind it.
pub fn on_database_thread() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n == WRITER_THREAD || n.starts_with(DB_THREAD))
}

/// What the handlers' SQL uses besides SQLite's own: `rarray(?)`, a list parameter joined like a table (see
/// `dhcpranges::overlapping`), `net_floor(key, family, prefix)`, the block start `subnets::overlapping` seeks,
/// per prefix in use, `key_add(key, n)`, the key `n` steps away (NULL past either end), with which the triggers of
/// schema.sql keep `address_runs` (migration 7), and `count_add(count, n)`, a subnet's count of taken addresses (a
/// decimal text: an IPv6 subnet's may pass `i64`) moved by `n`, not below 0: a connection that writes records needs
/// these.
pub fn add_functions(c: &Connection) -> rusqlite::Result<()> {
    rusqlite::vtab::array::load_module(c)?;
    c.create_scalar_function(
        "net_floor",
        3,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_DIRECTONLY,
        |f| {
            let key = f.get_raw(0).as_blob().ok().and_then(net::bytes_key);
            let (family, prefix) = (f.get::<i64>(1)?, f.get::<u32>(2)?);
            Ok(key
                .and_then(|k| net::block_start(k, family == 4, prefix))
                .map(net::key_bytes))
        },
    )?;
    // Innocuous (no side effects), so the schema's triggers may call it.
    c.create_scalar_function(
        "key_add",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS,
        |f| {
            let key = f.get_raw(0).as_blob().ok().and_then(net::bytes_key);
            let n = f.get::<i64>(1)?;
            Ok(key
                .and_then(|k| k.checked_add_signed(i128::from(n)))
                .map(net::key_bytes))
        },
    )?;
    c.create_scalar_function(
        "count_add",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_DIRECTONLY,
        |f| {
            let count = f.get::<String>(0)?;
            let n = f.get::<i64>(1)?;
            let count = count
                .parse::<u128>()
                .map_err(|_| rusqlite::Error::UserFunctionError(format!("count_add: not a count: {count:?}").into()))?;
            Ok(count.saturating_add_signed(i128::from(n)).to_string())
        },
    )
}

/// The query of `credential_epoch` (schema.sql, migration 4), which a write's recheck runs first: a PostgreSQL group
/// commit runs it for each call in the round trip that ended the call before.
pub(crate) const CREDENTIAL_EPOCH: &str = "SELECT n FROM credential_epoch";

/// Moves `version_seq` (schema.sql, migration 12) at the start of every write: the records a write changes take
/// its count as their version, once however many of its statements change them.
fn next_version(tx: &Tx) -> Result<()> {
    tx.execute_later("UPDATE version_seq SET n = n + 1", params![])
}

/// Applies the full-text changes the triggers queued in `addresses_fts_pending` (schema.sql, migration 3) to
/// `addresses_fts`, in order, and empties the queue. Every write transaction runs it just before COMMIT.
pub(crate) fn flush_fts(tx: &Tx) -> Result<usize> {
    tx.execute(
        "INSERT INTO addresses_fts (addresses_fts, rowid, hostname, cname, mac_address, description)
         SELECT command, id, hostname, cname, mac_address, description FROM addresses_fts_pending ORDER BY seq",
        params![],
    )?;
    tx.execute("DELETE FROM addresses_fts_pending", params![])
}

/// How long [`Store::open`] waits for another process's migration (or its change to WAL) on the same file.
const MIGRATION_WAIT: Duration = Duration::from_secs(60);

/// Puts the file in WAL mode. Two connections changing the journal mode at once would each wait for the other, so
/// SQLite answers one of them "busy" at once, without its busy handler: that one tries again, for up to
/// [`MIGRATION_WAIT`]. (Once the file is in WAL mode, this is a no-op.)
fn set_wal(conn: &Connection) -> Result<()> {
    let deadline = Instant::now() + MIGRATION_WAIT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10))
            }
            set => return Ok(set?),
        }
    }
}

/// Applies every `-- migration: N` section of [`SCHEMA`] above the database's `user_version`, all in one exclusive
/// transaction that reads the version first: of several processes starting on one file, one migrates and the
/// others, waiting for its lock (their busy timeout), then find nothing left to do. The server's SQL functions are
/// added to `conn` first: the migrations and the triggers they make call them.
pub fn migrate(conn: &Connection) -> Result<()> {
    add_functions(conn)?;
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Exclusive)?;
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (version, sql) in migrations()? {
        if version <= current {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()?;
    Ok(())
}

/// The sections of [`SCHEMA`], in order.
fn migrations() -> Result<Vec<(i64, &'static str)>> {
    sections(SCHEMA)
}

/// The `-- migration: N` sections of a schema file, in the order they appear.
fn sections(schema: &'static str) -> Result<Vec<(i64, &'static str)>> {
    let mut out: Vec<(i64, &'static str)> = Vec::new();
    // At the start of a line only: the header comment mentions the marker too.
    let marker = "\n-- migration: ";
    let mut rest = schema;
    while let Some(at) = rest.find(marker) {
        let after = &rest[at + marker.len()..];
        let line_end = after.find('\n').unwrap_or(after.len());
        let version = after[..line_end]
            .trim()
            .parse::<i64>()
            .map_err(|e| Error::internal(format!("bad migration marker in the schema: {e}")))?;
        let body = &after[line_end..];
        let end = body.find(marker).unwrap_or(body.len());
        out.push((version, &body[..end]));
        rest = &body[end..];
    }
    Ok(out)
}

/// The schema version this build writes; a backup of another version is not restored.
pub fn schema_version() -> Result<i64> {
    Ok(migrations()?.last().map(|m| m.0).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_ascending_and_apply() {
        let m = migrations().unwrap();
        assert!(!m.is_empty());
        assert!(m.windows(2).all(|w| w[0].0 < w[1].0));
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, schema_version().unwrap());
        // A second run is a no-op.
        migrate(&conn).unwrap();
    }

    /// Several stores opened at once on one new file (as two servers, or a server and the command line, started
    /// together): one migrates, the others wait for it and find the schema applied, every time.
    #[test]
    fn stores_opened_at_once_on_a_new_database_migrate_it_once() {
        for _ in 0..8 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ipam.db");
            let start = Arc::new(std::sync::Barrier::new(4));
            let opened: Vec<_> = (0..4)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Store::open(&path).map(drop)
                    })
                })
                .collect();
            for store in opened {
                store.join().unwrap().unwrap();
            }
            let conn = Connection::open(&path).unwrap();
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
            assert_eq!(version, schema_version().unwrap());
            // Migration 4 inserts the epoch's one row: applied twice, it would have failed or left two.
            let rows: i64 = conn
                .query_row("SELECT count(*) FROM credential_epoch", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, 1);
        }
    }

    /// The PostgreSQL twin of the schema, checked on the server `IPAMD_TEST_DATABASE_URL` names, each test on a
    /// fresh database of its own.
    mod postgres_twin {
        use super::*;
        use crate::db::pg::testing::Fresh;
        use ::postgres::types::Type;

        const PG_SCHEMA: &str = include_str!("../schema.pg.sql");

        /// A value of either engine, compared across them.
        #[derive(Debug, Clone, PartialEq)]
        enum Val {
            Null,
            Int(i64),
            Text(String),
            Blob(Vec<u8>),
        }

        impl rusqlite::ToSql for Val {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                use rusqlite::types::{ToSqlOutput, ValueRef};
                Ok(ToSqlOutput::Borrowed(match self {
                    Val::Null => ValueRef::Null,
                    Val::Int(n) => ValueRef::Integer(*n),
                    Val::Text(t) => ValueRef::Text(t.as_bytes()),
                    Val::Blob(b) => ValueRef::Blob(b),
                }))
            }
        }

        impl ::postgres::types::ToSql for Val {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut bytes::BytesMut,
            ) -> std::result::Result<::postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
                match self {
                    Val::Null => Ok(::postgres::types::IsNull::Yes),
                    Val::Int(n) => n.to_sql(ty, out),
                    Val::Text(t) => t.to_sql(ty, out),
                    Val::Blob(b) => b.to_sql(ty, out),
                }
            }
            fn accepts(_: &Type) -> bool {
                true
            }
            ::postgres::types::to_sql_checked!();
        }

        /// Applies every section of schema.pg.sql, each in its transaction.
        fn migrate_pg(client: &mut ::postgres::Client) {
            for (version, sql) in sections(PG_SCHEMA).unwrap() {
                let mut tx = client.transaction().unwrap();
                tx.batch_execute(sql)
                    .unwrap_or_else(|e| panic!("schema.pg.sql, migration {version}: {e:?}"));
                tx.commit().unwrap();
            }
        }

        fn sqlite() -> Connection {
            let conn = Connection::open_in_memory().unwrap();
            migrate(&conn).unwrap();
            conn
        }

        fn pg_rows(client: &mut ::postgres::Client, sql: &str, params: &[Val]) -> Vec<Vec<Val>> {
            let params: Vec<&(dyn ::postgres::types::ToSql + Sync)> = params.iter().map(|p| p as _).collect();
            let rows = client.query(sql, &params).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            rows.iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| match *row.columns()[i].type_() {
                            Type::INT8 => row.get::<_, Option<i64>>(i).map_or(Val::Null, Val::Int),
                            Type::BYTEA => row.get::<_, Option<Vec<u8>>>(i).map_or(Val::Null, Val::Blob),
                            _ => row.get::<_, Option<String>>(i).map_or(Val::Null, Val::Text),
                        })
                        .collect()
                })
                .collect()
        }

        /// `sql` is written with `$N` parameters, which SQLite reads as `?N`.
        fn sqlite_rows(conn: &Connection, sql: &str, params: &[Val]) -> Vec<Vec<Val>> {
            use rusqlite::types::ValueRef;
            let sql = sql.replace('$', "?");
            let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            let columns = stmt.column_count();
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    (0..columns)
                        .map(|i| {
                            Ok(match r.get_ref(i)? {
                                ValueRef::Null => Val::Null,
                                ValueRef::Integer(n) => Val::Int(n),
                                ValueRef::Blob(b) => Val::Blob(b.to_vec()),
                                v => Val::Text(v.as_str().map(str::to_owned).unwrap_or_default()),
                            })
                        })
                        .collect()
                })
                .unwrap();
            rows.map(|r| r.unwrap()).collect()
        }

        /// Every table of schema.sql has its twin, with the same columns in the same order, of the same kind and
        /// nullability (`INTEGER` is `bigint`, `BLOB` is `bytea`, `TEXT` is `text` or `citext`); and schema.pg.sql
        /// has a section for every schema.sql section after its baseline.
        #[test]
        fn the_postgres_schema_has_the_tables_and_migrations_of_the_sqlite_schema() {
            let sqlite_versions: Vec<i64> = migrations().unwrap().iter().map(|m| m.0).collect();
            let pg_versions: Vec<i64> = sections(PG_SCHEMA).unwrap().iter().map(|m| m.0).collect();
            let baseline = pg_versions[0];
            let expected: Vec<i64> = sqlite_versions.iter().copied().filter(|v| *v >= baseline).collect();
            assert_eq!(
                pg_versions, expected,
                "schema.pg.sql needs a twin of every schema.sql migration after its baseline"
            );

            let conn = sqlite();
            let tables = sqlite_rows(
                &conn,
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 AND name NOT LIKE 'addresses_fts%' ORDER BY name",
                &[],
            );
            let mut sqlite_columns = Vec::new();
            for table in tables {
                let Val::Text(table) = &table[0] else { unreachable!() };
                for column in sqlite_rows(
                    &conn,
                    &format!("SELECT name, type, \"notnull\", pk FROM pragma_table_info('{table}')"),
                    &[],
                ) {
                    let kind = match &column[1] {
                        Val::Text(t) => t.to_ascii_lowercase(),
                        other => panic!("{other:?}"),
                    };
                    let not_null = column[2] == Val::Int(1) || column[3] != Val::Int(0);
                    sqlite_columns.push((table.clone(), column[0].clone(), kind, not_null));
                }
            }

            let Some(mut db) = Fresh::new() else { return };
            migrate_pg(db.client());
            let pg_columns: Vec<_> = pg_rows(
                db.client(),
                "SELECT table_name::text, column_name::text, data_type::text, udt_name::text, is_nullable::text
                 FROM information_schema.columns WHERE table_schema = current_schema()
                 ORDER BY table_name, ordinal_position",
                &[],
            )
            .into_iter()
            .map(|c| {
                let kind = match (&c[2], &c[3]) {
                    (Val::Text(t), _) if t == "bigint" => "integer",
                    (Val::Text(t), _) if t == "text" => "text",
                    (_, Val::Text(u)) if u == "citext" => "text",
                    (Val::Text(t), _) if t == "bytea" => "blob",
                    other => panic!("a column type without a twin in SQLite: {other:?}"),
                };
                let Val::Text(table) = &c[0] else { unreachable!() };
                (
                    table.clone(),
                    c[1].clone(),
                    kind.to_string(),
                    c[4] == Val::Text("NO".into()),
                )
            })
            .collect();
            assert_eq!(pg_columns, sqlite_columns);
        }

        /// The SQL functions of schema.pg.sql compute what the server's own (store::add_functions) do.
        #[test]
        fn the_postgres_functions_agree_with_the_servers() {
            let Some(mut db) = Fresh::new() else { return };
            migrate_pg(db.client());
            let conn = sqlite();
            let keys: [u128; 6] = [
                0,
                1,
                0xffff_0a00_0001,
                0x2001_0db8 << 96 | 0xff,
                u128::MAX - 1,
                u128::MAX,
            ];
            for key in keys {
                let key = Val::Blob(net::key_bytes(key).to_vec());
                for n in [-300, -1, 1, 256, 70_000] {
                    let sql = "SELECT key_add($1, CAST($2 AS BIGINT))";
                    let params = [key.clone(), Val::Int(n)];
                    assert_eq!(
                        pg_rows(db.client(), sql, &params),
                        sqlite_rows(&conn, sql, &params),
                        "{key:?} {n}"
                    );
                }
                for (family, prefix) in [
                    (4, 0),
                    (4, 7),
                    (4, 24),
                    (4, 32),
                    (4, 33),
                    (6, 0),
                    (6, 48),
                    (6, 127),
                    (6, 128),
                ] {
                    let sql = "SELECT net_floor($1, CAST($2 AS BIGINT), CAST($3 AS BIGINT))";
                    let params = [key.clone(), Val::Int(family), Val::Int(prefix)];
                    assert_eq!(
                        pg_rows(db.client(), sql, &params),
                        sqlite_rows(&conn, sql, &params),
                        "{key:?} {family} {prefix}"
                    );
                }
            }
            // A subnet's count moved by one record (`space::adjust`), past `i64` too.
            for count in ["0", "1", "1009", "18446744073709551616"] {
                for n in [-1, 1] {
                    let sql = "SELECT count_add(CAST($1 AS TEXT), CAST($2 AS BIGINT))";
                    let params = [Val::Text(count.into()), Val::Int(n)];
                    assert_eq!(
                        pg_rows(db.client(), sql, &params),
                        sqlite_rows(&conn, sql, &params),
                        "{count} {n}"
                    );
                }
            }
        }

        /// `count_add` moves a decimal count past `i64`, never below 0, and refuses what is no count.
        #[test]
        fn count_add_moves_a_count_past_i64_and_not_below_0() {
            let conn = sqlite();
            let add = |count: &str, n: i64| {
                conn.query_row("SELECT count_add(?1, ?2)", rusqlite::params![count, n], |r| {
                    r.get::<_, String>(0)
                })
            };
            assert_eq!(add("1009", 1).unwrap(), "1010");
            assert_eq!(add("1", -1).unwrap(), "0");
            assert_eq!(add("0", -1).unwrap(), "0");
            assert_eq!(add("18446744073709551616", 1).unwrap(), "18446744073709551617");
            assert!(add("x", 1).is_err());
        }

        /// The same writes leave the same derived data on both engines: the address runs, the prefix counts, the
        /// groups' subnet counts and the record versions the triggers keep.
        #[test]
        fn the_postgres_triggers_keep_what_the_sqlite_triggers_keep() {
            let Some(mut db) = Fresh::new() else { return };
            migrate_pg(db.client());
            let conn = sqlite();
            let ip = |n: u128| Val::Blob(net::key_bytes(0xffff_0a00_0000 | n).to_vec());
            let write = |sql: &str, params: &[Val], db: &mut Fresh| {
                pg_rows(db.client(), sql, params);
                sqlite_rows(&conn, sql, params);
            };
            let next = |db: &mut Fresh| write("UPDATE version_seq SET n = n + 1", &[], db);
            write(
                "INSERT INTO orgs (identifier, created) VALUES ('a', 0), ('b', 0)",
                &[],
                &mut db,
            );
            write(
                "INSERT INTO groups (org_id, description, created, modifiedat, modby_name)
                 VALUES (1, 'one', 0, 0, 'x'), (1, 'two', 0, 0, 'x')",
                &[],
                &mut db,
            );
            for (org, group, prefix, start) in [(1, 1, 24, 0), (1, 1, 25, 256), (1, 2, 24, 512), (2, 0, 24, 0)] {
                let group = if group == 0 { Val::Null } else { Val::Int(group) };
                write(
                    "INSERT INTO subnets (org_id, group_id, family, net_start, net_end, prefix, created, modifiedat,
                     modby_name) VALUES ($1, $2, 4, $3, $4, $5, 0, 0, 'x')",
                    &[
                        Val::Int(org),
                        group,
                        ip(start),
                        ip(start + (1 << (32 - prefix)) - 1),
                        Val::Int(prefix),
                    ],
                    &mut db,
                );
            }
            next(&mut db);
            // Records filed out of order, runs joined and split.
            for n in [5u128, 7, 6, 1, 2, 3, 10, 9, 200, 4, 254, 253] {
                write(
                    "INSERT INTO addresses (subnet_id, ip, created, modifiedat, modby_name) VALUES (1, $1, 0, 0, 'x')",
                    &[ip(n)],
                    &mut db,
                );
            }
            next(&mut db);
            for n in [6u128, 1, 254, 9] {
                write(
                    "DELETE FROM addresses WHERE subnet_id = 1 AND ip = $1",
                    &[ip(n)],
                    &mut db,
                );
            }
            next(&mut db);
            write(
                "UPDATE addresses SET ip = $1 WHERE subnet_id = 1 AND ip = $2",
                &[ip(6), ip(7)],
                &mut db,
            );
            write(
                "UPDATE addresses SET subnet_id = 3, ip = $1 WHERE subnet_id = 1 AND ip = $2",
                &[ip(513), ip(3)],
                &mut db,
            );
            write(
                "UPDATE addresses SET hostname = 'h' WHERE subnet_id = 1 AND ip = $1",
                &[ip(2)],
                &mut db,
            );
            next(&mut db);
            write(
                "UPDATE addresses SET description = 'twice' WHERE subnet_id = 1 AND ip = $1",
                &[ip(2)],
                &mut db,
            );
            write("UPDATE subnets SET group_id = 2 WHERE id = 2", &[], &mut db);
            write("UPDATE subnets SET prefix = 26 WHERE id = 2", &[], &mut db);
            write("DELETE FROM subnets WHERE id = 4", &[], &mut db);
            next(&mut db);
            write("UPDATE groups SET description = 'renamed' WHERE id = 1", &[], &mut db);

            for sql in [
                "SELECT subnet_id, first_ip, last_ip FROM address_runs ORDER BY subnet_id, first_ip",
                "SELECT org_id, family, prefix, subnets FROM subnet_prefixes ORDER BY org_id, family, prefix",
                "SELECT id, subnet_count, version FROM groups ORDER BY id",
                "SELECT id, version FROM subnets ORDER BY id",
                "SELECT id, subnet_id, ip, version FROM addresses ORDER BY id",
            ] {
                let (pg, sqlite) = (pg_rows(db.client(), sql, &[]), sqlite_rows(&conn, sql, &[]));
                assert!(!sqlite.is_empty(), "{sql}");
                assert_eq!(pg, sqlite, "{sql}");
            }
        }
    }

    /// Migration 2 fills `subnet_prefixes` from the subnets a version-1 database already holds.
    #[test]
    fn migration_2_derives_the_prefix_lengths_of_existing_subnets() {
        let conn = Connection::open_in_memory().unwrap();
        let (_, first) = migrations().unwrap()[0];
        conn.execute_batch(first).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO orgs (identifier, created) VALUES ('a', 0), ('b', 0);
             INSERT INTO subnets (org_id, family, net_start, net_end, prefix, created, modifiedat, modby_name)
             VALUES (1, 4, x'01', x'02', 24, 0, 0, 'x'), (1, 4, x'03', x'04', 24, 0, 0, 'x'),
                    (1, 6, x'05', x'06', 64, 0, 0, 'x'), (2, 4, x'07', x'08', 16, 0, 0, 'x');",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let mut stmt = conn
            .prepare("SELECT org_id, family, prefix, subnets FROM subnet_prefixes ORDER BY 1, 2, 3")
            .unwrap();
        let rows: Vec<(i64, i64, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows, [(1, 4, 24, 2), (1, 6, 64, 1), (2, 4, 16, 1)]);
    }
}
