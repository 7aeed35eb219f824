//! The `ipamd` binary: `init`, `org add` and `serve` on a database in a temp dir, a clean exit on SIGTERM, the
//! recovery commands against a running server, the config file and its precedence, the commands that must not
//! create a database, a failed first start that leaves nothing, and the generated completions and man page.

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
    cmd.args(args);
    isolate(&mut cmd, dir);
    cmd
}

/// The environment of [`ipamd`], for a command that runs ipamd through another program.
fn isolate(cmd: &mut Command, dir: &Path) {
    cmd.env("IPAMD_DB", dir.join("ipam.db"))
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
    let out = run(&mut ipamd(
        dir.path(),
        &["init", "--json", "--password", "x-admin-password"],
    ));
    let creds = credentials(&out);
    assert_eq!(
        (
            creds["org"].clone(),
            creds["username"].clone(),
            creds["password"].clone()
        ),
        (json!("admin"), json!("admin"), json!("x-admin-password"))
    );
    // sha1("admin-x-admin-password"), computed independently with sha1sum.
    assert_eq!(creds["sha1"], "e142dc1bc982969258195f5e967eb7a8932a6599");
    let me = whoami(dir.path(), &creds).await;
    assert_eq!(
        (me["user"]["level"].clone(), me["org"]["identifier"].clone()),
        (json!("admin"), json!("admin"))
    );

    // An initialised database is not initialised again, whatever the password (a short one is not even measured).
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
        ipamd(dir.path(), &["init", "--json"]).env("IPAMD_ADMIN_PASSWORD", "from-the-environment")
    ));
    assert_eq!(creds["password"], "from-the-environment");

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
        "carol-password",
        "--description",
        "B",
        "--json",
    ];
    let beta = credentials(&run(&mut ipamd(dir.path(), &with_pw)));
    assert_eq!(
        (beta["org"].clone(), beta["password"].clone()),
        (json!("beta"), json!("carol-password"))
    );

    for (args, message) in [
        (vec!["org", "add", "ACME", "--admin", "x"], "taken"),
        (vec!["org", "add", "bad org", "--admin", "x"], "identifier"),
        (vec!["org", "add", "ok", "--admin", "bad name"], "username"),
        (
            vec!["org", "add", "ok", "--admin", "x", "--password", "short"],
            "at least 12 characters",
        ),
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

/// What a command printed on stderr, after checking that it failed and printed nothing on stdout.
fn refusal(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// The one JSON value a successful command printed.
fn printed(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Calls `userdata` on a running server with an app key and `userdata`: the status and the error code.
async fn login(addr: std::net::SocketAddr, appkey: &str, userdata: &str) -> (u16, Value) {
    let env = json!({"appkey": appkey, "userdata": userdata}).to_string();
    let headers = [("content-type", "application/json")];
    let reply = http(addr, Method::POST, "/1.0/userdata", &headers, env).await;
    (reply.status, reply.json()["errorCode"].clone())
}

#[tokio::test]
async fn recovery_commands_take_effect_in_a_running_server_and_are_audited() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let server = crate::support::Ipamd::start(d);
    let bob = credentials(&run(&mut ipamd(
        d,
        &[
            "org",
            "add",
            "acme",
            "--admin",
            "bob",
            "--password",
            "bob-password-1",
            "--json",
        ],
    )));
    let appkey = bob["appkey"].as_str().unwrap();
    let old = bob["userdata"].as_str().unwrap();
    assert_eq!(login(server.addr, appkey, old).await.0, 200);

    let orgs = printed(&run(&mut ipamd(d, &["org", "list", "--json"])));
    let listed: Vec<(Value, Value)> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["identifier"].clone(), o["operator"].clone()))
        .collect();
    assert_eq!(listed, [(json!("admin"), json!(true)), (json!("acme"), json!(false))]);
    let table = String::from_utf8(run(&mut ipamd(d, &["org", "list"])).stdout).unwrap();
    assert!(table.starts_with("ID") && table.lines().count() == 3, "{table}");

    // A new password applies at once: the old one is refused, the new one accepted.
    let new = printed(&run(&mut ipamd(
        d,
        &["user", "reset-password", "acme", "bob", "--json"],
    )));
    let password = new["password"].as_str().unwrap();
    assert!(password.len() >= 22, "{new}");
    assert_eq!(new["userdata"], format!("acme/bob:{}", sha1_hex("bob", password)));
    assert_eq!(login(server.addr, appkey, old).await, (401, json!("auth_failed")));
    assert_eq!(
        login(server.addr, appkey, new["userdata"].as_str().unwrap()).await.0,
        200
    );
    let chosen = [
        "user",
        "reset-password",
        "acme",
        "bob",
        "--password",
        "bob-password-2",
        "--json",
    ];
    let chosen = printed(&run(&mut ipamd(d, &chosen)));
    let userdata = format!("acme/bob:{}", sha1_hex("bob", "bob-password-2"));
    assert_eq!(chosen["userdata"], userdata);
    assert_eq!(login(server.addr, appkey, &userdata).await.0, 200);

    // Ten failures lock bob out, even with the right password; `user unlock` ends it in the running server.
    let wrong = format!("acme/bob:{}", sha1_hex("bob", "wrong-password"));
    for _ in 0..10 {
        assert_eq!(login(server.addr, appkey, &wrong).await.0, 401);
    }
    assert_eq!(
        login(server.addr, appkey, &userdata).await,
        (429, json!("too_many_attempts"))
    );
    let unlocked = run(&mut ipamd(d, &["user", "unlock", "acme", "bob"]));
    assert!(
        unlocked.status.success(),
        "{}",
        String::from_utf8_lossy(&unlocked.stderr)
    );
    assert_eq!(login(server.addr, appkey, &userdata).await.0, 200);

    let token = printed(&run(&mut ipamd(d, &["token", "create", "acme", "bob", "--json"])));
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    let reply = http(
        server.addr,
        Method::GET,
        "/api/v1/networks",
        &[("authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(reply.status, 200);

    // Each change left its audit entry in acme's log, made by the command line.
    let env = json!({"appkey": appkey, "userdata": userdata, "data": {"perpage": 10}}).to_string();
    let headers = [("content-type", "application/json")];
    let logs = http(server.addr, Method::POST, "/1.0/org/logs", &headers, env)
        .await
        .json();
    let entries: Vec<(String, String, String)> = logs["response"]["logs"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap().to_string();
            (field("method"), field("user"), field("application"))
        })
        .collect();
    let cli = |method: &str| (method.to_string(), "bob".to_string(), "cli".to_string());
    assert_eq!(
        entries,
        [
            cli("org/tokens/add"),
            cli("ipamd user unlock"),
            cli("org/users/edit"),
            cli("org/users/edit")
        ],
        "{logs}"
    );

    for (args, message) in [
        (
            vec!["user", "reset-password", "acme", "nobody"],
            "no user 'nobody' in org 'acme'",
        ),
        (vec!["user", "unlock", "nope", "bob"], "no org 'nope'"),
        (
            vec!["token", "create", "acme", "nobody"],
            "no user 'nobody' in org 'acme'",
        ),
        (
            vec!["user", "reset-password", "acme", "bob", "--password", "short"],
            "at least 12 characters",
        ),
    ] {
        let stderr = refusal(&run(&mut ipamd(d, &args)));
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert_eq!(
        login(server.addr, appkey, &userdata).await.0,
        200,
        "the refused reset changed nothing"
    );
}

#[test]
fn commands_other_than_serve_and_init_create_no_database() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    for args in [
        vec!["org", "add", "acme", "--admin", "bob"],
        vec!["org", "list"],
        vec!["user", "unlock", "acme", "bob"],
        vec!["user", "reset-password", "acme", "bob"],
        vec!["token", "create", "acme", "bob"],
        vec!["backup", "list"],
        vec!["backup", "create"],
        vec!["migrate", "--to", "copy.db"],
    ] {
        let stderr = refusal(&run(&mut ipamd(d, &args)));
        let looked = d.join("ipam.db");
        assert!(
            stderr.contains(&looked.display().to_string()) && stderr.contains("--db"),
            "{args:?}: {stderr}"
        );
        let left: Vec<_> = std::fs::read_dir(d).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

/// A first start or `init` that cannot write its database (here: a file size limit of 0, as on a full disk) fails
/// and leaves neither the file nor the directory it made for it.
#[test]
fn a_failed_first_start_leaves_nothing_behind() {
    let (dir, backups) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    let db = dir.path().join("data").join("ipam.db");
    for args in [vec!["serve", "--listen", "127.0.0.1:0"], vec!["init"]] {
        // The shell ignores SIGXFSZ, so writing past the limit fails with EFBIG instead of killing ipamd.
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "ulimit -f 0; trap '' XFSZ; exec \"$0\" \"$@\"",
            env!("CARGO_BIN_EXE_ipamd"),
        ])
        .args(&args)
        .env("IPAMD_DB", &db)
        .env("BACKUP_DIR", backups.path())
        .env("RUST_LOG", "warn")
        .env_remove("IPAMD_ADMIN_PASSWORD")
        .env_remove("IPAMD_LISTEN");
        let out = run(&mut cmd);
        assert!(!out.status.success(), "{args:?} succeeded");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left {left:?}");
    }
}

#[test]
fn the_config_file_is_under_the_environment_and_the_flags() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let file = d.join("ipamd.toml");
    std::fs::write(&file, "db = \"from-file.db\"\nmax-split = 3\n").unwrap();
    // The database a command looked for tells which setting won.
    let looked_for = |cmd: &mut Command| {
        let stderr = refusal(&run(cmd));
        ["from-flag.db", "from-env.db", "from-file.db", "ipam.db"]
            .into_iter()
            .find(|name| stderr.contains(&format!("{}/{name}", d.display())))
            .unwrap_or_else(|| panic!("{stderr}"))
    };
    let org_list = |extra: &[&str]| {
        let mut cmd = ipamd(d, &[&["org", "list"], extra].concat());
        cmd.current_dir(d).env_remove("IPAMD_DB");
        cmd
    };
    let config = file.to_str().unwrap();
    assert_eq!(looked_for(&mut org_list(&[])), "ipam.db");
    assert_eq!(looked_for(&mut org_list(&["--config", config])), "from-file.db");
    assert_eq!(looked_for(org_list(&[]).env("IPAMD_CONFIG", config)), "from-file.db");
    let mut before = ipamd(d, &["--config", config, "org", "list"]);
    assert_eq!(looked_for(before.current_dir(d).env_remove("IPAMD_DB")), "from-file.db");
    let mut env = org_list(&["--config", config]);
    assert_eq!(looked_for(env.env("IPAMD_DB", "from-env.db")), "from-env.db");
    let mut flag = org_list(&["--db", "from-flag.db"]);
    flag.env("IPAMD_CONFIG", config).env("IPAMD_DB", "from-env.db");
    assert_eq!(looked_for(&mut flag), "from-flag.db");

    // Refusals name the file's key; a secret's value is never shown.
    for (text, message) in [
        ("max_splt = 3", "unknown key `max_splt` (did you mean `max_split`?)"),
        ("max_connections = 0", "`max_connections` = \"0\": 0 is not in 1..="),
        ("listen = \"here\"", "`listen` = \"here\": 'here' is not IP:PORT"),
        (
            "ratelimit_enabled = \"maybe\"",
            "`ratelimit_enabled` = \"maybe\": not a boolean",
        ),
        (
            "api_tokens = [\"a\"]",
            "`api_tokens` must be a string, a number or a boolean",
        ),
        ("max_split = 3\nmax-split = 4", "is given twice"),
        ("admin_password = \"Secret-Value-1", "line 1"),
    ] {
        std::fs::write(&file, text).unwrap();
        let stderr = refusal(&run(&mut ipamd(d, &["org", "list", "--config", config])));
        assert!(stderr.contains(config) && stderr.contains(message), "{text}: {stderr}");
        assert!(!stderr.contains("Secret-Value-1"), "{stderr}");
    }

    // The server takes every setting from the file: here its address, a bare port.
    std::fs::write(
        &file,
        "listen = 0\nmin_password_length = 20\nadmin_password = \"short-password\"\n",
    )
    .unwrap();
    let stderr = refusal(&run(&mut ipamd(d, &["--config", config])));
    assert!(stderr.contains("at least 20 characters"), "{stderr}");
    std::fs::write(&file, "listen = \"localhost:0\"\n").unwrap();
    let mut cmd = ipamd(d, &["serve", "--config", config]);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let serving = Serving(child);
    let addr = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "serve exited early");
        if let Some(addr) = line.trim().strip_prefix("ipamd listening on http://") {
            break addr.to_string();
        }
    };
    assert!(addr.starts_with("127.0.0.1:") || addr.starts_with("[::1]:"), "{addr}");
    drop(serving);
}

