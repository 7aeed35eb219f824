//! The REST shapes of the typed records (`model`): REST field names, RFC 3339 times, read straight from a record
//! while it is serialised. Each REST field name is spelled here and nowhere else in the adapter: the OpenAPI
//! document's schemas of these replies are derived from these structs (`utoipa::ToSchema`), whose `schema` attributes
//! say what the Rust types cannot (required fields, null on input, bounds, examples).

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::model::{
    AppKey, Backup, Delivery, DhcpRange, FieldDef, FreeBlocks, Group, Host, List, LogEntry, Org, OrgInfo, PoolRef,
    Subnet, Token, User, Webhook,
};
use crate::openapi::{address_status, count, host_status};
use crate::time;

#[derive(Serialize, ToSchema)]
#[schema(as = Network)]
pub struct NetworkView<'a> {
    id: i64,
    #[schema(examples("192.168.1.0"))]
    network: &'a str,
    #[schema(minimum = 0, maximum = 128)]
    cidr: u8,
    /// The broadcast address: `null` for IPv6 and IPv4 /31 and /32, which have none.
    #[schema(required = false)]
    broadcast_address: Option<&'a str>,
    name: Option<&'a str>,
    domain: Option<&'a str>,
    #[schema(minimum = 1, maximum = 4094)]
    vlan_id: Option<i64>,
    description: Option<&'a str>,
    location: Option<&'a str>,
    #[schema(minimum = 1)]
    group_id: Option<i64>,
    #[schema(schema_with = count, required = false)]
    total_hosts: u128,
    #[schema(schema_with = count, required = false)]
    used_hosts: i64,
    #[schema(schema_with = count, required = false)]
    available_hosts: u128,
    /// A pool holds networks (its children) instead of hosts
    #[schema(nullable, required = false)]
    pool: bool,
    /// The pool the network lies in; null at the top
    #[schema(minimum = 0)]
    parent_id: Option<i64>,
    /// The networks whose pool this is
    #[schema(required = false)]
    child_count: i64,
    /// A pool's addresses its children hold, exact (absent for a network that is not a pool)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = count, required = false)]
    covered: Option<u128>,
    /// Counts the record's changes: its ETag, and what If-Match names to change it only as it was read
    #[schema(minimum = 1, required = false)]
    version: i64,
}

impl<'a> From<&'a Subnet> for NetworkView<'a> {
    fn from(s: &'a Subnet) -> Self {
        NetworkView {
            id: s.id,
            network: &s.network,
            cidr: s.cidr,
            broadcast_address: s.broadcast.as_deref(),
            name: s.name.as_deref(),
            domain: s.domain.as_deref(),
            vlan_id: s.vlan_id,
            description: s.description.as_deref(),
            location: s.location.as_deref(),
            group_id: s.group,
            total_hosts: s.total_hosts,
            used_hosts: s.used_hosts,
            available_hosts: s.available_hosts,
            pool: s.pool,
            parent_id: s.parent,
            child_count: s.children,
            covered: s.covered,
            version: s.stamps.version,
        }
    }
}

/// A pool holding a network or an address.
#[derive(Serialize, ToSchema)]
pub struct PoolView<'a> {
    id: i64,
    #[schema(examples("10.0.0.0/8"))]
    network: &'a str,
}

impl<'a> From<&'a PoolRef> for PoolView<'a> {
    fn from(p: &'a PoolRef) -> Self {
        PoolView {
            id: p.id,
            network: &p.subnet,
        }
    }
}

/// `GET /networks/{id}/available-networks`: the free space of a pool as its largest aligned free blocks.
#[derive(Serialize, ToSchema)]
pub struct AvailableNetworks<'a> {
    network_id: i64,
    #[schema(examples("10.0.0.0/8"))]
    network: &'a str,
    /// The prefix length asked for: then only blocks that hold one are listed
    cidr: Option<u8>,
    /// The free blocks of length `cidr`, exact (only with `cidr`)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = count, required = false)]
    free_networks: Option<u128>,
    /// The addresses no child holds
    #[schema(schema_with = count)]
    total_free: u128,
    /// The shortest prefix length free; null when the pool is full
    largest_cidr: Option<u8>,
    /// Free blocks in address order, each as large as alignment allows
    #[schema(examples(json!(["10.0.1.0/24", "10.0.2.0/23"])))]
    available_networks: &'a [String],
}

