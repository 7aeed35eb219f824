//! Typed records: what handlers answer. Each record is built once from its row and serialised in its native
//! types under the method's own field names (methods.md); each door renders it from there, straight to bytes:
//! the envelope through `rpc::Manageips` (every scalar a string, lists keyed by id; groups and address records by a
//! hand-written twin of it, `rpc/by_hand.rs`, which must change with [`Group`], [`Host`] and [`Stamps`]), the REST door through its
//! views (`rest.rs`: REST names, RFC 3339 times). Neither builds a second tree.
//!
//! Every answer is one of these types ([`Reply`]), never a JSON tree: a list that the envelope keys by id says so
//! by its type ([`Records`]), and nothing is guessed from the items. A `Value` appears only where the content is
//! free-form (an address record's field values, an audit entry's `changes`), never as a list of records.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};

/// Who last changed a record and when, in the seed's names and order; `created` is when the record was made, and
/// `version` counts its changes (methods.md, Versions).
#[derive(Debug, Clone, Serialize)]
pub struct Stamps {
    pub userid: Option<i64>,
    pub modifiedat: i64,
    pub user: String,
    pub email: Option<String>,
    pub realname: Option<String>,
    pub created: i64,
    pub version: i64,
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
    /// The broadcast address: the last of an IPv4 block of /30 or shorter. A /31 or /32 has none (RFC 3021), nor
    /// has IPv6.
    pub broadcast: Option<String>,
    pub family: u8,
    pub name: Option<String>,
    pub description: Option<String>,
    pub domain: Option<String>,
    pub vlan_id: Option<i64>,
    pub location: Option<String>,
    pub total_hosts: u128,
    pub used_hosts: i64,
    pub available_hosts: u128,
    /// Whether the subnet is a pool, which holds child subnets instead of address records.
    pub pool: bool,
    /// The pool the subnet lies in (`null` at the top).
    pub parent: Option<i64>,
    /// How many subnets name it as their pool.
    pub children: i64,
    /// A pool's addresses its children hold, exact (absent for a subnet that is not a pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covered: Option<u128>,
    #[serde(flatten)]
    pub stamps: Stamps,
    /// The pools holding the subnet, innermost first, when asked for (`subnets/get` with `tree`, `search/ip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pools: Option<Vec<PoolRef>>,
    /// A pool's subtree, when asked for (`subnets/get` with `tree`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnets: Option<Records<Subnet>>,
    /// The subnet's address records, when asked for (`subnets/get` with `addresses`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Records<Host>>,
    /// The subnet's field definitions, when asked for (`subnets/get` with `fields`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Records<FieldDef>>,
}

/// A pool holding a subnet: its id and block.
#[derive(Debug, Clone, Serialize)]
pub struct PoolRef {
    pub id: i64,
    pub subnet: String,
}

/// `subnets/available`: the free space of a pool as its largest aligned free blocks.
#[derive(Debug, Clone, Serialize)]
pub struct FreeBlocks {
    pub subnet: i64,
    pub network: String,
    /// The prefix length asked for, if any: then `blocks` holds only blocks that can hold one, and `free` counts
    /// the free blocks of that length.
    pub cidr: Option<u8>,
    /// The free blocks of length `cidr`, exact; absent without `cidr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free: Option<u128>,
    /// The addresses no child holds, exact.
    pub total_free: u128,
    /// The shortest prefix length free, `null` when the pool is full.
    pub largest: Option<u8>,
    pub blocks: Vec<String>,
}

/// The most records one `ipaddress/add` with `count` allocates: one call's transaction, and one reply, stay small.
pub const MAX_BULK: i64 = 1000;

/// `ipaddress/add` with `count`: the records of a bulk allocation, in address order. The envelope shows them as
/// any list of records; REST as a list even when there is one.
#[derive(Debug)]
pub struct Allocated(pub List<Host>);

/// `subnets/join`: the surviving subnet, and the ids of the subnets it absorbed.
#[derive(Debug, Clone, Serialize)]
pub struct Joined {
    #[serde(flatten)]
    pub subnet: Subnet,
    pub joined: Vec<i64>,
}

