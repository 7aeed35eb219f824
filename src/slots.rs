//! Connection slots: how many connections the server serves at once, in all and per client address, and which
//! connection gives way when they run out.
//!
//! A connection holds a slot from accept to close. When a new connection finds no slot (the server is full, or its
//! address holds its share), the connection that has been idle the longest — no request in flight: a keep-alive
//! connection between requests, or one that has not sent a request yet — is asked to close (hyper's graceful
//! shutdown: it closes at once when idle, after its answer otherwise) and the new one takes its place. So clients
//! that keep connections open without using them cannot keep anyone else out. When nothing is idle, a server that is
//! full stops accepting until a slot frees (clients wait in the listen backlog), and an address that holds its share
//! of busy connections has its new connection closed at once.
//!
//! The table holds one entry per open connection and one per address with open connections: both are bounded by the
//! connection limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

/// How long a connection asked to close to make room may take to finish its answer before it is dropped.
pub const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// The slots of one server.
pub struct Slots {
    max: usize,
    per_address: usize,
    epoch: Instant,
    table: Mutex<Table>,
    /// Woken when a connection closes, and when one goes idle while someone waits for a slot.
    changed: Notify,
    /// Whether the accept loop waits for a slot (so a request that ends only wakes it then).
    waiting: AtomicBool,
}

#[derive(Default)]
struct Table {
    conns: HashMap<u64, Arc<Conn>>,
    per_address: HashMap<IpAddr, usize>,
    next_id: u64,
}

/// What the slots know of one open connection.
pub struct Conn {
    id: u64,
    address: IpAddr,
    /// Requests being answered on this connection (0 or 1 for HTTP/1.1 without pipelining).
    busy: AtomicU32,
    /// Milliseconds since the slots' epoch when the connection last went idle.
    idle_since: AtomicU64,
    /// Set when the connection was asked to close to make room.
    evicted: AtomicBool,
    /// Notified once to ask the connection to close.
    pub close: Notify,
}

/// A slot held by a connection; dropping it frees the slot.
pub struct Slot {
    slots: Arc<Slots>,
    pub conn: Arc<Conn>,
}

/// What [`Slots::admit`] decided for a new connection.
pub enum Admission {
    Admitted(Slot),
    /// The address holds its share of busy connections: close the new one.
    Refused,
    /// Nothing is free and nothing idle can give way: wait for [`Slots::changed`], then ask again.
    Wait,
}

/// A request in flight on a connection, from the start of its handling to its answer; see [`Conn::begin`].
pub struct InFlight<'a> {
    slots: &'a Slots,
    conn: &'a Conn,
}

impl Slots {
    /// `max` connections at once, at most `per_address` of them from one client address (0: no cap but `max`).
    pub fn new(max: usize, per_address: usize) -> Slots {
        let max = max.max(1);
        let per_address = if per_address == 0 { max } else { per_address.min(max) };
        Slots {
            max,
            per_address,
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
            changed: Notify::new(),
            waiting: AtomicBool::new(false),
        }
    }

    /// Gives a new connection from `address` a slot, asking the longest-idle connection to close when none is
    /// free (one of the same address when the address holds its share).
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Admission {
        let Ok(mut table) = self.table.lock() else {
            return Admission::Refused;
        };
        let mine = table.per_address.get(&address).copied().unwrap_or(0);
        let full = table.conns.len() >= self.max;
        if mine < self.per_address && !full {
            table.next_id += 1;
            let conn = Arc::new(Conn {
                id: table.next_id,
                address,
                busy: AtomicU32::new(0),
                idle_since: AtomicU64::new(self.millis()),
                evicted: AtomicBool::new(false),
                close: Notify::new(),
            });
            table.conns.insert(conn.id, conn.clone());
            *table.per_address.entry(address).or_default() += 1;
            return Admission::Admitted(Slot {
                slots: self.clone(),
                conn,
            });
        }
        // Room is needed: from this address when it holds its share (a share smaller than the whole), from anyone
        // otherwise.
        let scope = (mine >= self.per_address && self.per_address < self.max).then_some(address);
        let in_scope = |c: &&Arc<Conn>| scope.is_none_or(|a| c.address == a);
        if table
            .conns
            .values()
            .filter(in_scope)
            .any(|c| c.evicted.load(Ordering::Acquire))
        {
            // One is closing already; its slot is the one to wait for.
            return Admission::Wait;
        }
        let idle = table
            .conns
            .values()
            .filter(in_scope)
            .filter(|c| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire));
        match (idle, scope) {
            (Some(conn), _) => {
                conn.evicted.store(true, Ordering::Release);
                conn.close.notify_one();
                Admission::Wait
            }
            (None, Some(_)) => Admission::Refused,
            (None, None) => Admission::Wait,
        }
    }

    /// Waits until a connection closes or goes idle. Create the future before calling [`Slots::admit`] and await it
    /// after a [`Admission::Wait`], so no change in between is missed.
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.waiting.store(true, Ordering::Release);
        self.changed.notified()
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table.lock().map_or(0, |t| t.conns.len())
    }

    /// Connections with a request in flight now.
    pub fn busy(&self) -> usize {
        self.table.lock().map_or(0, |t| {
            t.conns.values().filter(|c| c.busy.load(Ordering::Acquire) > 0).count()
        })
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn wake(&self) {
        if self.waiting.swap(false, Ordering::AcqRel) {
            self.changed.notify_waiters();
        }
    }
}

