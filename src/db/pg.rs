//! The PostgreSQL engine under [`Tx`](super::Tx): a session (one connection and its prepared statements), the
//! translation of the handlers' `?N` parameters, parameter and column conversions, and cursors for lazy scans.

use std::cell::RefCell;
use std::collections::HashMap;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type};

use super::{Cell, Param, Row, RowRef, ToParam};
use crate::error::{Code, Error, Result};

/// One connection and the statements prepared on it. Transactions are opened and ended by the store with plain
/// statements (`BEGIN`, `SAVEPOINT`, `COMMIT`), as on SQLite.
///
/// A round trip to the server costs more than most statements take to run there, so statements whose answer no
/// one waits for (a `BEGIN`, a cursor's `DECLARE` and `CLOSE`, an audit entry: [`Session::defer`],
/// [`Session::execute_later`]) are held and sent ahead of the next statement that is waited for, in the same round
/// trip: the driver pipelines requests that are sent before their answers are read. The server runs them in the
/// order they were written; the first that fails is the error of the statement that carried them. For the same
/// reason an answer that will be asked for next is read in the round trip before ([`Session::settle_then_read`]),
/// and cursors declared together are first read together ([`Session::fetch`]).
pub struct Session {
    wire: Wire,
    prepared: HashMap<String, tokio_postgres::Statement>,
    /// Cursors open now: [`Cursor::open`] names a cursor by its depth, so the statements that declare and read
    /// one are the same texts every time and stay prepared (a name of its own per cursor made each a new statement
    /// to prepare, and soon filled the cache, which then started afresh).
    cursors: u64,
    /// Statements held for the next round trip, in order.
    deferred: Vec<Deferred>,
    /// Cursors declared whose rows no one has fetched yet: the first `FETCH` from one of them fetches from each of
    /// them, in one round trip.
    unread: Vec<String>,
    /// The first rows of cursors, fetched in the round trip of another cursor's first `FETCH`.
    fetched: Vec<(String, Result<Vec<tokio_postgres::Row>>)>,
    /// The answer to a query without parameters, read in the round trip of the statement before it: the next
    /// statement, if it is that query, takes it instead of a round trip of its own. Every other statement, sent or
    /// held, drops it: it may change what the query reads.
    ahead: Option<Ahead>,
}

/// An answer read ahead (see [`Session::settle_then_read`]): the query's text and what it gave.
pub struct Ahead {
    sql: &'static str,
    rows: Result<Vec<tokio_postgres::Row>>,
}

/// The connection and the event loop that runs it: the driver's own, on the database thread that owns the session.
/// It runs the connection while a statement is waited for, and at no other time.
struct Wire {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    /// Round trips made, for the tests that count them.
    #[cfg(test)]
    trips: std::cell::Cell<u64>,
}

/// A statement held for the next round trip.
enum Deferred {
    Batch(String),
    Execute(tokio_postgres::Statement, Vec<Bind<'static>>),
}

impl Deferred {
    async fn run(&self, client: &tokio_postgres::Client) -> std::result::Result<(), tokio_postgres::Error> {
        match self {
            Deferred::Batch(sql) => client.batch_execute(sql).await,
            Deferred::Execute(stmt, params) => client.execute(stmt, &refs(params)).await.map(|_| ()),
        }
    }
}

/// What the driver's requests give.
type Answer<T> = std::result::Result<T, tokio_postgres::Error>;

/// Most statements a session keeps prepared; past it the cache starts afresh (statements assembled from filters
/// are many, but each is cheap to prepare again).
const PREPARED: usize = 512;

/// Rows a cursor fetches at a time.
const FETCH: usize = 64;

impl Session {
    /// Connects to the server `config` names, the handshake on `tls`; or says in one line why it could not: the
    /// server unreachable, the credentials refused, the database missing.
    pub fn connect<T>(config: &tokio_postgres::Config, tls: T) -> std::result::Result<Session, String>
    where
        T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Send + 'static,
        T::Stream: Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (client, connection) = runtime.block_on(config.connect(tls)).map_err(|e| reason(&e))?;
        runtime.spawn(connection);
        Ok(Session {
            wire: Wire {
                runtime,
                client,
                #[cfg(test)]
                trips: std::cell::Cell::new(0),
            },
            prepared: HashMap::new(),
            cursors: 0,
            deferred: Vec::new(),
            unread: Vec::new(),
            fetched: Vec::new(),
            ahead: None,
        })
    }

