//! The OpenAPI 3.1 document of `/api/v1`, generated from the route table so the two cannot drift, and Swagger UI
//! served from assets compiled into the binary (no CDN, no download).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Map, Value};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::error::Result;
use crate::rest::views::{
    AppKeyView, AuditEntryView, AvailableIps, AvailableNetworks, BackupView, DeliveryView, FieldView, GroupView,
    HostView, IpStatusView, Joined, Me, NetworkHosts, NetworkView, NextIp, OrgView, PageView, Pagination, Pong,
    PoolView, RangeView, SearchResults, TokenView, UserView, Version, WebhookView,
};
use crate::rest::{Body, Render, Resource, Route, ROUTES};
use crate::server::{full, json_response, Body as HttpBody};

/// Whether `path` (below `/api/v1`) is one of the documents [`serve`] answers.
pub fn is_document(path: &str) -> bool {
    path == "/openapi.json" || path == "/swagger.json" || path == "/docs" || path.starts_with("/docs/")
}

/// Serves `/openapi.json`, `/swagger.json` and `/docs/…` (paths below `/api/v1`); `None` for other paths.
pub fn serve(path: &str, method: &Method) -> Option<Response<HttpBody>> {
    let docs = path == "/docs" || path.starts_with("/docs/");
    if !is_document(path) {
        return None;
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"message": "use GET", "code": "method_not_allowed"}),
        );
        r.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(r);
    }
    if !docs {
        return Some(json_response(StatusCode::OK, document()));
    }
    if path == "/docs" {
        // Relative asset paths in Swagger UI's index need the trailing slash.
        let mut r = Response::new(full(Bytes::new()));
        *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
        r.headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/api/v1/docs/"));
        return Some(r);
    }
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| Arc::new(utoipa_swagger_ui::Config::from("/api/v1/openapi.json")));
    let tail = path.trim_start_matches("/docs/");
    Some(match utoipa_swagger_ui::serve(tail, config.clone()) {
        Ok(Some(file)) => {
            let mut r = Response::new(full(file.bytes.into_owned()));
            if let Ok(ct) = HeaderValue::from_str(&file.content_type) {
                r.headers_mut().insert(CONTENT_TYPE, ct);
            }
            r
        }
        Ok(None) => json_response(
            StatusCode::NOT_FOUND,
            &json!({"message": "no such file", "code": "not_found"}),
        ),
        Err(e) => {
            tracing::error!(error = %e, "swagger ui");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"message": "internal error", "code": "internal_error"}),
            )
        }
    })
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

/// The server's own pages, outside `/api/v1` (documented with a server of their own, `/`): path, operation id,
/// summary, and the answers (status, media type, schema).
pub const PAGES: [(&str, &str, &str); 4] = [
    (
        "/healthz",
        "getHealthz",
        "Liveness: 200 while the process serves, whatever the database does",
    ),
    (
        "/readyz",
        "getReadyz",
        "Readiness: 200 while the database answers and the rate limiter's Redis (if configured) is connected; \
         else 503 naming the part that failed",
    ),
    (
        "/metrics",
        "getMetrics",
        "Prometheus metrics, text exposition format 0.0.4 (with IPAMD_METRICS=true; otherwise 404)",
    ),
    ("/", "getRoot", "Where the APIs, their documentation and the probes are"),
];

/// The operation of one of [`PAGES`]: no credentials, no rate limit.
fn page(path: &str, id: &str, summary: &str) -> Value {
    let readiness = json!({"type": "object", "required": ["status", "database", "ratelimit_storage"], "properties": {
        "status": {"type": "string", "enum": ["ready", "not_ready"]},
        "database": {"type": "string", "enum": ["ok", "unavailable"]},
        "ratelimit_storage": {"type": "string", "enum": ["ok", "unavailable"]},
    }});
    let json_answer = |schema: Value| json!({"content": {"application/json": {"schema": schema}}});
    let mut responses = match path {
        "/healthz" => json!({"200": json_answer(json!({"type": "object", "required": ["status"],
                                                      "properties": {"status": {"const": "ok"}}}))}),
        "/readyz" => json!({"200": json_answer(readiness.clone()), "503": json_answer(readiness)}),
        "/metrics" => json!({
            "200": {"content": {"text/plain; version=0.0.4; charset=utf-8": {"schema": {"type": "string"}}}},
            "404": json_answer(reference("Error")),
        }),
        _ => json!({"200": json_answer(json!({"type": "object"}))}),
    };
    if let Some(answers) = responses.as_object_mut() {
        for (status, answer) in answers.iter_mut() {
            answer["description"] = json!(if status.starts_with('2') {
                "Answer"
            } else {
                "Not available"
            });
        }
    }
    json!({
        "servers": [{"url": "/"}],
        "get": {
            "operationId": id,
            "summary": summary,
            "tags": ["server"],
            "security": [],
            "responses": responses,
        },
    })
}

fn build() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.verb.to_ascii_lowercase()] = operation(r);
    }
    for (path, id, summary) in PAGES {
        paths.insert(path.to_string(), page(path, id, summary));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ipamd REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "IP address management: networks, hosts, DHCP ranges, address allocation, groups, \
                            custom fields, search, the audit log, the organisation, its users and credentials, and \
                            backups. Every route calls a method of the same table as the /1.0 envelope API.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from org/tokens/add or API_TOKENS"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "schemas": schemas(),
        },
    })
}