#[test]
fn listen_takes_host_names_and_bare_ports_and_names_what_does_not_resolve() {
    let dir = TempDir::new().unwrap();
    let stderr = refusal(&run(&mut ipamd(dir.path(), &["--listen", "nosuch.invalid:5000"])));
    assert!(
        stderr.contains("cannot resolve the listen address nosuch.invalid:5000"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("ipam.db").exists(),
        "nothing is created before the address is bound"
    );
    let stderr = refusal(&run(&mut ipamd(dir.path(), &["serve", "--listen", "not an address"])));
    assert!(stderr.contains("is not IP:PORT, HOST:PORT or a port"), "{stderr}");
}

#[test]
fn help_shows_each_command_its_own_flags_and_completions_and_man_page_are_generated() {
    let dir = TempDir::new().unwrap();
    let help = |args: &[&str]| String::from_utf8(run(&mut ipamd(dir.path(), args)).stdout).unwrap();
    let top = help(&["--help"]);
    assert!(top.contains("RUST_LOG") && top.contains("--listen"), "{top}");
    let init = help(&["init", "--help"]);
    assert!(
        init.contains("--password") && !init.contains("--admin-password"),
        "{init}"
    );
    for args in [
        ["org", "add", "--help"],
        ["backup", "list", "--help"],
        ["user", "unlock", "--help"],
    ] {
        let text = help(&args);
        assert!(text.contains("--db") && !text.contains("--listen"), "{args:?}: {text}");
    }
    // A server flag before a command would be lost: it is refused, saying where it goes.
    let early = run(&mut ipamd(dir.path(), &["--db", "x.db", "org", "list"]));
    let stderr = refusal(&early);
    assert!(
        stderr.contains("--db goes after the command: `ipamd org list --db"),
        "{stderr}"
    );
    let bash = help(&["completions", "bash"]);
    for word in ["serve", "reset-password", "unlock", "backup", "completions", "--listen"] {
        assert!(bash.contains(word), "{word}: {bash}");
    }
    for shell in ["zsh", "fish"] {
        assert!(help(&["completions", shell]).contains("reset-password"), "{shell}");
    }
    let man = help(&["man"]);
    assert!(man.contains(".TH ipamd") && man.contains("serve"), "{man}");
}

/// On a terminal, `backup restore` asks first, and any answer but yes changes nothing. `script` (util-linux) gives
/// the command its terminal.
#[test]
fn restore_asks_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        return crate::support::skip("`script` (util-linux) is not installed");
    }
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    credentials(&run(&mut ipamd(d, &["init", "--json"])));
    let name = printed(&run(&mut ipamd(d, &["backup", "create"])))["name"]
        .as_str()
        .unwrap()
        .to_string();
    let backups = || std::fs::read_dir(d.join("backups")).unwrap().count();
    for (answer, restored) in [("n", false), ("yes", true)] {
        let restore = format!("{} backup restore {name}", env!("CARGO_BIN_EXE_ipamd"));
        let mut script = Command::new("sh");
        script.args(["-c", "echo \"$0\" | script -qec \"$1\" /dev/null", answer, &restore]);
        isolate(&mut script, d);
        let before = backups();
        let out = run(&mut script);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("[y/N]"), "{answer}: {text}");
        assert_eq!(out.status.success(), restored, "{answer}: {text}");
        assert_eq!(text.contains("\"restored\": true"), restored, "{answer}: {text}");
        assert_eq!(text.contains("restore cancelled"), !restored, "{answer}: {text}");
        // A restore leaves its safety backup; a cancelled one nothing.
        assert_eq!(backups(), before + usize::from(restored), "{answer}");
    }
}