    /// Whether the connection is gone (the server closed it, or the network): the store opens a new one.
    pub fn is_closed(&self) -> bool {
        self.wire.client.is_closed()
    }

    /// Round trips made so far.
    #[cfg(test)]
    pub(crate) fn round_trips(&self) -> u64 {
        self.wire.trips.get()
    }

    fn prepare(&mut self, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(stmt) = self.prepared.get(sql) {
            return Ok(stmt.clone());
        }
        let text = translate(sql);
        let stmt = self
            .wire
            .round_trip(&mut self.deferred, self.wire.client.prepare(&text))?;
        // A pattern match is planned for its pattern each time: a statement kept prepared soon gets a generic
        // plan, which cannot use a trigram index for a pattern it does not know, and scans the table
        // (search/find on a million records: 1.3 s instead of tens of milliseconds).
        if !sql.contains("LIKE ") {
            if self.prepared.len() >= PREPARED {
                self.prepared.clear();
            }
            self.prepared.insert(sql.to_string(), stmt.clone());
        }
        Ok(stmt)
    }

    pub(super) fn execute(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<usize> {
        self.ahead = None;
        let stmt = self.prepare(sql)?;
        let params = values(params);
        let changed = self
            .wire
            .round_trip(&mut self.deferred, self.wire.client.execute(&stmt, &refs(&params)))?;
        Ok(usize::try_from(changed).unwrap_or(usize::MAX))
    }

    /// Holds a statement for the next round trip: for one whose answer no one needs (see [`Session`]).
    pub(super) fn execute_later(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<()> {
        self.ahead = None;
        let stmt = self.prepare(sql)?;
        let params = values(params).into_iter().map(Bind::owned).collect();
        self.deferred.push(Deferred::Execute(stmt, params));
        Ok(())
    }

    pub(super) fn query(&mut self, sql: &str, params: &[&dyn ToParam]) -> Result<Vec<tokio_postgres::Row>> {
        match self.ahead.take() {
            Some(ahead) if params.is_empty() && ahead.sql == sql => return ahead.rows,
            _ => {}
        }
        let stmt = self.prepare(sql)?;
        let params = values(params);
        self.wire
            .round_trip(&mut self.deferred, self.wire.client.query(&stmt, &refs(&params)))
    }

    /// Runs statements in a savepoint of their own: what `run` gives, or `None` when a unique constraint refused them (the
    /// savepoint undoes it, and the transaction goes on, as after SQLite's failed statement).
    pub(super) fn unique<T>(&mut self, run: impl FnOnce(&mut Session) -> Result<T>) -> Result<Option<T>> {
        self.batch("SAVEPOINT unique_check")?;
        match run(self) {
            Ok(out) => {
                self.defer("RELEASE SAVEPOINT unique_check");
                Ok(Some(out))
            }
            Err(e) => {
                self.batch("ROLLBACK TO SAVEPOINT unique_check; RELEASE SAVEPOINT unique_check")?;
                match e.code {
                    Code::Duplicate => Ok(None),
                    _ => Err(e),
                }
            }
        }
    }

    /// Runs statements without parameters, after the held ones (none: sends the held ones, if any).
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        self.ahead = None;
        match sql {
            "" => self.wire.round_trip(&mut self.deferred, std::future::ready(Ok(()))),
            _ => self
                .wire
                .round_trip(&mut self.deferred, self.wire.client.batch_execute(sql)),
        }
    }

    /// Runs statements without parameters after the held ones, and tells the two apart: the first held statement
    /// that failed, and the outcome of `sql` (the store's group commit tells a call whose own held statement
    /// failed from a transaction that is lost).
    pub fn settle(&mut self, sql: &str) -> (Option<Error>, Result<()>) {
        self.ahead = None;
        self.wire
            .pipelined(&mut self.deferred, self.wire.client.batch_execute(sql))
    }

    /// [`Session::settle`], and in the same round trip, once `sql` has run, the query `read` (without parameters):
    /// its answer is kept for the next statement, if that is `read` ([`Session::query`]), and is lost with any
    /// other. (The caller may set it aside while it holds statements that cannot change what it read:
    /// [`Session::take_ahead`].)
    pub fn settle_then_read(&mut self, sql: &str, read: &'static str) -> (Option<Error>, Result<()>) {
        // Not prepared yet: it would be prepared in a round trip of its own, which would carry the held statements
        // (whose failure `settle` tells apart). The call that runs it prepares it.
        let Some(stmt) = self.prepared.get(read).cloned() else {
            return self.settle(sql);
        };
        let both = both(self.wire.client.batch_execute(sql), self.wire.client.query(&stmt, &[]));
        let (held, out) = self.wire.pipelined(&mut self.deferred, async {
            let (settled, rows) = both.await;
            settled.map(|()| rows)
        });
        match out {
            Ok(rows) => {
                let rows = rows.map_err(error);
                self.ahead = Some(Ahead { sql: read, rows });
                (held, Ok(()))
            }
            Err(e) => (held, Err(e)),
        }
    }

    /// The answer read ahead, set aside (see [`Session::settle_then_read`]).
    pub fn take_ahead(&mut self) -> Option<Ahead> {
        self.ahead.take()
    }

    /// Puts back an answer set aside by [`Session::take_ahead`]: the caller vouches that nothing it held since can
    /// have changed what it read.
    pub fn put_ahead(&mut self, ahead: Option<Ahead>) {
        self.ahead = ahead;
    }

    /// Holds statements without parameters for the next round trip (see [`Session`]).
    pub fn defer(&mut self, sql: &str) {
        self.ahead = None;
        self.deferred.push(Deferred::Batch(sql.to_string()));
    }

    /// The next rows of the cursor `name`. Its first rows are fetched together with the first rows of every other
    /// cursor declared and not yet read (a walk over two scans at once reads both in one round trip): a cursor's
    /// rows are those of the snapshot it was declared in, whenever they are fetched.
    fn fetch(&mut self, name: &str) -> Result<Vec<tokio_postgres::Row>> {
        self.ahead = None;
        if let Some(at) = self.fetched.iter().position(|(n, _)| n == name) {
            return self.fetched.swap_remove(at).1;
        }
        let mut names = vec![name.to_string()];
        names.extend(std::mem::take(&mut self.unread).into_iter().filter(|n| n != name));
        let statements = names
            .iter()
            .map(|n| self.prepare(&format!("FETCH {FETCH} FROM {n}")))
            .collect::<Result<Vec<_>>>()?;
        let queries = statements.iter().map(|stmt| self.wire.client.query(stmt, &[]));
        let mut answers = self
            .wire
            .round_trip(&mut self.deferred, async { Ok(all(queries).await) })?
            .into_iter()
            .map(|rows| rows.map_err(error));
        let first = answers.next().unwrap_or_else(|| Ok(Vec::new()));
        self.fetched.extend(names.into_iter().skip(1).zip(answers));
        first
    }

    /// A cursor declared (its rows are first fetched with the others': [`Session::fetch`]).
    fn declared(&mut self, name: &str) {
        self.unread.push(name.to_string());
    }

    /// A cursor closed: rows fetched for it and not taken are dropped.
    fn closed(&mut self, name: &str) {
        self.unread.retain(|n| n != name);
        self.fetched.retain(|(n, _)| n != name);
    }
}

/// Polls `a` then `b` (which sends both requests before either answer is read) until both are done.
async fn both<A: std::future::Future, B: std::future::Future>(a: A, b: B) -> (A::Output, B::Output) {
    use std::task::Poll;
    let (mut a, mut b) = (std::pin::pin!(a), std::pin::pin!(b));
    let (mut left, mut right) = (None, None);
    std::future::poll_fn(|cx| {
        if left.is_none() {
            if let Poll::Ready(out) = a.as_mut().poll(cx) {
                left = Some(out);
            }
        }
        if right.is_none() {
            if let Poll::Ready(out) = b.as_mut().poll(cx) {
                right = Some(out);
            }
        }
        match (left.take(), right.take()) {
            (Some(l), Some(r)) => Poll::Ready((l, r)),
            (l, r) => {
                (left, right) = (l, r);
                Poll::Pending
            }
        }
    })
    .await
}

/// Polls each of `futures` in order (which sends their requests, in this order, before any answer is read) until
/// all are done: their outputs, in the same order.
async fn all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    use std::task::Poll;
    let mut pending: Vec<_> = futures.map(|f| Box::pin(f)).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (f, out) in pending.iter_mut().zip(done.iter_mut()).filter(|(_, out)| out.is_none()) {
            if let Poll::Ready(o) = f.as_mut().poll(cx) {
                *out = Some(o);
            }
        }
        match done.iter().all(Option::is_some) {
            true => Poll::Ready(done.iter_mut().filter_map(Option::take).collect()),
            false => Poll::Pending,
        }
    })
    .await
}

