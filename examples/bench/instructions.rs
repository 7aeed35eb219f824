//! `--instructions`: user-space instructions per request, counted by valgrind's callgrind on the server. Unlike
//! requests per second or CPU time, the count does not move with the machine's state or with other work on it, so
//! it is the figure to compare builds by.
//!
//! The bench runs its own executable as the server (`--serve`, the same code as the in-process server) under
//! `valgrind --tool=callgrind` on the seeded database. For each scenario it sends the requests once as warm-up, zeroes
//! the counters (`callgrind_control -z`), sends the same requests again one at a time on one connection from its
//! own load generator, dumps the counters (`callgrind_control -d`) and divides their total by the requests, less
//! what the idle server counts in as long (measured first).

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipamd::cli::Credentials;
use tokio::runtime::Runtime;

use crate::client::{self, Api, Conn, Rng, Target, Wire};
use crate::seed::DataSet;
use crate::{first_answer, load, Args, Scenario};

/// The scenarios counted when none are named.
pub const DEFAULT: &[&str] = &["healthz", "rpc-get", "rpc-get-ip", "groups-sort", "rest-ip"];

/// Requests per scenario when `--requests` is not given.
const REQUESTS: u64 = 500;

/// One scenario's count.
pub struct Count {
    pub name: &'static str,
    pub requests: u64,
    pub per_request: f64,
}

/// Fails with a clear message when valgrind or callgrind_control is missing (only `--instructions` needs them).
pub fn available() -> client::Res<()> {
    for tool in ["valgrind", "callgrind_control"] {
        let ok = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "--instructions needs valgrind (valgrind and callgrind_control on the PATH); {tool} was not found: \
                 install valgrind"
            )
            .into());
        }
    }
    Ok(())
}

/// The server under callgrind; stopped (stdin closed, then killed if it lingers) when dropped.
struct Callgrind {
    child: Child,
    out: PathBuf,
}

impl Drop for Callgrind {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Callgrind {
    /// Runs `callgrind_control <flag>` on the server.
    fn control(&self, flag: &str) -> client::Res<()> {
        let out = Command::new("callgrind_control")
            .args([flag, &self.child.id().to_string()])
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "callgrind_control {flag} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(())
    }

    /// Dumps the counters and reads the total of instructions since they were last zeroed or dumped.
    fn dump(&self) -> client::Res<u64> {
        self.control("-d")?;
        let prefix = format!("{}.", self.out.display());
        let dir = self.out.parent().ok_or("no directory for the dumps")?;
        // Dumps are `<out>.<n>`, numbered from 1: the newest is the highest.
        let newest = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let path = e.path();
                let n = path.to_str()?.strip_prefix(&prefix)?.parse::<u64>().ok()?;
                Some((n, path))
            })
            .max()
            .ok_or("callgrind wrote no dump")?;
        totals(&newest.1)
    }
}

/// The `totals:` line of a callgrind dump: the instructions it holds (its first event, `Ir`).
fn totals(path: &Path) -> client::Res<u64> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    for line in file.lines() {
        if let Some(n) = line?.strip_prefix("totals:") {
            let first = n.split_whitespace().next().ok_or("an empty totals line")?;
            return Ok(first.parse()?);
        }
    }
    Err(format!("no totals in {}", path.display()).into())
}

