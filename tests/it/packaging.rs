//! The packaging files against the repository and each other: the Containerfile (stages, user, volume, what it
//! copies, its health probe run against a real server), compose.yaml, and the systemd unit (checked by
//! `systemd-analyze` where it is installed). No container engine is needed: the image itself is not built here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::{self, Server};

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// One instruction of the Containerfile: its keyword in upper case and the rest, continuation lines joined.
struct Instruction {
    keyword: String,
    args: String,
}

/// The Containerfile's instructions, split into its stages (each starting with its FROM).
fn stages() -> Vec<Vec<Instruction>> {
    let text = repo_file("Containerfile");
    let mut logical = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                pending.push_str(head);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                logical.push(std::mem::take(&mut pending));
            }
        }
    }
    assert!(pending.is_empty(), "the Containerfile ends inside a continued line");
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let instruction = Instruction {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
        };
        if instruction.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .unwrap_or_else(|| panic!("{keyword} before the first FROM"))
            .push(instruction);
    }
    stages
}

/// The arguments of the one `keyword` instruction of `stage`.
fn only<'a>(stage: &'a [Instruction], keyword: &str) -> &'a str {
    let found: Vec<&Instruction> = stage.iter().filter(|i| i.keyword == keyword).collect();
    assert_eq!(found.len(), 1, "one {keyword} in the stage");
    &found[0].args
}

/// The runtime stage's `ENV` settings.
fn runtime_env(stage: &[Instruction]) -> Vec<(String, String)> {
    stage
        .iter()
        .filter(|i| i.keyword == "ENV")
        .flat_map(|i| i.args.split_whitespace())
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {pair}: not NAME=value"));
            (name.to_string(), value.to_string())
        })
        .collect()
}

fn env_value<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    env.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("the runtime stage sets no {name}"))
}

/// The one volume of the runtime stage, and the port its `IPAMD_LISTEN` listens on.
fn volume_and_port() -> (String, String) {
    let stages = stages();
    let runtime = stages.last().unwrap();
    let volumes: Vec<String> = serde_json::from_str(only(runtime, "VOLUME")).unwrap();
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    let env = runtime_env(runtime);
    let listen = env_value(&env, "IPAMD_LISTEN");
    let (_, port) = listen.rsplit_once(':').unwrap();
    (volumes[0].clone(), port.to_string())
}

fn version_parts(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap()).collect()
}