impl<'a> From<&'a FreeBlocks> for AvailableNetworks<'a> {
    fn from(f: &'a FreeBlocks) -> Self {
        AvailableNetworks {
            network_id: f.subnet,
            network: &f.network,
            cidr: f.cidr,
            free_networks: f.free,
            total_free: f.total_free,
            largest_cidr: f.largest,
            available_networks: &f.blocks,
        }
    }
}

// The schema shares its types with the input schema `HostInput` (`openapi`), hence the nullable fields that a reply
// always fills.
#[derive(Serialize, ToSchema)]
#[schema(as = Host)]
pub struct HostView<'a> {
    id: i64,
    #[schema(examples("192.168.1.10"))]
    ip_address: &'a str,
    hostname: Option<&'a str>,
    cname: Option<&'a str>,
    #[schema(examples("aa:bb:cc:dd:ee:ff"))]
    mac_address: Option<&'a str>,
    #[schema(schema_with = host_status, required = false)]
    status: &'a str,
    #[schema(nullable, required = false)]
    is_assigned: bool,
    /// RFC 3339; input also accepts unix seconds
    last_seen: Option<String>,
    discovery_source: Option<&'a str>,
    description: Option<&'a str>,
    #[schema(nullable, minimum = 1)]
    network_id: i64,
    #[schema(examples("192.168.1.0/24"), required = false)]
    network: &'a str,
    /// Custom field values by name
    #[schema(value_type = Object, nullable, required = false)]
    fields: &'a Map<String, Value>,
    /// Counts the record's changes: its ETag, and what If-Match names to change it only as it was read
    #[schema(minimum = 1, required = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
}

impl<'a> From<&'a Host> for HostView<'a> {
    fn from(h: &'a Host) -> Self {
        HostView {
            id: h.id,
            ip_address: &h.ip,
            hostname: h.hostname.as_deref(),
            cname: h.cname.as_deref(),
            mac_address: h.mac_address.as_deref(),
            status: &h.status,
            is_assigned: h.is_assigned,
            last_seen: h.last_seen.map(time::rfc3339),
            discovery_source: h.discovery_source.as_deref(),
            description: h.description.as_deref(),
            network_id: h.subnet,
            network: &h.network,
            fields: &h.fields,
            version: h.stamps.as_ref().map(|s| s.version),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = DhcpRange)]
pub struct RangeView<'a> {
    id: i64,
    #[schema(minimum = 1)]
    network_id: i64,
    start_ip: &'a str,
    end_ip: &'a str,
    description: Option<&'a str>,
    #[schema(nullable, required = false)]
    is_active: bool,
    /// Counts the record's changes: its ETag, and what If-Match names to change it only as it was read
    #[schema(minimum = 1, required = false)]
    version: i64,
}

impl<'a> From<&'a DhcpRange> for RangeView<'a> {
    fn from(r: &'a DhcpRange) -> Self {
        RangeView {
            id: r.id,
            network_id: r.subnet,
            start_ip: &r.start_ip,
            end_ip: &r.end_ip,
            description: r.description.as_deref(),
            is_active: r.is_active,
            version: r.stamps.version,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = Backup)]
pub struct BackupView<'a> {
    name: &'a str,
    size_bytes: u64,
    created_at: &'a str,
}

impl<'a> From<&'a Backup> for BackupView<'a> {
    fn from(b: &'a Backup) -> Self {
        BackupView {
            name: &b.name,
            size_bytes: b.size_bytes,
            created_at: &b.created_at,
        }
    }
}

/// Where a page lies in a list.
#[derive(Serialize, ToSchema)]
pub struct Pagination {
    page: i64,
    per_page: i64,
    total_items: i64,
    total_pages: i64,
}

impl Pagination {
    pub fn new(page: i64, per_page: i64, total_items: i64, total_pages: i64) -> Pagination {
        Pagination {
            page,
            per_page,
            total_items,
            total_pages,
        }
    }