/// What a failed connection says, in one line.
fn reason(e: &tokio_postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    };
    text.lines().next().unwrap_or_default().to_string()
}

impl Wire {
    /// Runs `main` on the session's event loop after sending the statements `held` (each first polled in order,
    /// which sends it, so the server gets them in this order, `main` last, all in one round trip): the first of
    /// them that failed, and what `main` gave.
    fn pipelined<T>(
        &self,
        held: &mut Vec<Deferred>,
        main: impl std::future::Future<Output = Answer<T>>,
    ) -> (Option<Error>, Result<T>) {
        #[cfg(test)]
        self.trips.set(self.trips.get() + 1);
        let held = std::mem::take(held);
        let sent = all(held.iter().map(|d| d.run(&self.client)));
        let (done, out) = self.runtime.block_on(both(sent, main));
        let failed = done.into_iter().find_map(Result::err);
        (failed.map(error), out.map_err(error))
    }

    /// [`Wire::pipelined`]'s first failure: a held statement's, else the awaited one's.
    fn round_trip<T>(&self, held: &mut Vec<Deferred>, main: impl std::future::Future<Output = Answer<T>>) -> Result<T> {
        match self.pipelined(held, main) {
            (Some(e), _) => Err(e),
            (None, out) => out,
        }
    }
}

