//! What handlers say to the database, the same way whichever engine holds it: statements with `?N` parameters,
//! parameters ([`ToParam`], [`params!`]), rows read by position ([`Row`], [`FromColumn`]) and the few operations a
//! handler needs on a transaction ([`Tx`]). The transaction's engine turns them into its own driver's calls; the
//! handlers never name a driver type.
//!
//! Statements are written once, in SQL both engines run (schema.pg.sql's header lists the rules). Where the engines
//! need different texts, the statement is an [`Sql::Dialects`] pair, in one visible place per statement.

use std::rc::Rc;

use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::error::{Error, Result};

pub mod pg;
mod sqlite;

pub use sqlite::{Prepare, Statements};

/// A statement: one text for both engines, or one for each.
#[derive(Debug, Clone, Copy)]
pub enum Sql<'a> {
    Both(&'a str),
    /// SQLite's text, then PostgreSQL's.
    Dialects(&'a str, &'a str),
}

impl<'a> Sql<'a> {
    /// The text SQLite runs.
    pub fn sqlite(self) -> &'a str {
        match self {
            Sql::Both(s) | Sql::Dialects(s, _) => s,
        }
    }

    /// The text PostgreSQL runs (with `?N` parameters, see [`pg::translate`]).
    pub fn postgres(self) -> &'a str {
        match self {
            Sql::Both(s) | Sql::Dialects(_, s) => s,
        }
    }
}

impl<'a> From<&'a str> for Sql<'a> {
    fn from(s: &'a str) -> Sql<'a> {
        Sql::Both(s)
    }
}

impl<'a> From<&'a String> for Sql<'a> {
    fn from(s: &'a String) -> Sql<'a> {
        Sql::Both(s)
    }
}

/// One parameter's value, borrowed from the caller: a value of the kinds a column holds, or a list of ids.
#[derive(Debug, Clone)]
pub enum Param<'a> {
    Value(Cell<'a>),
    /// A list of ids, joined like a table: `rarray(?N)` on SQLite, `ANY(?N)` on PostgreSQL.
    Ids(Rc<Vec<rusqlite::types::Value>>),
}

/// A value that can be a statement's parameter. Integers of every width bind as 64-bit integers and booleans as
/// 0 and 1, as the schema stores them on both engines.
pub trait ToParam {
    fn param(&self) -> Param<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn param(&self) -> Param<'_> {
                Param::Value(Cell::Int(i64::from(*self)))
            }
        }
    )*};
}
int_param!(i64, i32, u32, u16, u8, bool);

impl ToParam for usize {
    fn param(&self) -> Param<'_> {
        Param::Value(Cell::Int(i64::try_from(*self).unwrap_or(i64::MAX)))
    }
}

impl ToParam for u64 {
    fn param(&self) -> Param<'_> {
        Param::Value(Cell::Int(i64::try_from(*self).unwrap_or(i64::MAX)))
    }
}

impl ToParam for f64 {
    fn param(&self) -> Param<'_> {
        Param::Value(Cell::Real(*self))
    }
}

impl ToParam for str {
    fn param(&self) -> Param<'_> {
        Param::Value(Cell::Text(self))
    }
}

impl ToParam for String {
    fn param(&self) -> Param<'_> {
        Param::Value(Cell::Text(self))
    }
}

impl ToParam for [u8] {
    fn param(&self) -> Param<'_> {
        Param::Value(Cell::Blob(self))
    }
}

impl ToParam for Vec<u8> {
    fn param(&self) -> Param<'_> {
        Param::Value(Cell::Blob(self))
    }
}

impl<const N: usize> ToParam for [u8; N] {
    fn param(&self) -> Param<'_> {
        Param::Value(Cell::Blob(self))
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn param(&self) -> Param<'_> {
        (**self).param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn param(&self) -> Param<'_> {
        self.as_ref().map_or(Param::Value(Cell::Null), ToParam::param)
    }
}

/// An owned parameter, for statements assembled at run time (a list's filters).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl ToParam for Value {
    fn param(&self) -> Param<'_> {
        match self {
            Value::Null => Param::Value(Cell::Null),
            Value::Int(n) => Param::Value(Cell::Int(*n)),
            Value::Real(x) => Param::Value(Cell::Real(*x)),
            Value::Text(t) => Param::Value(Cell::Text(t)),
            Value::Blob(b) => Param::Value(Cell::Blob(b)),
        }
    }
}

