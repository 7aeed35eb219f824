//! The `/api/v1` REST door. Every route is one line of [`ROUTES`] naming a method of the method table: the door
//! turns path, query and body into that method's parameters, for the server to dispatch, and renders typed JSON in
//! the REST shapes. It has no SQL and no business rules of its own.

use std::sync::LazyLock;

use serde_json::{json, Map, Value};

use crate::door::{to_json, Door, Rendered};
use crate::error::{Code, Error, Result};
use crate::handler::{Call, Credentials, Outcome, RequestKey};
use crate::metrics::Endpoint;
use crate::model::{self, Replayed, Reply};

pub(crate) mod views;
use views::{
    views, AppKeyView, AuditEntryView, AvailableIps, BackupView, DeliveryView, FieldView, GroupView, HostView,
    IpStatusView, ListView, NetworkView, OrgView, PageView, Pagination, RangeView, ShortNetwork, ShortRange, TokenView,
    UserView, WebhookView,
};

/// How a route's request body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body is read.
    None,
    /// The body's fields become parameters (POST, PATCH).
    Fields(Resource),
    /// PUT: the body replaces the record: required fields required, omitted optional fields cleared.
    Replace(Resource),
}

/// How a method's reply is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// A paginated list of records: `{data: […], pagination: {…}}`.
    Page(Resource),
    /// A list without pagination: `{data: […]}`.
    List(Resource),
    /// The one record of the reply.
    One(Resource),
    /// `GET /networks/{id}/hosts`: `{network_id, network, hosts: […], pagination}`.
    NetworkHosts,
    /// The next free address: `{ip_address, network, network_id}`.
    NextIp,
    /// `{network, network_id, total_available, available_ips}`.
    Available,
    /// The status of one address.
    IpStatus,
    /// A backup's reply as the method gives it (a new backup without the `id` only the envelope shows), `ping` and
    /// `version`.
    Plain,
    /// `GET /search`: `{groups, networks, hosts, truncated}`.
    Found,
    /// `POST /networks/join`: `{network, joined}`.
    Joined,
    /// `GET /me`: who the token acts as.
    Me,
    /// 204, no body.
    NoContent,
}

/// The record kinds of the REST API, each with its field names and read-only fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Network,
    Host,
    DhcpRange,
    Backup,
    Group,
    Field,
    User,
    AppKey,
    Token,
    Org,
    AuditEntry,
    /// The body of `POST /networks/{id}/split`: no record of its own.
    Split,
    /// The body of `POST /networks/join`: no record of its own.
    Join,
    Webhook,
    Delivery,
}

impl Resource {
    /// REST name → method parameter name, for the fields whose names differ.
    fn renames(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Resource::Network => &[("group_id", "group")],
            Resource::Host => &[("ip_address", "ip"), ("network_id", "subnet")],
            Resource::DhcpRange | Resource::Field => &[("network_id", "subnet")],
            Resource::Group => &[("parent_id", "parent")],
            Resource::AppKey => &[("disabled_reason", "disabledreason")],
            Resource::Token => &[("expires_at", "expires")],
            Resource::Join => &[("network_ids", "ids"), ("network_id", "id")],
            Resource::Webhook => &[("network_id", "subnet"), ("group_id", "group")],
            Resource::Backup
            | Resource::User
            | Resource::Org
            | Resource::AuditEntry
            | Resource::Split
            | Resource::Delivery => &[],
        }
    }

    /// Fields of a record that no request sets: ignored by a PUT (a record read can be sent back as it is), refused
    /// by POST and PATCH.
    pub(crate) fn read_only(self) -> &'static [&'static str] {
        match self {
            Resource::Network => &[
                "id",
                "broadcast_address",
                "total_hosts",
                "used_hosts",
                "available_hosts",
                "family",
                "subnet",
                "version",
            ],
            Resource::Host => &["id", "network", "version"],
            Resource::DhcpRange => &["id", "version"],
            // A field belongs to the network whose path made it.
            Resource::Field => &["id", "network_id", "version"],
            Resource::Backup => &["name", "size_bytes", "created_at"],
            Resource::Group => &["id", "network_count", "child_count", "children", "version"],
            Resource::User => &["id", "created_at", "last_login_at", "version"],
            Resource::AppKey => &[
                "id",
                "prefix",
                "owner_id",
                "created_at",
                "last_used_at",
                "key",
                "version",
            ],
            Resource::Token => &[
                "id",
                "prefix",
                "user_id",
                "created_at",
                "last_used_at",
                "token",
                "version",
            ],
            Resource::Org => &[
                "id",
                "created_at",
                "operator",
                "user_count",
                "group_count",
                "network_count",
                "host_count",
            ],
            Resource::AuditEntry | Resource::Split | Resource::Join => &[],
            Resource::Webhook => &["id", "created_at", "secret"],
            Resource::Delivery => &[
                "id",
                "webhook_id",
                "change",
                "event",
                "status",
                "attempts",
                "last_status",
                "last_error",
                "next_attempt",
                "created_at",
                "updated_at",
            ],
        }
    }

    /// Fields a PUT must carry.
    pub(crate) fn required(self) -> &'static [&'static str] {
        match self {
            Resource::Host => &["ip_address"],
            other => other.create_required(),
        }
    }

    /// Fields a POST that creates a record must carry (a host needs `ip_address`, `network_id` or both, which its
    /// method checks).
    pub(crate) fn create_required(self) -> &'static [&'static str] {
        match self {
            Resource::Network => &["network", "cidr"],
            Resource::DhcpRange => &["start_ip", "end_ip"],
            Resource::Group => &["description"],
            Resource::Field | Resource::AppKey => &["name"],
            Resource::User => &["username", "email"],
            _ => &[],
        }
    }

    /// Fields a PUT clears (or resets to their default) when it omits them.
    fn optional(self) -> &'static [&'static str] {
        match self {
            Resource::Network => &["name", "domain", "vlan_id", "description", "location", "group_id"],
            Resource::Host => &[
                "hostname",
                "cname",
                "mac_address",
                "status",
                "is_assigned",
                "last_seen",
                "discovery_source",
                "description",
            ],
            Resource::DhcpRange => &["description", "is_active"],
            _ => &[],
        }
    }
}

/// One line of the route table.
pub struct Route {
    pub verb: &'static str,
    /// Segments, with `{id}`, `{ip}` or `{name}` for path parameters.
    pub path: &'static str,
    pub method: &'static str,
    /// Path or query parameter name → method parameter name.
    pub params: &'static [(&'static str, &'static str)],
    /// Parameters the route passes unless the request gave them (JSON literals).
    pub fixed: &'static [(&'static str, &'static str)],
    /// The query parameters the route accepts (REST names); any other is refused.
    pub query: &'static [&'static str],
    pub body: Body,
    pub render: Render,
    pub status: u16,
    pub summary: &'static str,
}