    pub fn of<T>(list: &List<T>) -> Pagination {
        let shown = list.records.0.len() as i64;
        match list.page {
            Some(p) => Pagination::new(p.page, p.perpage, p.total, p.pages),
            None => Pagination::new(1, shown, shown, 1),
        }
    }
}

/// The records of a list in their REST shape `V`.
pub fn views<'a, T, V: From<&'a T>>(list: &'a List<T>) -> Vec<V> {
    list.records.0.iter().map(V::from).collect()
}

/// A webhook subscription; its `secret` only in the reply that creates it.
#[derive(Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct WebhookView<'a> {
    id: i64,
    #[schema(examples("http://hooks.example.org/ipam"))]
    url: &'a str,
    description: &'a str,
    /// Object types sent (empty: all).
    #[schema(examples(json!(["ipaddress", "subnet"])))]
    objecttypes: &'a [String],
    /// Actions sent (empty: all).
    #[schema(examples(json!(["added", "deleted"])))]
    actions: &'a [String],
    /// Only changes in this network.
    #[schema(minimum = 1)]
    network_id: Option<i64>,
    /// Only changes in this group.
    #[schema(minimum = 1)]
    group_id: Option<i64>,
    enabled: bool,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    secret: Option<&'a str>,
}

impl<'a> From<&'a Webhook> for WebhookView<'a> {
    fn from(w: &'a Webhook) -> Self {
        WebhookView {
            id: w.id,
            url: &w.url,
            description: &w.description,
            objecttypes: &w.objecttypes,
            actions: &w.actions,
            network_id: w.subnet,
            group_id: w.group,
            enabled: w.enabled,
            created_at: time::rfc3339(w.created),
            secret: w.secret.as_deref(),
        }
    }
}

/// One delivery of a change to a webhook.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryView<'a> {
    id: i64,
    webhook_id: i64,
    /// The change's cursor in the feed.
    change: i64,
    event: &'a str,
    #[schema(examples("pending", "delivered", "failed"))]
    status: &'a str,
    attempts: i64,
    last_status: Option<i64>,
    last_error: Option<&'a str>,
    /// Unix milliseconds.
    next_attempt: i64,
    created_at: String,
    updated_at: String,
}

impl<'a> From<&'a Delivery> for DeliveryView<'a> {
    fn from(d: &'a Delivery) -> Self {
        DeliveryView {
            id: d.id,
            webhook_id: d.webhook,
            change: d.change,
            event: &d.event,
            status: &d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error.as_deref(),
            next_attempt: d.next_attempt,
            created_at: time::rfc3339(d.created),
            updated_at: time::rfc3339(d.updated),
        }
    }
}

/// `{data: […], pagination: {…}}`.
#[derive(Serialize, ToSchema)]
pub struct PageView<V> {
    pub data: Vec<V>,
    pub pagination: Pagination,
}

/// `{data: […]}`.
#[derive(Serialize)]
pub struct ListView<V> {
    pub data: Vec<V>,
}

/// `GET /networks/{id}/hosts`.
#[derive(Serialize, ToSchema)]
pub struct NetworkHosts<'a> {
    pub network_id: i64,
    pub network: &'a str,
    pub hosts: Vec<HostView<'a>>,
    pub pagination: Pagination,
}

/// `GET /ip/networks/{id}/next-ip`.
#[derive(Serialize, ToSchema)]
pub struct NextIp<'a> {
    pub ip_address: &'a str,
    pub network: &'a str,
    pub network_id: i64,
}

/// `GET /ip/networks/{id}/available-ips`.
#[derive(Serialize, ToSchema)]
pub struct AvailableIps<'a> {
    pub network: &'a str,
    pub network_id: i64,
    #[schema(schema_with = count)]
    pub total_available: u128,
    pub available_ips: &'a [String],
}

/// The network of `GET /ip/{ip}`: the fields that place an address.
#[derive(Serialize, ToSchema)]
pub struct ShortNetwork<'a> {
    #[schema(required = false)]
    id: i64,
    #[schema(required = false)]
    network: &'a str,
    name: Option<&'a str>,
    domain: Option<&'a str>,
    vlan_id: Option<i64>,
    location: Option<&'a str>,
}