impl From<Cell<'_>> for Value {
    fn from(cell: Cell<'_>) -> Value {
        match cell {
            Cell::Null => Value::Null,
            Cell::Int(n) => Value::Int(n),
            Cell::Real(x) => Value::Real(x),
            Cell::Text(t) => Value::Text(t.to_string()),
            Cell::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Int(i64::from(b))
    }
}

impl From<String> for Value {
    fn from(t: String) -> Value {
        Value::Text(t)
    }
}

impl From<&str> for Value {
    fn from(t: &str) -> Value {
        Value::Text(t.to_string())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Blob(b)
    }
}

/// Owned parameters as a statement's parameter list.
pub fn param_list(values: &[Value]) -> Vec<&dyn ToParam> {
    values.iter().map(|v| v as &dyn ToParam).collect()
}

/// A list of ids as one parameter (see [`Param::Ids`]).
pub struct Ids(Rc<Vec<rusqlite::types::Value>>);

impl Ids {
    pub fn new(ids: impl IntoIterator<Item = i64>) -> Ids {
        Ids(Rc::new(ids.into_iter().map(rusqlite::types::Value::Integer).collect()))
    }
}

impl ToParam for Ids {
    fn param(&self) -> Param<'_> {
        Param::Ids(self.0.clone())
    }
}

/// A statement's parameters, in `?N` order: `params![a, b]` (exported as `db::params`).
#[doc(hidden)]
#[macro_export]
macro_rules! __db_params {
    () => {
        &[] as &[&dyn $crate::db::ToParam]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::db::ToParam),+] as &[&dyn $crate::db::ToParam]
    };
}
pub use crate::__db_params as params;

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Value(Cell::Null) => ValueRef::Null,
            Param::Value(Cell::Int(n)) => ValueRef::Integer(*n),
            Param::Value(Cell::Real(x)) => ValueRef::Real(*x),
            Param::Value(Cell::Text(t)) => ValueRef::Text(t.as_bytes()),
            Param::Value(Cell::Blob(b)) => ValueRef::Blob(b),
            Param::Ids(ids) => return ids.to_sql(),
        }))
    }
}

/// One value of a row, as both engines give it: integers (PostgreSQL booleans as 0 and 1), reals, text, bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// One row of a result, read by column position.
pub struct Row<'r>(RowRef<'r>);

enum RowRef<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Pg(&'r tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `i` as a `T`; a NULL or a value of another kind is an error unless `T` allows it (`Option`).
    pub fn get<T: FromColumn>(&self, i: usize) -> Result<T> {
        let cell = self.cell(i)?;
        T::from_cell(cell)
            .ok_or_else(|| Error::internal(format!("database: column {i}: {cell:?} is not a {}", T::KIND)))
    }

    /// Column `i`, a BLOB, borrowed from the row.
    pub fn blob(&self, i: usize) -> Result<&[u8]> {
        match self.cell(i)? {
            Cell::Blob(b) => Ok(b),
            other => Err(Error::internal(format!("database: column {i}: {other:?} is not bytes"))),
        }
    }

    /// Column `i`, TEXT, borrowed from the row.
    pub fn text(&self, i: usize) -> Result<&str> {
        match self.cell(i)? {
            Cell::Text(t) => Ok(t),
            other => Err(Error::internal(format!("database: column {i}: {other:?} is not text"))),
        }
    }

    /// Column `i` as it is stored.
    pub fn cell(&self, i: usize) -> Result<Cell<'_>> {
        match &self.0 {
            RowRef::Sqlite(r) => Ok(match r.get_ref(i)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(n) => Cell::Int(n),
                ValueRef::Real(x) => Cell::Real(x),
                ValueRef::Text(t) => Cell::Text(
                    std::str::from_utf8(t).map_err(|e| Error::internal(format!("database: column {i}: {e}")))?,
                ),
                ValueRef::Blob(b) => Cell::Blob(b),
            }),
            RowRef::Pg(r) => pg::cell(r, i),
        }
    }
}