const PAGE: &[&str] = &["page", "per_page"];
const NETWORK_FILTERS: &[&str] = &["page", "per_page", "name", "domain", "vlan_id", "location", "group_id"];
const HOST_FILTERS: &[&str] = &[
    "page",
    "per_page",
    "hostname",
    "cname",
    "status",
    "is_assigned",
    "mac_address",
    "network_id",
];
const RANGE_FILTERS: &[&str] = &["page", "per_page", "network_id"];
const AVAILABLE: &[&str] = &["limit", "after"];
const FORCE: &[&str] = &["force"];
/// REST lists are ordered by id and always paginated.
const PAGED: &[(&str, &str)] = &[("order", "\"id\""), ("page", "1")];
const PAGING: &[(&str, &str)] = &[("per_page", "perpage")];
const BY_ID: &[(&str, &str)] = &[];
const NET_ID: &[(&str, &str)] = &[("id", "subnet")];
const NETWORKS_QUERY: &[(&str, &str)] = &[("per_page", "perpage"), ("group_id", "group")];
const HOSTS_QUERY: &[(&str, &str)] = &[("per_page", "perpage"), ("network_id", "subnet")];
const HOSTS_OF_NET: &[(&str, &str)] = &[("per_page", "perpage"), ("id", "subnet")];
const BACKUP_NAME: &[(&str, &str)] = &[];
const IDS: &[&str] = &["ids", "force"];
const HOST_IDS: &[&str] = &["ids"];
const RECURSIVE: &[&str] = &["recursive"];
const TREE: &[&str] = &["tree"];
const TREE_PAGE: &[&str] = &["tree", "page", "per_page"];
const TREE_QUERY: &[(&str, &str)] = &[("tree", "sort"), ("per_page", "perpage")];
/// The REST lists whose method has one order of its own (by id; a network's fields by position; a tree's top-level
/// groups by description) are paginated too, from the first page.
const FIRST_PAGE: &[(&str, &str)] = &[("page", "1")];
const CONFIRM: &[&str] = &["confirm"];
const SEARCH: &[&str] = &["query", "limit", "types"];
const AUDIT_FILTERS: &[&str] = &[
    "page",
    "per_page",
    "since",
    "until",
    "user_id",
    "object_type",
    "object_id",
    "method",
];
const AUDIT_QUERY: &[(&str, &str)] = &[
    ("per_page", "perpage"),
    ("user_id", "userid"),
    ("object_type", "objecttype"),
    ("object_id", "objectid"),
];
/// `DELETE /networks/{id}/hosts` empties the network: `all` is the envelope's guard against doing so by accident.
const ALL_OF_NET: &[(&str, &str)] = &[("all", "true")];

const FEED: &[&str] = &["after", "limit", "wait"];
const DELIVERIES: &[&str] = &["status", "limit"];

use Body::{Fields, Replace};
use Render::*;
use Resource::{
    AppKey, AuditEntry, Backup, Delivery, DhcpRange, Field, Group, Host, Join, Network, Org, Split, Token, User,
    Webhook,
};

