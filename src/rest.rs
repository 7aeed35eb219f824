//! The `/api/v1` REST door. Every route is one line of [`ROUTES`] naming a method of the method table: the door
//! turns path, query and body into that method's parameters, for the server to dispatch, and renders typed JSON in
//! the REST shapes. It has no SQL and no business rules of its own.

use std::sync::LazyLock;

use serde_json::{json, Map, Value};

use crate::door::{to_json, Door, Rendered};
use crate::error::{Code, Error, Result};
use crate::handler::{Call, Credentials, Outcome};
use crate::model::{self, Reply};

pub(crate) mod views;
use views::{
    views, AvailableIps, BackupView, DeliveryView, HostView, IpStatusView, ListView, NetworkView, PageView, Pagination,
    RangeView, ShortNetwork, ShortRange, WebhookView,
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
    /// A backup's reply as the method gives it (a new backup without the `id` only the envelope shows).
    Plain,
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
    Webhook,
    Delivery,
}

impl Resource {
    /// REST name → method parameter name, for the fields whose names differ.
    fn renames(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Resource::Network => &[("group_id", "group")],
            Resource::Host => &[("ip_address", "ip"), ("network_id", "subnet")],
            Resource::DhcpRange => &[("network_id", "subnet")],
            Resource::Backup | Resource::Delivery => &[],
            Resource::Webhook => &[("network_id", "subnet"), ("group_id", "group")],
        }
    }

    /// Fields a client may send back from a GET, ignored on input.
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
            ],
            Resource::Host => &["id", "network"],
            Resource::DhcpRange => &["id"],
            Resource::Backup => &["name", "size_bytes", "created_at"],
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
    fn required(self) -> &'static [&'static str] {
        match self {
            Resource::Network => &["network", "cidr"],
            Resource::Host => &["ip_address"],
            Resource::DhcpRange => &["start_ip", "end_ip"],
            Resource::Backup | Resource::Webhook | Resource::Delivery => &[],
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
            Resource::Backup | Resource::Webhook | Resource::Delivery => &[],
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
const FEED: &[&str] = &["after", "limit", "wait"];
const DELIVERIES: &[&str] = &["status", "limit"];

use Body::{Fields, Replace};
use Render::*;
use Resource::{Backup, Delivery, DhcpRange, Host, Network, Webhook};

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
    /// A request for `path` (below `/api/v1`) with its bearer token, if any; `json_body` tells whether its
    /// `Content-Type` is JSON or absent.
    pub fn new(verb: String, path: String, query: String, token: Option<String>, json_body: bool) -> RestDoor {
        RestDoor {
            verb,
            path,
            query,
            credentials: Credentials::Token(token),
            json_body,
            decoded: Decoded::Nothing,
        }
    }
}

impl Door for RestDoor {
    fn name(&self) -> &str {
        match self.decoded {
            Decoded::Nothing => &self.path,
            Decoded::Route(route) | Decoded::Call(route) => route.method,
        }
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
        let data = build_params(route, &path_params, &self.query, body)?;
        self.decoded = Decoded::Call(route);
        Ok(Call {
            method: route.method.to_string(),
            credentials: self.credentials.clone(),
            data,
        })
    }

    fn render(&self, outcome: Outcome) -> Rendered {
        let rendered = match self.decoded {
            Decoded::Call(route) => outcome
                .result
                .and_then(|v| render(route, v))
                .map(|body| (route, body))
                .map_err(|e| rename_errors(route, e)),
            Decoded::Nothing | Decoded::Route(_) => match outcome.result {
                Err(e) => Err(e),
                Ok(_) => Err(Error::internal("a reply to a request that made no call")),
            },
        };
        let (status, body, error) = match rendered {
            Ok((route, body)) => (route.status, (route.render != NoContent).then_some(body), None),
            Err(e) => (e.code.http_status(), Some(to_json(&error_body(&e))), Some(e)),
        };
        Rendered {
            status,
            body,
            headers: error.as_ref().and_then(allow).into_iter().collect(),
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
    if let Replace(r) = route.body {
        for f in r.required() {
            if fields.get(*f).is_none_or(Value::is_null) {
                return Err(Error::param(f, "is required"));
            }
        }
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

/// Parameter names in `invalid_params` errors back to the REST names the client used.
fn rename_errors(route: &Route, mut e: Error) -> Error {
    if e.code != Code::InvalidParams {
        return e;
    }
    let resource = match route.body {
        Fields(r) | Replace(r) => r.renames(),
        Body::None => &[],
    };
    let back = |name: &str| -> String {
        route
            .params
            .iter()
            .chain(resource)
            .find(|(_, p)| *p == name)
            .map_or(name, |(rest, _)| rest)
            .to_string()
    };
    if let Some(Value::Object(m)) = e.data.take() {
        let renamed: Map<String, Value> = m.into_iter().map(|(k, v)| (back(&k), v)).collect();
        let names: Vec<&str> = renamed.keys().map(String::as_str).collect();
        e.message = format!("invalid parameters: {}", names.join(", "));
        e.data = Some(Value::Object(renamed));
    }
    e
}

/// A typed answer in the route's REST shape, serialised.
fn render(route: &Route, answer: Reply) -> Result<Vec<u8>> {
    let wrong = || {
        Error::internal(format!(
            "{} answered a shape {} cannot render",
            route.method, route.path
        ))
    };
    Ok(match (route.render, &answer) {
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
        let e = route("DELETE", "/networks").err().unwrap();
        assert_eq!(e.code, Code::MethodNotAllowed);
        assert_eq!(e.data, Some(json!("GET, POST")));
        assert_eq!(route("GET", "/nope").err().unwrap().code, Code::NotFound);
        assert_eq!(route("GET", "/networks//hosts").err().unwrap().code, Code::NotFound);
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
