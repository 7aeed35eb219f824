//! Typed records: what handlers answer. Each record is built once from its row and serialised in its native
//! types under the method's own field names (methods.md); each door renders it from there, straight to bytes:
//! the envelope through `rpc::Manageips` (every scalar a string, lists keyed by id), the REST door through its
//! views (`rest.rs`: REST names, RFC 3339 times). Neither builds a second tree.
//!
//! A list that the envelope keys by id says so by its type ([`Records`]); nothing is guessed from the items.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

/// Who last changed a record and when, in the seed's names and order; `created` is when the record was made.
#[derive(Debug, Clone, Serialize)]
pub struct Stamps {
    pub userid: Option<i64>,
    pub modifiedat: i64,
    pub user: String,
    pub email: Option<String>,
    pub realname: Option<String>,
    pub created: i64,
}

/// An address record (a host).
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub id: i64,
    /// The subnet's id.
    pub subnet: i64,
    /// The subnet's block, as CIDR text.
    pub network: String,
    pub ip: String,
    pub hostname: Option<String>,
    pub cname: Option<String>,
    pub mac_address: Option<String>,
    pub status: String,
    pub is_assigned: bool,
    /// Unix seconds.
    pub last_seen: Option<i64>,
    pub discovery_source: Option<String>,
    pub description: Option<String>,
    /// Custom field values by field name.
    pub fields: Map<String, Value>,
    /// Whether the record has field values to read into `fields` (see `addresses::with_fields`).
    #[serde(skip)]
    pub has_fields: bool,
    /// `None` in the brief record the REST door shows (`search/ip` with `brief`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub stamps: Option<Stamps>,
}

/// A subnet with its address counts (exact: IPv6 counts pass 2^64).
#[derive(Debug, Clone, Serialize)]
pub struct Subnet {
    pub id: i64,
    pub group: Option<i64>,
    /// The block, as CIDR text.
    pub subnet: String,
    pub network: String,
    pub cidr: u8,
    pub broadcast: String,
    pub family: u8,
    pub name: Option<String>,
    pub description: Option<String>,
    pub domain: Option<String>,
    pub vlan_id: Option<i64>,
    pub location: Option<String>,
    pub total_hosts: u128,
    pub used_hosts: i64,
    pub available_hosts: u128,
    #[serde(flatten)]
    pub stamps: Stamps,
    /// The subnet's address records, when asked for (`subnets/get` with `addresses`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Records<Host>>,
    /// The subnet's field definitions, when asked for (`subnets/get` with `fields`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Records<Value>>,
}

/// A DHCP range of a subnet.
#[derive(Debug, Clone, Serialize)]
pub struct DhcpRange {
    pub id: i64,
    pub subnet: i64,
    /// The same as `subnet`, under the name the REST API gives it.
    pub network_id: i64,
    pub start_ip: String,
    pub end_ip: String,
    pub description: Option<String>,
    pub is_active: bool,
    #[serde(flatten)]
    pub stamps: Stamps,
}

/// A backup file.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// The name again: the envelope lists backups keyed by it.
    pub id: String,
    pub name: String,
    pub size_bytes: u64,
    /// RFC 3339.
    pub created_at: String,
}

/// A subnet found by a search, with how it holds the address or block searched for (`search/ip`; none for a
/// `search/find` text match).
#[derive(Debug, Clone, Serialize)]
pub struct Holding {
    #[serde(flatten)]
    pub subnet: Subnet,
    /// `equal`, `contains` or `within`.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub matched: Option<&'static str>,
}

/// `search/ip` without `status`: the subnets, address records and DHCP ranges at an address or block.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub subnets: Records<Holding>,
    pub addresses: Records<Host>,
    pub dhcpranges: Records<DhcpRange>,
    /// Whether some kind had more than the limit (shown only then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// `search/find`: groups, subnets and address records whose text matches.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub groups: Records<Value>,
    pub subnets: Records<Holding>,
    pub addresses: Records<Host>,
    pub truncated: bool,
}

/// `search/ip` with `status`: where an address lives and what it is.
#[derive(Debug, Clone, Serialize)]
pub struct IpStatus {
    pub ip: String,
    /// How many subnets hold the address.
    pub matches: usize,
    /// The subnet that answers (absent for a brief answer about an assigned address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Holding>,
    /// `assigned`, `dhcp`, `available`, `unusable` or `unmanaged`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dhcp_range: Option<DhcpRange>,
}

/// The key a record is listed under in the envelope.
pub trait Keyed {
    type Key<'a>: Serialize
    where
        Self: 'a;
    fn key(&self) -> Self::Key<'_>;
}