/// A type a column can be read as.
pub trait FromColumn: Sized {
    /// What the type is called in an error.
    const KIND: &'static str;
    /// The value of `cell`, if it is of this type (an integer that fits, for the narrower integers).
    fn from_cell(cell: Cell<'_>) -> Option<Self>;
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl FromColumn for $t {
            const KIND: &'static str = stringify!($t);
            fn from_cell(cell: Cell<'_>) -> Option<Self> {
                match cell {
                    Cell::Int(n) => <$t>::try_from(n).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
from_int!(i64, i32, u32, u16, u8);

impl FromColumn for bool {
    const KIND: &'static str = "boolean";
    fn from_cell(cell: Cell<'_>) -> Option<Self> {
        match cell {
            Cell::Int(n) => Some(n != 0),
            _ => None,
        }
    }
}

impl FromColumn for f64 {
    const KIND: &'static str = "number";
    fn from_cell(cell: Cell<'_>) -> Option<Self> {
        match cell {
            Cell::Real(x) => Some(x),
            Cell::Int(n) => Some(n as f64),
            _ => None,
        }
    }
}

impl FromColumn for String {
    const KIND: &'static str = "text";
    fn from_cell(cell: Cell<'_>) -> Option<Self> {
        match cell {
            Cell::Text(t) => Some(t.to_string()),
            _ => None,
        }
    }
}

impl FromColumn for Vec<u8> {
    const KIND: &'static str = "bytes";
    fn from_cell(cell: Cell<'_>) -> Option<Self> {
        match cell {
            Cell::Blob(b) => Some(b.to_vec()),
            Cell::Text(t) => Some(t.as_bytes().to_vec()),
            _ => None,
        }
    }
}

impl<T: FromColumn> FromColumn for Option<T> {
    const KIND: &'static str = T::KIND;
    fn from_cell(cell: Cell<'_>) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            c => T::from_cell(c).map(Some),
        }
    }
}

/// Whether SQLite refused a row for a duplicate key.
fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// A transaction (or a savepoint inside a group commit): what handlers run their statements on. Commit and rollback
/// belong to the store.
#[derive(Clone, Copy)]
pub struct Tx<'c>(Engine<'c>);

#[derive(Clone, Copy)]
enum Engine<'c> {
    Sqlite(&'c dyn Prepare),
    Pg(&'c std::cell::RefCell<pg::Session>),
}

impl<'c> Tx<'c> {
    /// Statements on a SQLite connection (with its [`Statements`]), in the transaction the caller opened on it.
    pub fn on_sqlite(conn: &'c dyn Prepare) -> Tx<'c> {
        Tx(Engine::Sqlite(conn))
    }

    /// Statements on a PostgreSQL session, in the transaction the caller opened on it.
    pub fn on_postgres(session: &'c std::cell::RefCell<pg::Session>) -> Tx<'c> {
        Tx(Engine::Pg(session))
    }
}

/// The parameters of a SQLite statement.
fn sqlite_params<'p>(params: &'p [&dyn ToParam]) -> rusqlite::ParamsFromIter<impl Iterator<Item = Param<'p>>> {
    rusqlite::params_from_iter(params.iter().map(|p| p.param()))
}

/// Runs `f` on the prepared statement of `sql` (see [`Prepare::with_statement`]).
fn on_statement<T>(conn: &dyn Prepare, sql: &str, f: impl FnOnce(&mut rusqlite::Statement) -> Result<T>) -> Result<T> {
    let (mut f, mut out) = (Some(f), None);
    conn.with_statement(sql, &mut |statement| {
        if let Some(f) = f.take() {
            out = Some(f(statement)?);
        }
        Ok(())
    })?;
    out.ok_or_else(|| Error::internal("database: a statement did not run"))
}

impl Tx<'_> {
    /// Runs a statement that returns no rows; the number of rows it changed.
    pub fn execute<'s>(&self, sql: impl Into<Sql<'s>>, params: &[&dyn ToParam]) -> Result<usize> {
        match self.0 {
            Engine::Sqlite(c) => on_statement(c, sql.into().sqlite(), |stmt| Ok(stmt.execute(sqlite_params(params))?)),
            Engine::Pg(s) => s.borrow_mut().execute(sql.into().postgres(), params),
        }
    }

    /// Runs a statement that returns no rows and whose outcome the caller does not wait for (an audit entry, a
    /// count kept): on PostgreSQL it travels with the next statement, saving a round trip, and if it fails, that
    /// statement, or the end of the call, fails with its error; SQLite runs it at once.
    pub fn execute_later<'s>(&self, sql: impl Into<Sql<'s>>, params: &[&dyn ToParam]) -> Result<()> {
        match self.0 {
            Engine::Sqlite(_) => self.execute(sql, params).map(|_| ()),
            Engine::Pg(s) => s.borrow_mut().execute_later(sql.into().postgres(), params),
        }
    }

    /// Runs an `INSERT … RETURNING …` of one row under a unique constraint: what `f` reads of the row returned, or
    /// `None` when the constraint refused the row (and nothing was written).
    pub fn insert_unique<'s, T>(
        &self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn ToParam],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let sql = sql.into();
        match self.0 {
            Engine::Sqlite(c) => on_statement(c, sql.sqlite(), |stmt| {
                let mut rows = stmt.query(sqlite_params(params))?;
                match rows.next() {
                    Ok(Some(row)) => f(&Row(RowRef::Sqlite(row))).map(Some),
                    Ok(None) => Err(Error::internal(format!("database: no row from {}", sql.sqlite()))),
                    Err(e) if unique_violation(&e) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }),
            Engine::Pg(s) => {
                // The statement skips a refused row itself (`ON CONFLICT DO NOTHING`) and then returns no id: no
                // savepoint around it, which cost two round trips. A skipped row fires no trigger (schema.pg.sql
                // has no `BEFORE INSERT` trigger, and `AFTER` triggers fire for inserted rows only).
                let text = sql.postgres();
                let at = text
                    .rfind("RETURNING")
                    .ok_or_else(|| Error::internal(format!("database: no RETURNING in {text}")))?;
                let text = format!("{} ON CONFLICT DO NOTHING {}", &text[..at], &text[at..]);
                let rows = s.borrow_mut().query(&text, params)?;
                rows.first().map(|row| f(&Row(RowRef::Pg(row)))).transpose()
            }
        }
    }

