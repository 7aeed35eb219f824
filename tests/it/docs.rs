//! The OpenAPI document and Swagger UI over a real socket: the document names exactly the routes of
//! `rest::ROUTES`, both names serve it without a token, Swagger UI's assets come from ipamd itself, and a headless
//! Chromium renders the operations.

use std::collections::BTreeSet;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::Value;

use ipamd::openapi::PAGES;
use ipamd::rest::{Body, ROUTES};

use crate::support::{self, Reply, Server};

const VERBS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

async fn fetch(s: &Server, path: &str) -> Reply {
    s.request(Method::GET, path, &[], "").await
}

async fn document(s: &Server) -> Value {
    let r = fetch(s, "/api/v1/openapi.json").await;
    assert_eq!(r.status, 200);
    r.json()
}

#[tokio::test]
async fn the_document_is_served_under_both_names_without_a_token() {
    let s = Server::start().await;
    let a = fetch(&s, "/api/v1/openapi.json").await;
    let b = fetch(&s, "/api/v1/swagger.json").await;
    for r in [&a, &b] {
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(a.body, b.body, "the same document");
    let doc = a.json();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    // Both security schemes, and both required (either one) by default.
    let schemes = &doc["components"]["securitySchemes"];
    let all: Vec<&Value> = schemes.as_object().unwrap().values().collect();
    assert!(
        all.iter()
            .any(|s| s["type"] == "http" && s["scheme"].as_str().is_some_and(|v| v.eq_ignore_ascii_case("bearer"))),
        "{schemes}"
    );
    assert!(
        all.iter()
            .any(|s| s["type"] == "apiKey" && s["in"] == "header" && s["name"] == "X-API-Key"),
        "{schemes}"
    );
    let required: BTreeSet<String> = doc["security"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s.as_object().unwrap().keys().cloned())
        .collect();
    let declared: BTreeSet<String> = schemes.as_object().unwrap().keys().cloned().collect();
    assert_eq!(required, declared);
    // With a token it is the same document; other verbs are refused.
    let bearer = format!("Bearer {}", s.admin_token);
    let with = s
        .request(
            Method::GET,
            "/api/v1/openapi.json",
            &[("authorization", bearer.as_str())],
            "",
        )
        .await;
    assert_eq!(with.body, a.body);
    let r = s.request(Method::POST, "/api/v1/openapi.json", &[], "{}").await;
    assert_eq!(r.status, 405);
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")));
}

#[tokio::test]
async fn the_document_names_exactly_the_routes_of_the_table() {
    let s = Server::start().await;
    let doc = document(&s).await;
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (verb, _) in item.as_object().unwrap() {
            if VERBS.contains(&verb.as_str()) {
                documented.insert((verb.to_uppercase(), path.clone()));
            }
        }
    }
    let table: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.verb.to_string(), r.path.to_string()))
        .chain(PAGES.iter().map(|(path, _, _)| ("GET".to_string(), path.to_string())))
        .collect();
    assert_eq!(
        documented, table,
        "the document differs from rest::ROUTES and the server's pages"
    );
    // The server's pages are outside /api/v1, need no credentials, and are answered (with `/metrics` off, its 404).
    for (path, _, _) in PAGES {
        assert_eq!(paths[path]["servers"], serde_json::json!([{"url": "/"}]), "{path}");
        assert_eq!(paths[path]["get"]["security"], serde_json::json!([]), "{path}");
        let reply = fetch(&s, path).await;
        let documented = paths[path]["get"]["responses"].as_object().unwrap();
        assert!(
            documented.contains_key(&reply.status.to_string()),
            "{path}: {}",
            reply.status
        );
    }

    let schemas = &doc["components"]["schemas"];
    let mut operation_ids = BTreeSet::new();
    for r in ROUTES {
        let op = &paths[r.path][r.verb.to_lowercase()];
        let what = format!("{} {}", r.verb, r.path);
        assert!(
            operation_ids.insert(op["operationId"].as_str().unwrap().to_string()),
            "{what}: duplicate operationId"
        );
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{what}");
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let named = |place: &str| -> BTreeSet<String> {
            params
                .iter()
                .filter(|p| p["in"] == place)
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect()
        };
        let in_path: BTreeSet<String> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        assert_eq!(named("path"), in_path, "{what}: path parameters");
        let in_query: BTreeSet<String> = r.query.iter().map(|q| q.to_string()).collect();
        assert_eq!(named("query"), in_query, "{what}: query parameters");
        assert!(
            params
                .iter()
                .filter(|p| p["in"] == "path")
                .all(|p| p["required"] == true),
            "{what}"
        );
        assert_eq!(
            op.get("requestBody").is_some(),
            r.body != Body::None,
            "{what}: request body"
        );
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key(&r.status.to_string()), "{what}: {}", r.status);
        for code in ["400", "401", "404", "429"] {
            assert!(responses.contains_key(code), "{what}: no {code}");
        }
        assert!(responses["401"]["headers"].get("WWW-Authenticate").is_some(), "{what}");
    }
    // Every reference resolves.
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name: String = part.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        assert!(schemas.get(&name).is_some(), "dangling $ref {name}");
    }

    // And the server answers every route of the table with its verb (an id that does not exist is fine).
    for r in ROUTES {
        let path = r
            .path
            .replace("{id}", "999999")
            .replace("{ip}", "192.0.2.1")
            .replace("{name}", "missing.db");
        let reply = s
            .api(
                Method::from_bytes(r.verb.as_bytes()).unwrap(),
                &path,
                &s.admin_token,
                None,
            )
            .await;
        assert_ne!(reply.status, 405, "{} {path}", r.verb);
        if reply.status != 204 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{} {path}",
                r.verb
            );
        }
    }
}

