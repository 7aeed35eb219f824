//! A SQLite connection's prepared statements, found by where their text is rather than by hashing it.
//!
//! Nearly every statement's text is a literal or built once (`cached_sql!`), so it is at the same address with the
//! same length on every call. [`Statements`] finds a statement by that address and length first, and compares the
//! text (a short `memcmp`) before it trusts the match; only a text at an address not seen before is looked up by
//! its content (a hash of it, as rusqlite's own cache does on every call) and, when new, prepared. Statements are
//! kept for the life of the connection, at most [`MOST`] of them: past that the cache starts again, empty.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use rusqlite::{Connection, PrepFlags, Statement};

use crate::error::Result;

/// Most statements a connection keeps prepared; texts at other addresses are remembered up to four times as many.
const MOST: usize = 256;

/// What a transaction runs its SQLite statements on (see [`crate::db::Tx::on_sqlite`]): a connection and its
/// prepared statements. A trait so that a transaction can hold it without naming the connection's lifetime.
pub trait Prepare {
    /// The connection.
    fn connection(&self) -> &Connection;

    /// Runs `f` on the statement of `sql`, prepared once and kept. A statement in use (a query run inside another
    /// query of the same text) is prepared again for the inner one, and not kept.
    fn with_statement(&self, sql: &str, f: &mut dyn FnMut(&mut Statement<'_>) -> Result<()>) -> Result<()>;
}

/// The prepared statements of one connection (one per database thread, and the writer's).
pub struct Statements<'c> {
    conn: &'c Connection,
    cache: RefCell<Cache<'c>>,
}

#[derive(Default)]
struct Cache<'c> {
    slots: Vec<Slot<'c>>,
    /// A text's address and length, to its slot.
    by_address: HashMap<(usize, usize), usize, BuildHasherDefault<AddressHasher>>,
    /// A text, to its slot: for a text at an address not seen before.
    by_text: HashMap<Rc<str>, usize>,
}

struct Slot<'c> {
    text: Rc<str>,
    /// `None` while the statement is in use.
    statement: Option<Statement<'c>>,
}

/// A statement taken from the cache for one use; put back when dropped (a panic in the use included), unless the
/// cache was emptied meanwhile.
struct Lease<'s, 'c> {
    home: &'s Statements<'c>,
    /// The slot it goes back to, with the slot's text (the same `Rc`: the slot was not emptied and taken by another
    /// text meanwhile); `None` for a statement that is not kept.
    slot: Option<(usize, Rc<str>)>,
    statement: Option<Statement<'c>>,
}

impl Drop for Lease<'_, '_> {
    fn drop(&mut self) {
        let (Some((i, text)), Some(mut statement)) = (self.slot.take(), self.statement.take()) else {
            return;
        };
        statement.clear_bindings();
        let mut cache = self.home.cache.borrow_mut();
        if let Some(slot) = cache.slots.get_mut(i) {
            if slot.statement.is_none() && Rc::ptr_eq(&slot.text, &text) {
                slot.statement = Some(statement);
            }
        }
    }
}

impl<'c> Statements<'c> {
    pub fn new(conn: &'c Connection) -> Statements<'c> {
        Statements {
            conn,
            cache: RefCell::default(),
        }
    }

    /// The statement of `sql`, from the cache or prepared.
    fn lease(&self, sql: &str) -> Result<Lease<'_, 'c>> {
        let address = (sql.as_ptr() as usize, sql.len());
        let found = {
            let mut cache = self.cache.borrow_mut();
            let cache = &mut *cache;
            let slot = match cache.by_address.get(&address) {
                Some(&i) if cache.slots.get(i).is_some_and(|s| *s.text == *sql) => Some(i),
                _ => cache.by_text.get(sql).copied().inspect(|&i| {
                    if cache.by_address.len() >= 4 * MOST {
                        cache.by_address.clear();
                    }
                    cache.by_address.insert(address, i);
                }),
            };
            slot.and_then(|i| cache.slots.get_mut(i).map(|s| (i, s.text.clone(), s.statement.take())))
        };
        let slot = match found {
            Some((i, text, Some(statement))) => {
                return Ok(Lease {
                    home: self,
                    slot: Some((i, text)),
                    statement: Some(statement),
                })
            }
            // In use by a query this one runs inside: one of its own, dropped after.
            Some((_, _, None)) => None,
            None => Some(()),
        };
        let statement = self
            .conn
            .prepare_with_flags(sql, PrepFlags::SQLITE_PREPARE_PERSISTENT)?;
        let slot = match slot {
            None => None,
            Some(()) => {
                let mut cache = self.cache.borrow_mut();
                if cache.slots.len() >= MOST {
                    *cache = Cache::default();
                }
                let i = cache.slots.len();
                let text: Rc<str> = Rc::from(sql);
                cache.slots.push(Slot {
                    text: text.clone(),
                    statement: None,
                });
                cache.by_text.insert(text.clone(), i);
                cache.by_address.insert(address, i);
                Some((i, text))
            }
        };
        Ok(Lease {
            home: self,
            slot,
            statement: Some(statement),
        })
    }
}

impl Prepare for Statements<'_> {
    fn connection(&self) -> &Connection {
        self.conn
    }

    fn with_statement(&self, sql: &str, f: &mut dyn FnMut(&mut Statement<'_>) -> Result<()>) -> Result<()> {
        let mut lease = self.lease(sql)?;
        match lease.statement.as_mut() {
            Some(statement) => f(statement),
            None => Err(crate::error::Error::internal("database: a statement was lost")),
        }
    }
}

/// The hash of a text's address and length: two words, mixed by a multiplication (as rustc's FxHash does).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{params, Tx};

    fn one(tx: &Tx, sql: &str) -> i64 {
        tx.query_row(sql, params![], |r| r.get(0)).unwrap()
    }

    #[test]
    fn statements_are_found_by_address_and_trusted_only_with_their_text() {
        let conn = Connection::open_in_memory().unwrap();
        let statements = Statements::new(&conn);
        let tx = Tx::on_sqlite(&statements);
        let slots = || statements.cache.borrow().slots.len();
        // Another text at the same address with the same length is not the first one's statement.
        let mut text = String::from("SELECT 1");
        assert_eq!(one(&tx, &text), 1);
        assert_eq!(one(&tx, &text), 1);
        text.replace_range(7.., "2");
        assert_eq!(one(&tx, &text), 2);
        assert_eq!(slots(), 2);
        // The same text at another address is found by its content, and kept once.
        let copy = text.clone();
        assert_eq!(one(&tx, &copy), 2);
        assert_eq!(slots(), 2);
        // A query run inside a query of the same text gets a statement of its own.
        let mut inner = Vec::new();
        tx.each("SELECT 5", params![], |_| {
            inner.push(one(&tx, "SELECT 5"));
            Ok(true)
        })
        .unwrap();
        assert_eq!(inner, [5]);
        assert_eq!(one(&tx, "SELECT 5"), 5);
        // More texts than are kept: the cache starts again, and every answer is still its own text's.
        for n in 0..MOST as i64 + 10 {
            assert_eq!(one(&tx, &format!("SELECT {n}")), n);
        }
        assert!(slots() <= MOST);
        assert_eq!(one(&tx, &text), 2);
    }
}