fn operation(r: &Route) -> Value {
    let mut params: Vec<Value> = r
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let schema = if name == "id" {
                json!({"type": "integer", "minimum": 1})
            } else {
                json!({"type": "string"})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect();
    params.extend(r.query.iter().map(|q| query_param(r.method, q)));
    match (r.verb, r.render) {
        ("GET", Render::One(_)) => params.push(json!({
            "name": "If-None-Match", "in": "header", "required": false, "schema": {"type": "string"},
            "example": "\"42\"",
            "description": "The ETag of the version the client holds: 304 Not Modified, without a body, while the \
                            record is still at it.",
        })),
        ("PUT" | "PATCH" | "DELETE", _) => params.extend([
            json!({
                "name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"},
                "example": "\"42\"",
                "description": "The record's ETag as read (one strong tag, or *): the change is made only if the \
                                record is still at that version, else 412 precondition_failed and nothing changes.",
            }),
            json!({
                "name": "If-None-Match", "in": "header", "required": false,
                "schema": {"type": "string", "enum": ["*"]},
                "description": "*: only if there is no such record, so 412 precondition_failed when there is.",
            }),
        ]),
        _ => {}
    }
    if r.verb != "GET" {
        params.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
            "example": "3f1c9a52-alloc-web-1",
            "description": "Makes the request safe to retry: a retry with the same key and the same request gets the \
                            first answer again (with Idempotent-Replayed: true) without doing the work twice; the same \
                            key with another request is 422 key_reused; while the first is in progress, 409 \
                            in_progress. Only successes are kept, for IPAMD_IDEMPOTENCY_SECONDS (24 h). Keys belong \
                            to the caller. Writes only: a read or a restore refuses a key (400).",
        }));
    }
    let tag = r.path.trim_start_matches('/').split('/').next().unwrap_or_default();
    let mut op = json!({
        "operationId": operation_id(r),
        "summary": r.summary,
        "tags": [tag],
        "parameters": params,
        "responses": responses(r),
    });
    if let Some(res) = input(r) {
        let schema = match required_fields(r) {
            [] => input_name(res),
            _ => body_name(r, res),
        };
        let mut content = json!({"schema": reference(&schema)});
        if let Some(example) = example(r) {
            content["example"] = example;
        }
        op["requestBody"] = json!({
            "required": matches!(r.body, Body::Replace(_)),
            "content": {"application/json": content},
        });
    }
    op
}

/// The fields a route's body must carry: a PUT's, or those of a record a POST creates.
pub(crate) fn required_fields(r: &Route) -> &'static [&'static str] {
    match r.body {
        Body::Replace(res) => res.required(),
        Body::Fields(res) if r.verb == "POST" => res.create_required(),
        _ => &[],
    }
}

/// The request body's schema of a route with required fields: `NetworkCreate`, `HostReplace`, …
fn body_name(r: &Route, res: Resource) -> String {
    match r.body {
        Body::Replace(_) => format!("{}Replace", name(res)),
        _ => format!("{}Create", name(res)),
    }
}

/// The example body of each route that reads one: what Swagger UI's "Try it out" sends. On a new server, sent in
/// the order of the route table (each `{id}` the last record made under the path's first segment), every one
/// succeeds; a test holds them to that.
fn example(r: &Route) -> Option<Value> {
    Some(match (r.verb, r.path) {
        ("POST", "/networks") => json!({"network": "192.168.1.0", "cidr": 24, "name": "Office LAN",
                                        "domain": "office.example", "vlan_id": 100, "location": "Building A"}),
        ("PUT", "/networks/{id}") => json!({"network": "192.168.1.0", "cidr": 24, "name": "Office LAN",
                                           "description": "replaced"}),
        ("PATCH", "/networks/{id}") => json!({"description": "First floor"}),
        ("POST", "/networks/{id}/dhcp-ranges") => json!({"start_ip": "192.168.1.200", "end_ip": "192.168.1.219",
                                                         "description": "Guest pool"}),
        ("POST", "/hosts") => json!({"ip_address": "192.168.1.10", "hostname": "server01",
                                     "mac_address": "aa:bb:cc:dd:ee:ff", "description": "File server"}),
        ("PUT", "/hosts/{id}") => json!({"ip_address": "192.168.1.10", "hostname": "server01"}),
        ("PATCH", "/hosts/{id}") => json!({"status": "reserved"}),
        ("POST", "/dhcp-ranges") => json!({"network_id": 1, "start_ip": "192.168.1.220", "end_ip": "192.168.1.229"}),
        ("PUT", "/dhcp-ranges/{id}") => json!({"start_ip": "192.168.1.220", "end_ip": "192.168.1.239"}),
        ("PATCH", "/dhcp-ranges/{id}") => json!({"is_active": false}),
        ("POST", "/ip/networks/{id}/next-ip") => json!({"hostname": "new-server"}),
        ("POST", "/groups") => json!({"description": "Datacenter 1"}),
        ("PATCH", "/groups/{id}") => json!({"description": "Datacenter 1 (main)"}),
        ("POST", "/networks/{id}/split") => json!({"parts": 2}),
        ("POST", "/networks/join") => json!({"network_id": 1, "cidr": 24}),
        ("POST", "/networks/{id}/available-networks") => json!({"cidr": 24, "strategy": "best-fit",
                                                                "name": "Rack 12"}),
        ("POST", "/networks/{id}/custom-fields") => json!({"name": "rack", "type": "select",
                                                           "options": ["r1", "r2"], "default": "r1"}),
        ("PATCH", "/custom-fields/{id}") => json!({"description": "Rack of the server"}),
        ("PATCH", "/org") => json!({"description": "Operations"}),
        ("POST", "/users") => json!({"username": "bob", "email": "bob@example.org",
                                     "password": "a long and secret passphrase", "level": "readonly"}),
        ("PATCH", "/users/{id}") => json!({"realname": "Bob", "level": "standard"}),
        ("POST", "/app-keys") => json!({"name": "inventory-sync", "description": "nightly job"}),
        ("PATCH", "/app-keys/{id}") => json!({"enabled": false, "disabled_reason": "rotated"}),
        ("POST", "/tokens") => json!({"description": "ci", "expires_at": "2100-01-01T00:00:00Z"}),
        ("POST", "/webhooks") => json!({"url": "http://hooks.example.org/ipamd", "description": "DNS sync",
                                        "objecttypes": ["ipaddress"], "actions": ["added", "deleted"]}),
        ("PATCH", "/webhooks/{id}") => json!({"enabled": false}),
        ("POST", "/import") => json!({"format": "csv", "dry_run": true,
                                      "data": "kind,network,ip,hostname\nnetwork,192.168.7.0/24,,\naddress,192.168.7.0/24,192.168.7.10,printer\n"}),
        _ => return None,
    })
}

