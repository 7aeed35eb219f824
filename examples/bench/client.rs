//! The HTTP side of the bench: a one-connection API client for seeding and checks (hyper's), and the load generator
//! that drives a scenario over N keep-alive HTTP/1.1 connections, one request in flight on each. The load generator
//! speaks HTTP/1.1 itself, as wrk does: each connection writes its requests into buffers it reuses and reads the
//! answers by their `Content-Length`, so it allocates nothing per request and needs no second task per connection.

use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;
pub type Req = Request<Full<Bytes>>;

/// What a caller needs to reach one ipamd server.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// The `Host` and `Authorization` headers, checked once: a load generator should spend as little as it can
    /// on each request (as wrk does), or its own work weighs on the ratios to `/healthz`.
    host: HeaderValue,
    bearer: HeaderValue,
    /// The envelope up to its `data` value, serialised once: `{"reqid":1,"appkey":…,"userdata":…,"data":`.
    head: String,
    /// The same headers as text, for the load generator's own requests.
    host_text: String,
    bearer_text: String,
    /// The web UI's session cookie (`ipamd_session=…`), once signed in ([`Target::with_session`]).
    session_text: String,
}

/// The credentials a load request carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    Nothing,
    Bearer,
    Session,
}

impl Target {
    pub fn new(addr: SocketAddr, appkey: &str, userdata: &str, token: &str) -> Target {
        let head = json!({"reqid": 1, "appkey": appkey, "userdata": userdata}).to_string();
        let header = |s: String| HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        Target {
            addr,
            host: header(addr.to_string()),
            bearer: header(format!("Bearer {token}")),
            head: format!("{},\"data\":", head.trim_end_matches('}')),
            host_text: addr.to_string(),
            bearer_text: format!("Bearer {token}"),
            session_text: String::new(),
        }
    }

    /// The same target with the web UI's session cookie `cookie` (`ipamd_session=…`).
    pub fn with_session(mut self, cookie: String) -> Target {
        self.session_text = cookie;
        self
    }

    /// `POST /1.0/<method>` with the envelope around `data`.
    fn envelope(&self, method: &str, data: &Value) -> Res<Req> {
        let body = format!("{}{data}}}", self.head);
        Ok(Request::post(format!("/1.0/{method}"))
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(Bytes::from(body)))?)
    }

    /// A REST call below `/api/v1` with the Bearer token; `body` is sent as JSON.
    fn rest(&self, verb: Method, path: &str, body: Option<&Value>) -> Res<Req> {
        let bytes = match body {
            Some(b) => Bytes::from(serde_json::to_vec(b)?),
            None => Bytes::new(),
        };
        let mut builder = Request::builder()
            .method(verb)
            .uri(format!("/api/v1{path}"))
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, self.bearer.clone());
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        Ok(builder.body(Full::new(bytes))?)
    }

    /// The load generator's `GET <path>` without credentials.
    pub fn wire_get(&self, w: &mut Wire, path: fmt::Arguments) -> Res<()> {
        w.body.clear();
        self.wire_head(w, "GET", format_args!("{path}"), Sent::Nothing)
    }

    /// The load generator's `GET <path>` of the web UI with the session cookie.
    pub fn wire_ui(&self, w: &mut Wire, path: fmt::Arguments) -> Res<()> {
        w.body.clear();
        self.wire_head(w, "GET", format_args!("{path}"), Sent::Session)
    }

    /// The load generator's `POST /1.0/<method>` with the envelope around `data`.
    pub fn wire_envelope(&self, w: &mut Wire, method: &str, data: fmt::Arguments) -> Res<()> {
        w.body.clear();
        w.body.extend_from_slice(self.head.as_bytes());
        w.body.write_fmt(data)?;
        w.body.push(b'}');
        self.wire_head(w, "POST", format_args!("/1.0/{method}"), Sent::Nothing)
    }

    /// The load generator's REST call below `/api/v1` with the Bearer token; `body` is JSON.
    pub fn wire_rest(&self, w: &mut Wire, verb: &str, path: fmt::Arguments, body: Option<&[u8]>) -> Res<()> {
        w.body.clear();
        if let Some(b) = body {
            w.body.extend_from_slice(b);
        }
        self.wire_head(w, verb, format_args!("/api/v1{path}"), Sent::Bearer)
    }

    /// The request line and the headers hyper's client sends for the same request, then the body.
    fn wire_head(&self, w: &mut Wire, verb: &str, target: fmt::Arguments, sent: Sent) -> Res<()> {
        let out = &mut w.bytes;
        out.clear();
        write!(out, "{verb} {target} HTTP/1.1\r\nhost: {}\r\n", self.host_text)?;
        match sent {
            Sent::Nothing => {}
            Sent::Bearer => write!(out, "authorization: {}\r\n", self.bearer_text)?,
            Sent::Session => write!(out, "cookie: {}\r\n", self.session_text)?,
        }
        if !w.body.is_empty() {
            write!(
                out,
                "content-type: application/json\r\ncontent-length: {}\r\n",
                w.body.len()
            )?;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&w.body);
        Ok(())
    }
}