/// The column `i` of a PostgreSQL row as a [`Cell`], by its type: the integers, `boolean` (as 0 or 1), `double
/// precision`, the text types (`citext` too) and `bytea`.
pub(super) fn cell(row: &tokio_postgres::Row, i: usize) -> Result<Cell<'_>> {
    let column = row
        .columns()
        .get(i)
        .ok_or_else(|| Error::internal(format!("database: no column {i}")))?;
    let bad = |e: tokio_postgres::Error| Error::internal(format!("database: column {i}: {e}"));
    let ty = column.type_();
    Ok(match *ty {
        Type::INT8 => row
            .try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, |n| Cell::Int(n.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, |n| Cell::Int(n.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, |b| Cell::Int(b.into())),
        Type::FLOAT8 => row
            .try_get::<_, Option<f64>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Real),
        Type::BYTEA => row
            .try_get::<_, Option<&[u8]>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Blob),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => row
            .try_get::<_, Option<&str>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Text),
        _ if ty.name() == "citext" => row
            .try_get::<_, Option<&str>>(i)
            .map_err(bad)?
            .map_or(Cell::Null, Cell::Text),
        _ => {
            return Err(Error::internal(format!(
                "database: column {i} is of type {ty}, which ipamd does not read"
            )))
        }
    })
}