/// The resource whose fields a route's body carries, if it reads one.
fn input(r: &Route) -> Option<Resource> {
    match r.body {
        Body::None => None,
        Body::Fields(res) | Body::Replace(res) => Some(res),
    }
}

fn operation_id(r: &Route) -> String {
    let mut id = r.verb.to_ascii_lowercase();
    for part in r
        .path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            id.push(c.to_ascii_uppercase());
            id.extend(cs);
        }
    }
    id
}

fn query_param(method: &str, name: &str) -> Value {
    let (schema, description) = match (method, name) {
        ("changes/get", "after") => (
            json!({"type": "integer", "minimum": 0}),
            "The cursor of the last change read (absent: from the oldest change kept)",
        ),
        ("changes/get", "limit") => (
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
            "Most changes returned",
        ),
        ("changes/get", "wait") => (
            json!({"type": "integer", "minimum": 0, "default": 0}),
            "Seconds to wait for a change when there is none yet (at most IPAMD_FEED_MAX_WAIT)",
        ),
        ("subnets/available", "cidr") => (
            json!({"type": "integer", "minimum": 1, "maximum": 128}),
            "Only free blocks that can hold a network of this prefix length, and how many such networks are free",
        ),
        ("subnets/available", "limit") => (
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 256}),
            "Most blocks returned",
        ),
        ("subnets/available", "after") => (
            json!({"type": "string"}),
            "Return blocks starting after this address (a cursor: the last block's network address)",
        ),
        ("export/get", "format") => (
            json!({"type": "string", "enum": ["json", "csv"], "default": "json"}),
            "JSON (an array of rows streamed, or a page {data, next}) or CSV (with its header line first)",
        ),
        ("export/get", "limit") => (
            json!({"type": "integer", "minimum": 1, "maximum": 5000}),
            "Rows per page: answers one page, with a Link header to the next. Without limit or after, every row is \
             streamed in one answer",
        ),
        ("export/get", "after") => (
            json!({"type": "string", "examples": ["1.a.ffff0a000001"]}),
            "The cursor of the next page, from the Link header or `next` of the page before",
        ),
        ("export/get", "network_id") => (json!({"type": "integer", "minimum": 1}), "Only this network"),
        ("export/get", "group_id") => (
            json!({"type": "integer", "minimum": 1}),
            "Only the networks of this group and of the groups below it",
        ),
        ("output/get", "format") => (
            json!({"type": "string", "enum": ["dnsmasq", "kea4", "kea6", "bind", "bind-reverse", "bind-delegation"]}),
            "What to generate (methods.md, output/get)",
        ),
        ("output/get", "zone") => (
            json!({"type": "string", "examples": ["lan.example"]}),
            "bind: the forward zone (default: the networks' shared domain); bind-reverse: the domain of bare names",
        ),
        ("output/get", "ttl") => (
            json!({"type": "integer", "minimum": 0, "maximum": 2_147_483_647, "default": 3600}),
            "The records' TTL (BIND formats)",
        ),
        ("output/get", "ns") => (
            json!({"type": "string", "examples": ["ns1.example.net,ns2.example.net"]}),
            "bind-delegation: the name servers of the delegated zones, comma-separated",
        ),
        ("webhooks/deliveries", "status") => (
            json!({"type": "string", "enum": ["pending", "delivered", "failed"]}),
            "Only deliveries in this state",
        ),
        ("webhooks/deliveries", "limit") => (
            json!({"type": "integer", "minimum": 1, "maximum": 5000, "default": 100}),
            "Most deliveries returned",
        ),
        (_, name) => match name {
            "page" => (json!({"type": "integer", "minimum": 1, "default": 1}), "Page number"),
            "per_page" => (
                json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
                "Items per page",
            ),
            "vlan_id" => (json!({"type": "integer", "minimum": 1, "maximum": 4094}), "VLAN ID"),
            "group_id" | "network_id" => (json!({"type": "integer", "minimum": 1}), "Filter by id"),
            "parent_id" => (
                json!({"type": "integer", "minimum": 0}),
                "The children of this pool (0: networks in no pool)",
            ),
            "is_assigned" | "force" | "all" => (json!({"type": "boolean"}), "true or false"),
            "status" => (json!({"type": "string", "enum": HOST_STATES}), "Host status"),
            "limit" => (
                json!({"type": "integer", "minimum": 1, "maximum": 10000}),
                "Most results: available-ips 1–10000 (default 256); search 1–1000 per kind (default 100)",
            ),
            "after" => (json!({"type": "string"}), "Return addresses after this one (a cursor)"),
            "ids" => (
                json!({"type": "string", "examples": ["1,2,3"]}),
                "Comma-separated ids, at most 5000",
            ),
            "recursive" => (
                json!({"type": "boolean"}),
                "true also deletes child groups and their networks (a pool's networks, for a network)",
            ),
            "tree" => (json!({"type": "boolean"}), "true nests each group's children in it"),
            "confirm" => (
                json!({"type": "string"}),
                "The organisation's identifier, as a safeguard",
            ),
            "query" => (
                json!({"type": "string", "minLength": 1}),
                "Text, an address or a block to find",
            ),
            "types" => (
                json!({"type": "string", "examples": ["groups,networks,hosts"]}),
                "Comma-separated kinds: groups, networks, hosts (default all)",
            ),
            "since" | "until" => (json!({"type": "integer", "minimum": 0}), "Unix seconds"),
            "user_id" | "object_id" => (json!({"type": "integer", "minimum": 1}), "Filter by id"),
            "object_type" => (
                json!({"type": "string", "examples": ["subnet"]}),
                "org, user, appkey, token, group, subnet, field, ipaddress, dhcprange or backup",
            ),
            "method" => (
                json!({"type": "string", "examples": ["groups/add"]}),
                "The method that made the entry",
            ),
            "hostname" | "cname" => (
                json!({"type": "string"}),
                "Case-insensitive substring, or a glob with * and ?",
            ),
            _ => (json!({"type": "string"}), "Case-insensitive substring"),
        },
    };
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