#[rustfmt::skip]
pub static ROUTES: &[Route] = &[
    Route { verb: "GET", path: "/networks", method: "subnets/get", params: NETWORKS_QUERY, fixed: PAGED, query: NETWORK_FILTERS, body: Body::None, render: Page(Network), status: 200, summary: "List networks (filters: name, domain, vlan_id, location, group_id)" },
    Route { verb: "POST", path: "/networks", method: "subnets/add", params: BY_ID, fixed: &[], query: &[], body: Fields(Network), render: One(Network), status: 201, summary: "Create a network" },
    Route { verb: "GET", path: "/networks/{id}", method: "subnets/get", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(Network), status: 200, summary: "Get a network" },
    Route { verb: "PUT", path: "/networks/{id}", method: "subnets/edit", params: BY_ID, fixed: &[], query: &[], body: Replace(Network), render: One(Network), status: 200, summary: "Replace a network" },
    Route { verb: "PATCH", path: "/networks/{id}", method: "subnets/edit", params: BY_ID, fixed: &[], query: &[], body: Fields(Network), render: One(Network), status: 200, summary: "Change some fields of a network" },
    Route { verb: "DELETE", path: "/networks/{id}", method: "subnets/delete", params: BY_ID, fixed: &[], query: FORCE, body: Body::None, render: NoContent, status: 204, summary: "Delete a network (force=true deletes its hosts too)" },
    Route { verb: "GET", path: "/networks/{id}/hosts", method: "ipaddress/get", params: HOSTS_OF_NET, fixed: PAGED, query: PAGE, body: Body::None, render: NetworkHosts, status: 200, summary: "List the hosts of a network" },
    Route { verb: "GET", path: "/networks/{id}/dhcp-ranges", method: "dhcpranges/get", params: NET_ID, fixed: &[], query: &[], body: Body::None, render: List(DhcpRange), status: 200, summary: "List the DHCP ranges of a network" },
    Route { verb: "POST", path: "/networks/{id}/dhcp-ranges", method: "dhcpranges/add", params: NET_ID, fixed: &[], query: &[], body: Fields(DhcpRange), render: One(DhcpRange), status: 201, summary: "Create a DHCP range in a network" },
    Route { verb: "GET", path: "/hosts", method: "ipaddress/get", params: HOSTS_QUERY, fixed: PAGED, query: HOST_FILTERS, body: Body::None, render: Page(Host), status: 200, summary: "List hosts (filters: hostname, cname, status, is_assigned, mac_address, network_id)" },
    Route { verb: "POST", path: "/hosts", method: "ipaddress/add", params: BY_ID, fixed: &[], query: &[], body: Fields(Host), render: One(Host), status: 201, summary: "Create a host (network_id without ip_address allocates the next free address)" },
    Route { verb: "GET", path: "/hosts/{id}", method: "ipaddress/get", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(Host), status: 200, summary: "Get a host" },
    Route { verb: "PUT", path: "/hosts/{id}", method: "ipaddress/edit", params: BY_ID, fixed: &[], query: &[], body: Replace(Host), render: One(Host), status: 200, summary: "Replace a host" },
    Route { verb: "PATCH", path: "/hosts/{id}", method: "ipaddress/edit", params: BY_ID, fixed: &[], query: &[], body: Fields(Host), render: One(Host), status: 200, summary: "Change some fields of a host" },
    Route { verb: "DELETE", path: "/hosts/{id}", method: "ipaddress/delete", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: NoContent, status: 204, summary: "Delete a host" },
    Route { verb: "GET", path: "/dhcp-ranges", method: "dhcpranges/get", params: HOSTS_QUERY, fixed: PAGED, query: RANGE_FILTERS, body: Body::None, render: Page(DhcpRange), status: 200, summary: "List DHCP ranges (filter: network_id)" },
    Route { verb: "POST", path: "/dhcp-ranges", method: "dhcpranges/add", params: BY_ID, fixed: &[], query: &[], body: Fields(DhcpRange), render: One(DhcpRange), status: 201, summary: "Create a DHCP range" },
    Route { verb: "GET", path: "/dhcp-ranges/{id}", method: "dhcpranges/get", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(DhcpRange), status: 200, summary: "Get a DHCP range" },
    Route { verb: "PUT", path: "/dhcp-ranges/{id}", method: "dhcpranges/edit", params: BY_ID, fixed: &[], query: &[], body: Replace(DhcpRange), render: One(DhcpRange), status: 200, summary: "Replace a DHCP range" },
    Route { verb: "PATCH", path: "/dhcp-ranges/{id}", method: "dhcpranges/edit", params: BY_ID, fixed: &[], query: &[], body: Fields(DhcpRange), render: One(DhcpRange), status: 200, summary: "Change some fields of a DHCP range" },
    Route { verb: "DELETE", path: "/dhcp-ranges/{id}", method: "dhcpranges/delete", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: NoContent, status: 204, summary: "Delete a DHCP range" },
    Route { verb: "GET", path: "/ip/networks/{id}/next-ip", method: "ipaddress/next", params: NET_ID, fixed: &[], query: &[], body: Body::None, render: NextIp, status: 200, summary: "Suggest the next free address of a network" },
    Route { verb: "POST", path: "/ip/networks/{id}/next-ip", method: "ipaddress/add", params: NET_ID, fixed: &[], query: &[], body: Fields(Host), render: One(Host), status: 201, summary: "Allocate the next free address of a network as a new host, atomically" },
    Route { verb: "GET", path: "/ip/networks/{id}/available-ips", method: "ipaddress/available", params: NET_ID, fixed: &[], query: AVAILABLE, body: Body::None, render: Available, status: 200, summary: "List free addresses of a network (limit, after)" },
    Route { verb: "GET", path: "/ip/{ip}", method: "search/ip", params: BY_ID, fixed: &[("status", "true"), ("brief", "true")], query: &[], body: Body::None, render: IpStatus, status: 200, summary: "The status of one address: assigned, dhcp, available, unusable or unmanaged" },
    Route { verb: "GET", path: "/groups", method: "groups/get", params: TREE_QUERY, fixed: FIRST_PAGE, query: TREE_PAGE, body: Body::None, render: Page(Group), status: 200, summary: "List groups: flat by id, or with tree=true the top-level groups with their children nested" },
    Route { verb: "POST", path: "/groups", method: "groups/add", params: BY_ID, fixed: &[], query: &[], body: Fields(Group), render: One(Group), status: 201, summary: "Create a group" },
    Route { verb: "GET", path: "/groups/{id}", method: "groups/get", params: TREE_QUERY, fixed: &[], query: TREE, body: Body::None, render: One(Group), status: 200, summary: "Get a group (tree=true: with its subtree)" },
    Route { verb: "PATCH", path: "/groups/{id}", method: "groups/edit", params: BY_ID, fixed: &[], query: &[], body: Fields(Group), render: One(Group), status: 200, summary: "Rename a group or move it (parent_id null: to the top level)" },
    Route { verb: "DELETE", path: "/groups/{id}", method: "groups/delete", params: BY_ID, fixed: &[], query: RECURSIVE, body: Body::None, render: NoContent, status: 204, summary: "Delete a group (recursive=true deletes its child groups and networks too)" },
    Route { verb: "DELETE", path: "/networks", method: "subnets/massdelete", params: BY_ID, fixed: &[], query: IDS, body: Body::None, render: NoContent, status: 204, summary: "Delete several networks, all or nothing (ids=1,2,3; force=true deletes their hosts too)" },
    Route { verb: "POST", path: "/networks/{id}/split", method: "subnets/split", params: BY_ID, fixed: &[], query: &[], body: Fields(Split), render: List(Network), status: 200, summary: "Split a network into equal parts (cidr or parts)" },
    Route { verb: "POST", path: "/networks/join", method: "subnets/join", params: BY_ID, fixed: &[], query: &[], body: Fields(Join), render: Joined, status: 200, summary: "Join networks that tile one block (network_ids, or network_id and cidr)" },
    Route { verb: "DELETE", path: "/networks/{id}/hosts", method: "ipaddress/massdelete", params: NET_ID, fixed: ALL_OF_NET, query: &[], body: Body::None, render: NoContent, status: 204, summary: "Delete every host of a network (at most 5000)" },
    Route { verb: "DELETE", path: "/hosts", method: "ipaddress/massdelete", params: BY_ID, fixed: &[], query: HOST_IDS, body: Body::None, render: NoContent, status: 204, summary: "Delete several hosts, all or nothing (ids=1,2,3)" },
    Route { verb: "GET", path: "/networks/{id}/custom-fields", method: "subnets/fields/get", params: HOSTS_OF_NET, fixed: FIRST_PAGE, query: PAGE, body: Body::None, render: Page(Field), status: 200, summary: "List the custom fields of a network's hosts" },
    Route { verb: "POST", path: "/networks/{id}/custom-fields", method: "subnets/fields/add", params: NET_ID, fixed: &[], query: &[], body: Fields(Field), render: One(Field), status: 201, summary: "Add a custom field to a network's hosts" },
    Route { verb: "GET", path: "/custom-fields/{id}", method: "subnets/fields/get", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(Field), status: 200, summary: "Get a custom field" },
    Route { verb: "PATCH", path: "/custom-fields/{id}", method: "subnets/fields/edit", params: BY_ID, fixed: &[], query: &[], body: Fields(Field), render: One(Field), status: 200, summary: "Change a custom field" },
    Route { verb: "DELETE", path: "/custom-fields/{id}", method: "subnets/fields/delete", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: NoContent, status: 204, summary: "Delete a custom field and every value of it" },
    Route { verb: "GET", path: "/search", method: "search/find", params: BY_ID, fixed: &[], query: SEARCH, body: Body::None, render: Found, status: 200, summary: "Find groups, networks and hosts by text, address or block" },
    Route { verb: "GET", path: "/audit-log", method: "org/logs", params: AUDIT_QUERY, fixed: &[], query: AUDIT_FILTERS, body: Body::None, render: Page(AuditEntry), status: 200, summary: "The org's audit log, newest first (admins; since and until in unix seconds)" },
    Route { verb: "GET", path: "/org", method: "org/info", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(Org), status: 200, summary: "The caller's organisation and its counts" },
    Route { verb: "PATCH", path: "/org", method: "org/edit", params: BY_ID, fixed: &[], query: &[], body: Fields(Org), render: One(Org), status: 200, summary: "Rename the organisation or change its description (admins)" },
    Route { verb: "DELETE", path: "/org", method: "org/delete", params: BY_ID, fixed: &[], query: CONFIRM, body: Body::None, render: NoContent, status: 204, summary: "Delete the organisation and everything in it (admins; confirm=<identifier>)" },
    Route { verb: "GET", path: "/me", method: "userdata", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: Me, status: 200, summary: "Who the token acts as" },
    Route { verb: "GET", path: "/users", method: "org/users/get", params: PAGING, fixed: FIRST_PAGE, query: PAGE, body: Body::None, render: Page(User), status: 200, summary: "List the users of the org" },
    Route { verb: "POST", path: "/users", method: "org/users/add", params: BY_ID, fixed: &[], query: &[], body: Fields(User), render: One(User), status: 201, summary: "Create a user (admins; password or hash)" },
    Route { verb: "GET", path: "/users/{id}", method: "org/users/get", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(User), status: 200, summary: "Get a user" },
    Route { verb: "PATCH", path: "/users/{id}", method: "org/users/edit", params: BY_ID, fixed: &[], query: &[], body: Fields(User), render: One(User), status: 200, summary: "Change a user (one's own email, realname, password; admins anything)" },
    Route { verb: "GET", path: "/app-keys", method: "org/appkeys/get", params: PAGING, fixed: FIRST_PAGE, query: PAGE, body: Body::None, render: Page(AppKey), status: 200, summary: "List app keys of the /1.0 API (one's own; admins all)" },
    Route { verb: "POST", path: "/app-keys", method: "org/appkeys/add", params: BY_ID, fixed: &[], query: &[], body: Fields(AppKey), render: One(AppKey), status: 201, summary: "Create an app key, shown once in the reply" },
    Route { verb: "GET", path: "/app-keys/{id}", method: "org/appkeys/get", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(AppKey), status: 200, summary: "Get an app key" },
    Route { verb: "PATCH", path: "/app-keys/{id}", method: "org/appkeys/edit", params: BY_ID, fixed: &[], query: &[], body: Fields(AppKey), render: One(AppKey), status: 200, summary: "Rename, describe, disable or enable an app key" },
    Route { verb: "DELETE", path: "/app-keys/{id}", method: "org/appkeys/delete", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: NoContent, status: 204, summary: "Delete an app key" },
    Route { verb: "GET", path: "/tokens", method: "org/tokens/get", params: PAGING, fixed: FIRST_PAGE, query: PAGE, body: Body::None, render: Page(Token), status: 200, summary: "List REST tokens (one's own; admins all)" },
    Route { verb: "POST", path: "/tokens", method: "org/tokens/add", params: BY_ID, fixed: &[], query: &[], body: Fields(Token), render: One(Token), status: 201, summary: "Create a token acting as the caller, shown once in the reply" },
    Route { verb: "GET", path: "/tokens/{id}", method: "org/tokens/get", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(Token), status: 200, summary: "Get a token" },
    Route { verb: "DELETE", path: "/tokens/{id}", method: "org/tokens/delete", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: NoContent, status: 204, summary: "Revoke a token" },
    Route { verb: "GET", path: "/ping", method: "ping", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: Plain, status: 200, summary: "Check the token and the server's clock" },
    Route { verb: "GET", path: "/version", method: "version", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: Plain, status: 200, summary: "The API and server versions" },
    Route { verb: "GET", path: "/backups", method: "backups/get", params: PAGING, fixed: &[], query: PAGE, body: Body::None, render: Page(Backup), status: 200, summary: "List backups (operator admins)" },
    Route { verb: "POST", path: "/backups", method: "backups/add", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: Plain, status: 201, summary: "Create a verified backup (operator admins)" },
    Route { verb: "GET", path: "/backups/{name}/verify", method: "backups/verify", params: BACKUP_NAME, fixed: &[], query: &[], body: Body::None, render: Plain, status: 200, summary: "Verify a backup's integrity (operator admins)" },
    Route { verb: "POST", path: "/backups/{name}/verify", method: "backups/verify", params: BACKUP_NAME, fixed: &[], query: &[], body: Body::None, render: Plain, status: 200, summary: "Verify a backup's integrity (operator admins)" },
    Route { verb: "POST", path: "/backups/{name}/restore", method: "backups/restore", params: BACKUP_NAME, fixed: &[], query: &[], body: Body::None, render: Plain, status: 200, summary: "Restore a backup after a safety backup (operator admins)" },

    Route { verb: "GET", path: "/changes", method: "changes/get", params: BY_ID, fixed: &[], query: FEED, body: Body::None, render: Plain, status: 200, summary: "The org's changes after a cursor, in commit order (wait: long-poll seconds; admins)" },
    Route { verb: "GET", path: "/webhooks", method: "webhooks/get", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: List(Webhook), status: 200, summary: "List the org's webhook subscriptions (admins)" },
    Route { verb: "POST", path: "/webhooks", method: "webhooks/add", params: BY_ID, fixed: &[], query: &[], body: Fields(Webhook), render: One(Webhook), status: 201, summary: "Subscribe a URL to the org's changes; the signing secret is in this reply only (admins)" },
    Route { verb: "GET", path: "/webhooks/{id}", method: "webhooks/get", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(Webhook), status: 200, summary: "Get a webhook subscription (admins)" },
    Route { verb: "PATCH", path: "/webhooks/{id}", method: "webhooks/edit", params: BY_ID, fixed: &[], query: &[], body: Fields(Webhook), render: One(Webhook), status: 200, summary: "Change some fields of a webhook subscription (admins)" },
    Route { verb: "DELETE", path: "/webhooks/{id}", method: "webhooks/delete", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: NoContent, status: 204, summary: "Delete a webhook subscription and its delivery log (admins)" },
    Route { verb: "GET", path: "/webhooks/{id}/deliveries", method: "webhooks/deliveries", params: BY_ID, fixed: &[], query: DELIVERIES, body: Body::None, render: List(Delivery), status: 200, summary: "A webhook's delivery log, newest first (filters: status, limit; admins)" },
    Route { verb: "POST", path: "/webhook-deliveries/{id}/redeliver", method: "webhooks/redeliver", params: BY_ID, fixed: &[], query: &[], body: Body::None, render: One(Delivery), status: 200, summary: "Send a delivery again, now (admins)" },
];