impl<'a> From<&'a Subnet> for ShortNetwork<'a> {
    fn from(s: &'a Subnet) -> Self {
        ShortNetwork {
            id: s.id,
            network: &s.subnet,
            name: s.name.as_deref(),
            domain: s.domain.as_deref(),
            vlan_id: s.vlan_id,
            location: s.location.as_deref(),
        }
    }
}

/// The DHCP range of `GET /ip/{ip}`.
#[derive(Serialize, ToSchema)]
pub struct ShortRange<'a> {
    #[schema(required = false)]
    id: i64,
    #[schema(required = false)]
    start_ip: &'a str,
    #[schema(required = false)]
    end_ip: &'a str,
    #[schema(required = false)]
    network_id: i64,
}

impl<'a> From<&'a DhcpRange> for ShortRange<'a> {
    fn from(r: &'a DhcpRange) -> Self {
        ShortRange {
            id: r.id,
            start_ip: &r.start_ip,
            end_ip: &r.end_ip,
            network_id: r.subnet,
        }
    }
}

/// `GET /ip/{ip}`: which of the optional fields are present depends on the status.
// Absent fields are left out, never null: the options are not nullable in the schema.
#[derive(Serialize, ToSchema)]
#[schema(as = IpStatus)]
pub struct IpStatusView<'a> {
    pub ip_address: &'a str,
    #[schema(schema_with = address_status)]
    pub status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub host: Option<HostView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline, nullable = false)]
    pub dhcp_range: Option<ShortRange<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline, nullable = false)]
    pub network: Option<ShortNetwork<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub matches: Option<usize>,
    /// The pools holding the address's network (or, unmanaged, the address), innermost first
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub pools: Vec<PoolView<'a>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Group)]
pub struct GroupView<'a> {
    id: i64,
    #[schema(examples("Datacenter 1"))]
    description: &'a str,
    /// The parent group; null at the top level
    #[schema(minimum = 1)]
    parent_id: Option<i64>,
    /// Networks directly in the group
    #[schema(required = false)]
    network_count: i64,
    /// Child groups
    #[schema(required = false)]
    child_count: i64,
    /// Counts the record's changes: its ETag, and what If-Match names to change it only as it was read
    #[schema(minimum = 1, required = false)]
    version: i64,
    /// The child groups, nested to any depth (only with `?tree=true`)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, required = false, no_recursion)]
    children: Option<Vec<GroupView<'a>>>,
}

impl<'a> From<&'a Group> for GroupView<'a> {
    fn from(g: &'a Group) -> Self {
        GroupView {
            id: g.id,
            description: &g.description,
            parent_id: g.parent,
            network_count: g.subnetcount,
            child_count: g.childcount,
            version: g.stamps.version,
            children: g.children.as_ref().map(|c| c.0.iter().map(GroupView::from).collect()),
        }
    }
}

/// A custom field of a network's hosts: the hosts carry their values in `fields`.
#[derive(Serialize, ToSchema)]
#[schema(as = CustomField)]
pub struct FieldView<'a> {
    id: i64,
    #[schema(minimum = 1, required = false)]
    network_id: i64,
    #[schema(examples("rack"))]
    name: &'a str,
    description: Option<&'a str>,
    /// text, number, boolean or select
    #[schema(nullable, required = false, examples("select"))]
    r#type: &'a str,
    /// The choices of a select field
    #[schema(nullable, required = false)]
    options: &'a [String],
    /// The value a host without one takes
    default: Option<&'a str>,
    #[schema(nullable, required = false)]
    required: bool,
    /// Sort key among the network's fields
    #[schema(nullable, required = false)]
    position: i64,
    /// Counts the record's changes: its ETag, and what If-Match names to change it only as it was read
    #[schema(minimum = 1, required = false)]
    version: i64,
}