impl Conn {
    /// Marks a request in flight until the returned guard drops (also when the request's future is dropped).
    pub fn begin<'a>(&'a self, slots: &'a Slots) -> InFlight<'a> {
        self.busy.fetch_add(1, Ordering::AcqRel);
        InFlight { slots, conn: self }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.conn.idle_since.store(self.slots.millis(), Ordering::Release);
        if self.conn.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.slots.wake();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut table) = self.slots.table.lock() {
            table.conns.remove(&self.conn.id);
            if let Some(n) = table.per_address.get_mut(&self.conn.address) {
                *n -= 1;
                if *n == 0 {
                    table.per_address.remove(&self.conn.address);
                }
            }
        }
        self.slots.waiting.store(false, Ordering::Release);
        self.slots.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn admitted(a: Admission) -> Slot {
        match a {
            Admission::Admitted(s) => s,
            Admission::Refused => panic!("refused"),
            Admission::Wait => panic!("wait"),
        }
    }

    #[test]
    fn a_full_server_asks_the_longest_idle_connection_to_close() {
        let slots = Arc::new(Slots::new(2, 0));
        let first = admitted(slots.admit(ip(1)));
        let second = admitted(slots.admit(ip(1)));
        let busy = second.conn.begin(&slots);
        assert!(matches!(slots.admit(ip(2)), Admission::Wait));
        assert!(first.conn.evicted.load(Ordering::Acquire));
        assert!(!second.conn.evicted.load(Ordering::Acquire));
        // While the first closes, nobody else is asked to.
        drop(busy);
        assert!(matches!(slots.admit(ip(2)), Admission::Wait));
        assert!(!second.conn.evicted.load(Ordering::Acquire));
        drop(first);
        let third = admitted(slots.admit(ip(2)));
        assert_eq!(slots.open(), 2);
        drop((second, third));
        assert_eq!(slots.open(), 0);
    }

    #[test]
    fn a_full_server_with_every_connection_busy_waits() {
        let slots = Arc::new(Slots::new(1, 0));
        let only = admitted(slots.admit(ip(1)));
        let _busy = only.conn.begin(&slots);
        assert!(matches!(slots.admit(ip(2)), Admission::Wait));
        assert!(!only.conn.evicted.load(Ordering::Acquire));
    }

    #[test]
    fn an_address_at_its_share_gives_way_itself_or_is_refused() {
        let slots = Arc::new(Slots::new(10, 2));
        let a1 = admitted(slots.admit(ip(1)));
        let a2 = admitted(slots.admit(ip(1)));
        let other = admitted(slots.admit(ip(2)));
        let (_b1, _b2) = (a1.conn.begin(&slots), a2.conn.begin(&slots));
        // Both of the address's connections are busy: its third is refused, and nobody else's is touched.
        assert!(matches!(slots.admit(ip(1)), Admission::Refused));
        assert!(!other.conn.evicted.load(Ordering::Acquire));
        // Others still get in.
        let _more = admitted(slots.admit(ip(3)));
        drop(_b2);
        assert!(matches!(slots.admit(ip(1)), Admission::Wait));
        assert!(a2.conn.evicted.load(Ordering::Acquire));
    }

    #[test]
    fn the_table_forgets_closed_connections_and_their_addresses() {
        let slots = Arc::new(Slots::new(4, 0));
        let held: Vec<Slot> = (1..=4).map(|n| admitted(slots.admit(ip(n)))).collect();
        drop(held);
        let table = slots.table.lock().unwrap();
        assert!(table.conns.is_empty() && table.per_address.is_empty());
    }
}