/// The statement text PostgreSQL runs for one the handlers wrote: SQLite's few spellings that PostgreSQL lacks,
/// rewritten in this one place (a statement that needs more is an [`Sql::Dialects`](super::Sql::Dialects) pair), then
/// its parameters numbered (see [`placeholders`]):
/// - `CROSS JOIN t [a] ON …`, SQLite's join-order hint, is `JOIN t [a] ON …`;
/// - `INDEXED BY i`, an index hint, is dropped;
/// - `x COLLATE NOCASE` is `lower(x) COLLATE "C"`: ASCII-folded, byte order; as a key of an `ORDER BY` it is led by
///   the first [`SORT_PREFIX`] characters of the same, the key schema.pg.sql indexes (a whole text can exceed the
///   size of a B-tree entry), which orders alike: texts that differ within their prefixes differ there first;
/// - `LIKE`, case-insensitive for ASCII in SQLite, is `ILIKE`;
/// - `instr(a, b)` is `strpos(a, b)`; `CAST(… AS INTEGER)` is `AS BIGINT`;
/// - `SELECT value FROM json_each(?N)`, the ids of a JSON list, reads the list with `json_array_elements_text`.
pub fn translate(sql: &str) -> String {
    let mut text = sql.to_string();
    while let Some(at) = find_cross_join_on(&text) {
        text.replace_range(at..at + "CROSS ".len(), "");
    }
    while let Some(at) = text.find("INDEXED BY ") {
        let end = text[at + "INDEXED BY ".len()..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(text.len(), |n| at + "INDEXED BY ".len() + n);
        text.replace_range(at..end, "");
    }
    while let Some(at) = text.find(" COLLATE NOCASE") {
        let start = text[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |n| n + 1);
        let term = text[start..at].to_string();
        let key = match in_order_by(&text[..start]) {
            true => format!("left(lower({term}), {SORT_PREFIX}) COLLATE \"C\", lower({term}) COLLATE \"C\""),
            false => format!("lower({term}) COLLATE \"C\""),
        };
        text.replace_range(start..at + " COLLATE NOCASE".len(), &key);
    }
    while let Some(at) = text.find("SELECT value FROM json_each(") {
        let open = at + "SELECT value FROM json_each(".len();
        let Some(close) = text[open..].find(')').map(|n| open + n) else {
            break;
        };
        let param = text[open..close].to_string();
        text.replace_range(
            at..=close,
            &format!("SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(CAST({param} AS TEXT) AS JSON))"),
        );
    }
    let text = text
        .replace(" LIKE ", " ILIKE ")
        .replace("instr(", "strpos(")
        .replace(" AS INTEGER)", " AS BIGINT)");
    placeholders(&text)
}

/// Characters of a case-folded text that lead its sort key: schema.pg.sql indexes this prefix (`groups_sorted`), at
/// most 800 bytes in UTF-8, well under a B-tree entry's limit of about 2.7 kB.
const SORT_PREFIX: usize = 200;

/// Whether a term after `before` is a key of an `ORDER BY` clause: nothing but other keys since the last one.
fn in_order_by(before: &str) -> bool {
    before.rfind("ORDER BY ").is_some_and(|at| {
        let keys = &before[at..];
        !["WHERE", "FROM", "SELECT", " ON ", "=", "<", ">"]
            .iter()
            .any(|w| keys.contains(w))
    })
}

/// Where `CROSS JOIN <table> [<alias>] ON` starts in `sql`, if it does anywhere.
fn find_cross_join_on(sql: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(n) = sql[from..].find("CROSS JOIN ") {
        let at = from + n;
        let words: Vec<&str> = sql[at + "CROSS JOIN ".len()..].split_whitespace().take(3).collect();
        if words.get(1) == Some(&"ON") || words.get(2) == Some(&"ON") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The statement text PostgreSQL reads: `?N` becomes `$N` and a bare `?` the number after the highest so far, as
/// SQLite numbers them. Quoted text and identifiers are left alone.
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut highest = 0u32;
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                let n = match digits.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => highest + 1,
                };
                highest = highest.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            None => out.push(c),
        }
    }
    out
}

/// A parameter as PostgreSQL binds it: a value, or the ids of a list as an array; a text or bytes of its own for a
/// statement held for later ([`Bind::owned`]).
#[derive(Debug)]
enum Bind<'a> {
    Value(Cell<'a>),
    Ids(Vec<i64>),
    Text(String),
    Blob(Vec<u8>),
}

impl Bind<'_> {
    /// The same value, borrowing nothing.
    fn owned(self) -> Bind<'static> {
        match self {
            Bind::Value(Cell::Text(t)) => Bind::Text(t.to_string()),
            Bind::Value(Cell::Blob(b)) => Bind::Blob(b.to_vec()),
            Bind::Value(Cell::Null) => Bind::Value(Cell::Null),
            Bind::Value(Cell::Int(n)) => Bind::Value(Cell::Int(n)),
            Bind::Value(Cell::Real(x)) => Bind::Value(Cell::Real(x)),
            Bind::Ids(ids) => Bind::Ids(ids),
            Bind::Text(t) => Bind::Text(t),
            Bind::Blob(b) => Bind::Blob(b),
        }
    }
}