/// The REST door for one request below `/api/v1`.
pub struct RestDoor {
    verb: String,
    /// The path below `/api/v1`.
    path: String,
    query: String,
    /// The bearer token, as [`Credentials::Token`].
    credentials: Credentials,
    /// Whether the request's `Content-Type` is JSON (or absent).
    json_body: bool,
    /// The headers of the request that make it conditional or retry-safe.
    headers: Headers,
    /// How far decoding went: the error of a request that reached no method is answered as it is, a method's is
    /// renamed back to the REST names.
    decoded: Decoded,
}

/// How far [`RestDoor::decode`] went.
#[derive(Clone, Copy)]
enum Decoded {
    /// No route yet (or none matched).
    Nothing,
    /// A route matched, but its parameters were refused: no method runs.
    Route(&'static Route),
    /// A call of the route's method.
    Call(&'static Route),
}

impl RestDoor {
    /// A request for `path` (below `/api/v1`) with its bearer token, if any, and its conditional and
    /// idempotency `headers`; `json_body` tells whether its `Content-Type` is JSON or absent.
    pub fn new(
        verb: String,
        path: String,
        query: String,
        token: Option<String>,
        json_body: bool,
        headers: Headers,
    ) -> RestDoor {
        RestDoor {
            verb,
            path,
            query,
            credentials: Credentials::Token(token),
            json_body,
            headers,
            decoded: Decoded::Nothing,
        }
    }

    /// The `version` parameter a write's preconditions ask for (methods.md, Versions): `If-Match: "<version>"`
    /// names the version the record must still have; `If-None-Match: *` asks for no current record, which an
    /// existing one never is (version 0 is no record's). `If-Match: *` asks for any current record, which the
    /// method requires anyway. On a create (`POST`), `If-None-Match: *` is what a create does anyway: it never
    /// replaces a record (`duplicate`).
    fn precondition(&self) -> Result<Option<i64>> {
        let (if_match, if_none_match) = (self.headers.if_match.as_deref(), self.headers.if_none_match.as_deref());
        let refused = |what: &str| Err(Error::new(Code::BadRequest, what.to_string()));
        match self.verb.as_str() {
            "GET" | "HEAD" => Ok(None),
            "POST" if if_match.is_some() => refused("If-Match applies to PUT, PATCH and DELETE of one record"),
            "POST" if if_none_match.is_some_and(|v| v != "*") => refused("If-None-Match on a create takes only *"),
            "POST" => Ok(None),
            _ => match (if_match, if_none_match) {
                (Some(_), Some(_)) => refused("send If-Match or If-None-Match, not both"),
                (None, Some("*")) => Ok(Some(0)),
                (None, Some(_)) => refused("If-None-Match on a change takes only *"),
                (Some("*"), None) | (None, None) => Ok(None),
                // A tag that is no version of ours (a weak one, a list) matches no record: refused as a mismatch.
                (Some(tag), None) => Ok(Some(
                    tag.strip_prefix('"')
                        .and_then(|t| t.strip_suffix('"'))
                        .and_then(|t| t.parse::<i64>().ok())
                        .filter(|v| *v > 0)
                        .unwrap_or(-1),
                )),
            },
        }
    }
}

/// The headers of a REST request the door reads besides its token and content type.
#[derive(Debug, Default)]
pub struct Headers {
    /// `Idempotency-Key`, taken into the call on the verbs that write (a GET's is ignored: a GET is idempotent).
    pub idempotency_key: Option<String>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
}

/// The `ETag` of `route`'s answer: a strong tag of its record's version, when it answers one record.
fn entity_tag(route: &Route, answer: &Reply) -> Option<String> {
    match route.render {
        One(_) => version_of(answer).map(|v| format!("\"{v}\"")),
        _ => None,
    }
}

/// The version of the one record a reply holds, for its `ETag`.
fn version_of(answer: &Reply) -> Option<i64> {
    match answer {
        Reply::Subnets(l) => l.first().map(|s| s.stamps.version),
        Reply::Hosts(l) => l.first().and_then(|h| h.stamps.as_ref()).map(|s| s.version),
        Reply::Ranges(l) => l.first().map(|r| r.stamps.version),
        Reply::Groups(l) => l.first().map(|g| g.stamps.version),
        Reply::Fields(l) => l.first().map(|f| f.stamps.version),
        Reply::Users(l) => l.first().map(|u| u.version),
        Reply::AppKeys(l) => l.first().map(|k| k.version),
        Reply::Tokens(l) => l.first().map(|t| t.version),
        _ => None,
    }
}

impl Door for RestDoor {
    fn name(&self) -> &str {
        match self.decoded {
            Decoded::Nothing => "",
            Decoded::Route(route) | Decoded::Call(route) => route.method,
        }
    }

    fn door(&self) -> &'static str {
        "rest"
    }

    fn endpoint(&self) -> Endpoint {
        let route = match self.decoded {
            // Refused before decoding (rate limit, body): the route is matched here, for that rare answer only.
            Decoded::Nothing => route(&self.verb, &self.path).ok().map(|(r, _)| r),
            Decoded::Route(route) | Decoded::Call(route) => Some(route),
        };
        Endpoint::Rest(route.and_then(|route| ROUTES.iter().position(|r| std::ptr::eq(r, route))))
    }

    /// The bearer token comes in the head: a request is counted before its body is read.
    fn head_credentials(&self) -> Option<&Credentials> {
        Some(&self.credentials)
    }

    fn decode(&mut self, body: &[u8]) -> Result<Call> {
        if !body.is_empty() && !self.json_body {
            return Err(Error::new(
                Code::UnsupportedMediaType,
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let (route, path_params) = route(&self.verb, &self.path)?;
        self.decoded = Decoded::Route(route);
        let mut data = build_params(route, &path_params, &self.query, body)?;
        if let Some(version) = self.precondition()? {
            data["version"] = json!(version);
        }
        self.decoded = Decoded::Call(route);
        let writes = !matches!(self.verb.as_str(), "GET" | "HEAD");
        let key = self
            .headers
            .idempotency_key
            .take()
            .filter(|_| writes)
            .map(|key| RequestKey {
                key,
                target: format!("{} {}", route.verb, route.path),
                render: Box::new(move |_: &str, answer: &Reply| {
                    Ok(Replayed {
                        status: route.status,
                        body: render(route, answer)?,
                        etag: entity_tag(route, answer),
                    })
                }),
            });
        Ok(Call {
            method: route.method.to_string(),
            credentials: self.credentials.clone(),
            data,
            key,
        })
    }

    fn render(&self, outcome: Outcome) -> Rendered {
        let tag = match (self.decoded, &outcome.result) {
            (Decoded::Call(route), Ok(answer)) => entity_tag(route, answer),
            _ => None,
        };
        let rendered = match self.decoded {
            Decoded::Call(route) => outcome
                .result
                .and_then(|v| render(route, &v))
                .map(|body| (route, body))
                .map_err(|e| rename_errors(route, e)),
            Decoded::Nothing | Decoded::Route(_) => match outcome.result {
                Err(e) => Err(e),
                Ok(_) => Err(Error::internal("a reply to a request that made no call")),
            },
        };
        let (mut status, mut body, error) = match rendered {
            Ok((route, body)) => (route.status, (route.render != NoContent).then_some(body), None),
            Err(e) => (e.code.http_status(), Some(to_json(&error_body(&e))), Some(e)),
        };
        // A 401 names the scheme REST takes (RFC 9110 asks every 401 to).
        let challenge = (status == 401).then(|| ("www-authenticate", "Bearer realm=\"ipamd\"".to_string()));
        let mut headers: Vec<(&'static str, String)> =
            error.as_ref().and_then(allow).into_iter().chain(challenge).collect();
        if let Some(tag) = tag.filter(|_| error.is_none()) {
            // A client that holds this version already is told so, without the record: `*`, or a list of tags
            // compared weakly, as a GET's are.
            let held = self
                .headers
                .if_none_match
                .as_deref()
                .is_some_and(|v| v.trim() == "*" || v.split(',').any(|t| t.trim().trim_start_matches("W/") == tag));
            if self.verb == "GET" && held {
                (status, body) = (304, None);
            }
            headers.push(("etag", tag));
        }
        Rendered {
            status,
            body,
            headers,
            error,
            respid: outcome.respid,
            caller: outcome.caller,
        }
    }
}

/// The `Allow` header of a 405: the verbs the path takes, which the route matcher put in the error's data.
fn allow(e: &Error) -> Option<(&'static str, String)> {
    match (e.code, &e.data) {
        (Code::MethodNotAllowed, Some(Value::String(verbs))) => Some(("allow", verbs.clone())),
        _ => None,
    }
}

/// The path parameters of a matched route, by name.
pub type PathParams<'p> = Vec<(&'static str, &'p str)>;

/// Finds the route for a verb and path: `Ok(route, path params)`, or the error (404, or 405 with the verbs).
pub fn route<'p>(verb: &str, path: &'p str) -> Result<(&'static Route, PathParams<'p>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // `/ip/10.0.0.0/24` is `/ip/{ip}` with a CIDR, which the method refuses with a clear 400 rather than a 404.
    if verb == "GET" && segments.len() == 3 && segments[0] == "ip" && segments[1] != "networks" {
        if let Some(r) = ROUTES.iter().find(|r| r.path == "/ip/{ip}") {
            return Ok((r, vec![("ip", path.trim_matches('/').trim_start_matches("ip/"))]));
        }
    }
    /// The routes' paths as segments, split once.
    static PATTERNS: LazyLock<Vec<Vec<&'static str>>> = LazyLock::new(|| {
        ROUTES
            .iter()
            .map(|r| r.path.trim_matches('/').split('/').collect())
            .collect()
    });
    let mut allowed: Vec<&str> = Vec::new();
    for (r, parts) in ROUTES.iter().zip(PATTERNS.iter()) {
        let Some(params) = match_path(parts, &segments) else {
            continue;
        };
        if r.verb == verb {
            return Ok((r, params));
        }
        if !allowed.contains(&r.verb) {
            allowed.push(r.verb);
        }
    }
    if allowed.is_empty() {
        Err(Error::new(Code::NotFound, format!("no route for /api/v1{path}")))
    } else {
        Err(
            Error::new(Code::MethodNotAllowed, format!("use {}", allowed.join(", ")))
                .with_data(json!(allowed.join(", "))),
        )
    }
}

fn match_path<'p>(parts: &[&'static str], segments: &[&'p str]) -> Option<PathParams<'p>> {
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in parts.iter().zip(segments) {
        match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !s.is_empty() => params.push((name, *s)),
            Some(_) => return None,
            None if p == s => {}
            None => return None,
        }
    }
    Some(params)
}

/// The REST error body: `{message, code, errors?}` (`errors` names fields), `details` for other error data.
pub fn error_body(e: &Error) -> Value {
    let mut body = json!({"message": e.public_message(), "code": e.code.as_str()});
    match (&e.data, e.code) {
        (Some(d), Code::InvalidParams) => body["errors"] = d.clone(),
        (Some(_), Code::MethodNotAllowed | Code::Internal) | (None, _) => {}
        (Some(d), _) => body["details"] = d.clone(),
    }
    body
}

/// Path, query and body → the method's `data`, with REST names turned into parameter names.
fn build_params(route: &Route, path: &[(&str, &str)], query: &str, body: &[u8]) -> Result<Value> {
    let mut data = Map::new();
    let rename = |name: &str| -> String {
        let resource = match route.body {
            Fields(r) | Replace(r) => r.renames(),
            Body::None => &[],
        };
        route
            .params
            .iter()
            .chain(resource)
            .find(|(rest, _)| *rest == name)
            .map_or(name, |(_, p)| p)
            .to_string()
    };
    for (name, value) in path {
        data.insert(rename(name), Value::String((*value).to_string()));
    }
    let pairs = crate::rpc::form_pairs(query.as_bytes())
        .ok_or_else(|| Error::new(Code::BadRequest, "the query string is malformed"))?;
    for (name, value) in pairs {
        if !route.query.contains(&name.as_str()) {
            return Err(Error::param(&name, "unknown query parameter"));
        }
        let key = rename(&name);
        if data.contains_key(&key) {
            return Err(Error::param(&name, "given twice"));
        }
        data.insert(key, Value::String(value));
    }
    for (name, literal) in route.fixed {
        if !data.contains_key(*name) {
            data.insert(
                (*name).to_string(),
                serde_json::from_str(literal).unwrap_or(Value::Null),
            );
        }
    }
    let resource = match route.body {
        Body::None => return Ok(Value::Object(data)),
        Fields(r) | Replace(r) => r,
    };
    let fields = match body.iter().all(u8::is_ascii_whitespace) {
        true => Map::new(),
        false => match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(Error::new(Code::BadRequest, "the body must be a JSON object")),
            Err(e) => return Err(Error::new(Code::BadRequest, format!("the body is not valid JSON: {e}"))),
        },
    };
    crate::openapi::check_body(resource, &fields)?;
    // Only a PUT replaces a record with what a GET gave: elsewhere a read-only field is a mistake to name, not to
    // drop (`subnet` on `POST /networks` would otherwise end as "network is required", and a PATCH of it would
    // answer 200 having changed nothing).
    let mut errors = Map::new();
    if !matches!(route.body, Replace(_)) {
        for name in fields.keys().filter(|f| resource.read_only().contains(&f.as_str())) {
            errors.insert(name.clone(), json!("is read-only"));
        }
    }
    for f in crate::openapi::required_fields(route) {
        if fields.get(*f).is_none_or(Value::is_null) && !data.contains_key(&rename(f)) {
            errors.insert((*f).to_string(), json!("is required"));
        }
    }
    if !errors.is_empty() {
        return Err(invalid_fields(errors));
    }
    if let Replace(r) = route.body {
        for f in r.optional() {
            if !fields.contains_key(*f) {
                data.insert(rename(f), Value::Null);
            }
        }
    }
    for (name, value) in fields {
        if resource.read_only().contains(&name.as_str()) {
            continue;
        }
        // The method's own names (`ip`, `subnet`) are not REST fields: only the REST names map onto them.
        if resource
            .renames()
            .iter()
            .any(|(rest, param)| *param == name && *rest != name)
        {
            return Err(Error::param(&name, "unknown field"));
        }
        let key = rename(&name);
        // A path parameter wins over the same field in the body (PUT /networks/3 with "id": 9 edits 3).
        if !data.contains_key(&key) || matches!(route.body, Replace(_) if value.is_null()) {
            data.insert(key, value);
        }
    }
    Ok(Value::Object(data))
}