/// Checks the values of a REST request body against its resource's input schema in this document (`HostInput`, …):
/// each field the schema names must hold a JSON value of one of the schema's types, so `"hostname": 12` is refused
/// rather than stored as `"12"`. Every route with a body goes through here, before any method runs, so a refusal
/// writes nothing. Fields the schema does not name (read-only or unknown) are left to the adapter and the method.
/// The `/1.0` envelope does not come here: it keeps its lenient decoding.
pub fn check_body(resource: Resource, body: &Map<String, Value>) -> Result<()> {
    let schemas = &document()["components"]["schemas"];
    let properties = &schemas[input_name(resource)]["properties"];
    let mut errors = Map::new();
    for (field, value) in body {
        let Some(types) = properties.get(field).and_then(|p| p.get("type")) else {
            continue;
        };
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        if !types.iter().any(|t| is_of_type(t, value)) {
            let message = format!("must be {}, not {}", expected(&types), type_of(value));
            errors.insert(field.clone(), Value::String(message));
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(crate::rest::invalid_fields(errors)),
    }
}

/// Whether a JSON value is of a JSON Schema type (`integer` as JSON Schema has it: a number without a fraction).
fn is_of_type(t: &str, v: &Value) -> bool {
    match (t, v) {
        ("null", Value::Null) | ("boolean", Value::Bool(_)) | ("number", Value::Number(_)) => true,
        ("string", Value::String(_)) | ("array", Value::Array(_)) | ("object", Value::Object(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// Schema types as a client reads them: `["string", "null"]` → "a string or null".
fn expected(types: &[&str]) -> String {
    let named: Vec<&str> = types.iter().map(|t| article(t)).collect();
    match named.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "nothing".into(),
    }
}

fn article(t: &str) -> &'static str {
    match t {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        "array" => "an array",
        "object" => "an object",
        "null" => "null",
        _ => "another type",
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The schema name of a resource's records: the name its view derives.
fn name(r: Resource) -> Cow<'static, str> {
    match r {
        Resource::Network => NetworkView::name(),
        Resource::Host => HostView::name(),
        Resource::DhcpRange => RangeView::name(),
        Resource::Backup => BackupView::name(),
        Resource::Group => GroupView::name(),
        Resource::Field => FieldView::name(),
        Resource::User => UserView::name(),
        Resource::AppKey => AppKeyView::name(),
        Resource::Token => TokenView::name(),
        Resource::Org => OrgView::name(),
        Resource::AuditEntry => AuditEntryView::name(),
        Resource::Split => "Split".into(),
        Resource::Join => "Join".into(),
        Resource::Allocation => "NetworkAllocation".into(),
        Resource::Import => "Import".into(),

        Resource::Webhook => WebhookView::name(),
        Resource::Delivery => DeliveryView::name(),
    }
}

fn page_name(record: &str) -> String {
    format!("{record}Page")
}

fn input_name(r: Resource) -> String {
    format!("{}Input", name(r))
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// A reference to the schema a view derives.
fn reference_to<T: ToSchema>() -> Value {
    reference(&T::name())
}

fn responses(r: &Route) -> Value {
    let success = match r.render {
        Render::Page(res) => Some(reference(&page_name(&name(res)))),
        Render::List(res) => Some(json!({"type": "object", "required": ["data"],
                                          "properties": {"data": {"type": "array", "items": reference(&name(res))}}})),
        Render::One(res) => Some(reference(&name(res))),
        Render::NetworkHosts => Some(reference_to::<NetworkHosts>()),
        Render::NextIp => Some(reference_to::<NextIp>()),
        Render::Available => Some(reference_to::<AvailableIps>()),
        Render::AvailableNetworks => Some(reference_to::<AvailableNetworks>()),
        Render::Allocated => Some(json!({"oneOf": [
            reference(&name(Resource::Host)),
            {"type": "object", "required": ["data"], "description": "With count: the new hosts, in address order",
             "properties": {"data": {"type": "array", "items": reference(&name(Resource::Host))}}},
        ]})),
        Render::IpStatus => Some(reference_to::<IpStatusView>()),
        Render::Plain => Some(reference(match r.method {
            "changes/get" => "ChangePage",
            "backups/add" => "BackupCreated",
            "backups/restore" => "BackupRestore",
            "ping" => "Pong",
            "version" => "Version",
            "import/run" => "ImportReport",
            _ => "BackupVerify",
        })),
        Render::Found => Some(reference_to::<SearchResults>()),
        Render::Joined => Some(reference_to::<Joined>()),
        Render::Me => Some(reference_to::<Me>()),
        Render::Export | Render::Text | Render::NoContent => None,
    };
    let mut out = Map::new();
    let mut answer = match (success, r.render) {
        (Some(schema), _) => json!({"description": "Success", "content": {"application/json": {"schema": schema}}}),
        (None, Render::Export) => {
            json!({"description": "A page of rows (with limit or after), or every row, streamed", "content": {
            "application/json": {"schema": {"oneOf": [
                reference("ExportPage"),
                {"type": "array", "items": reference("ExportRow")},
            ]}},
            "text/csv; charset=utf-8": {"schema": {"type": "string"},
                                        "example": "kind,network,group,ip,end_ip,name,domain,vlan_id,location,hostname,cname,mac_address,status,description\r\nnetwork,192.168.1.0/24,,,,Office LAN,office.example,100,Building A,,,,,\r\n"},
        }, "headers": {"Link": {"description": "`<…?after=…>; rel=\"next\"`: the next page, when there is one",
                                "schema": {"type": "string"}}}})
        }
        (None, Render::Text) => json!({"description": "The generated configuration", "content": {
            "text/plain; charset=utf-8": {"schema": {"type": "string"},
                                          "example": "; zone fragment generated by ipamd\n$ORIGIN office.example.\n$TTL 3600\nserver01 IN A 192.168.1.10\n"},
            "application/json": {"schema": {"type": "object", "description": "Kea's configuration (kea4, kea6)"}},
        }}),
        (None, _) => json!({"description": "Deleted"}),
    };
    if matches!(r.render, Render::One(_) | Render::Allocated) {
        answer["headers"] = json!({"ETag": {
            "description": "The record's version as a strong entity tag, for If-Match and If-None-Match",
            "schema": {"type": "string"},
        }});
    }
    if r.verb == "GET" {
        out.insert(r.status.to_string(), answer);
        if matches!(r.render, Render::One(_)) {
            out.insert(
                "304".into(),
                json!({"description": "Not Modified: the record is still at the version If-None-Match names"}),
            );
        }
    } else {
        answer["headers"]["Idempotent-Replayed"] = json!({
            "description": "true when this is the stored first answer to the request's Idempotency-Key",
            "schema": {"type": "string", "enum": ["true"]},
        });
        out.insert(r.status.to_string(), answer);
        if matches!(r.verb, "PUT" | "PATCH" | "DELETE") {
            out.insert(
                "412".into(),
                json!({"description": "The record is no longer at the version If-Match names (precondition_failed)",
                       "content": {"application/json": {"schema": reference("Error")}}}),
            );
        }
        out.insert(
            "409".into(),
            json!({"description": "A request with this Idempotency-Key is still in progress (in_progress)",
                   "content": {"application/json": {"schema": reference("Error")}}}),
        );
        out.insert(
            "422".into(),
            json!({"description": "This Idempotency-Key was used for another request (key_reused)",
                   "content": {"application/json": {"schema": reference("Error")}}}),
        );
    }
    for (code, what) in [
        ("400", "Invalid input or a business rule"),
        ("401", "No valid token"),
        ("403", "Not allowed for this token's user"),
        ("404", "Unknown id or route"),
        ("413", "Body over 1 MiB"),
        ("415", "Body is not JSON"),
        ("429", "Rate limit exceeded"),
        ("503", "Database unavailable"),
    ] {
        out.insert(
            code.into(),
            json!({"description": what, "content": {"application/json": {"schema": reference("Error")}}}),
        );
    }
    if let Some(unauthorised) = out.get_mut("401") {
        unauthorised["headers"] = json!({"WWW-Authenticate": {
            "description": "The scheme to authenticate with: `Bearer realm=\"ipamd\"`",
            "schema": {"type": "string"},
        }});
    }
    Value::Object(out)
}

/// The states of a host, as the status query parameter and the host schemas name them.
const HOST_STATES: [&str; 3] = ["active", "inactive", "reserved"];

/// The schema of a count of addresses (`u128` for IPv6 networks), for the views' `schema_with`.
pub(crate) fn count() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .description(Some("Exact, even beyond 2^53"))
        .build()
}

/// The schema of `Host.status`: a state, or null (which clears it on input).
pub(crate) fn host_status() -> Object {
    let states = HOST_STATES.iter().map(|s| json!(s)).chain([Value::Null]);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(states))
        .build()
}

/// The schema of `IpStatus.status`.
pub(crate) fn address_status() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["assigned", "dhcp", "available", "unusable", "unmanaged"]))
        .build()
}