/// A custom field definition of a subnet (`subnets/fields/*`).
#[derive(Debug, Clone, Serialize)]
pub struct FieldDef {
    pub id: i64,
    /// The subnet's id.
    pub subnet: i64,
    pub name: String,
    pub description: Option<String>,
    /// `text`, `number`, `boolean` or `select`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The choices of a `select` field (none for the other types).
    pub options: Vec<String>,
    /// The value a record without one takes, as stored text.
    pub default: Option<String>,
    pub required: bool,
    pub position: i64,
    #[serde(flatten)]
    pub stamps: Stamps,
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
    pub groups: Records<Group>,
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
    /// The pools holding the answering subnet (or, unmanaged, the address), innermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolRef>,
}

/// A user of an org (`org/users/*`); the password hash never leaves the server.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub realname: Option<String>,
    /// `readonly`, `standard` or `admin`.
    pub level: String,
    pub disabled: bool,
    pub created: i64,
    pub lastlogin: Option<i64>,
    pub version: i64,
}

/// An application key (`org/appkeys/*`): its digest never leaves the server.
#[derive(Debug, Clone, Serialize)]
pub struct AppKey {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    pub enabled: bool,
    pub disabledreason: Option<String>,
    /// The owner's user id.
    pub owner: i64,
    pub created: i64,
    pub lastused: Option<i64>,
    pub version: i64,
    /// The key itself: only in the reply that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A REST API token (`org/tokens/*`): its digest never leaves the server.
#[derive(Debug, Clone, Serialize)]
pub struct Token {
    pub id: i64,
    pub description: Option<String>,
    /// The token's first characters, to recognise it.
    pub prefix: String,
    /// The id of the user it acts as.
    pub user: i64,
    pub created: i64,
    /// Unix seconds; `None` never expires.
    pub expires: Option<i64>,
    pub lastused: Option<i64>,
    pub version: i64,
    /// The token itself: only in the reply that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// A group of subnets (`groups/*`, `search/find`).
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: i64,
    pub description: String,
    #[serde(flatten)]
    pub stamps: Stamps,
    /// The parent group's id; `None` at the top level.
    pub parent: Option<i64>,
    pub subnetcount: i64,
    pub childcount: i64,
    /// The child groups, in a tree (`groups/get` with `sort`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Records<Group>>,
}

/// What names an org: how `userdata` shows the caller's.
#[derive(Debug, Clone, Serialize)]
pub struct OrgName {
    pub id: i64,
    pub identifier: String,
    pub description: String,
}

/// An organisation (`org/edit`).
#[derive(Debug, Clone, Serialize)]
pub struct Org {
    #[serde(flatten)]
    pub name: OrgName,
    pub created: i64,
    /// Whether it is the operator org, whose admins manage backups.
    pub operator: bool,
}

/// `org/info`: the caller's org and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct OrgInfo {
    #[serde(flatten)]
    pub org: Org,
    pub usercount: i64,
    pub groupcount: i64,
    pub subnetcount: i64,
    /// Address records in all.
    pub ipcount: i64,
}

/// An entry of the audit log (`org/logs`).
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub id: i64,
    /// Unix seconds.
    pub time: i64,
    pub userid: Option<i64>,
    pub user: String,
    pub application: String,
    pub respid: String,
    pub method: String,
    pub objecttype: String,
    pub objectid: Option<i64>,
    pub summary: String,
    /// The method's own detail, free-form (methods.md documents each method's).
    pub changes: Option<Value>,
}

/// `org/logs`: a page of the audit log, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct LogPage {
    pub page: i64,
    /// Entries per page: the envelope does not show it, the REST door's pagination does.
    #[serde(skip)]
    pub perpage: i64,
    pub pages: i64,
    pub total: i64,
    pub logs: Records<LogEntry>,
}