/// The relative `src` and `href` targets of an HTML page.
fn assets(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = part.split('"').next().unwrap_or_default();
            if !target.is_empty() && !target.starts_with('#') {
                out.push(target.to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn swagger_ui_and_its_assets_are_served_without_a_token() {
    let s = Server::start().await;
    let r = fetch(&s, "/api/v1/docs").await;
    assert!([301, 302, 307, 308].contains(&r.status), "{}", r.status);
    assert_eq!(r.header("location"), Some("/api/v1/docs/"));

    let index = fetch(&s, "/api/v1/docs/").await;
    assert_eq!(index.status, 200);
    assert!(
        index.header("content-type").is_some_and(|c| c.starts_with("text/html")),
        "{:?}",
        index.header("content-type")
    );
    let html = String::from_utf8(index.body.to_vec()).unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let targets = assets(&html);
    assert!(
        targets.iter().any(|t| t.ends_with("swagger-ui-bundle.js")),
        "{targets:?}"
    );
    for target in &targets {
        assert!(
            !target.starts_with("http:") && !target.starts_with("https:") && !target.starts_with("//"),
            "served from elsewhere: {target}"
        );
        let path = match target.strip_prefix("./") {
            Some(rel) => format!("/api/v1/docs/{rel}"),
            None if target.starts_with('/') => target.clone(),
            None => format!("/api/v1/docs/{target}"),
        };
        let asset = fetch(&s, &path).await;
        assert_eq!(asset.status, 200, "{path}");
        assert!(!asset.body.is_empty(), "{path}");
        let ct = asset.header("content-type").unwrap_or_default().to_string();
        if path.ends_with(".js") {
            assert!(ct.contains("javascript"), "{path}: {ct}");
        } else if path.ends_with(".css") {
            assert!(ct.starts_with("text/css"), "{path}: {ct}");
        }
    }
    let bundle = fetch(&s, "/api/v1/docs/swagger-ui-bundle.js").await;
    assert!(
        bundle.body.len() > 100_000,
        "the whole bundle: {} bytes",
        bundle.body.len()
    );
    // Swagger UI is pointed at ipamd's own document.
    let mut config = html.clone();
    for target in targets.iter().filter(|t| t.ends_with(".js")) {
        let rel = target.trim_start_matches("./");
        let js = fetch(&s, &format!("/api/v1/docs/{rel}")).await;
        config.push_str(&String::from_utf8_lossy(&js.body));
    }
    assert!(config.contains("/api/v1/openapi.json"), "no URL of the document");

    let missing = fetch(&s, "/api/v1/docs/no-such-file.js").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("application/json"));
    let r = s.request(Method::DELETE, "/api/v1/docs/", &[], "").await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn a_headless_browser_renders_the_operations() {
    let Some(chromium) = support::on_path(&["chromium", "chromium-browser"]) else {
        return support::skip("chromium is not installed");
    };
    let s = Server::start().await;
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://{}/api/v1/docs/", s.addr);
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    // The browser runs on the blocking pool while this runtime keeps serving its requests.
    let (status, dom, stderr) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                &profile_arg,
                "--virtual-time-budget=10000",
                "--dump-dom",
                &url,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read both pipes while waiting: the DOM is larger than a pipe's buffer.
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut dom = String::new();
            out.read_to_string(&mut dom).map(|_| dom)
        });
        let err_reader = std::thread::spawn(move || {
            let mut text = Vec::new();
            err.read_to_end(&mut text)
                .map(|_| String::from_utf8_lossy(&text).into_owned())
        });
        // A browser that hangs must not hang the suite.
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (
            status,
            reader.join().unwrap().unwrap(),
            err_reader.join().unwrap().unwrap(),
        )
    })
    .await
    .unwrap();
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    assert!(dom.contains("opblock"), "no operations rendered:\n{dom}\n{stderr}");
    for path in ["/networks", "/hosts/{id}", "/ip/networks/{id}/next-ip", "/backups"] {
        assert!(dom.contains(path), "{path} is not shown:\n{dom}");
    }
    assert!(dom.contains("ipamd REST API"), "the document's title is not shown");
}