/// The parameters as values PostgreSQL binds.
fn values<'p>(params: &'p [&dyn ToParam]) -> Vec<Bind<'p>> {
    params
        .iter()
        .map(|p| match p.param() {
            Param::Value(cell) => Bind::Value(cell),
            Param::Ids(ids) => Bind::Ids(
                ids.iter()
                    .filter_map(|v| match v {
                        rusqlite::types::Value::Integer(n) => Some(*n),
                        _ => None,
                    })
                    .collect(),
            ),
        })
        .collect()
}

fn refs<'a>(params: &'a [Bind<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// A parameter binds as the type PostgreSQL inferred for its place: an integer as `bigint`, `integer`, `smallint`,
/// `boolean` (non-zero is true) or `double precision`; a list of ids as `bigint[]`.
impl ToSql for Bind<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Bind::Value(Cell::Null) => Ok(IsNull::Yes),
            Bind::Value(Cell::Int(n)) => match *ty {
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => n.to_string().to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            Bind::Value(Cell::Real(x)) => x.to_sql(ty, out),
            Bind::Value(Cell::Text(t)) => t.to_sql(ty, out),
            Bind::Text(t) => t.as_str().to_sql(ty, out),
            Bind::Value(Cell::Blob(b)) => b.to_sql(ty, out),
            Bind::Blob(b) => b.as_slice().to_sql(ty, out),
            Bind::Ids(ids) => ids.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// An error of the server or the connection as ipamd's: a duplicate key is `duplicate` (what `Tx::insert_unique`
/// and `Tx::execute_unique` turn into `None`); a value past a limit of the server (a text too long for a B-tree
/// index entry, about 2.7 kB, which SQLite has no limit like) and text PostgreSQL cannot hold (a NUL character: the
/// only text of a Rust `str` its encoding check refuses) are `invalid_params`; a lost connection, a serialization failure, a deadlock or a
/// server shutting down are `unavailable`, to be tried again; anything else is a bug, `internal_error`.
fn error(e: tokio_postgres::Error) -> Error {
    let code = e.code();
    if code == Some(&SqlState::UNIQUE_VIOLATION) {
        // The server's message names the key: the driver's own text is only "db error".
        let said = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_string());
        return Error::new(Code::Duplicate, format!("database: {said}"));
    }
    if code == Some(&SqlState::PROGRAM_LIMIT_EXCEEDED) {
        return Error::new(Code::InvalidParams, "a value is too long for the database to store");
    }
    if code == Some(&SqlState::CHARACTER_NOT_IN_REPERTOIRE) {
        return Error::new(
            Code::InvalidParams,
            "text with a NUL character cannot be stored in this database",
        );
    }
    let transient = e.is_closed()
        || code.is_none_or(|c| {
            c.code().starts_with("08")
                || c.code().starts_with("57")
                || c.code().starts_with("53")
                || *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::LOCK_NOT_AVAILABLE
        });
    match transient {
        true => {
            let mut e = Error::new(Code::Unavailable, format!("the database is not available: {e}"));
            e.retry_after = Some(1);
            e
        }
        false => match e.as_db_error() {
            Some(db) => Error::internal(format!(
                "database: {} ({}){}",
                db.message(),
                db.code().code(),
                db.where_().map(|w| format!(" at {w}")).unwrap_or_default()
            )),
            None => Error::internal(format!("database: {e}")),
        },
    }
}

/// A scan's rows, fetched from a server-side cursor a batch at a time, so a scan that stops early reads no more
/// than a batch past where it stopped, and other statements (another scan) may run between the batches.
pub(super) struct Cursor<'s> {
    session: &'s RefCell<Session>,
    name: String,
}