/// `invalid_params` for the fields of `errors` (REST names → messages), all of them named in the message.
pub(crate) fn invalid_fields(errors: Map<String, Value>) -> Error {
    let message = errors
        .iter()
        .map(|(field, m)| format!("{field}: {}", m.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");
    Error::new(Code::InvalidParams, message).with_data(Value::Object(errors))
}

/// A method's error in the words of the REST request: parameter names back to the REST names the client used (in
/// `errors` and in its messages), and an envelope hint to "pass force" as the query parameter or body field that
/// does it.
fn rename_errors(route: &Route, mut e: Error) -> Error {
    let resource = match route.body {
        Fields(r) | Replace(r) => r.renames(),
        Body::None => &[],
    };
    let back = |name: &str| -> Option<&'static str> {
        route
            .params
            .iter()
            .chain(resource)
            .find(|(_, p)| *p == name)
            .map(|(rest, _)| *rest)
    };
    // The REST nouns for the envelope's, and with `params` the parameters' REST names. A parameter's name followed
    // by a number is the record it names ("not inside subnet 3"), not the parameter; nor is a path's `id` renamed.
    let words = |text: &str, params: bool| -> String {
        let text = text
            .replace("address records", "hosts")
            .replace("address record", "host");
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            out.push_str(&rest[..start]);
            rest = &rest[start..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (word, tail) = rest.split_at(end);
            let names_a_record = tail
                .strip_prefix(' ')
                .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()));
            match (back(word), word) {
                (Some(name), _) if params && name != "id" && !names_a_record => out.push_str(name),
                (_, "subnet") => out.push_str("network"),
                (_, "subnets") => out.push_str("networks"),
                _ => out.push_str(word),
            }
            rest = tail;
        }
        out.push_str(rest);
        out
    };
    if let Some((before, after)) = e.message.split_once("pass ") {
        let flag: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let rest_flag = back(&flag).unwrap_or(&flag);
        let hint = match route.query.contains(&rest_flag) {
            true => format!("add ?{rest_flag}=true"),
            false => format!("send \"{rest_flag}\": true"),
        };
        e.message = format!("{before}{hint}{}", &after[flag.len()..]);
    }
    if e.code != Code::InvalidParams {
        e.message = words(&e.message, false);
        return e;
    }
    if let Some(Value::Object(m)) = e.data.take() {
        let renamed: Map<String, Value> = m
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(text) => Value::String(words(&text, true)),
                    other => other,
                };
                (back(&k).unwrap_or(&k).to_string(), v)
            })
            .collect();
        e = invalid_fields(renamed);
    }
    e
}

