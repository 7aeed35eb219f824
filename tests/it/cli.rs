//! The `ipamd` binary: `init`, `org add` and `serve` on a database in a temp dir, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use hyper::Method;
use serde_json::{json, Value};
use tempfile::TempDir;

use ipamd::app::App;
use ipamd::config::Settings;
use ipamd::dispatch::dispatch;
use ipamd::handler::{Call, Credentials};
use ipamd::methods::METHODS;

use crate::support::{http, sha1_hex};

const CREDENTIAL_KEYS: [&str; 7] = ["org", "username", "password", "sha1", "userdata", "appkey", "token"];

/// `ipamd` with `args`, its database and backups in `dir`, and none of the caller's ipamd settings.
fn ipamd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipamd"));
    cmd.args(args)
        .env("IPAMD_DB", dir.join("ipam.db"))
        .env("BACKUP_DIR", dir.join("backups"))
        .env("RUST_LOG", "warn");
    for var in [
        "IPAMD_LISTEN",
        "IPAMD_ADMIN_PASSWORD",
        "API_TOKENS",
        "IPAMD_LOG_FORMAT",
        "RATELIMIT_STORAGE_URI",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// The one JSON object a `--json` command prints, after checking it has exactly the documented keys.
fn credentials(out: &Output) -> Value {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one line of JSON: {stdout}");
    let creds: Value = serde_json::from_str(&stdout).unwrap();
    let keys: Vec<&str> = creds.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, CREDENTIAL_KEYS);
    let (user, password) = (creds["username"].as_str().unwrap(), creds["password"].as_str().unwrap());
    assert_eq!(creds["sha1"], sha1_hex(user, password));
    assert_eq!(
        creds["userdata"],
        format!("{}/{user}:{}", creds["org"].as_str().unwrap(), sha1_hex(user, password))
    );
    assert!(
        uuid::Uuid::parse_str(creds["appkey"].as_str().unwrap()).is_ok(),
        "{creds}"
    );
    let token = creds["token"].as_str().unwrap();
    assert!(
        token.len() == 40 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{creds}"
    );
    creds
}

/// Calls `userdata` in-process on the database in `dir` with the printed appkey and userdata.
async fn whoami(dir: &Path, creds: &Value) -> Value {
    let mut settings = Settings::defaults();
    settings.db = dir.join("ipam.db");
    let app = tokio::task::spawn_blocking(move || App::open(settings, METHODS).unwrap())
        .await
        .unwrap();
    let call = Call {
        method: "userdata".into(),
        credentials: Credentials::Envelope {
            appkey: creds["appkey"].as_str().map(str::to_string),
            userdata: creds["userdata"].as_str().map(str::to_string),
        },
        data: json!({}),
        key: None,
    };
    serde_json::to_value(dispatch(&app, call).await.result.unwrap()).unwrap()
}

#[tokio::test]
async fn init_prints_working_credentials_once() {
    let dir = TempDir::new().unwrap();
    let out = run(&mut ipamd(dir.path(), &["init", "--json", "--password", "x"]));
    let creds = credentials(&out);
    assert_eq!(
        (
            creds["org"].clone(),
            creds["username"].clone(),
            creds["password"].clone()
        ),
        (json!("admin"), json!("admin"), json!("x"))
    );
    // sha1("admin-x"), computed independently with sha1sum.
    assert_eq!(creds["sha1"], "db7ea2f61418fbeb6e1f82d915ec31d90b652c3f");
    let me = whoami(dir.path(), &creds).await;
    assert_eq!(
        (me["user"]["level"].clone(), me["org"]["identifier"].clone()),
        (json!("admin"), json!("admin"))
    );

    let again = run(&mut ipamd(dir.path(), &["init", "--json", "--password", "y"]));
    assert!(!again.status.success());
    assert!(again.stdout.is_empty(), "no credentials the second time");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already initialised"), "{stderr}");
    // The first credentials still work; the second password was not set.
    whoami(dir.path(), &creds).await;
}