impl<'a> From<&'a FieldDef> for FieldView<'a> {
    fn from(f: &'a FieldDef) -> Self {
        FieldView {
            id: f.id,
            network_id: f.subnet,
            name: &f.name,
            description: f.description.as_deref(),
            r#type: &f.kind,
            options: &f.options,
            default: f.default.as_deref(),
            required: f.required,
            position: f.position,
            version: f.stamps.version,
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView<'a> {
    id: i64,
    #[schema(examples("bob"))]
    username: &'a str,
    #[schema(examples("bob@example.org"))]
    email: &'a str,
    realname: Option<&'a str>,
    /// readonly, standard or admin
    #[schema(nullable, required = false)]
    level: &'a str,
    #[schema(nullable, required = false)]
    disabled: bool,
    #[schema(required = false)]
    created_at: String,
    #[schema(required = false)]
    last_login_at: Option<String>,
    /// Counts the record's changes: its ETag, and what If-Match names to change it only as it was read
    #[schema(minimum = 1, required = false)]
    version: i64,
}

impl<'a> From<&'a User> for UserView<'a> {
    fn from(u: &'a User) -> Self {
        UserView {
            id: u.id,
            username: &u.username,
            email: &u.email,
            realname: u.realname.as_deref(),
            level: &u.level,
            disabled: u.disabled,
            created_at: time::rfc3339(u.created),
            last_login_at: u.lastlogin.map(time::rfc3339),
            version: u.version,
        }
    }
}

/// An app key of the `/1.0` API; `key` only in the reply that creates it.
#[derive(Serialize, ToSchema)]
#[schema(as = AppKey)]
pub struct AppKeyView<'a> {
    id: i64,
    #[schema(examples("inventory-sync"))]
    name: &'a str,
    description: Option<&'a str>,
    /// The key's first characters
    #[schema(required = false)]
    prefix: &'a str,
    #[schema(nullable, required = false)]
    enabled: bool,
    disabled_reason: Option<&'a str>,
    #[schema(required = false)]
    owner_id: i64,
    #[schema(required = false)]
    created_at: String,
    #[schema(required = false)]
    last_used_at: Option<String>,
    /// Counts the record's changes: its ETag, and what If-Match names to change it only as it was read
    #[schema(minimum = 1, required = false)]
    version: i64,
    /// The key itself, shown once
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, required = false)]
    key: Option<&'a str>,
}

impl<'a> From<&'a AppKey> for AppKeyView<'a> {
    fn from(k: &'a AppKey) -> Self {
        AppKeyView {
            id: k.id,
            name: &k.name,
            description: k.description.as_deref(),
            prefix: &k.prefix,
            enabled: k.enabled,
            disabled_reason: k.disabledreason.as_deref(),
            owner_id: k.owner,
            created_at: time::rfc3339(k.created),
            last_used_at: k.lastused.map(time::rfc3339),
            version: k.version,
            key: k.key.as_deref(),
        }
    }
}

/// A REST token; `token` only in the reply that creates it.
#[derive(Serialize, ToSchema)]
#[schema(as = Token)]
pub struct TokenView<'a> {
    id: i64,
    description: Option<&'a str>,
    /// The token's first characters
    #[schema(required = false)]
    prefix: &'a str,
    /// The user it acts as
    #[schema(required = false)]
    user_id: i64,
    #[schema(required = false)]
    created_at: String,
    /// RFC 3339 (input also accepts unix seconds); null never expires
    expires_at: Option<String>,
    #[schema(required = false)]
    last_used_at: Option<String>,
    /// Counts the record's changes: its ETag, and what If-Match names to change it only as it was read
    #[schema(minimum = 1, required = false)]
    version: i64,
    /// The token itself, shown once
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, required = false)]
    token: Option<&'a str>,
}

impl<'a> From<&'a Token> for TokenView<'a> {
    fn from(t: &'a Token) -> Self {
        TokenView {
            id: t.id,
            description: t.description.as_deref(),
            prefix: &t.prefix,
            user_id: t.user,
            created_at: time::rfc3339(t.created),
            expires_at: t.expires.map(time::rfc3339),
            last_used_at: t.lastused.map(time::rfc3339),
            version: t.version,
            token: t.token.as_deref(),
        }
    }
}