/// An entry of the change feed (`changes/get`), and the `data` of a webhook's event.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeEntry {
    /// The feed's cursor at this entry: ask for `after` it to read on.
    pub cursor: i64,
    /// Unix seconds.
    pub time: i64,
    pub objecttype: String,
    pub objectid: Option<i64>,
    /// `added`, `edited`, `deleted`, `split`, `joined` or `restored`.
    pub action: String,
    pub summary: String,
    /// The changed fields as they were (the whole record for a delete), where known.
    pub before: Option<Value>,
    /// The changed fields as they are (the whole record for an add), where known.
    pub after: Option<Value>,
    /// The method's own detail, as in the audit log's `changes`.
    pub detail: Option<Value>,
    pub userid: Option<i64>,
    pub user: String,
    pub application: String,
    pub method: String,
    pub respid: String,
}

/// `changes/get`: the org's changes after a cursor, in commit order.
#[derive(Debug, Clone, Serialize)]
pub struct ChangePage {
    pub changes: Vec<ChangeEntry>,
    /// Where to read on: the last entry's cursor, or the cursor asked for when there was none.
    pub cursor: i64,
    /// Whether more changes follow at once.
    pub more: bool,
    /// Seconds the caller asked to wait for a change when there is none yet: the dispatcher waits for commits
    /// and asks again. Not part of the reply.
    #[serde(skip)]
    pub wait: u64,
}

/// A webhook subscription (`webhooks/*`).
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub description: String,
    /// The object types it is sent (empty: all).
    pub objecttypes: Vec<String>,
    /// The actions it is sent (empty: all).
    pub actions: Vec<String>,
    /// Only changes in this subnet.
    pub subnet: Option<i64>,
    /// Only changes in this group (its subnets, their addresses and ranges).
    pub group: Option<i64>,
    pub enabled: bool,
    pub created: i64,
    /// The signing secret: only in the reply of `webhooks/add`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One delivery of a change to a webhook, as its delivery log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub webhook: i64,
    /// The change's cursor in the feed.
    pub change: i64,
    /// `<objecttype>.<action>`.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// When a pending delivery is tried next, in unix milliseconds.
    pub next_attempt: i64,
    pub created: i64,
    pub updated: i64,
}

/// A deleted record, as a delete answers it.
#[derive(Debug, Clone, Serialize)]
pub struct Deleted {
    pub id: i64,
    /// Always true.
    pub deleted: bool,
}

/// Who a caller is, as `userdata` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Identity {
    User(User),
    /// An `API_TOKENS` operator token, which acts as the operator org's admin without being a user.
    Operator {
        /// No user: always `null`.
        id: (),
        username: String,
        level: &'static str,
    },
}

/// `userdata`: the caller and their org.
#[derive(Debug, Clone, Serialize)]
pub struct Userdata {
    pub user: Identity,
    pub org: OrgName,
}

/// `ping`: the server is up, and its time.
#[derive(Debug, Clone, Serialize)]
pub struct Ping {
    /// Always true.
    pub pong: bool,
    /// Unix seconds.
    pub servertime: i64,
    /// The caller's `time`, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// `version`: the API's version and the server's.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub version: &'static str,
    pub server: &'static str,
}

/// The integrity check of a backup file.
#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    pub integrity_ok: bool,
    /// SQLite's verdict: `ok`, or what is wrong.
    pub integrity_message: String,
}

/// `backups/add`: the backup taken, and its check.
#[derive(Debug, Clone, Serialize)]
pub struct NewBackup {
    #[serde(flatten)]
    pub backup: Backup,
    #[serde(flatten)]
    pub integrity: Integrity,
}

/// `backups/verify`: a backup's check.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub name: String,
    #[serde(flatten)]
    pub integrity: Integrity,
}

/// `backups/restore`: the backup restored, its check, and the safety backup taken before.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub name: String,
    /// Always true.
    pub restored: bool,
    #[serde(flatten)]
    pub integrity: Integrity,
    pub safety_backup: String,
}

/// The key a record is listed under in the envelope.
pub trait Keyed {
    type Key<'a>: Serialize
    where
        Self: 'a;
    fn key(&self) -> Self::Key<'_>;
}