/// A typed answer in the route's REST shape, serialised.
fn render(route: &Route, answer: &Reply) -> Result<Vec<u8>> {
    let wrong = || {
        Error::internal(format!(
            "{} answered a shape {} cannot render",
            route.method, route.path
        ))
    };
    Ok(match (route.render, answer) {
        (NoContent, _) => return Ok(Vec::new()),
        (Page(Network), Reply::Subnets(l)) => to_json(&page::<_, NetworkView>(l)),
        (Page(Host), Reply::Hosts(l)) => to_json(&page::<_, HostView>(l)),
        (Page(DhcpRange), Reply::Ranges(l)) => to_json(&page::<_, RangeView>(l)),
        (Page(Backup), Reply::Backups(l)) => to_json(&page::<_, BackupView>(l)),
        (List(DhcpRange), Reply::Ranges(l)) => to_json(&ListView {
            data: views::<_, RangeView>(l),
        }),
        (One(Network), Reply::Subnets(l)) => to_json(&NetworkView::from(first(l)?)),
        (One(Host), Reply::Hosts(l)) => to_json(&HostView::from(first(l)?)),
        (One(DhcpRange), Reply::Ranges(l)) => to_json(&RangeView::from(first(l)?)),
        (NetworkHosts, Reply::Hosts(l)) => {
            let network = l.within.as_deref().ok_or_else(wrong)?;
            to_json(&views::NetworkHosts {
                network_id: network.id,
                network: &network.subnet,
                hosts: views(l),
                pagination: Pagination::of(l),
            })
        }
        (NextIp, Reply::Next(n)) => to_json(&views::NextIp {
            ip_address: &n.ip,
            network: &n.network,
            network_id: n.subnet,
        }),
        (Available, Reply::Available(a)) => to_json(&AvailableIps {
            network: &a.network,
            network_id: a.subnet,
            total_available: a.total_available,
            available_ips: &a.addresses,
        }),
        (IpStatus, Reply::IpStatus(s)) => to_json(&ip_status(s)),
        (Page(Group), Reply::Groups(l)) => to_json(&page::<_, GroupView>(l)),
        (Page(Field), Reply::Fields(l)) => to_json(&page::<_, FieldView>(l)),
        (Page(User), Reply::Users(l)) => to_json(&page::<_, UserView>(l)),
        (Page(AppKey), Reply::AppKeys(l)) => to_json(&page::<_, AppKeyView>(l)),
        (Page(Token), Reply::Tokens(l)) => to_json(&page::<_, TokenView>(l)),
        (List(Network), Reply::Subnets(l)) => to_json(&ListView {
            data: views::<_, NetworkView>(l),
        }),
        (One(Group), Reply::Groups(l)) => to_json(&GroupView::from(first(l)?)),
        (One(Field), Reply::Fields(l)) => to_json(&FieldView::from(first(l)?)),
        (One(User), Reply::Users(l)) => to_json(&UserView::from(first(l)?)),
        (One(AppKey), Reply::AppKeys(l)) => to_json(&AppKeyView::from(first(l)?)),
        (One(Token), Reply::Tokens(l)) => to_json(&TokenView::from(first(l)?)),
        (One(Org), Reply::Orgs(l)) => to_json(&OrgView::from(only(l)?)),
        (One(Org), Reply::OrgInfo(i)) => to_json(&OrgView::from(i.as_ref())),
        (Page(AuditEntry), Reply::Logs(l)) => to_json(&PageView {
            data: l.logs.0.iter().map(AuditEntryView::from).collect::<Vec<_>>(),
            pagination: Pagination::new(l.page, l.perpage, l.total, l.pages),
        }),
        (Found, Reply::Found(f)) => to_json(&views::SearchResults {
            groups: f.groups.0.iter().map(GroupView::from).collect(),
            networks: f.subnets.0.iter().map(|h| NetworkView::from(&h.subnet)).collect(),
            hosts: f.addresses.0.iter().map(HostView::from).collect(),
            truncated: f.truncated,
        }),
        (Joined, Reply::Joined(l)) => {
            let j = only(l)?;
            to_json(&views::Joined {
                network: NetworkView::from(&j.subnet),
                joined: &j.joined,
            })
        }
        (Me, Reply::Userdata(u)) => {
            let (user_id, username, level) = match &u.user {
                model::Identity::User(user) => (Some(user.id), user.username.as_str(), user.level.as_str()),
                model::Identity::Operator { username, level, .. } => (None, username.as_str(), *level),
            };
            to_json(&views::Me {
                user_id,
                username,
                level,
                org_id: u.org.id,
                org: &u.org.identifier,
            })
        }
        (Plain, Reply::Ping(p)) => to_json(&views::Pong {
            pong: p.pong,
            server_time: crate::time::rfc3339(p.servertime),
        }),
        (Plain, Reply::Version(v)) => to_json(&views::Version {
            version: v.version,
            server: v.server,
        }),
        (Plain, Reply::NewBackup(b)) => to_json(&BackupCreated {
            backup: BackupView::from(&b.backup),
            integrity: &b.integrity,
        }),
        (Plain, Reply::Verified(v)) => to_json(v),
        (Plain, Reply::Restored(r)) => to_json(r),
        (Plain, Reply::Changes(c)) => to_json(c),
        (List(Webhook), Reply::Webhooks(r)) => to_json(&ListView {
            data: r.0.iter().map(WebhookView::from).collect(),
        }),
        (One(Webhook), Reply::Webhooks(r)) => to_json(&WebhookView::from(
            r.0.first().ok_or_else(|| Error::not_found("webhook"))?,
        )),
        (List(Delivery), Reply::Deliveries(r)) => to_json(&ListView {
            data: r.0.iter().map(DeliveryView::from).collect(),
        }),
        (One(Delivery), Reply::Deliveries(r)) => to_json(&DeliveryView::from(
            r.0.first().ok_or_else(|| Error::not_found("delivery"))?,
        )),
        _ => return Err(wrong()),
    })
}

