//! The OpenAPI 3.1 document of `/api/v1`, generated from the route table so the two cannot drift, and Swagger UI
//! served from assets compiled into the binary (no CDN, no download).

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Map, Value};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::error::{Code, Error, Result};
use crate::rest::views::{
    AvailableIps, BackupView, DeliveryView, HostView, IpStatusView, NetworkHosts, NetworkView, NextIp, PageView,
    Pagination, RangeView, WebhookView,
};
use crate::rest::{Body, Render, Resource, Route, ROUTES};
use crate::server::{json_response, Body as HttpBody};

/// Serves `/openapi.json`, `/swagger.json` and `/docs/…` (paths below `/api/v1`); `None` for other paths.
pub fn serve(path: &str, method: &Method) -> Option<Response<HttpBody>> {
    let docs = path == "/docs" || path.starts_with("/docs/");
    if !(path == "/openapi.json" || path == "/swagger.json" || docs) {
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
        let mut r = Response::new(Full::new(Bytes::new()));
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
            let mut r = Response::new(Full::new(Bytes::from(file.bytes.into_owned())));
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

fn build() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.verb.to_ascii_lowercase()] = operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ipamd REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "IP address management: networks, hosts, DHCP ranges, address allocation and backups. \
                            Every route calls a method of the same table as the /1.0 envelope API.",
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
    let tag = r.path.trim_start_matches('/').split('/').next().unwrap_or_default();
    let mut op = json!({
        "operationId": operation_id(r),
        "summary": r.summary,
        "tags": [tag],
        "parameters": params,
        "responses": responses(r),
    });
    if let Some(res) = input(r) {
        op["requestBody"] = json!({
            "required": matches!(r.body, Body::Replace(_)),
            "content": {"application/json": {"schema": reference(&input_name(res))}},
        });
    }
    op
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
            "is_assigned" | "force" => (json!({"type": "boolean"}), "true or false"),
            "status" => (json!({"type": "string", "enum": HOST_STATES}), "Host status"),
            "limit" => (
                json!({"type": "integer", "minimum": 1, "maximum": 10000, "default": 256}),
                "Most addresses returned",
            ),
            "after" => (json!({"type": "string"}), "Return addresses after this one (a cursor)"),
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
    if errors.is_empty() {
        return Ok(());
    }
    let message = errors
        .iter()
        .map(|(field, m)| format!("{field}: {}", m.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::new(Code::InvalidParams, message).with_data(Value::Object(errors)))
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
        Render::IpStatus => Some(reference_to::<IpStatusView>()),
        Render::Plain => Some(reference(match r.method {
            "changes/get" => "ChangePage",
            "backups/add" => "BackupCreated",
            "backups/restore" => "BackupRestore",
            _ => "BackupVerify",
        })),
        Render::NoContent => None,
    };
    let mut out = Map::new();
    out.insert(
        r.status.to_string(),
        match success {
            Some(schema) => json!({"description": "Success", "content": {"application/json": {"schema": schema}}}),
            None => json!({"description": "Deleted"}),
        },
    );
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
    record::<WebhookView>(&mut out);
    record::<DeliveryView>(&mut out);
    out.extend([
        component::<Pagination>(),
        component::<NetworkHosts>(),
        component::<NextIp>(),
        component::<AvailableIps>(),
        component::<IpStatusView>(),
    ]);
    for res in ROUTES.iter().filter_map(input) {
        let schema = input_schema(res, &out[name(res).as_ref()]);
        out.insert(input_name(res), schema);
    }
    let backup = out[BackupView::name().as_ref()]["properties"].clone();
    out.extend(backup_replies(backup));
    out.insert("ChangePage".into(), change_page_schema());
    out.insert("Error".into(), error_schema());
    Value::Object(out)
}

/// A record's schema and the schema of its pages.
fn record<V: ToSchema>(out: &mut Map<String, Value>) {
    out.insert(page_name(&V::name()), json_of(PageView::<V>::schema()));
    out.insert(V::name().into_owned(), json_of(V::schema()));
}

/// The body a resource's routes read: the fields of its record less the read-only ones, which a client may send back
/// and the adapter ignores. Nothing is required here (a PUT's required fields are the adapter's check), and a time may
/// also come as unix seconds.
fn input_schema(res: Resource, record: &Value) -> Value {
    let mut properties = record["properties"].as_object().cloned().unwrap_or_default();
    properties.retain(|field, _| !res.read_only().contains(&field.as_str()));
    if let Some(last_seen) = properties.get_mut("last_seen") {
        *last_seen = json!({"type": ["string", "integer", "null"],
                            "description": "RFC 3339, or unix seconds (a number or its digits)"});
    }
    json!({
        "type": "object",
        "properties": properties,
        "description": format!("Read-only fields of {} may be sent back; they are ignored.", name(res)),
    })
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
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, ROUTES.len(), "the document names a route the table lacks");
        for p in paths.keys() {
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
                "group_id"
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