/// The caller's organisation; the counts only in `GET /org`.
#[derive(Serialize, ToSchema)]
#[schema(as = Org)]
pub struct OrgView<'a> {
    id: i64,
    /// The prefix of its users' userdata
    #[schema(examples("acme"))]
    identifier: &'a str,
    #[schema(nullable)]
    description: &'a str,
    #[schema(required = false)]
    created_at: String,
    /// Whether it is the operator org, whose admins manage backups
    #[schema(required = false)]
    operator: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, required = false)]
    user_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, required = false)]
    group_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, required = false)]
    network_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, required = false)]
    host_count: Option<i64>,
}

impl<'a> From<&'a Org> for OrgView<'a> {
    fn from(o: &'a Org) -> Self {
        OrgView {
            id: o.name.id,
            identifier: &o.name.identifier,
            description: &o.name.description,
            created_at: time::rfc3339(o.created),
            operator: o.operator,
            user_count: None,
            group_count: None,
            network_count: None,
            host_count: None,
        }
    }
}

impl<'a> From<&'a OrgInfo> for OrgView<'a> {
    fn from(i: &'a OrgInfo) -> Self {
        OrgView {
            user_count: Some(i.usercount),
            group_count: Some(i.groupcount),
            network_count: Some(i.subnetcount),
            host_count: Some(i.ipcount),
            ..OrgView::from(&i.org)
        }
    }
}

/// An entry of the org's audit log.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct AuditEntryView<'a> {
    id: i64,
    time: String,
    /// Null for a caller that is no user
    user_id: Option<i64>,
    /// The username at the time
    user: &'a str,
    /// The app key's name, or token:<prefix>
    application: &'a str,
    /// The respid of the call that made it
    request_id: &'a str,
    method: &'a str,
    object_type: &'a str,
    object_id: Option<i64>,
    summary: &'a str,
    /// The method's own detail (methods.md)
    #[schema(value_type = Object, nullable)]
    changes: Option<&'a Value>,
}

impl<'a> From<&'a LogEntry> for AuditEntryView<'a> {
    fn from(e: &'a LogEntry) -> Self {
        AuditEntryView {
            id: e.id,
            time: time::rfc3339(e.time),
            user_id: e.userid,
            user: &e.user,
            application: &e.application,
            request_id: &e.respid,
            method: &e.method,
            object_type: &e.objecttype,
            object_id: e.objectid,
            summary: &e.summary,
            changes: e.changes.as_ref(),
        }
    }
}

/// `GET /search`: groups, networks and hosts whose text matches.
#[derive(Serialize, ToSchema)]
pub struct SearchResults<'a> {
    pub groups: Vec<GroupView<'a>>,
    pub networks: Vec<NetworkView<'a>>,
    pub hosts: Vec<HostView<'a>>,
    /// Whether some kind had more than `limit` results
    pub truncated: bool,
}

/// `POST /networks/join`: the network that absorbed the others, and their ids.
#[derive(Serialize, ToSchema)]
pub struct Joined<'a> {
    pub network: NetworkView<'a>,
    pub joined: &'a [i64],
}

/// `GET /me`: who the token acts as.
#[derive(Serialize, ToSchema)]
pub struct Me<'a> {
    /// Null for an API_TOKENS operator token, which is no user
    pub user_id: Option<i64>,
    pub username: &'a str,
    /// readonly, standard or admin
    pub level: &'a str,
    pub org_id: i64,
    pub org: &'a str,
}

/// `GET /ping`.
#[derive(Serialize, ToSchema)]
pub struct Pong {
    pub pong: bool,
    pub server_time: String,
}

/// `GET /version`.
#[derive(Serialize, ToSchema)]
pub struct Version<'a> {
    /// The version of the /1.0 API
    pub version: &'a str,
    pub server: &'a str,
}

/// `GET /export` as JSON: a page of rows and the cursor of the next one.
#[derive(Serialize, ToSchema)]
pub struct ExportView<'a> {
    #[schema(value_type = Vec<Object>)]
    pub data: &'a [crate::model::ExportRow],
    /// The `after` of the next page; null after the last.
    pub next: Option<&'a str>,
}