/// A derived schema as JSON. A schema's maps have string keys only, so serialising one cannot fail.
fn json_of(schema: impl serde::Serialize) -> Value {
    serde_json::to_value(schema).unwrap_or_default()
}

/// The schema a view derives, under the name it derives.
fn component<T: ToSchema>() -> (String, Value) {
    (T::name().into_owned(), json_of(T::schema()))
}

/// The schemas of the document: records and replies as their views in `rest::views` derive them, the input schemas
/// made from the records, and what no view renders (the backups' replies, passed on as the method gives them, and
/// `Error`).
fn schemas() -> Value {
    let mut out = Map::new();
    record::<NetworkView>(&mut out);
    record::<HostView>(&mut out);
    record::<RangeView>(&mut out);
    record::<BackupView>(&mut out);
    record::<GroupView>(&mut out);
    record::<FieldView>(&mut out);
    record::<UserView>(&mut out);
    record::<AppKeyView>(&mut out);
    record::<TokenView>(&mut out);
    record::<OrgView>(&mut out);
    record::<AuditEntryView>(&mut out);

    record::<WebhookView>(&mut out);
    record::<DeliveryView>(&mut out);
    out.extend([
        component::<Pagination>(),
        component::<NetworkHosts>(),
        component::<NextIp>(),
        component::<AvailableIps>(),
        component::<AvailableNetworks>(),
        component::<PoolView>(),
        component::<IpStatusView>(),
        component::<SearchResults>(),
        component::<Joined>(),
        component::<Me>(),
        component::<Pong>(),
        component::<Version>(),
    ]);
    for r in ROUTES {
        let Some(res) = input(r) else {
            continue;
        };
        let schema = input_schema(res, out.get(name(res).as_ref()));
        if let [_, ..] = required_fields(r) {
            let mut required = schema.clone();
            required["required"] = json!(required_fields(r));
            out.insert(body_name(r, res), required);
        }
        out.insert(input_name(res), schema);
    }
    let backup = out[BackupView::name().as_ref()]["properties"].clone();
    out.extend(backup_replies(backup));
    out.insert("ChangePage".into(), change_page_schema());
    out.extend(transfer_schemas());
    out.insert("Error".into(), error_schema());
    Value::Object(out)
}