/// Records keyed by a numeric id: their own, or that of the record they hold.
macro_rules! keyed_by {
    ($($t:ty => $($field:ident).+),* $(,)?) => {$(
        impl Keyed for $t {
            type Key<'a> = i64;
            fn key(&self) -> i64 {
                self.$($field).+
            }
        }
    )*};
}

keyed_by! {
    Host => id,
    Subnet => id,
    DhcpRange => id,
    FieldDef => id,
    User => id,
    AppKey => id,
    Token => id,
    Group => id,
    LogEntry => id,
    Webhook => id,
    Delivery => id,
    Deleted => id,
    Org => name.id,
    Holding => subnet.id,
    Joined => subnet.id,
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

/// One line of an export (`export/get`) and of an import (`import/run`): a network, an address record or a DHCP
/// range, under the same columns whatever the kind (CSV needs one header), the columns a kind does not use empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportRow {
    /// `network`, `address` or `dhcp_range`.
    pub kind: &'static str,
    /// The network's block (CIDR), for all three kinds: where an address or a range belongs.
    pub network: String,
    /// The network's group.
    pub group: Option<i64>,
    /// An address record's address; a range's first address.
    pub ip: Option<String>,
    /// A range's last address.
    pub end_ip: Option<String>,
    pub name: Option<String>,
    pub domain: Option<String>,
    pub vlan_id: Option<i64>,
    pub location: Option<String>,
    pub hostname: Option<String>,
    pub cname: Option<String>,
    pub mac_address: Option<String>,
    /// An address record's status; a range's `active` or `inactive`.
    pub status: Option<String>,
    pub description: Option<String>,
}

impl ExportRow {
    /// The columns, in the order of a CSV export's header.
    pub const COLUMNS: [&'static str; 14] = [
        "kind",
        "network",
        "group",
        "ip",
        "end_ip",
        "name",
        "domain",
        "vlan_id",
        "location",
        "hostname",
        "cname",
        "mac_address",
        "status",
        "description",
    ];

    /// The fields in the order of [`ExportRow::COLUMNS`], as text (empty for none).
    pub fn fields(&self) -> [std::borrow::Cow<'_, str>; 14] {
        use std::borrow::Cow;
        fn text(v: &Option<String>) -> Cow<'_, str> {
            Cow::Borrowed(v.as_deref().unwrap_or(""))
        }
        let number = |v: Option<i64>| v.map_or(Cow::Borrowed(""), |n| Cow::Owned(n.to_string()));
        [
            Cow::Borrowed(self.kind),
            Cow::Borrowed(self.network.as_str()),
            number(self.group),
            text(&self.ip),
            text(&self.end_ip),
            text(&self.name),
            text(&self.domain),
            number(self.vlan_id),
            text(&self.location),
            text(&self.hostname),
            text(&self.cname),
            text(&self.mac_address),
            text(&self.status),
            text(&self.description),
        ]
    }
}

/// `export/get`: a page of rows, and the cursor of the next page (`None` after the last).
#[derive(Debug, Clone, Serialize)]
pub struct ExportPage {
    /// `json` or `csv`: how the REST door and the command line write the rows.
    pub format: &'static str,
    pub rows: Vec<ExportRow>,
    pub next: Option<String>,
}

impl ExportPage {
    /// This page as one part of a whole export's text: CSV rows (the header before the first part's), or JSON, one
    /// array of rows across the parts, opened by the first part and closed by [`ExportPage::tail`].
    pub fn part(&self, first: bool) -> Vec<u8> {
        let mut out = String::new();
        match self.format {
            "csv" => {
                if first {
                    crate::csv::write_record(&mut out, ExportRow::COLUMNS);
                }
                for row in &self.rows {
                    crate::csv::write_record(&mut out, row.fields().iter().map(AsRef::as_ref));
                }
            }
            _ => {
                if first {
                    out.push('[');
                }
                for (i, row) in self.rows.iter().enumerate() {
                    out.push_str(if first && i == 0 { "\n" } else { ",\n" });
                    out.push_str(&serde_json::to_string(row).unwrap_or_default());
                }
            }
        }
        out.into_bytes()
    }