/// Starts the server under callgrind on `db` and returns it with its address.
fn start(db: &Path, dir: &Path) -> client::Res<(Callgrind, std::net::SocketAddr)> {
    let out = dir.join("callgrind.out");
    let log = std::fs::File::create(dir.join("valgrind.log"))?;
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--dump-instr=no")
        .arg("--dump-line=no")
        .arg(format!("--callgrind-out-file={}.%p", out.display()))
        .arg(std::env::current_exe()?)
        .arg("--serve")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout of the server")?;
    let out = dir.join(format!("callgrind.out.{}", child.id()));
    let server = Callgrind { child, out };
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let addr = line.trim().parse().map_err(|_| {
        // The directory goes with the bench's exit, so valgrind's last words go into the message.
        let log = std::fs::read_to_string(dir.join("valgrind.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        format!(
            "the server under callgrind did not start ({line:?}); valgrind said:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })?;
    Ok((server, addr))
}

/// Sends `n` requests of a scenario one at a time, from a generator seeded the same way every time; the time taken.
async fn drive(target: &Target, make: &client::MakeRequest, n: u64) -> client::Res<Duration> {
    let mut conn = Conn::open(target.addr).await?;
    let mut rng = Rng::new(1);
    let mut wire = Wire::default();
    let t = Instant::now();
    for _ in 0..n {
        make(&mut rng, &mut wire)?;
        let (status, body) = conn.exchange(&wire).await?;
        if !(200..300).contains(&status) {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(body)).into());
        }
    }
    Ok(t.elapsed())
}

/// Counts every selected scenario that has a load of its own (not split-16, peek-ooo nor the pool's, which seed
/// their data as they start) and prints the table.
pub fn count(
    args: &Args,
    selected: &[&Scenario],
    creds: &Credentials,
    ds: &DataSet,
    dir: &Path,
    rt: &Runtime,
) -> client::Res<Vec<Count>> {
    let n = args.requests.unwrap_or(REQUESTS).max(1);
    let db = dir.join("ipam.db");
    let started = Instant::now();
    let (server, addr) = start(&db, dir)?;
    println!(
        "server under callgrind started in {:.1} s; {n} requests per scenario, one at a time, after the same as \
         warm-up",
        started.elapsed().as_secs_f64()
    );
    let target = Target::new(addr, &creds.appkey, &creds.userdata, &creds.token);
    // What the idle server counts in a second (timers, threads that wake): taken off each scenario's count.
    server.control("-z")?;
    let idle_for = Duration::from_secs(1);
    std::thread::sleep(idle_for);
    let idle_per_s = server.dump()? as f64 / idle_for.as_secs_f64();
    println!("  idle server: {idle_per_s:.0} instructions per second");
    let mut counts = Vec::new();
    for sc in selected {
        if matches!(sc.name, "split-16" | "peek-ooo" | "pool-available" | "pool-alloc") {
            println!("  {:<14} skipped: no repeatable request of its own", sc.name);
            continue;
        }
        let make = load(sc.name, &target, ds, None)?;
        let took = rt.block_on(async {
            let mut api = Api::connect(&target).await?;
            first_answer(sc.name, &mut api, ds).await?;
            drive(&target, &make, n).await?;
            server.control("-z")?;
            drive(&target, &make, n).await
        })?;
        let total = server.dump()? as f64 - idle_per_s * took.as_secs_f64();
        let per_request = total / n as f64;
        println!(
            "  {:<14} {:>9.0} instructions per request ({n} requests in {:.1} s)",
            sc.name,
            per_request,
            took.as_secs_f64()
        );
        counts.push(Count {
            name: sc.name,
            requests: n,
            per_request,
        });
    }
    drop(server);
    print_counts(&counts, args.markdown);
    Ok(counts)
}

fn print_counts(counts: &[Count], markdown: bool) {
    let healthz = counts.iter().find(|c| c.name == "healthz").map(|c| c.per_request);
    let ratio = |c: &Count| healthz.map_or("-".to_string(), |h| format!("{:.1}×", c.per_request / h));
    println!();
    println!(
        "{:<14} {:>8} {:>14} {:>9}",
        "scenario", "requests", "instr/request", "/healthz"
    );
    for c in counts {
        println!(
            "{:<14} {:>8} {:>14} {:>9}",
            c.name,
            c.requests,
            crate::group_digits(c.per_request.round() as u64),
            ratio(c)
        );
    }
    if markdown {
        println!();
        println!("| scenario | requests | instructions per request | /healthz |");
        println!("| --- | ---: | ---: | ---: |");
        for c in counts {
            println!(
                "| {} | {} | {} | {} |",
                c.name,
                c.requests,
                crate::group_digits(c.per_request.round() as u64),
                ratio(c)
            );
        }
    }
}