#[test]
fn the_containerfile_builds_in_a_stage_of_its_own_and_runs_unprivileged_on_a_volume() {
    let stages = stages();
    assert!(stages.len() >= 2, "a build stage and a runtime stage");
    let mut names = Vec::new();
    let mut copied = BTreeSet::new();
    for stage in &stages {
        let from: Vec<&str> = stage[0].args.split_whitespace().collect();
        if let [_, as_, name] = from[..] {
            assert!(as_.eq_ignore_ascii_case("as"), "FROM {}", stage[0].args);
            names.push(name.to_string());
        }
        for copy in stage.iter().filter(|i| i.keyword == "COPY") {
            let words: Vec<&str> = copy.args.split_whitespace().collect();
            let (flags, paths): (Vec<&str>, Vec<&str>) = words.iter().partition(|w| w.starts_with("--"));
            let (sources, _destination) = paths.split_at(paths.len() - 1);
            match flags.iter().find_map(|f| f.strip_prefix("--from=")) {
                // Copied from an earlier stage, which must exist by that name.
                Some(stage) => assert!(names.iter().any(|n| n == stage), "COPY --from={stage}: no such stage"),
                // Copied from the build context: the path must exist in the repository.
                None => {
                    for source in sources {
                        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
                        assert!(path.exists(), "COPY {source}: not in the repository");
                        copied.insert(source.trim_end_matches('/').to_string());
                    }
                }
            }
        }
    }
    assert_eq!(names.len(), stages.len() - 1, "every stage but the last is named");

    // The build stage's Rust is at least Cargo.toml's rust-version.
    let cargo_toml = repo_file("Cargo.toml");
    let rust_version = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"'))
        .unwrap();
    let build_image = stages[0][0].args.split_whitespace().next().unwrap();
    let tag = build_image.rsplit_once(":").map(|(_, t)| t).unwrap();
    let image_version = tag.split('-').next().unwrap();
    assert!(build_image.contains("rust:"), "{build_image}");
    assert!(
        version_parts(image_version) >= version_parts(rust_version),
        "the build stage's Rust {image_version} is older than Cargo.toml's rust-version {rust_version}"
    );

    // The runtime stage: not root, a health check, the database and backups on the volume, reachable from outside.
    let runtime = stages.last().unwrap();
    let user = only(runtime, "USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "USER {user}");
    assert!(only(runtime, "HEALTHCHECK").contains(" CMD "));
    let (volume, port) = volume_and_port();
    let env = runtime_env(runtime);
    assert_eq!(env_value(&env, "IPAMD_LISTEN"), format!("0.0.0.0:{port}"));
    for name in ["IPAMD_DB", "BACKUP_DIR"] {
        let path = env_value(&env, name);
        assert!(
            Path::new(path).starts_with(&volume),
            "{name}={path} is not on the volume {volume}"
        );
    }
    assert_eq!(only(runtime, "EXPOSE"), port);
    let license = cargo_toml.lines().find_map(|l| l.strip_prefix("license = ")).unwrap();
    assert!(
        only(runtime, "LABEL").contains(&format!("org.opencontainers.image.licenses={license}")),
        "the image's licence label is not Cargo.toml's {license}"
    );
    let entrypoint: Vec<String> = serde_json::from_str(only(runtime, "ENTRYPOINT")).unwrap();
    assert_eq!(entrypoint, ["/usr/local/bin/ipamd"]);

    // The build context holds exactly what the Containerfile copies.
    let ignore = repo_file(".dockerignore");
    let mut patterns = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    assert_eq!(patterns.next(), Some("*"), ".dockerignore leaves out everything first");
    let kept: BTreeSet<String> = patterns
        .map(|p| {
            p.strip_prefix('!')
                .unwrap_or_else(|| panic!(".dockerignore: {p} after *"))
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    assert_eq!(kept, copied, ".dockerignore keeps what the Containerfile copies");
}

/// Runs the image's health check command, as the container engine would, with `listen` as `IPAMD_LISTEN`.
async fn probe(command: &[String], listen: String) -> Output {
    let command = command.to_vec();
    tokio::task::spawn_blocking(move || {
        Command::new(&command[0])
            .args(&command[1..])
            .env("IPAMD_LISTEN", listen)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_health_check_passes_on_a_200_and_fails_on_any_other_answer_or_none() {
    if support::on_path(&["bash"]).is_none() {
        return support::skip("bash is not installed");
    }
    let stages = stages();
    let healthcheck = only(stages.last().unwrap(), "HEALTHCHECK");
    let (_, json) = healthcheck.split_once(" CMD ").unwrap();
    let command: Vec<String> = serde_json::from_str(json).unwrap();
    let script = &command[command.len() - 1];
    assert!(script.contains("GET /readyz "), "{script}");
    // The probe's mechanics (the port from IPAMD_LISTEN, the request, reading the status) are checked with /healthz,
    // which answers 200 whenever the server runs, and with a path that answers 404.
    let with_path = |path: &str| {
        let mut c = command.clone();
        let last = c.len() - 1;
        c[last] = script.replace("GET /readyz ", &format!("GET {path} "));
        c
    };
    let s = Server::start().await;
    let listen = format!("0.0.0.0:{}", s.addr.port());
    let ok = probe(&with_path("/healthz"), listen.clone()).await;
    assert!(ok.status.success(), "{ok:?}");
    let missing = probe(&with_path("/no-such-path"), listen).await;
    assert!(!missing.status.success(), "a 404 passed the health check");
    // Nothing listening: a port that was free a moment ago.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("0.0.0.0:{}", free.local_addr().unwrap().port());
    drop(free);
    let refused = probe(&with_path("/healthz"), closed).await;
    assert!(!refused.status.success(), "a closed port passed the health check");
}

fn compose() -> Yaml {
    let docs = YamlLoader::load_from_str(&repo_file("compose.yaml")).unwrap();
    assert_eq!(docs.len(), 1);
    docs[0].clone()
}

fn text(y: &Yaml) -> &str {
    y.as_str().unwrap_or_else(|| panic!("not a string: {y:?}"))
}

#[test]
fn compose_runs_the_image_on_its_volume_with_redis_for_the_budgets() {
    let doc = compose();
    let services = doc["services"].as_hash().unwrap();
    let ipamd = &doc["services"]["ipamd"];
    assert_eq!(text(&ipamd["build"]["context"]), ".");
    let dockerfile = text(&ipamd["build"]["dockerfile"]);
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(dockerfile).is_file(),
        "{dockerfile}"
    );

    // The data on a declared named volume, mounted where the image keeps it.
    let (volume, port) = volume_and_port();
    let mounts = ipamd["volumes"].as_vec().unwrap();
    assert_eq!(mounts.len(), 1);
    let (source, target) = text(&mounts[0]).split_once(':').unwrap();
    assert_eq!(target, volume);
    assert!(
        doc["volumes"]
            .as_hash()
            .unwrap()
            .contains_key(&Yaml::String(source.into())),
        "volume {source} is not declared"
    );

    // Published from the port the image listens on, on the host's loopback address only.
    for published in ipamd["ports"].as_vec().unwrap() {
        let parts: Vec<&str> = text(published).split(':').collect();
        assert_eq!(parts.len(), 3, "host address, host port, container port: {parts:?}");
        assert_eq!(parts[0], "127.0.0.1");
        assert_eq!(parts[2], port);
    }

    // Redis by its service name, started and healthy before ipamd.
    let uri = text(&ipamd["environment"]["RATELIMIT_STORAGE_URI"]);
    let host = uri
        .strip_prefix("redis://")
        .and_then(|rest| rest.split([':', '/']).next())
        .unwrap_or_else(|| panic!("{uri}"));
    assert!(
        services.contains_key(&Yaml::String(host.into())),
        "{uri}: no service {host}"
    );
    assert_eq!(text(&ipamd["depends_on"][host]["condition"]), "service_healthy");
    assert!(!doc["services"][host]["healthcheck"]["test"].is_badvalue());
    for (name, _) in ipamd["depends_on"].as_hash().unwrap() {
        assert!(services.contains_key(name), "depends on {name:?}, not a service");
    }

    // Stopping waits longer than ipamd's drain of in-flight requests (30 s).
    let grace = text(&ipamd["stop_grace_period"]);
    let seconds: u64 = grace.strip_suffix('s').unwrap().parse().unwrap();
    assert!(seconds > 30, "stop_grace_period {grace}");
}

/// The systemd unit's `[Service]` settings, in order, each `(key, value)`.
fn service_settings() -> Vec<(String, String)> {
    let unit = repo_file("packaging/systemd/ipamd.service");
    let mut section = "";
    let mut settings = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[Service]" {
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("{line}: not Key=value"));
            settings.push((key.to_string(), value.to_string()));
        }
    }
    settings
}

#[test]
fn the_systemd_unit_and_the_readmes_commands_share_one_user_and_its_state_directory() {
    let settings = service_settings();
    let get = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(get("ExecStart"), ["/usr/local/bin/ipamd serve"]);
    assert_eq!(get("DynamicUser"), ["yes"]);
    assert_eq!(get("User").len(), 1);
    assert_eq!(get("ProtectSystem"), ["strict"]);
    let state: PathBuf = Path::new("/var/lib").join(get("StateDirectory")[0]);
    let env: Vec<(&str, &str)> = get("Environment")
        .into_iter()
        .map(|e| e.split_once('=').unwrap())
        .collect();
    assert_eq!(get("WorkingDirectory"), [state.to_str().unwrap()]);
    // The README's systemd-run line for commands from the shell runs them as this user on these files.
    let mut shared = vec![
        format!("-p User={}", get("User")[0]),
        format!("-p StateDirectory={}", get("StateDirectory")[0]),
    ];
    for name in ["IPAMD_DB", "BACKUP_DIR"] {
        let (_, path) = env.iter().find(|(n, _)| *n == name).unwrap();
        assert!(
            Path::new(path).starts_with(&state),
            "{name}={path} is outside the state directory {}: ProtectSystem=strict makes it read-only",
            state.display()
        );
        shared.push(format!("-E {name}={path}"));
    }
    let readme = repo_file("README.md");
    for setting in shared {
        assert!(readme.contains(&setting), "README.md's as_ipamd lacks {setting}");
    }
    let stop = get("TimeoutStopSec")[0];
    let seconds: u64 = stop.strip_suffix('s').unwrap().parse().unwrap();
    assert!(seconds > 30, "TimeoutStopSec={stop} cuts ipamd's 30 s drain short");
}

fn run(tool: &Path, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap()
}

#[test]
fn systemd_analyze_finds_nothing_wrong_with_the_unit_and_rates_it_well_hardened() {
    let Some(tool) = support::on_path(&["systemd-analyze"]) else {
        return support::skip("systemd-analyze is not installed (Debian's systemd package has it)");
    };
    // verify refuses an ExecStart program that does not exist, so the copy points at the binary cargo built; the
    // rest of the unit is checked as written. It needs no running systemd.
    let unit = repo_file("packaging/systemd/ipamd.service");
    let installed = "ExecStart=/usr/local/bin/ipamd ";
    assert!(unit.contains(installed));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipamd.service");
    std::fs::write(
        &path,
        unit.replace(installed, &format!("ExecStart={} ", env!("CARGO_BIN_EXE_ipamd"))),
    )
    .unwrap();
    let path = path.to_str().unwrap();

    // Unknown keys and bad values are only warnings to verify (exit status 0): any output fails the test. The man
    // page of Documentation= is installed with the binary, not here.
    let verify = run(&tool, &["verify", "--man=no", path]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(verify.status.success() && said.trim().is_empty(), "{said}");

    // The exposure score runs from 0 (locked down) to 10 (no sandbox); the unit rates 1.1 ("OK"), and over 1.5 fails.
    let security = run(&tool, &["security", "--offline=yes", "--threshold=15", path]);
    assert!(
        security.status.success(),
        "{}{}",
        String::from_utf8_lossy(&security.stdout),
        String::from_utf8_lossy(&security.stderr)
    );
}

#[test]
fn the_readme_names_the_packaging_files_that_exist() {
    let readme = repo_file("README.md");
    for file in [
        "Containerfile",
        "compose.yaml",
        "packaging/systemd/ipamd.service",
        "LICENSE",
        "CHANGELOG.md",
    ] {
        assert!(readme.contains(file), "README.md does not mention {file}");
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(file).is_file(),
            "{file} is missing"
        );
    }
}