/// A record's schema and the schema of its pages.
fn record<V: ToSchema>(out: &mut Map<String, Value>) {
    out.insert(page_name(&V::name()), json_of(PageView::<V>::schema()));
    out.insert(V::name().into_owned(), json_of(V::schema()));
}

/// The body a resource's routes read: the fields of its record less the read-only ones (which a PUT ignores, so
/// that a record read can be sent back, and POST and PATCH refuse), and what a record does not show (a user's password).
/// Nothing is required here (see `required_fields`), and a time may also come as unix seconds. Split and join have
/// no record: their fields are their own.
fn input_schema(res: Resource, record: Option<&Value>) -> Value {
    let mut properties = record
        .and_then(|r| r["properties"].as_object())
        .cloned()
        .unwrap_or_default();
    properties.retain(|field, _| !res.read_only().contains(&field.as_str()));
    let time = json!({"type": ["string", "integer", "null"],
                      "description": "RFC 3339, or unix seconds (a number or its digits)"});
    for field in ["last_seen", "expires_at"] {
        if let Some(t) = properties.get_mut(field) {
            *t = time.clone();
        }
    }
    let extra = match res {
        Resource::User => json!({
            "password": {"type": "string", "description": "The password in clear (or hash)"},
            "hash": {"type": "string", "pattern": "^[0-9a-fA-F]{40}$",
                     "description": "Instead of password: the userdata sha1, sha1(lowercase(username) + '-' + password)"},
        }),
        Resource::Split => json!({
            "cidr": {"type": "integer", "minimum": 1, "maximum": 128, "description": "The parts' prefix length (or parts)"},
            "parts": {"type": "integer", "minimum": 2, "description": "The number of parts, a power of two (or cidr)"},
        }),
        Resource::Host => json!({
            "count": {"type": "integer", "minimum": 1, "maximum": crate::model::MAX_BULK,
                      "description": "Allocate this many hosts at the network's next free addresses, all or none \
                                      (with network_id alone; the reply is then a list)"},
            "contiguous": {"type": "boolean",
                           "description": "With count: the addresses must be consecutive (the first such run)"},
        }),
        Resource::Allocation => json!({
            "cidr": {"type": "integer", "minimum": 1, "maximum": 128, "description": "The prefix length to allocate"},
            "strategy": {"type": "string", "enum": ["first-fit", "best-fit", "last"],
                         "description": "Which free block: the lowest (default), the lowest in the smallest free \
                                         block that holds it, or the highest"},
            "pool": {"type": "boolean", "description": "The new network is a pool itself"},
            "name": {"type": ["string", "null"]}, "description": {"type": ["string", "null"]},
            "domain": {"type": ["string", "null"]}, "location": {"type": ["string", "null"]},
            "vlan_id": {"type": ["integer", "null"], "minimum": 1, "maximum": 4094},
        }),
        Resource::Join => json!({
            "network_ids": {"type": "array", "items": {"type": "integer", "minimum": 1},
                            "description": "The networks to join, at least two, all in one group"},
            "network_id": {"type": "integer", "minimum": 1, "description": "Instead of network_ids: a network …"},
            "cidr": {"type": "integer", "minimum": 0, "maximum": 127,
                     "description": "… and the prefix length of the block to build"},
            "force": {"type": "boolean", "description": "Keep the surviving network's custom fields where they differ"},
        }),
        Resource::Import => json!({
            "format": {"type": "string", "enum": ["csv", "json"], "default": "csv"},
            "source": {"type": "string", "enum": ["ipamd", "phpipam", "netbox"], "default": "ipamd",
                       "description": "Whose columns the rows use (methods.md, import/run)"},
            "data": {"type": ["string", "array"], "description": "The CSV text, or the JSON rows (an array, or its text)"},
            "dry_run": {"type": "boolean", "default": false, "description": "Report what each row would do; change nothing"},
            "group_id": {"type": ["integer", "null"], "description": "The group of new networks whose row names none"},
        }),
        _ => json!({}),
    };
    properties.extend(extra.as_object().cloned().unwrap_or_default());
    let description = match res {
        Resource::Split | Resource::Join | Resource::Allocation | Resource::Import => String::new(),
        _ => format!(
            "Read-only fields of {} are ignored by PUT (a record read may be sent back) and refused by POST and PATCH.",
            name(res)
        ),
    };
    json!({"type": "object", "properties": properties, "description": description})
}