    /// What ends a whole export in `format`, after its last part.
    pub fn tail(format: &str) -> &'static [u8] {
        match format {
            "csv" => b"",
            _ => b"\n]\n",
        }
    }
}

/// `import/run`: what the rows did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    pub created: usize,
    pub updated: usize,
    pub refused: usize,
    pub rows: Vec<ImportRow>,
}

/// What one row of an import did: `created`, `updated` or `refused` (with the errors that refused it).
#[derive(Debug, Clone, Serialize)]
pub struct ImportRow {
    /// The row's number: its line in a CSV text, its index (from 1) in a JSON list.
    pub row: usize,
    pub kind: &'static str,
    pub action: &'static str,
    /// The record created or updated.
    pub id: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RowError>,
}

/// Why a row was refused: the column (as the input names it, when one is to blame), the error's code and message.
#[derive(Debug, Clone, Serialize)]
pub struct RowError {
    pub column: Option<String>,
    pub code: &'static str,
    pub message: String,
}

/// `output/get`: a DNS or DHCP server's configuration, generated from records, and the records left out of it.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    pub format: &'static str,
    /// The media type of `text` (`text/plain`, or `application/json` for Kea's).
    pub content_type: &'static str,
    pub text: String,
    pub skipped: Vec<Skipped>,
}

/// An address record `output/get` left out, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub id: i64,
    pub ip: String,
    pub reason: &'static str,
}

/// `ipaddress/available`: free addresses of a subnet, and how many it has in all.
#[derive(Debug, Clone, Serialize)]
pub struct Available {
    pub subnet: i64,
    pub network: String,
    pub total_available: u128,
    pub addresses: Vec<String>,
}

/// What a handler answers: one variant per kind of answer, so that each door renders it by its type (the big ones
/// boxed, to keep a `Reply` small).
#[derive(Debug)]
pub enum Reply {
    Hosts(List<Host>),
    Subnets(List<Subnet>),
    Ranges(List<DhcpRange>),
    Backups(List<Backup>),
    Next(Next),
    Available(Available),
    FreeBlocks(Box<FreeBlocks>),
    Allocated(Allocated),
    IpStatus(Box<IpStatus>),
    Located(Located),
    Found(Found),
    Joined(Records<Joined>),
    Fields(List<FieldDef>),
    Users(List<User>),
    AppKeys(List<AppKey>),
    Tokens(List<Token>),
    Groups(List<Group>),
    Orgs(Records<Org>),
    OrgInfo(Box<OrgInfo>),
    Logs(LogPage),
    Changes(ChangePage),
    Webhooks(Records<Webhook>),
    Deliveries(Records<Delivery>),
    Deleted(Records<Deleted>),
    Userdata(Box<Userdata>),
    Ping(Ping),
    Version(Version),
    NewBackup(Box<NewBackup>),
    Verified(Verified),
    Restored(Restored),
    Exported(ExportPage),
    Imported(Box<ImportReport>),
    Generated(Box<Generated>),
    /// The stored answer of an earlier request with the same idempotency key, given again instead of running the
    /// handler (`idempotency::once`): the server sends it as it was, whichever door.
    Replayed(Box<Replayed>),
}

/// An answer as a door rendered it, kept with its idempotency key.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub status: u16,
    /// The body as it was sent; empty for none (REST's 204).
    pub body: Vec<u8>,
    /// The `ETag` it was sent with (REST's answers of one record), sent again with it.
    pub etag: Option<String>,
}

impl Serialize for Replayed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(&self.body))
    }
}