    /// Runs a statement that changes rows under a unique constraint: the number of rows changed, or `None` when the
    /// constraint refused the change (and nothing was changed).
    pub fn execute_unique<'s>(&self, sql: impl Into<Sql<'s>>, params: &[&dyn ToParam]) -> Result<Option<usize>> {
        match self.0 {
            Engine::Sqlite(c) => on_statement(c, sql.into().sqlite(), |stmt| {
                match stmt.execute(sqlite_params(params)) {
                    Ok(changed) => Ok(Some(changed)),
                    Err(e) if unique_violation(&e) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }),
            Engine::Pg(s) => s.borrow_mut().unique(|s| s.execute(sql.into().postgres(), params)),
        }
    }

    /// The first row of a query, read by `f`; `None` when there is none.
    pub fn query_opt<'s, T>(
        &self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn ToParam],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.0 {
            Engine::Sqlite(c) => on_statement(c, sql.into().sqlite(), |stmt| {
                let mut rows = stmt.query(sqlite_params(params))?;
                match rows.next()? {
                    Some(row) => f(&Row(RowRef::Sqlite(row))).map(Some),
                    None => Ok(None),
                }
            }),
            Engine::Pg(s) => {
                let rows = s.borrow_mut().query(sql.into().postgres(), params)?;
                rows.first().map(|row| f(&Row(RowRef::Pg(row)))).transpose()
            }
        }
    }

    /// The first row of a query, read by `f`; a query that finds none is an internal error (the statement always
    /// finds one: a count, or a row the transaction just read or wrote).
    pub fn query_row<'s, T>(
        &self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn ToParam],
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let sql = sql.into();
        self.query_opt(sql, params, f)?
            .ok_or_else(|| Error::internal(format!("database: no row from {}", sql.sqlite())))
    }

    /// Every row of a query, each read by `f`. The statement bounds the rows (a `LIMIT`, or a key that can match
    /// only so many); to stop early, use [`Tx::each`].
    pub fn rows<'s, T>(
        &self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn ToParam],
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each(sql, params, |r| {
            out.push(f(r)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Reads the rows of a query in order with `f` until it returns `false` or they end. On SQLite, rows after the
    /// last one `f` takes are never read; PostgreSQL sends them all (the statement bounds them).
    pub fn each<'s>(
        &self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn ToParam],
        mut f: impl FnMut(&Row) -> Result<bool>,
    ) -> Result<()> {
        match self.0 {
            Engine::Sqlite(c) => on_statement(c, sql.into().sqlite(), |stmt| {
                let mut rows = stmt.query(sqlite_params(params))?;
                while let Some(row) = rows.next()? {
                    if !f(&Row(RowRef::Sqlite(row)))? {
                        break;
                    }
                }
                Ok(())
            })?,
            Engine::Pg(s) => {
                // Read whole before `f` runs: `f` may run statements of its own on the session.
                let rows = s.borrow_mut().query(sql.into().postgres(), params)?;
                for row in &rows {
                    if !f(&Row(RowRef::Pg(row)))? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the rows of a query as they are needed: `body` gets them, each read by `read`, as an iterator, and may
    /// stop at any point (two scans can be walked side by side, one inside the other's `body`). PostgreSQL reads
    /// them in batches from a cursor.
    pub fn scan<'s, T, R>(
        &self,
        sql: impl Into<Sql<'s>>,
        params: &[&dyn ToParam],
        read: impl FnMut(&Row) -> Result<T>,
        body: impl FnOnce(&mut dyn Iterator<Item = Result<T>>) -> R,
    ) -> Result<R> {
        let mut read = read;
        match self.0 {
            Engine::Sqlite(c) => on_statement(c, sql.into().sqlite(), |stmt| {
                let mut rows = stmt
                    .query_map(sqlite_params(params), |r| Ok(read(&Row(RowRef::Sqlite(r)))))?
                    .map(|row| row.map_err(Error::from).and_then(|t| t));
                Ok(body(&mut rows))
            }),
            Engine::Pg(s) => pg::Cursor::open(s, sql.into().postgres(), params)?.walk(read, body),
        }
    }

    /// Runs statements without parameters, one after the other.
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self.0 {
            Engine::Sqlite(c) => Ok(c.connection().execute_batch(sql)?),
            Engine::Pg(s) => s.borrow_mut().batch(sql),
        }
    }

    /// Whether the transaction is PostgreSQL's: for the few statements whose parameters differ between the engines
    /// too (full-text search), not only their text.
    pub fn is_postgres(&self) -> bool {
        matches!(self.0, Engine::Pg(_))
    }

    /// The SQLite connection under the transaction, for what only SQLite has (the backup file, and the tests that
    /// read its query plans and step counts); `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self.0 {
            Engine::Sqlite(c) => Some(c.connection()),
            Engine::Pg(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Runs `f` in a transaction on SQLite, then on PostgreSQL when a test server is configured, over a table `t`.
    fn on_both_engines(f: impl Fn(&Tx)) {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        rusqlite::vtab::array::load_module(&conn).unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, key BLOB, n INTEGER); BEGIN")
            .unwrap();
        f(&Tx::on_sqlite(&Statements::new(&conn)));
        let Some(mut db) = pg::testing::Fresh::new() else {
            return;
        };
        let session = RefCell::new(db.session());
        session
            .borrow_mut()
            .batch(
                "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name TEXT UNIQUE, key BYTEA,
                                 n BIGINT);
                 BEGIN",
            )
            .unwrap();
        f(&Tx::on_postgres(&session));
        session.borrow_mut().batch("ROLLBACK").unwrap();
    }

    #[test]
    fn statements_held_for_later_run_in_order_and_a_failure_is_the_next_statements() {
        on_both_engines(|tx| {
            let insert = "INSERT INTO t (name, n) VALUES (?1, ?2)";
            tx.execute_later(insert, params!["held", 1]).unwrap();
            tx.execute_later("UPDATE t SET n = n + 1 WHERE name = ?1", params!["held"])
                .unwrap();
            let n: i64 = tx
                .query_row("SELECT n FROM t WHERE name = ?1", params!["held"], |r| r.get(0))
                .unwrap();
            assert_eq!(n, 2);
            // SQLite says so at once, PostgreSQL with the next statement, with the held statement's own error (not
            // that the transaction is aborted).
            let failed = tx
                .execute_later(insert, params!["held", 3])
                .and_then(|_| tx.query_row("SELECT count(*) FROM t", params![], |r| r.get::<i64>(0)));
            let e = failed.unwrap_err();
            match tx.is_postgres() {
                true => {
                    assert_eq!(e.code, crate::error::Code::Duplicate, "{}", e.message);
                    assert!(e.message.contains("duplicate key"), "{}", e.message);
                }
                false => assert!(e.message.contains("UNIQUE constraint failed"), "{}", e.message),
            }
        });
    }

    #[test]
    fn parameters_of_every_kind_bind_and_read_back() {
        on_both_engines(|tx| {
            let key = [7u8; 16];
            let none: Option<&str> = None;
            let insert = "INSERT INTO t (name, key, n) VALUES (?1, ?2, ?3)";
            assert_eq!(tx.execute(insert, params!["a", key, 3u32]).unwrap(), 1);
            tx.execute(insert, params![none, vec![1u8], true]).unwrap();
            let rows = tx
                .rows("SELECT id, name, key, n FROM t ORDER BY id", params![], |r| {
                    Ok((
                        r.get::<i64>(0)?,
                        r.get::<Option<String>>(1)?,
                        r.blob(2)?.to_vec(),
                        r.get::<u32>(3)?,
                    ))
                })
                .unwrap();
            assert_eq!(rows, [(1, Some("a".into()), key.to_vec(), 3), (2, None, vec![1], 1)]);
            let listed = Sql::Dialects(
                "SELECT id FROM t WHERE id IN rarray(?1) ORDER BY id",
                "SELECT id FROM t WHERE id = ANY(?1) ORDER BY id",
            );
            assert_eq!(
                tx.rows(listed, params![Ids::new([2, 9])], |r| r.get::<i64>(0)).unwrap(),
                [2]
            );
            // Bare `?` are numbered as SQLite numbers them; a boolean reads as 0 or 1 on both engines.
            let (n, yes): (i64, bool) = tx
                .query_row(
                    "SELECT count(*), count(*) > 1 FROM t WHERE n >= ? AND id <= ?",
                    params![1, 2],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((n, yes), (2, true));
        })
    }

    #[test]
    fn missing_rows_unique_violations_and_early_stops_are_told_apart() {
        on_both_engines(|tx| {
            assert_eq!(
                tx.query_opt("SELECT id FROM t", params![], |r| r.get::<i64>(0))
                    .unwrap(),
                None
            );
            assert!(tx
                .query_row("SELECT id FROM t", params![], |r| r.get::<i64>(0))
                .is_err());
            let insert = "INSERT INTO t (name) VALUES (?1) RETURNING id";
            let id = |r: &Row| r.get::<i64>(0);
            assert_eq!(tx.insert_unique(insert, params!["x"], id).unwrap(), Some(1));
            assert_eq!(tx.insert_unique(insert, params!["x"], id).unwrap(), None);
            let rename = "UPDATE t SET name = ?1 WHERE name = ?2";
            assert_eq!(tx.execute_unique(rename, params!["y", "x"]).unwrap(), Some(1));
            tx.insert_unique(insert, params!["x"], id).unwrap().unwrap();
            assert_eq!(tx.execute_unique(rename, params!["y", "x"]).unwrap(), None);
            // The transaction goes on after a refused row, with what came before it.
            for n in 0..200 {
                tx.insert_unique(insert, params![format!("n{n}")], id).unwrap().unwrap();
            }
            let mut seen = 0;
            tx.each("SELECT id FROM t ORDER BY id", params![], |_| {
                seen += 1;
                Ok(seen < 3)
            })
            .unwrap();
            assert_eq!(seen, 3);
            // Two scans walked side by side, each stopped early, past a batch of the cursor.
            let ids = "SELECT id FROM t ORDER BY id";
            let pairs = tx
                .scan(
                    ids,
                    params![],
                    |r| r.get::<i64>(0),
                    |a| {
                        tx.scan(
                            ids,
                            params![],
                            |r| r.get::<i64>(0),
                            |b| {
                                a.zip(b.skip(1))
                                    .take(150)
                                    .map(|(x, y)| Ok((x?, y?)))
                                    .collect::<Result<Vec<_>>>()
                            },
                        )
                    },
                )
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(pairs.len(), 150);
            assert!(pairs.iter().all(|(x, y)| x < y));
            // Scans one after the other of queries with other columns each read their own rows.
            for (sql, want) in [
                ("SELECT id FROM t WHERE id = 1", "1"),
                ("SELECT name, id FROM t WHERE id = 1", "y"),
                ("SELECT id FROM t WHERE id = 1", "1"),
            ] {
                let text = |r: &Row| match r.cell(0)? {
                    Cell::Int(n) => Ok(n.to_string()),
                    Cell::Text(t) => Ok(t.to_string()),
                    _ => Err(Error::internal("another kind")),
                };
                let first = tx.scan(sql, params![], text, |rows| rows.next()).unwrap();
                assert_eq!(first.unwrap().unwrap(), want, "{sql}");
            }
            // A wrong kind is an error, not a panic.
            assert!(tx.query_row("SELECT 'text'", params![], |r| r.get::<i64>(0)).is_err());
        })
    }
}