/// The replies of `backups/add`, `backups/verify` and `backups/restore`, from the properties of `Backup`.
fn backup_replies(backup: Value) -> [(String, Value); 3] {
    let verify = json!({"name": {"type": "string"}, "integrity_ok": {"type": "boolean"},
                        "integrity_message": {"type": "string"}});
    let verify = verify.as_object().cloned().unwrap_or_default();
    let mut created = backup.as_object().cloned().unwrap_or_default();
    created.extend(verify.clone());
    let mut restore = verify.clone();
    restore.insert("restored".into(), json!({"type": "boolean"}));
    restore.insert("safety_backup".into(), json!({"type": "string"}));
    [
        ("BackupCreated".into(), json!({"type": "object", "properties": created})),
        (
            "BackupVerify".into(),
            json!({"type": "object", "required": ["name", "integrity_ok", "integrity_message"], "properties": verify}),
        ),
        ("BackupRestore".into(), json!({"type": "object", "properties": restore})),
    ]
}

/// The rows of `GET /export` and `POST /import`, and the import's report (methods.md, `export/get`, `import/run`).
fn transfer_schemas() -> [(String, Value); 3] {
    let text = json!({"type": ["string", "null"]});
    let mut row = Map::new();
    for col in crate::model::ExportRow::COLUMNS {
        let schema = match col {
            "kind" => json!({"type": "string", "enum": ["network", "address", "dhcp_range"]}),
            "network" => json!({"type": "string", "description": "The network's block (CIDR)"}),
            "group" | "vlan_id" => json!({"type": ["integer", "null"]}),
            _ => text.clone(),
        };
        row.insert(col.to_string(), schema);
    }
    let row = json!({"type": "object", "required": ["kind", "network"], "properties": row});
    let report_row = json!({"type": "object", "properties": {
        "row": {"type": "integer", "description": "The CSV line, or the index from 1 in a JSON list"},
        "kind": {"type": "string"}, "action": {"type": "string", "enum": ["created", "updated", "refused"]},
        "id": {"type": ["integer", "null"]},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "column": {"type": ["string", "null"]}, "code": {"type": "string"}, "message": {"type": "string"}}}}}});
    [
        ("ExportRow".into(), row),
        (
            "ExportPage".into(),
            json!({"type": "object", "required": ["data", "next"], "properties": {
                "data": {"type": "array", "items": reference("ExportRow")},
                "next": {"type": ["string", "null"], "description": "Pass as after for the next page; null after the last"}}}),
        ),
        (
            "ImportReport".into(),
            json!({"type": "object", "required": ["dry_run", "created", "updated", "refused", "rows"], "properties": {
                "dry_run": {"type": "boolean"}, "created": {"type": "integer"}, "updated": {"type": "integer"},
                "refused": {"type": "integer"},
                "rows": {"type": "array", "items": report_row, "description": "Per row (a dry run's; empty otherwise)"}}}),
        ),
    ]
}

/// `GET /changes`: the entries of `model::ChangeEntry` (methods.md, `changes/get`).
fn change_page_schema() -> Value {
    let json_or_null = json!({"description": "JSON object, or null"});
    let entry = json!({"type": "object", "properties": {
        "cursor": {"type": "integer"}, "time": {"type": "integer", "description": "Unix seconds"},
        "objecttype": {"type": "string"}, "objectid": {"type": ["integer", "null"]},
        "action": {"type": "string", "enum": ["added", "edited", "deleted", "split", "joined", "restored"]},
        "summary": {"type": "string"}, "before": json_or_null, "after": json_or_null, "detail": json_or_null,
        "userid": {"type": ["integer", "null"]}, "user": {"type": "string"}, "application": {"type": "string"},
        "method": {"type": "string"}, "respid": {"type": "string"}}});
    json!({"type": "object", "required": ["changes", "cursor", "more"], "properties": {
        "changes": {"type": "array", "items": entry},
        "cursor": {"type": "integer", "description": "Pass as `after` to read on"},
        "more": {"type": "boolean", "description": "Whether more changes follow at once"}}})
}