#[tokio::test]
async fn init_takes_the_password_from_the_environment_and_prints_text_by_default() {
    let dir = TempDir::new().unwrap();
    let creds = credentials(&run(
        ipamd(dir.path(), &["init", "--json"]).env("IPAMD_ADMIN_PASSWORD", "from-env")
    ));
    assert_eq!(creds["password"], "from-env");

    let dir = TempDir::new().unwrap();
    let out = run(&mut ipamd(dir.path(), &["init"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success() && text.contains("shown once"), "{text}");
    let password = field(&text, "password").unwrap();
    assert!(
        password.len() >= 22 && password.chars().all(|c| c.is_ascii_alphanumeric()),
        "{password}"
    );
    assert_eq!(
        field(&text, "userdata").unwrap(),
        format!("admin/admin:{}", sha1_hex("admin", &password))
    );
}

#[tokio::test]
async fn org_add_creates_an_org_with_its_admin() {
    let dir = TempDir::new().unwrap();
    credentials(&run(&mut ipamd(dir.path(), &["init", "--json"])));
    let creds = credentials(&run(&mut ipamd(
        dir.path(),
        &["org", "add", "acme", "--admin", "bob", "--json"],
    )));
    assert_eq!(
        (creds["org"].clone(), creds["username"].clone()),
        (json!("acme"), json!("bob"))
    );
    let password = creds["password"].as_str().unwrap();
    assert!(
        password.len() >= 22 && password.chars().all(|c| c.is_ascii_alphanumeric()),
        "{password}"
    );
    let me = whoami(dir.path(), &creds).await;
    assert_eq!(
        (me["user"]["username"].clone(), me["user"]["level"].clone()),
        (json!("bob"), json!("admin"))
    );
    assert_eq!(me["org"]["identifier"], "acme");

    let with_pw = [
        "org",
        "add",
        "Beta",
        "--admin",
        "carol",
        "--password",
        "pw",
        "--description",
        "B",
        "--json",
    ];
    let beta = credentials(&run(&mut ipamd(dir.path(), &with_pw)));
    assert_eq!(
        (beta["org"].clone(), beta["password"].clone()),
        (json!("beta"), json!("pw"))
    );

    for (args, message) in [
        (vec!["org", "add", "ACME", "--admin", "x"], "taken"),
        (vec!["org", "add", "bad org", "--admin", "x"], "identifier"),
        (vec!["org", "add", "ok", "--admin", "bad name"], "username"),
    ] {
        let out = run(&mut ipamd(dir.path(), &args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && out.stdout.is_empty(), "{args:?}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A running `ipamd serve`, killed if the test ends early.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `ipamd serve` on port 0 and reads its stdout up to the `listening` line: (the server, its address, what
/// it printed before).
fn serve(dir: &Path) -> (Serving, String, String, BufReader<ChildStdout>) {
    let mut child = ipamd(dir, &["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let serving = Serving(child);
    let mut before = String::new();
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "serve exited early: {before}");
        if let Some(addr) = line.trim().strip_prefix("ipamd listening on http://") {
            return (serving, addr.to_string(), before, stdout);
        }
        before.push_str(&line);
    }
}

/// The value of `  name:  value` in the credentials printed for a terminal.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

/// Stops the server with SIGTERM, checks that it exits with status 0, and returns its log.
fn terminate(mut serving: Serving) -> String {
    let status = Command::new("kill")
        .args(["-TERM", &serving.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = serving.0.wait().unwrap();
    let mut log = String::new();
    serving.0.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(exit.success(), "ipamd exited with {exit}: {log}");
    log
}

#[tokio::test]
async fn serve_prints_first_run_credentials_once_and_stops_on_sigterm() {
    let dir = TempDir::new().unwrap();
    let (serving, addr, printed, _out) = serve(dir.path());
    let (appkey, userdata) = (field(&printed, "appkey").unwrap(), field(&printed, "userdata").unwrap());
    assert!(
        field(&printed, "password").is_some() && field(&printed, "token").is_some(),
        "{printed}"
    );
    let addr = addr.parse().unwrap();
    let env = json!({"reqid": 1, "appkey": appkey, "userdata": userdata}).to_string();
    let headers = [("content-type", "application/json")];
    let reply = http(addr, Method::POST, "/1.0/userdata", &headers, env.clone()).await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["response"]["user"]["username"], "admin");
    let log = terminate(serving);
    // The request's log line names its respid, and no log line carries a secret.
    let respid = reply.json()["respid"].as_str().unwrap().to_string();
    assert!(
        log.lines().any(|l| l.contains(&respid) && l.contains("userdata")),
        "{log}"
    );
    let sha1 = userdata.rsplit(':').next().unwrap();
    for secret in [
        &appkey,
        sha1,
        &field(&printed, "password").unwrap(),
        &field(&printed, "token").unwrap(),
    ] {
        assert!(!log.contains(secret), "the log shows a secret: {log}");
    }

    // The second start finds the operator org and prints no credentials; the first ones still work.
    let (serving, addr, printed, _out) = serve(dir.path());
    assert_eq!(printed, "", "credentials are printed once");
    let reply = http(addr.parse().unwrap(), Method::POST, "/1.0/userdata", &headers, env).await;
    assert_eq!(reply.status, 200);
    terminate(serving);
}