/// Records keyed by their numeric `id`.
macro_rules! keyed_by_id {
    ($($t:ty),*) => {$(
        impl Keyed for $t {
            type Key<'a> = i64;
            fn key(&self) -> i64 {
                self.id
            }
        }
    )*};
}

keyed_by_id!(Host, Subnet, DhcpRange);

impl Keyed for Holding {
    type Key<'a> = i64;
    fn key(&self) -> i64 {
        self.subnet.id
    }
}

/// A record not typed yet (a field definition): keyed by its `id`.
impl Keyed for Value {
    type Key<'a> = &'a Value;
    fn key(&self) -> &Value {
        &self["id"]
    }
}

impl Keyed for Backup {
    type Key<'a> = &'a str;
    fn key(&self) -> &str {
        &self.id
    }
}

/// Records the envelope lists keyed by id (`{"7": {…}, "9": {…}}`, in order); no records are `[]`.
#[derive(Debug, Clone)]
pub struct Records<T>(pub Vec<T>);

impl<T: Keyed + Serialize> Serialize for Records<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return s.collect_seq(&self.0);
        }
        let mut keyed = s.serialize_map(Some(self.0.len()))?;
        for r in &self.0 {
            keyed.serialize_entry(&r.key(), r)?;
        }
        keyed.end()
    }
}

/// The position of a page in a list, as the envelope shows it beside the records.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Page {
    pub page: i64,
    pub perpage: i64,
    pub pages: i64,
    pub total: i64,
}

/// A list method's answer: its records, or with paging a page of them (`{page, perpage, pages, total, <key>:
/// records}`).
#[derive(Debug, Clone)]
pub struct List<T> {
    pub records: Records<T>,
    pub page: Option<Page>,
    /// The name of the records in a page.
    pub key: &'static str,
    /// The subnet a page of address records belongs to (`ipaddress/get` with `subnet` and paging), shown after them.
    pub within: Option<Box<Subnet>>,
}

impl<T> List<T> {
    pub fn of(records: Vec<T>, key: &'static str) -> List<T> {
        List {
            records: Records(records),
            page: None,
            key,
            within: None,
        }
    }

    /// The first record: a lookup's one record.
    pub fn first(&self) -> Option<&T> {
        self.records.0.first()
    }
}

impl<T: Keyed + Serialize> Serialize for List<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(p) = self.page else {
            return self.records.serialize(s);
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("page", &p.page)?;
        m.serialize_entry("perpage", &p.perpage)?;
        m.serialize_entry("pages", &p.pages)?;
        m.serialize_entry("total", &p.total)?;
        m.serialize_entry(self.key, &self.records)?;
        if let Some(subnet) = &self.within {
            m.serialize_entry("subnet", subnet)?;
        }
        m.end()
    }
}

/// `ipaddress/next`: the next free address of a subnet.
#[derive(Debug, Clone, Serialize)]
pub struct Next {
    pub ip: String,
    pub subnet: i64,
    pub network: String,
}

/// `ipaddress/available`: free addresses of a subnet, and how many it has in all.
#[derive(Debug, Clone, Serialize)]
pub struct Available {
    pub subnet: i64,
    pub network: String,
    pub total_available: u128,
    pub addresses: Vec<String>,
}

/// What a handler answers.
#[derive(Debug)]
pub enum Reply {
    Hosts(List<Host>),
    Subnets(List<Subnet>),
    Ranges(List<DhcpRange>),
    Backups(List<Backup>),
    Next(Next),
    Available(Available),
    IpStatus(Box<IpStatus>),
    Located(Located),
    Found(Found),
    /// Any other answer, as JSON in native types.
    Json(Value),
}

/// `From` each answer a handler may give into its [`Reply`].
macro_rules! replies {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for Reply {
            fn from(v: $t) -> Reply {
                Reply::$variant(v)
            }
        }
    )*};
}

replies! {
    List<Host> => Hosts,
    List<Subnet> => Subnets,
    List<DhcpRange> => Ranges,
    List<Backup> => Backups,
    Next => Next,
    Available => Available,
    Located => Located,
    Found => Found,
    Value => Json,
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Reply::Hosts(l) => l.serialize(s),
            Reply::Subnets(l) => l.serialize(s),
            Reply::Ranges(l) => l.serialize(s),
            Reply::Backups(l) => l.serialize(s),
            Reply::Next(n) => n.serialize(s),
            Reply::Available(a) => a.serialize(s),
            Reply::IpStatus(i) => i.serialize(s),
            Reply::Located(l) => l.serialize(s),
            Reply::Found(f) => f.serialize(s),
            Reply::Json(v) => v.serialize(s),
        }
    }
}