fn error_schema() -> Value {
    json!({"type": "object", "required": ["message", "code"], "properties": {
        "message": {"type": "string"}, "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Per-field messages"},
        "details": {"description": "Detail of a business-rule error"}}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    /// Methods with no REST route, each with the reason. (None today: every method has one.)
    const NOT_ON_REST: &[(&str, &str)] = &[];

    /// Generated from the method table: every method has a REST route (or a reason in [`NOT_ON_REST`]), and every
    /// route of a method is an operation of the document, with an example body when it reads one.
    #[test]
    fn every_method_has_a_documented_route() {
        let paths = &document()["paths"];
        let mut problems = Vec::new();
        for m in crate::methods::METHODS {
            let routes: Vec<&Route> = ROUTES.iter().filter(|r| r.method == m.name).collect();
            let exempt = NOT_ON_REST.iter().any(|(name, _)| *name == m.name);
            match (routes.is_empty(), exempt) {
                (true, false) => problems.push(format!("{} has no REST route", m.name)),
                (false, true) => problems.push(format!("{} has a route but is in NOT_ON_REST", m.name)),
                _ => {}
            }
            for r in routes {
                let op = &paths[r.path][r.verb.to_ascii_lowercase()];
                if op.is_null() {
                    problems.push(format!("{} {} ({}) is not in the document", r.verb, r.path, m.name));
                }
                if input(r).is_some() && op["requestBody"]["content"]["application/json"]["example"].is_null() {
                    problems.push(format!("{} {} has no example body", r.verb, r.path));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// The document names exactly the routes of the table, each with its verb.
    #[test]
    fn document_matches_the_route_table() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        for r in ROUTES {
            assert!(
                paths[r.path].get(r.verb.to_ascii_lowercase()).is_some(),
                "{} {} missing",
                r.verb,
                r.path
            );
        }
        // Each of the server's pages is one GET with its own server; every other path is a route of the table.
        let pages = PAGES
            .iter()
            .filter(|(p, _, _)| paths[*p]["get"].is_object() && paths[*p]["servers"].is_array());
        assert_eq!(pages.count(), PAGES.len());
        let rest = paths
            .iter()
            .filter(|(p, _)| !PAGES.iter().any(|(page, _, _)| page == p));
        let documented: usize = rest.clone().map(|(_, item)| item.as_object().unwrap().len()).sum();
        assert_eq!(documented, ROUTES.len(), "the document names a route the table lacks");
        for (p, _) in rest {
            assert!(ROUTES.iter().any(|r| r.path == p), "{p} is not in the route table");
        }
    }

    /// Types are checked as JSON Schema has them, against the input schemas; fields they do not name are left alone.
    #[test]
    fn bodies_are_checked_against_the_input_schemas() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        let e = check_body(
            Resource::Host,
            &body(json!({"hostname": 12, "fields": [1], "owner": 3})),
        )
        .unwrap_err();
        assert_eq!(e.code, Code::InvalidParams);
        assert_eq!(
            e.data,
            Some(json!({"hostname": "must be a string or null, not an integer",
                        "fields": "must be an object or null, not an array"}))
        );
        for ok in [
            json!({"hostname": "h", "last_seen": 1_766_916_118, "network_id": null, "fields": {}}),
            json!({"last_seen": "2025-12-28T10:01:58Z", "is_assigned": false, "id": "read-only, ignored"}),
        ] {
            assert!(check_body(Resource::Host, &body(ok.clone())).is_ok(), "{ok}");
        }
        assert!(check_body(Resource::Network, &body(json!({"cidr": 24.0}))).is_ok());
        let e = check_body(Resource::Network, &body(json!({"cidr": 24.5, "vlan_id": "7"}))).unwrap_err();
        assert_eq!(
            e.message,
            "cidr: must be an integer, not a number; vlan_id: must be an integer or null, not a string"
        );
        let e = check_body(Resource::DhcpRange, &body(json!({"network_id": null}))).unwrap_err();
        assert_eq!(e.data, Some(json!({"network_id": "must be an integer, not null"})));
        assert!(check_body(Resource::Backup, &body(json!({"name": 1}))).is_ok());
    }

    /// The views' attributes keep the contract of the schemas once written by hand: what is required, what may be
    /// null, counts as exact integers, inputs without the read-only fields, and the optional parts of an address's
    /// status absent rather than null.
    #[test]
    fn derived_schemas_keep_the_contract() {
        let s = &document()["components"]["schemas"];
        for (schema, required) in [
            ("Network", json!(["id", "network", "cidr"])),
            ("Host", json!(["id", "ip_address", "network_id"])),
            ("DhcpRange", json!(["id", "network_id", "start_ip", "end_ip"])),
            ("Backup", json!(["name", "size_bytes", "created_at"])),
            ("NetworkPage", json!(["data", "pagination"])),
            ("IpStatus", json!(["ip_address", "status"])),
        ] {
            assert_eq!(s[schema]["required"], required, "{schema}");
        }
        let count = json!({"type": "integer", "minimum": 0, "description": "Exact, even beyond 2^53"});
        assert_eq!(s["Network"]["properties"]["total_hosts"], count);
        assert_eq!(s["AvailableIps"]["properties"]["total_available"], count);
        let host = &s["Host"]["properties"];
        assert_eq!(host["status"]["enum"], json!(["active", "inactive", "reserved", null]));
        assert_eq!(host["network_id"]["type"], json!(["integer", "null"]));
        assert_eq!(
            host["fields"],
            json!({"type": ["object", "null"], "description": "Custom field values by name"})
        );
        let fields = |schema: &str| {
            s[schema]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields("NetworkInput"),
            [
                "network",
                "cidr",
                "name",
                "domain",
                "vlan_id",
                "description",
                "location",
                "group_id",
                "pool",
                "parent_id"
            ]
        );
        assert_eq!(
            fields("DhcpRangeInput"),
            ["network_id", "start_ip", "end_ip", "description", "is_active"]
        );
        assert!(!fields("HostInput").iter().any(|f| f == "id" || f == "network"));
        assert_eq!(
            s["HostInput"]["properties"]["last_seen"]["type"],
            json!(["string", "integer", "null"])
        );
        let status = &s["IpStatus"]["properties"];
        assert_eq!(status["host"], reference("Host"));
        assert_eq!(status["network"]["type"], "object");
        assert_eq!(status["matches"]["type"], "integer");
        assert_eq!(s["NetworkPage"]["properties"]["data"]["items"], reference("Network"));
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            assert!(
                doc["components"]["schemas"].get(&name).is_some(),
                "dangling $ref {name}"
            );
        }
    }
}
