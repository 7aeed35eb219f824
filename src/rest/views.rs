//! The REST shapes of the typed records (`model`): REST field names, RFC 3339 times, read straight from a record
//! while it is serialised. Each REST field name is spelled here and nowhere else in the adapter: the OpenAPI
//! document's schemas of these replies are derived from these structs (`utoipa::ToSchema`), whose `schema` attributes
//! say what the Rust types cannot (required fields, null on input, bounds, examples).

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::model::{Backup, Delivery, DhcpRange, Host, List, Subnet, Webhook};
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
    #[schema(required = false)]
    broadcast_address: &'a str,
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
}

impl<'a> From<&'a Subnet> for NetworkView<'a> {
    fn from(s: &'a Subnet) -> Self {
        NetworkView {
            id: s.id,
            network: &s.network,
            cidr: s.cidr,
            broadcast_address: &s.broadcast,
            name: s.name.as_deref(),
            domain: s.domain.as_deref(),
            vlan_id: s.vlan_id,
            description: s.description.as_deref(),
            location: s.location.as_deref(),
            group_id: s.group,
            total_hosts: s.total_hosts,
            used_hosts: s.used_hosts,
            available_hosts: s.available_hosts,
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
    pub fn of<T>(list: &List<T>) -> Pagination {
        let shown = list.records.0.len() as i64;
        match list.page {
            Some(p) => Pagination {
                page: p.page,
                per_page: p.perpage,
                total_items: p.total,
                total_pages: p.pages,
            },
            None => Pagination {
                page: 1,
                per_page: shown,
                total_items: shown,
                total_pages: 1,
            },
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
}