/// `POST /backups`: the backup as `GET /backups` lists it (without the `id` the envelope keys it by), and its check.
#[derive(serde::Serialize)]
struct BackupCreated<'a> {
    #[serde(flatten)]
    backup: BackupView<'a>,
    #[serde(flatten)]
    integrity: &'a model::Integrity,
}

/// The one record of a lookup's answer.
fn first<T>(list: &model::List<T>) -> Result<&T> {
    list.first().ok_or_else(|| Error::not_found("record"))
}

/// The one record of an answer keyed by id.
fn only<T>(records: &model::Records<T>) -> Result<&T> {
    records.0.first().ok_or_else(|| Error::not_found("record"))
}

fn page<'a, T, V: From<&'a T>>(list: &'a model::List<T>) -> PageView<V> {
    PageView {
        data: views(list),
        pagination: Pagination::of(list),
    }
}

/// `GET /ip/{ip}` from `search/ip` with `status`: the seed's shapes for each status.
fn ip_status(s: &model::IpStatus) -> IpStatusView<'_> {
    let network = s.network.as_ref().map(|n| ShortNetwork::from(&n.subnet));
    let mut view = IpStatusView {
        ip_address: &s.ip,
        status: s.status,
        host: None,
        dhcp_range: None,
        network: None,
        message: None,
        matches: (s.matches > 1).then_some(s.matches),
    };
    match s.status {
        "assigned" => view.host = s.host.as_ref().map(HostView::from),
        "dhcp" => {
            view.dhcp_range = s.dhcp_range.as_ref().map(ShortRange::from);
            view.network = network;
        }
        "available" | "unusable" => view.network = network,
        _ => view.message = Some("IP address is not in any managed network"),
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_unique_and_name_methods_of_the_table() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                crate::handler::find_method(crate::methods::METHODS, r.method).is_some(),
                "{} {} names unknown method {}",
                r.verb,
                r.path,
                r.method
            );
            assert!(
                !ROUTES[..i].iter().any(|o| o.verb == r.verb && o.path == r.path),
                "duplicate route {} {}",
                r.verb,
                r.path
            );
        }
    }

    #[test]
    fn matches_paths_and_reports_allowed_verbs() {
        let (r, p) = route("GET", "/networks/12/hosts").unwrap();
        assert_eq!((r.method, p), ("ipaddress/get", vec![("id", "12")]));
        let (r, p) = route("GET", "/ip/2001:db8::1").unwrap();
        assert_eq!((r.method, p), ("search/ip", vec![("ip", "2001:db8::1")]));
        assert_eq!(
            route("GET", "/ip/networks/3/next-ip").unwrap().0.method,
            "ipaddress/next"
        );
        let e = route("PUT", "/networks").err().unwrap();
        assert_eq!(e.code, Code::MethodNotAllowed);
        assert_eq!(e.data, Some(json!("GET, POST, DELETE")));
        assert_eq!(route("GET", "/nope").err().unwrap().code, Code::NotFound);
        assert_eq!(route("GET", "/networks//hosts").err().unwrap().code, Code::NotFound);
    }

    #[test]
    fn method_errors_speak_rest() {
        let speak = |verb: &str, path: &str, e: Error| rename_errors(route(verb, path).unwrap().0, e);
        let e = Error::new(Code::NotEmpty, "subnet 3 holds 2 address records; pass force");
        assert_eq!(
            speak("DELETE", "/networks/3", e).message,
            "network 3 holds 2 hosts; add ?force=true"
        );
        let e = Error::new(
            Code::Conflict,
            "field definitions conflict; pass force to keep the surviving subnet's",
        );
        assert_eq!(
            speak("POST", "/networks/join", e).message,
            "field definitions conflict; send \"force\": true to keep the surviving network's"
        );
        let e = speak("POST", "/hosts", Error::param("ip", "give ip, subnet, or both"));
        assert_eq!(e.message, "ip_address: give ip_address, network_id, or both");
        assert_eq!(
            e.data,
            Some(json!({"ip_address": "give ip_address, network_id, or both"}))
        );
        let e = speak(
            "POST",
            "/hosts",
            Error::param("ip", "10.1.0.9 is not inside subnet 4 (10.0.0.0/24)"),
        );
        assert_eq!(
            e.data,
            Some(json!({"ip_address": "10.1.0.9 is not inside network 4 (10.0.0.0/24)"}))
        );
        // Outside `errors`, parameter names are left alone: this `parent` is no field.
        let e = speak(
            "PATCH",
            "/groups/2",
            Error::new(Code::NotFound, "parent group not found"),
        );
        assert_eq!(e.message, "parent group not found");
    }

    #[test]
    fn put_clears_omitted_fields_and_renames() {
        let (r, p) = route("PUT", "/hosts/5").unwrap();
        let d = build_params(r, &p, "", br#"{"ip_address":"10.0.0.9","network":"x","id":77}"#).unwrap();
        assert_eq!(d["id"], json!("5"));
        assert_eq!(d["ip"], json!("10.0.0.9"));
        assert_eq!(d["hostname"], Value::Null);
        assert!(d.get("network").is_none());
        let e = build_params(r, &p, "", br#"{"hostname":"a"}"#).unwrap_err();
        assert_eq!(e.data, Some(json!({"ip_address": "is required"})));
    }
}