/// `From` each answer a handler may give into its [`Reply`]; those after `boxed` are boxed on the way, and those
/// after `listed` are lists of records that a paged `*/get` answers as a [`List`] (named as given) and every other
/// method of their family as [`Records`].
macro_rules! replies {
    ($($t:ty => $variant:ident),* ; boxed $($b:ty => $boxed:ident),* ; listed $($l:ty => $listed:ident $key:literal),* $(,)?) => {
        $(
            impl From<$t> for Reply {
                fn from(v: $t) -> Reply {
                    Reply::$variant(v)
                }
            }
        )*
        $(
            impl From<List<$l>> for Reply {
                fn from(v: List<$l>) -> Reply {
                    Reply::$listed(v)
                }
            }
            impl From<Records<$l>> for Reply {
                fn from(v: Records<$l>) -> Reply {
                    Reply::$listed(List::of(v.0, $key))
                }
            }
        )*
        $(
            impl From<$b> for Reply {
                fn from(v: $b) -> Reply {
                    Reply::$boxed(Box::new(v))
                }
            }
        )*
    };
}

replies! {
    List<Host> => Hosts,
    List<Subnet> => Subnets,
    List<DhcpRange> => Ranges,
    List<Backup> => Backups,
    Next => Next,
    Available => Available,
    Allocated => Allocated,
    Located => Located,
    Found => Found,
    Records<Joined> => Joined,
    Records<Org> => Orgs,
    LogPage => Logs,
    ChangePage => Changes,
    Records<Webhook> => Webhooks,
    Records<Delivery> => Deliveries,
    Records<Deleted> => Deleted,
    Ping => Ping,
    Version => Version,
    Verified => Verified,
    Restored => Restored,
    ExportPage => Exported;
    boxed
    FreeBlocks => FreeBlocks,
    ImportReport => Imported,
    Generated => Generated,
    IpStatus => IpStatus,
    OrgInfo => OrgInfo,
    Userdata => Userdata,
    NewBackup => NewBackup;
    listed
    FieldDef => Fields "fields",
    User => Users "users",
    AppKey => AppKeys "appkeys",
    Token => Tokens "tokens",
    Group => Groups "groups",
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
            Reply::FreeBlocks(f) => f.serialize(s),
            Reply::Allocated(a) => a.0.serialize(s),
            Reply::IpStatus(i) => i.serialize(s),
            Reply::Located(l) => l.serialize(s),
            Reply::Found(f) => f.serialize(s),
            Reply::Joined(r) => r.serialize(s),
            Reply::Fields(r) => r.serialize(s),
            Reply::Users(r) => r.serialize(s),
            Reply::AppKeys(r) => r.serialize(s),
            Reply::Tokens(r) => r.serialize(s),
            Reply::Groups(r) => r.serialize(s),
            Reply::Orgs(r) => r.serialize(s),
            Reply::OrgInfo(o) => o.serialize(s),
            Reply::Logs(l) => l.serialize(s),
            Reply::Changes(c) => c.serialize(s),
            Reply::Webhooks(w) => w.serialize(s),
            Reply::Deliveries(d) => d.serialize(s),
            Reply::Deleted(r) => r.serialize(s),
            Reply::Userdata(u) => u.serialize(s),
            Reply::Ping(p) => p.serialize(s),
            Reply::Version(v) => v.serialize(s),
            Reply::NewBackup(b) => b.serialize(s),
            Reply::Verified(v) => v.serialize(s),
            Reply::Restored(r) => r.serialize(s),
            Reply::Exported(e) => e.serialize(s),
            Reply::Imported(i) => i.serialize(s),
            Reply::Generated(g) => g.serialize(s),
            Reply::Replayed(r) => r.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every answer travels as a `Reply` from the database thread to its door: the big answers are boxed so that
    /// the common ones (a list) do not pay for them.
    #[test]
    fn a_reply_is_no_bigger_than_a_list() {
        assert!(std::mem::size_of::<Reply>() <= std::mem::size_of::<List<Subnet>>() + 8);
    }

    /// An operator token has no user id: `userdata` shows it as `null`, in the user's place.
    #[test]
    fn an_operator_token_is_a_user_without_id() {
        let who = Identity::Operator {
            id: (),
            username: "api-token".into(),
            level: "admin",
        };
        assert_eq!(
            serde_json::to_string(&who).ok().as_deref(),
            Some(r#"{"id":null,"username":"api-token","level":"admin"}"#)
        );
    }
}