/// `ipamd import`, `export` and `output` on a database with no server: an import in one transaction (refused rows
/// named, nothing changed), the export of what it made in both formats, the configuration generated from it, and no
/// progress lines when standard error is not a terminal.
#[test]
fn import_export_and_output_act_as_the_user_they_name() {
    let dir = TempDir::new().unwrap();
    credentials(&run(&mut ipamd(dir.path(), &["init", "--json"])));
    let file = dir.path().join("rows.csv");
    let as_admin = ["--org", "admin", "--user", "admin"];
    let import = |rows: &str, extra: &[&str]| {
        std::fs::write(&file, rows).unwrap();
        let mut args = vec!["import"];
        args.extend(as_admin);
        args.extend(extra);
        args.push(file.to_str().unwrap());
        run(&mut ipamd(dir.path(), &args))
    };
    let export = |format: &str| {
        let mut args = vec!["export", "--format", format];
        args.extend(as_admin);
        let out = run(&mut ipamd(dir.path(), &args));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let rows = "kind,network,ip,hostname,mac_address\n\
                network,10.5.0.0/24,,,\n\
                address,10.5.0.0/24,10.5.0.10,web1,aa:bb:cc:dd:ee:01\n\
                address,10.5.0.0/24,10.5.0.11,\"db1\",\n";
    let out = import(rows, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Imported: 3 created, 0 updated, 0 refused.\n"
    );
    assert!(
        out.stderr.is_empty(),
        "no progress off a terminal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = export("csv");
    assert_eq!(
        csv,
        "kind,network,group,ip,end_ip,name,domain,vlan_id,location,hostname,cname,mac_address,status,description\r\n\
         network,10.5.0.0/24,,,,,,,,,,,,\r\n\
         address,10.5.0.0/24,,10.5.0.10,,,,,,web1,,aa:bb:cc:dd:ee:01,active,\r\n\
         address,10.5.0.0/24,,10.5.0.11,,,,,,db1,,,active,\r\n"
    );
    let json: Value = serde_json::from_str(&export("json")).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    assert_eq!(json[1]["hostname"], "web1");

    let out = import("ip,hostname\n10.5.0.12,new\n10.5.0.999,bad\n", &["--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("row 2: address created"), "{stdout}");
    assert!(stdout.contains("row 3: address refused ip: "), "{stdout}");
    let out = import("ip,hostname\n10.5.0.12,new\n10.5.0.999,bad\n", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(export("csv"), csv, "a refused row imports nothing");

    let mut args = vec!["output", "--network", "1", "--format", "bind", "--zone", "lab.example"];
    args.extend(as_admin);
    let out = run(&mut ipamd(dir.path(), &args));
    let zone = String::from_utf8_lossy(&out.stdout);
    assert!(
        zone.contains("$ORIGIN lab.example.\n$TTL 3600\nweb1 IN A 10.5.0.10\ndb1 IN A 10.5.0.11\n"),
        "{zone}"
    );
    let mut args = vec!["output", "--network", "1", "--format", "bind"];
    args.extend(as_admin);
    let out = run(&mut ipamd(dir.path(), &args));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("name the zone"));
}