/// One request as the bytes sent, in buffers a connection reuses for all its requests.
#[derive(Default)]
pub struct Wire {
    bytes: Vec<u8>,
    body: Vec<u8>,
}

/// One keep-alive connection of the load generator: it writes a request and reads its answer into a buffer it
/// reuses. ipamd answers every request with a `Content-Length` (its bodies are whole), which is all it reads.
pub struct Conn {
    stream: TcpStream,
    /// The answer read so far is `buf[..filled]`; the rest is room to read into.
    buf: Vec<u8>,
    filled: usize,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Res<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: vec![0; 16 * 1024],
            filled: 0,
        })
    }

    /// Sends one request and reads its whole answer: the status and the body.
    pub async fn exchange(&mut self, w: &Wire) -> Res<(u16, &[u8])> {
        let mut bytes = &w.bytes[..];
        while !bytes.is_empty() {
            match self.stream.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.stream.writable().await?,
                Err(e) => return Err(e.into()),
            }
        }
        self.filled = 0;
        let mut searched = 0;
        let head = loop {
            if let Some(i) = self.buf[searched..self.filled]
                .windows(4)
                .position(|x| x == b"\r\n\r\n")
            {
                break searched + i + 4;
            }
            searched = self.filled.saturating_sub(3);
            self.read_more().await?;
        };
        let (status, length) = parse_head(&self.buf[..head])?;
        while self.filled < head + length {
            self.read_more().await?;
        }
        Ok((status, &self.buf[head..head + length]))
    }

    /// Waits for the socket and reads what it holds (tokio's own read extensions are not among ipamd's features).
    async fn read_more(&mut self) -> Res<()> {
        if self.buf.len() - self.filled < 4096 {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        loop {
            self.stream.readable().await?;
            match self.stream.try_read(&mut self.buf[self.filled..]) {
                Ok(0) => return Err("the server closed the connection".into()),
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The status and the `Content-Length` of an answer's head (`HTTP/1.1 200 OK\r\n…\r\n\r\n`).
fn parse_head(head: &[u8]) -> Res<(u16, usize)> {
    let text = std::str::from_utf8(head)?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP/1.1 answer: {text:?}"))?;
    let mut length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("the load generator reads whole bodies only, not {line:?}").into());
        }
    }
    Ok((status, length))
}

/// Opens one keep-alive HTTP/1.1 connection; its driver runs as a task until the sender is dropped.
pub async fn connect(addr: SocketAddr) -> Res<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // A connection the server closes ends here; the next request on it reports the error.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer.
pub async fn send(sender: &mut SendRequest<Full<Bytes>>, req: Req) -> Res<(u16, Bytes)> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One connection for the calls that set up and check a scenario.
pub struct Api {
    pub target: Target,
    sender: SendRequest<Full<Bytes>>,
}

impl Api {
    pub async fn connect(target: &Target) -> Res<Api> {
        Ok(Api {
            sender: connect(target.addr).await?,
            target: target.clone(),
        })
    }

    /// Calls a `/1.0` method and returns its `response`; an error reply is an error.
    pub async fn rpc(&mut self, method: &str, data: Value) -> Res<Value> {
        let req = self.target.envelope(method, &data)?;
        let (status, body) = send(&mut self.sender, req).await?;
        let mut reply: Value = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "{method}: HTTP {status}, not JSON ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        })?;
        match reply.get("errorCode") {
            Some(code) => Err(format!("{method} failed (HTTP {status}, {code}): {}", reply["error"]).into()),
            None => Ok(reply["response"].take()),
        }
    }

    /// Signs in to the web UI; the session cookie (`ipamd_session=…`).
    pub async fn sign_in(&mut self, org: &str, username: &str, password: &str) -> Res<String> {
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("org", org)
            .append_pair("username", username)
            .append_pair("password", password)
            .finish();
        let req = Request::post("/ui/signin")
            .header(HOST, self.target.host.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(Full::new(Bytes::from(form)))?;
        let resp = self.sender.send_request(req).await?;
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .map(str::to_string);
        let status = resp.status().as_u16();
        resp.into_body().collect().await?;
        cookie.ok_or_else(|| format!("sign-in: HTTP {status} without a session cookie").into())
    }

    /// A page of the web UI with the session cookie; any status but 200 is an error.
    pub async fn ui(&mut self, path: &str) -> Res<String> {
        let req = Request::get(path)
            .header(HOST, self.target.host.clone())
            .header("cookie", self.target.session_text.clone())
            .body(Full::new(Bytes::new()))?;
        let (status, body) = send(&mut self.sender, req).await?;
        let body = String::from_utf8_lossy(&body).into_owned();
        match status {
            200 => Ok(body),
            _ => Err(format!("GET {path}: HTTP {status}").into()),
        }
    }

    /// A REST call; any status outside 2xx is an error.
    pub async fn rest(&mut self, verb: Method, path: &str, body: Option<&Value>) -> Res<Value> {
        let req = self.target.rest(verb.clone(), path, body)?;
        let (status, bytes) = send(&mut self.sender, req).await?;
        if !(200..300).contains(&status) {
            return Err(format!("{verb} {path}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)).into());
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// A small, fast, seedable generator (splitmix64): each connection draws its own parameters.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        match hi.checked_sub(lo) {
            Some(span) if span > 0 => lo + self.next_u64() % span,
            _ => lo,
        }
    }
}

/// Writes the next request of a scenario, drawn from the connection's generator.
pub type MakeRequest = Arc<dyn Fn(&mut Rng, &mut Wire) -> Res<()> + Send + Sync>;
/// Pulls an address key out of a successful answer (allocation), for the distinctness check.
pub type Extract = fn(&[u8]) -> Option<u128>;

/// How long a scenario runs after its warm-up: a time, or a number of requests shared by the connections.
#[derive(Clone, Copy, Debug)]
pub enum Measure {
    Time(Duration),
    Requests(u64),
}

#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub connections: usize,
    pub warmup: Duration,
    pub measure: Measure,
}

/// What a load run saw. Latencies and throughput cover the measured part; `errors`, `ok_total` and `keys` cover
/// the warm-up too.
#[derive(Default)]
pub struct Outcome {
    pub requests: u64,
    pub elapsed: Duration,
    /// Sorted, in microseconds.
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub ok_total: u64,
    pub keys: Vec<u128>,
    /// CPU time the in-process server spent while the requests were measured (see [`server_cpu`]).
    pub server_cpu: Option<Duration>,
    /// CPU time the load generator's threads spent in the same time: what the bench itself costs.
    pub load_cpu: Option<Duration>,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        match self.elapsed.as_secs_f64() {
            s if s > 0.0 => self.requests as f64 / s,
            _ => 0.0,
        }
    }

    /// Adds another run's figures (latencies stay unsorted until the caller sorts them).
    pub fn merge(&mut self, other: Outcome) {
        self.server_cpu = match (self.server_cpu, other.server_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            // An empty outcome (the start of a sum) takes the other's figure.
            (None, b) if self.requests == 0 => b,
            _ => None,
        };
        self.load_cpu = match (self.load_cpu, other.load_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (None, b) if self.requests == 0 => b,
            _ => None,
        };
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.ok_total += other.ok_total;
        self.keys.extend(other.keys);
    }

    /// Server CPU microseconds per measured request, as text (`-` when unknown).
    /// The server's CPU microseconds per measured request, when known.
    pub fn server_us_per_request(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        (self.requests > 0).then(|| cpu.as_secs_f64() * 1e6 / self.requests as f64)
    }

    pub fn server_us(&self) -> String {
        self.per_request_us(self.server_cpu)
    }

    /// The load generator's CPU microseconds per measured request, as text (`-` when unknown).
    pub fn load_us(&self) -> String {
        self.per_request_us(self.load_cpu)
    }

    fn per_request_us(&self, cpu: Option<Duration>) -> String {
        match cpu {
            Some(cpu) if self.requests > 0 => format!("{:.1}", cpu.as_secs_f64() * 1e6 / self.requests as f64),
            _ => "-".into(),
        }
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let last = self.latencies_us.len() - 1;
        let at = ((last as f64) * q).round() as usize;
        f64::from(self.latencies_us[at.min(last)]) / 1000.0
    }
}

#[derive(Default)]
struct Worker {
    latencies_us: Vec<u32>,
    last_done: Option<Instant>,
    errors: u64,
    first_error: Option<String>,
    ok_total: u64,
    keys: Vec<u128>,
}

impl Worker {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

/// What every connection of a run shares.
struct Shared {
    /// The servers: connection `i` goes to `addrs[i % addrs.len()]`.
    addrs: Vec<SocketAddr>,
    plan: Plan,
    make: MakeRequest,
    extract: Option<Extract>,
    connected: Barrier,
    go: Barrier,
    start: OnceLock<Instant>,
    budget: AtomicU64,
}

/// Drives `make` over `plan.connections` connections, spread over `threads` load threads, each with its own
/// single-threaded runtime (as wrk runs one event loop per thread: a connection and its requests stay on one
/// thread). Every connection is open before the clock starts. The connections take turns over `addrs`.
pub async fn run(
    addrs: &[SocketAddr],
    plan: Plan,
    threads: usize,
    make: MakeRequest,
    extract: Option<Extract>,
) -> Res<Outcome> {
    if addrs.is_empty() {
        return Err("no server to drive".into());
    }
    let n = plan.connections.max(1);
    let threads = threads.clamp(1, n);
    let shared = Arc::new(Shared {
        addrs: addrs.to_vec(),
        plan,
        make,
        extract,
        connected: Barrier::new(n + 1),
        // The connections, each load thread's CPU clock and this task.
        go: Barrier::new(n + threads + 1),
        start: OnceLock::new(),
        budget: AtomicU64::new(0),
    });
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        // Built here, so a failure cannot leave the others waiting at the barrier.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let shared = shared.clone();
        let mine: Vec<usize> = (0..n).filter(|i| i % threads == t).collect();
        handles.push(
            std::thread::Builder::new()
                .name(format!("bench-load-{t}"))
                .spawn(move || {
                    rt.block_on(async move {
                        let tasks: Vec<_> = mine
                            .into_iter()
                            .map(|i| tokio::spawn(worker(i, shared.clone())))
                            .collect();
                        // This thread's CPU time from the end of the warm-up to the end of its connections.
                        let from = tokio::spawn(async move {
                            shared.go.wait().await;
                            if let Some(&t0) = shared.start.get() {
                                tokio::time::sleep_until((t0 + shared.plan.warmup).into()).await;
                            }
                            thread_cpu()
                        });
                        let mut out = Vec::new();
                        for task in tasks {
                            out.push(task.await);
                        }
                        let cpu = thread_cpu()
                            .zip(from.await.ok().flatten())
                            .map(|(end, start)| end.saturating_sub(start));
                        (out, cpu)
                    })
                })?,
        );
    }
    shared.connected.wait().await;
    let t0 = Instant::now();
    let _ = shared.start.set(t0);
    shared.go.wait().await;
    let measure_from = t0 + plan.warmup;
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = server_cpu();
    let mut out = Outcome::default();
    let mut last = measure_from;
    let mut load_cpu = Some(Duration::ZERO);
    for h in handles {
        let (joined, cpu) = tokio::task::spawn_blocking(move || h.join())
            .await?
            .map_err(|_| "a load thread panicked")?;
        load_cpu = load_cpu.zip(cpu).map(|(a, b)| a + b);
        for w in joined {
            let w = w?;
            out.errors += w.errors;
            if out.first_error.is_none() {
                out.first_error = w.first_error;
            }
            out.ok_total += w.ok_total;
            out.keys.extend(w.keys);
            out.requests += w.latencies_us.len() as u64;
            out.latencies_us.extend(w.latencies_us);
            if let Some(d) = w.last_done {
                last = last.max(d);
            }
        }
    }
    out.elapsed = last.duration_since(measure_from);
    out.latencies_us.sort_unstable();
    out.server_cpu = server_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    out.load_cpu = load_cpu;
    Ok(out)
}

/// The calling thread's CPU time (user + system), from `/proc/thread-self/stat` in ticks of 1/100 s.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    Some(Duration::from_millis(stat_ticks(&stat)? * 10))
}

/// utime + stime of a `/proc/…/stat` line, in clock ticks.
fn stat_ticks(stat: &str) -> Option<u64> {
    // `pid (comm) state …`: the name may hold spaces and parentheses, so the fields start after the last ')'.
    let (_, fields) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = fields.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some(fields.get(11..13)?.iter().map(|f| f.parse::<u64>().unwrap_or(0)).sum())
}

/// CPU time (user + system) of this process's threads but the load generator's, that is of the in-process
/// server (its runtime, database threads and writer) and the idle main thread; from `/proc/self/task/*/stat`, in
/// clock ticks of 1/100 s (Linux's `USER_HZ`). `None` without `/proc`. A figure that, unlike requests per second,
/// does not depend on how the two cores are shared between the server and the load generator.
pub fn server_cpu() -> Option<Duration> {
    let mut ticks = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        // A thread that ended since the listing has no file left: its time is no longer counted anywhere.
        let Ok(stat) = task.map(|t| t.path().join("stat")).and_then(std::fs::read_to_string) else {
            continue;
        };
        if stat.contains("(bench-load-") {
            continue;
        }
        ticks += stat_ticks(&stat).unwrap_or(0);
    }
    Some(Duration::from_millis(ticks * 10))
}