impl<'s> Cursor<'s> {
    pub(super) fn open(session: &'s RefCell<Session>, sql: &str, params: &[&dyn ToParam]) -> Result<Cursor<'s>> {
        // Named by its depth and its query: the `FETCH` from it is then the same text for every scan of that query,
        // and stays prepared, while a scan of another query (other columns) never runs a `FETCH` prepared for this
        // one's rows.
        let query = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            sql.hash(&mut h);
            h.finish()
        };
        let name = {
            let mut s = session.borrow_mut();
            s.cursors += 1;
            format!("scan_{}_{query:016x}", s.cursors)
        };
        // Declared in the round trip of its first `FETCH`.
        let declared = session
            .borrow_mut()
            .execute_later(&format!("DECLARE {name} NO SCROLL CURSOR FOR {sql}"), params);
        if let Err(e) = declared {
            session.borrow_mut().cursors -= 1;
            return Err(e);
        }
        session.borrow_mut().declared(&name);
        Ok(Cursor { session, name })
    }

    /// Runs `body` over the rows read by `read`; closes the cursor after.
    pub(super) fn walk<T, R>(
        self,
        mut read: impl FnMut(&Row) -> Result<T>,
        body: impl FnOnce(&mut dyn Iterator<Item = Result<T>>) -> R,
    ) -> Result<R> {
        let mut batch: std::vec::IntoIter<tokio_postgres::Row> = Vec::new().into_iter();
        let mut done = false;
        let mut rows = std::iter::from_fn(|| loop {
            if let Some(row) = batch.next() {
                return Some(read(&Row(RowRef::Pg(&row))));
            }
            if done {
                return None;
            }
            match self.session.borrow_mut().fetch(&self.name) {
                Ok(next) => {
                    done = next.len() < FETCH;
                    batch = next.into_iter();
                }
                Err(e) => {
                    done = true;
                    return Some(Err(e));
                }
            }
        });
        let out = body(&mut rows);
        // Closed in the round trip of the next statement.
        let mut s = self.session.borrow_mut();
        s.defer(&format!("CLOSE {}", self.name));
        s.closed(&self.name);
        s.cursors -= 1;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_spellings_become_postgresql_ones() {
        assert_eq!(
            translate("SELECT 1 FROM a t CROSS JOIN subnets s ON s.id = t.x CROSS JOIN b LEFT JOIN c m ON m.id = 1"),
            "SELECT 1 FROM a t JOIN subnets s ON s.id = t.x CROSS JOIN b LEFT JOIN c m ON m.id = 1"
        );
        assert_eq!(
            translate("FROM g CROSS JOIN sub ON g.p = sub.id"),
            "FROM g JOIN sub ON g.p = sub.id"
        );
        assert_eq!(translate("FROM a INDEXED BY a_brief WHERE"), "FROM a  WHERE");
        assert_eq!(
            translate("ORDER BY t.description COLLATE NOCASE, t.id"),
            "ORDER BY left(lower(t.description), 200) COLLATE \"C\", lower(t.description) COLLATE \"C\", t.id"
        );
        assert_eq!(
            translate("WHERE a.name COLLATE NOCASE = ?1 ORDER BY a COLLATE NOCASE"),
            "WHERE lower(a.name) COLLATE \"C\" = $1 ORDER BY left(lower(a), 200) COLLATE \"C\", lower(a) COLLATE \"C\""
        );
        assert_eq!(
            translate("SELECT x FROM (SELECT y FROM t ORDER BY y) s WHERE s.n COLLATE NOCASE = ?"),
            "SELECT x FROM (SELECT y FROM t ORDER BY y) s WHERE lower(s.n) COLLATE \"C\" = $1"
        );
        assert_eq!(
            translate("t.id IN (SELECT value FROM json_each(?)) AND t.hostname LIKE ?"),
            "t.id IN (SELECT CAST(value AS BIGINT) FROM json_array_elements_text(CAST(CAST($1 AS TEXT) AS JSON))) \
             AND t.hostname ILIKE $2"
        );
        assert_eq!(translate("instr(lower(x), ?2) > 0"), "strpos(lower(x), $2) > 0");
    }

    #[test]
    fn parameters_are_numbered_as_sqlite_numbers_them_outside_quotes() {
        assert_eq!(placeholders("SELECT ?1, ?2, ?1"), "SELECT $1, $2, $1");
        assert_eq!(
            placeholders("a = ? AND b = ? LIMIT ? OFFSET ?"),
            "a = $1 AND b = $2 LIMIT $3 OFFSET $4"
        );
        assert_eq!(placeholders("a = ?3 AND b = ?"), "a = $3 AND b = $4");
        assert_eq!(placeholders("x = '?1' AND \"y?\" = ?1"), "x = '?1' AND \"y?\" = $1");
        assert_eq!(placeholders("LIKE ? ESCAPE '\\'"), "LIKE $1 ESCAPE '\\'");
    }

    /// Two scans walked together (the free-space engine's runs and ranges) read their first rows in one round trip,
    /// and each its later rows in one more; the rows are each cursor's own, in order.
    #[test]
    fn cursors_declared_together_are_first_read_together() {
        let Some(mut db) = testing::Fresh::new() else {
            return;
        };
        db.client()
            .batch_execute("CREATE TABLE t (n BIGINT); INSERT INTO t SELECT generate_series(1, 100)")
            .unwrap();
        let session = RefCell::new(db.session());
        session.borrow_mut().batch("BEGIN").unwrap();
        let tx = super::super::Tx::on_postgres(&session);
        let n = |r: &Row| r.get::<i64>(0);
        let walk = || {
            tx.scan("SELECT n FROM t ORDER BY n", &[], n, |up| {
                tx.scan("SELECT n FROM t ORDER BY n DESC", &[], n, |down| {
                    up.zip(down)
                        .take(70)
                        .map(|(a, b)| Ok((a?, b?)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .unwrap()
            .unwrap()
            .unwrap()
        };
        // Once to prepare the statements (a statement's first use is a round trip of its own).
        walk();
        let before = session.borrow().round_trips();
        let pairs = walk();
        assert!(pairs.iter().all(|&(a, b)| a + b == 101), "{pairs:?}");
        assert_eq!(pairs.last(), Some(&(70, 31)));
        // Four round trips before: a first FETCH each, a second FETCH each.
        assert_eq!(session.borrow().round_trips() - before, 3);
        // Both cursors are closed, and nothing fetched for them is left.
        session.borrow_mut().batch("COMMIT").unwrap();
        assert!(session.borrow().unread.is_empty() && session.borrow().fetched.is_empty());
    }
}

/// A fresh database on the test server, for the tests of both engines.
#[cfg(test)]
pub(crate) mod testing {
    /// A fresh, empty database on the server `IPAMD_TEST_DATABASE_URL` names, dropped when the value is.
    pub(crate) struct Fresh {
        admin: postgres::Client,
        name: String,
        client: Option<postgres::Client>,
        url: String,
    }

    impl Fresh {
        /// `None` (after saying why) when no server is configured; under `CI=true` that fails the test.
        pub(crate) fn new() -> Option<Fresh> {
            let Ok(url) = std::env::var("IPAMD_TEST_DATABASE_URL") else {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true but IPAMD_TEST_DATABASE_URL is unset: this test cannot be skipped on CI");
                }
                println!("skipping: IPAMD_TEST_DATABASE_URL is unset");
                return None;
            };
            let mut config: postgres::Config = url.parse().unwrap();
            let mut admin = config.connect(postgres::NoTls).unwrap();
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let name = format!("ipamd_unit_{}_{nanos}", std::process::id());
            admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            let client = config.dbname(&name).connect(postgres::NoTls).unwrap();
            Some(Fresh {
                admin,
                name,
                client: Some(client),
                url,
            })
        }

        pub(crate) fn client(&mut self) -> &mut postgres::Client {
            self.client.as_mut().unwrap()
        }

        /// The URL of the database (the test server's, naming this database instead).
        pub(crate) fn url(&self) -> String {
            let (server, query) = self.url.split_once('?').unwrap_or((&self.url, ""));
            let server = server.rsplit_once('/').map_or(server, |(s, _)| s);
            match query {
                "" => format!("{server}/{}", self.name),
                q => format!("{server}/{}?{q}", self.name),
            }
        }

        /// A session of the PostgreSQL engine on the database, in place of the plain connection.
        pub(crate) fn session(&mut self) -> super::Session {
            drop(self.client.take());
            let mut config: tokio_postgres::Config = self.url.parse().unwrap();
            super::Session::connect(config.dbname(&self.name), tokio_postgres::NoTls).unwrap()
        }
    }

    impl Drop for Fresh {
        fn drop(&mut self) {
            drop(self.client.take());
            let _ = self
                .admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}
