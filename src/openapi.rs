//! The OpenAPI 3.1 document of `/api/v1`, generated from the route table so the two cannot drift, and Swagger UI
//! served from assets compiled into the binary (no CDN, no download).

use std::sync::{Arc, OnceLock};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::error::{Code, Error, Result};
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
    params.extend(r.query.iter().map(|q| query_param(q)));
    let tag = r.path.trim_start_matches('/').split('/').next().unwrap_or_default();
    let mut op = json!({
        "operationId": operation_id(r),
        "summary": r.summary,
        "tags": [tag],
        "parameters": params,
        "responses": responses(r),
    });
    let input = match r.body {
        Body::None => None,
        Body::Fields(res) | Body::Replace(res) => Some(format!("{}Input", name(res))),
    };
    if let Some(input) = input {
        op["requestBody"] = json!({
            "required": matches!(r.body, Body::Replace(_)),
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{input}")}}},
        });
    }
    op
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

fn query_param(name: &str) -> Value {
    let (schema, description) = match name {
        "page" => (json!({"type": "integer", "minimum": 1, "default": 1}), "Page number"),
        "per_page" => (
            json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
            "Items per page",
        ),
        "vlan_id" => (json!({"type": "integer", "minimum": 1, "maximum": 4094}), "VLAN ID"),
        "group_id" | "network_id" => (json!({"type": "integer", "minimum": 1}), "Filter by id"),
        "is_assigned" | "force" => (json!({"type": "boolean"}), "true or false"),
        "status" => (
            json!({"type": "string", "enum": ["active", "inactive", "reserved"]}),
            "Host status",
        ),
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
    let properties = &schemas[format!("{}Input", name(resource))]["properties"];
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

fn name(r: Resource) -> &'static str {
    match r {
        Resource::Network => "Network",
        Resource::Host => "Host",
        Resource::DhcpRange => "DhcpRange",
        Resource::Backup => "Backup",
    }
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn responses(r: &Route) -> Value {
    let success = match r.render {
        Render::Page(res) => Some(reference(&format!("{}Page", name(res)))),
        Render::List(res) => Some(json!({"type": "object", "required": ["data"],
                                          "properties": {"data": {"type": "array", "items": reference(name(res))}}})),
        Render::One(res) => Some(reference(name(res))),
        Render::NetworkHosts => Some(reference("NetworkHosts")),
        Render::NextIp => Some(reference("NextIp")),
        Render::Available => Some(reference("AvailableIps")),
        Render::IpStatus => Some(reference("IpStatus")),
        Render::Plain => Some(reference(match r.method {
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

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn schemas() -> Value {
    let int = json!({"type": "integer"});
    let count = json!({"type": "integer", "minimum": 0, "description": "Exact, even beyond 2^53"});
    let network_fields = json!({
        "network": {"type": "string", "examples": ["192.168.1.0"]},
        "cidr": {"type": "integer", "minimum": 0, "maximum": 128},
        "name": nullable("string"),
        "domain": nullable("string"),
        "vlan_id": {"type": ["integer", "null"], "minimum": 1, "maximum": 4094},
        "description": nullable("string"),
        "location": nullable("string"),
        "group_id": {"type": ["integer", "null"], "minimum": 1},
    });
    let mut network = network_fields.as_object().cloned().unwrap_or_default();
    network.insert("id".into(), int.clone());
    network.insert("broadcast_address".into(), json!({"type": "string"}));
    for c in ["total_hosts", "used_hosts", "available_hosts"] {
        network.insert(c.into(), count.clone());
    }
    let host_fields = json!({
        "ip_address": {"type": "string", "examples": ["192.168.1.10"]},
        "hostname": nullable("string"),
        "cname": nullable("string"),
        "mac_address": {"type": ["string", "null"], "examples": ["aa:bb:cc:dd:ee:ff"]},
        "status": {"type": ["string", "null"], "enum": ["active", "inactive", "reserved", null]},
        "is_assigned": nullable("boolean"),
        "last_seen": {"type": ["string", "null"], "description": "RFC 3339; input also accepts unix seconds"},
        "discovery_source": nullable("string"),
        "description": nullable("string"),
        "network_id": {"type": ["integer", "null"], "minimum": 1},
        "fields": {"type": ["object", "null"], "description": "Custom field values by name"},
    });
    let mut host = host_fields.as_object().cloned().unwrap_or_default();
    // Input takes unix seconds as well as RFC 3339 text; output is always text.
    let mut host_input = host_fields.clone();
    host_input["last_seen"] = json!({"type": ["string", "integer", "null"],
        "description": "RFC 3339, or unix seconds (a number or its digits)"});
    host.insert("id".into(), int.clone());
    host.insert(
        "network".into(),
        json!({"type": "string", "examples": ["192.168.1.0/24"]}),
    );
    let range_fields = json!({
        "network_id": {"type": "integer", "minimum": 1},
        "start_ip": {"type": "string"},
        "end_ip": {"type": "string"},
        "description": nullable("string"),
        "is_active": nullable("boolean"),
    });
    let mut range = range_fields.as_object().cloned().unwrap_or_default();
    range.insert("id".into(), int.clone());
    let backup = json!({"type": "object", "required": ["name", "size_bytes", "created_at"], "properties": {
        "name": {"type": "string"}, "size_bytes": int, "created_at": {"type": "string"}}});
    let pagination = json!({"type": "object", "required": ["page", "per_page", "total_items", "total_pages"],
        "properties": {"page": int, "per_page": int, "total_items": int, "total_pages": int}});
    let page_of = |item: &str| {
        json!({"type": "object", "required": ["data", "pagination"], "properties": {
            "data": {"type": "array", "items": reference(item)}, "pagination": reference("Pagination")}})
    };
    let verify = json!({"name": {"type": "string"}, "integrity_ok": {"type": "boolean"}, "integrity_message": {"type": "string"}});
    let mut created = backup["properties"].as_object().cloned().unwrap_or_default();
    created.extend(verify.as_object().cloned().unwrap_or_default());
    let mut restore = verify.as_object().cloned().unwrap_or_default();
    restore.insert("restored".into(), json!({"type": "boolean"}));
    restore.insert("safety_backup".into(), json!({"type": "string"}));
    let short_network = json!({"type": "object", "properties": {"id": int, "network": {"type": "string"},
        "name": nullable("string"), "domain": nullable("string"), "vlan_id": nullable("integer"), "location": nullable("string")}});
    json!({
        "Network": {"type": "object", "required": ["id", "network", "cidr"], "properties": network},
        "NetworkInput": {"type": "object", "properties": network_fields, "description": "Read-only fields of Network may be sent back; they are ignored."},
        "Host": {"type": "object", "required": ["id", "ip_address", "network_id"], "properties": host},
        "HostInput": {"type": "object", "properties": host_input, "description": "Read-only fields of Host may be sent back; they are ignored."},
        "DhcpRange": {"type": "object", "required": ["id", "network_id", "start_ip", "end_ip"], "properties": range},
        "DhcpRangeInput": {"type": "object", "properties": range_fields},
        "Backup": backup,
        "BackupCreated": {"type": "object", "properties": created},
        "BackupVerify": {"type": "object", "required": ["name", "integrity_ok", "integrity_message"], "properties": verify},
        "BackupRestore": {"type": "object", "properties": restore},
        "Pagination": pagination,
        "NetworkPage": page_of("Network"),
        "HostPage": page_of("Host"),
        "DhcpRangePage": page_of("DhcpRange"),
        "BackupPage": page_of("Backup"),
        "NetworkHosts": {"type": "object", "required": ["network_id", "network", "hosts", "pagination"], "properties": {
            "network_id": int, "network": {"type": "string"}, "hosts": {"type": "array", "items": reference("Host")},
            "pagination": reference("Pagination")}},
        "NextIp": {"type": "object", "required": ["ip_address", "network", "network_id"], "properties": {
            "ip_address": {"type": "string"}, "network": {"type": "string"}, "network_id": int}},
        "AvailableIps": {"type": "object", "required": ["network", "network_id", "total_available", "available_ips"], "properties": {
            "network": {"type": "string"}, "network_id": int, "total_available": count,
            "available_ips": {"type": "array", "items": {"type": "string"}}}},
        "IpStatus": {"type": "object", "required": ["ip_address", "status"], "properties": {
            "ip_address": {"type": "string"},
            "status": {"type": "string", "enum": ["assigned", "dhcp", "available", "unusable", "unmanaged"]},
            "host": reference("Host"), "network": short_network,
            "dhcp_range": {"type": "object", "properties": {"id": int, "start_ip": {"type": "string"}, "end_ip": {"type": "string"}, "network_id": int}},
            "matches": int, "message": {"type": "string"}}},
        "Error": {"type": "object", "required": ["message", "code"], "properties": {
            "message": {"type": "string"}, "code": {"type": "string"},
            "errors": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Per-field messages"},
            "details": {"description": "Detail of a business-rule error"}}},
    })
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