/// One connection's loop: one request in flight, latency recorded from the end of the warm-up on.
async fn worker(i: usize, shared: Arc<Shared>) -> Worker {
    let mut w = Worker::default();
    let mut rng = Rng::new(i as u64 + 1);
    let mut wire = Wire::default();
    // `run` refuses an empty list.
    let addr = shared.addrs[i % shared.addrs.len()];
    let mut conn = Conn::open(addr).await;
    shared.connected.wait().await;
    shared.go.wait().await;
    let Some(&t0) = shared.start.get() else {
        return w;
    };
    let measure_from = t0 + shared.plan.warmup;
    loop {
        let now = Instant::now();
        match shared.plan.measure {
            Measure::Time(d) if now >= measure_from + d => break,
            // Past the warm-up, each request takes one from the shared budget.
            Measure::Requests(total)
                if now >= measure_from && shared.budget.fetch_add(1, Ordering::Relaxed) >= total =>
            {
                break
            }
            _ => {}
        }
        if let Err(e) = (shared.make)(&mut rng, &mut wire) {
            w.error(format!("cannot build the request: {e}"));
            break;
        }
        let c = match &mut conn {
            Ok(c) => c,
            Err(e) => {
                w.error(format!("cannot connect: {e}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                conn = Conn::open(addr).await;
                continue;
            }
        };
        let sent = Instant::now();
        let answer = c.exchange(&wire).await;
        let done = Instant::now();
        if sent >= measure_from {
            let us = done.duration_since(sent).as_micros();
            w.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
            w.last_done = Some(done);
        }
        match answer {
            Ok((status, body)) if (200..300).contains(&status) => {
                w.ok_total += 1;
                if let Some(f) = shared.extract {
                    match f(body) {
                        Some(k) => w.keys.push(k),
                        None => w.error(format!(
                            "HTTP {status} without an address: {}",
                            String::from_utf8_lossy(body)
                        )),
                    }
                }
            }
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(body);
                w.error(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()));
            }
            Err(e) => {
                w.error(format!("request failed: {e}"));
                conn = Conn::open(addr).await;
            }
        }
    }
    w
}
