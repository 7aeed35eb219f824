//! The web UI in a real browser: headless Chromium driven over WebDriver (chromedriver; the few commands used are
//! plain JSON over HTTP, sent with the tests' own HTTP client). It signs in, creates a group and a subnet, allocates
//! by clicking a free cell of the map, watches the map and the utilisation bar change, edits and deletes a record,
//! searches and signs out; axe-core (vendored in `support/axe/`) checks every main page for serious or critical
//! accessibility violations, in light and dark. Screenshots of the main pages are written to
//! `$TMPDIR/ipamd-ui-screenshots/` (the ones in `docs/` were taken this way). Without chromium and chromedriver on
//! PATH the tests are skipped (`support::skip`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use hyper::Method;
use serde_json::{json, Value};

use crate::support::{http, on_path, skip, Server, ADMIN_PASSWORD};

/// The axe-core build the accessibility checks inject (see `support/axe/README.md`).
const AXE: &str = include_str!("support/axe/axe.min.js");
/// The key of an element reference in WebDriver's answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session in it; both end when dropped.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    /// Ends the WebDriver session, which quits Chromium (killing chromedriver alone would leave the browser running),
    /// then chromedriver. Blocking, as a drop must be: chromedriver is another process, so nothing here waits on the
    /// test's runtime.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        if let Ok(mut stream) = std::net::TcpStream::connect(self.addr) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let quit = format!(
                "DELETE /session/{} HTTP/1.1\r\nhost: {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                self.session, self.addr
            );
            if stream.write_all(quit.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, in dark mode if `dark`; `None` (the test
    /// skipped) when either is missing.
    async fn start(dark: bool) -> Option<Browser> {
        let (Some(chromium), Some(chromedriver)) = (
            on_path(&["chromium", "chromium-browser", "google-chrome"]),
            on_path(&["chromedriver"]),
        ) else {
            skip("chromium and chromedriver are not on PATH");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if dark {
            args.push("--force-dark-mode".into());
            args.push("--blink-settings=preferredColorScheme=0".into());
        }
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args}}}});
        for _ in 0..100 {
            if crate::support::try_http(addr, Method::GET, "/status", &[], "")
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let created = browser.command(Method::POST, "/session", capabilities).await;
        browser.session = created["sessionId"].as_str().expect("a WebDriver session").to_string();
        Some(browser)
    }

    /// One WebDriver command; its `value`. A WebDriver error fails the test, naming the command.
    async fn command(&self, verb: Method, path: &str, body: Value) -> Value {
        let body = if verb == Method::GET {
            String::new()
        } else {
            body.to_string()
        };
        let reply = http(
            self.addr,
            verb.clone(),
            path,
            &[("content-type", "application/json")],
            body,
        )
        .await;
        let answer = reply.json();
        assert_eq!(reply.status, 200, "{verb} {path}: {answer}");
        answer["value"].clone()
    }

    async fn session(&self, verb: Method, path: &str, body: Value) -> Value {
        self.command(verb, &format!("/session/{}{path}", self.session), body)
            .await
    }

    async fn goto(&self, url: &str) {
        self.session(Method::POST, "/url", json!({"url": url})).await;
    }

    async fn url(&self) -> String {
        self.session(Method::GET, "/url", json!({}))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .session(Method::POST, "/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_string()
    }

    async fn count(&self, css: &str) -> usize {
        let found = self
            .session(
                Method::POST,
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found.as_array().map_or(0, Vec::len)
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.session(Method::POST, &format!("/element/{e}/click"), json!({}))
            .await;
    }

    /// Clicks a link or a form's button and waits for the next page: until the old page's root element is gone.
    async fn follow(&self, css: &str) {
        let old = self.find("html").await;
        self.click(css).await;
        let path = format!("/session/{}/element/{old}/name", self.session);
        for _ in 0..200 {
            let reply = http(self.addr, Method::GET, &path, &[], "").await;
            if reply.status != 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("clicking {css} led to no new page");
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.session(Method::GET, &format!("/element/{e}/text"), json!({}))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css).await;
        let v = self
            .session(Method::GET, &format!("/element/{e}/attribute/{name}"), json!({}))
            .await;
        v.as_str().map(str::to_string)
    }

    /// Replaces the text of an input.
    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.session(Method::POST, &format!("/element/{e}/clear"), json!({}))
            .await;
        self.session(Method::POST, &format!("/element/{e}/value"), json!({"text": text}))
            .await;
    }

    /// Saves a screenshot of the page as `<name>.png` in the screenshots directory.
    async fn screenshot(&self, name: &str) {
        let png = self.session(Method::GET, "/screenshot", json!({})).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = screenshots();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    /// Runs axe-core on the page and fails on any serious or critical violation, naming the rule and the elements.
    async fn check_accessibility(&self, page: &str) {
        let script = format!(
            "{AXE}\nreturn axe.run(document, {{resultTypes: ['violations']}}).then(r => r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => v.id + ': ' + v.help + ' — ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')));"
        );
        let found = self
            .session(Method::POST, "/execute/sync", json!({"script": script, "args": []}))
            .await;
        let found: Vec<String> = found
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert!(found.is_empty(), "{page}: {found:#?}");
    }
}

/// Where the screenshots go.
fn screenshots() -> PathBuf {
    std::env::temp_dir().join("ipamd-ui-screenshots")
}

/// Signs in through the form.
async fn sign_in(b: &Browser, base: &str) {
    b.goto(&format!("{base}/")).await;
    assert!(b.url().await.ends_with("/ui/signin"));
    b.fill("#signin-org", "admin").await;
    b.fill("#signin-username", "admin").await;
    b.fill("#signin-password", ADMIN_PASSWORD).await;
    b.follow("button[type=submit]").await;
    assert!(b.url().await.ends_with("/ui/"), "{}", b.url().await);
}

#[tokio::test]
async fn a_browser_manages_subnets_and_addresses_through_the_ui() {
    let Some(b) = Browser::start(false).await else {
        return;
    };
    let s = Server::start().await;
    let base = format!("http://{}", s.addr);
    b.goto(&format!("{base}/ui/signin")).await;
    b.screenshot("signin").await;
    sign_in(&b, &base).await;

    // A group, then a subnet in it.
    b.goto(&format!("{base}/ui/groups")).await;
    b.fill("#group-description", "Office").await;
    b.follow("form.card button[type=submit]").await;
    assert!(b.text("ul.tree").await.contains("Office"));
    b.goto(&format!("{base}/ui/subnets/new")).await;
    b.fill("#subnet-subnet", "10.20.0.0/24").await;
    b.fill("#subnet-name", "office lan").await;
    b.click("#subnet-group option:nth-child(2)").await;
    b.follow("form.card button[type=submit]").await;
    assert!(b.url().await.contains("/ui/subnets/"), "{}", b.url().await);
    assert_eq!(b.count(".map .cell.s-free").await, 254);
    assert_eq!(b.attribute(".util .fill", "class").await.as_deref(), Some("fill p0 ok"));

    // Click a free cell: the allocate form is filled in with its address.
    b.follow(".map .cell.s-free:nth-child(11)").await;
    assert_eq!(b.attribute("#alloc-ip", "value").await.as_deref(), Some("10.20.0.10"));
    b.fill("#alloc-hostname", "printer").await;
    b.follow("#allocate form:not(.inline) button[type=submit]").await;
    assert_eq!(b.count(".map .cell.s-free").await, 253);
    let taken = b.attribute(".map .cell.s-assigned", "aria-label").await.unwrap();
    assert_eq!(taken, "10.20.0.10 assigned: printer");
    // "Next free" in one click, a few times over: the bar moves.
    for _ in 0..25 {
        b.follow("#allocate form.inline button").await;
    }
    assert_eq!(b.count(".map .cell.s-assigned").await, 26);
    assert_eq!(
        b.attribute(".util .fill", "class").await.as_deref(),
        Some("fill p11 ok")
    );
    b.screenshot("subnet").await;

    // Edit the printer, then delete it.
    b.follow(".map .cell.s-assigned[aria-label$=printer]").await;
    b.fill("#addr-hostname", "printer-2").await;
    b.follow("form.card button[type=submit]").await;
    assert!(b.url().await.contains("/ui/subnets/"));
    b.find(".map .cell[aria-label='10.20.0.10 assigned: printer-2']").await;
    b.follow(".map .cell[aria-label='10.20.0.10 assigned: printer-2']")
        .await;
    b.screenshot("address").await;
    b.follow("button.danger").await;
    assert_eq!(b.count(".map .cell.s-assigned").await, 25);

    // The list, sorted by utilisation, with its bar; the overview; search.
    b.goto(&format!("{base}/ui/subnets?sort=utilisation")).await;
    assert!(b.text("table").await.contains("office lan"));
    b.screenshot("subnets").await;
    b.goto(&format!("{base}/ui/")).await;
    b.screenshot("overview").await;
    b.goto(&format!("{base}/ui/search")).await;
    b.fill("#search-q", "office").await;
    b.follow("form.filters button").await;
    assert!(b.text("main").await.contains("10.20.0.0/24"));

    // Sign out: the pages need a session again.
    b.follow("form.signout button").await;
    assert!(b.url().await.ends_with("/ui/signin"));
    b.goto(&format!("{base}/ui/subnets")).await;
    assert!(b.url().await.ends_with("/ui/signin"));
}

#[tokio::test]
async fn the_main_pages_have_no_serious_accessibility_violations_in_light_and_dark() {
    for dark in [false, true] {
        let Some(b) = Browser::start(dark).await else {
            return;
        };
        let s = Server::start().await;
        let group = crate::support::id_of(crate::support::only(
            &s.ok(&s.admin, "groups/add", json!({"description": "Data centre"}))
                .await,
        ));
        let id = crate::support::id_of(crate::support::only(
            &s.ok(
                &s.admin,
                "subnets/add",
                json!({"subnet": "10.30.0.0/24", "group": group, "name": "servers"}),
            )
            .await,
        ));
        s.ok(
            &s.admin,
            "subnets/add",
            json!({"subnet": "2001:db8::/64", "name": "v6"}),
        )
        .await;
        for (n, status) in [(2, "active"), (3, "reserved"), (4, "inactive")] {
            let data =
                json!({"subnet": id, "ip": format!("10.30.0.{n}"), "hostname": format!("host{n}"), "status": status});
            s.ok(&s.admin, "ipaddress/add", data).await;
        }
        s.ok(
            &s.admin,
            "dhcpranges/add",
            json!({"subnet": id, "start_ip": "10.30.0.100", "end_ip": "10.30.0.150"}),
        )
        .await;
        s.ok(
            &s.admin,
            "subnets/fields/add",
            json!({"subnet": id, "name": "backup", "type": "boolean"}),
        )
        .await;
        let pool = crate::support::id_of(crate::support::only(
            &s.ok(&s.admin, "subnets/add", json!({"subnet": "10.40.0.0/16", "pool": true}))
                .await,
        ));
        s.ok(&s.admin, "subnets/add", json!({"parent": pool, "cidr": 24})).await;
        let host = crate::support::id_of(crate::support::only(
            &s.ok(&s.admin, "ipaddress/get", json!({"ip": "10.30.0.2"})).await,
        ));
        let base = format!("http://{}", s.addr);
        b.goto(&format!("{base}/ui/signin")).await;
        b.check_accessibility("sign-in").await;
        sign_in(&b, &base).await;
        let pages = [
            "/ui/".to_string(),
            "/ui/subnets".into(),
            format!("/ui/subnets/{id}"),
            "/ui/subnets/new".into(),
            "/ui/groups".into(),
            "/ui/search?q=host".into(),
            "/ui/log".into(),
            "/ui/tokens".into(),
            "/ui/users".into(),
            format!("/ui/groups/{group}"),
            format!("/ui/subnets/{pool}"),
            format!("/ui/addresses/{host}"),
            "/ui/search?q=10.30.0.120".into(),
            "/ui/log?method=subnets%2Fadd".into(),
        ];
        for page in &pages {
            b.goto(&format!("{base}{page}")).await;
            b.check_accessibility(&format!("{page} (dark: {dark})")).await;
        }
        if dark {
            b.goto(&format!("{base}/ui/subnets/{id}")).await;
            b.screenshot("subnet-dark").await;
        }
        // A phone's width: the same pages, no serious violation either.
        if !dark {
            b.session(Method::POST, "/window/rect", json!({"width": 390, "height": 844}))
                .await;
            b.goto(&format!("{base}/ui/subnets/{id}")).await;
            b.check_accessibility("subnet page on a phone").await;
            b.screenshot("subnet-phone").await;
        }
        let _ = s.request(Method::GET, "/healthz", &[], "").await;
    }
}
