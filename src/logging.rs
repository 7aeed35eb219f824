//! The server's log: one line per event, as text or as JSON (`IPAMD_LOG_FORMAT`), filtered by `RUST_LOG`
//! (default `info`), and the request log, one line per request, which is a switch of its own (`IPAMD_REQUEST_LOG`:
//! with the rest on stderr, off, or appended to a file of its own).
//!
//! Text to a terminal is tracing-subscriber's coloured format. Text to a file or a pipe is the same line without
//! colours, written by [`Line`]: the stock formatter spent more on a line (escaping each field through `Debug`, the
//! timestamp through `Display`) than a cheap request spends on its own work.
//! `2026-11-22T15:30:36.328099Z  INFO ipamd::server: request respid=01a2… method="groups/get" status=200 ms=0.33`
//!
//! Request lines do not go through `tracing` at all: at tens of thousands of requests a second its dispatch and
//! per-field visits were most of a line's cost. [`request`] writes the line in the configured format (the same
//! text or JSON shape as every other line, target `ipamd::request`) into one reused buffer, numbers through `itoa`,
//! and hands it to the writer in one piece. Whether request lines are written is settled once, at [`setup`]:
//! the switch, and whether `RUST_LOG` lets `ipamd::request` through at `info` (at `debug` for the probes:
//! `/healthz`, `/readyz`, `/metrics`).

use std::cell::RefCell;
use std::fmt::{self, Debug, Write as _};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::Settings;

/// The longest path a request line shows, in bytes; longer ones are cut (at a character boundary) and end in `…`.
pub const PATH_MAX: usize = 256;

/// Sets up the log from the settings, for `main`: refuses an `IPAMD_LOG_FORMAT` other than `text` or `json`, a
/// `RUST_LOG` that does not parse (or a bare word that is no level), and a request log file that cannot be opened.
pub fn setup(settings: &Settings) -> Result<(), String> {
    let json = match settings.log_format.to_ascii_lowercase().as_str() {
        "text" => false,
        "json" => true,
        other => {
            return Err(format!(
                "IPAMD_LOG_FORMAT: '{other}' is not a log format (text or json)"
            ))
        }
    };
    let filter = filter(&settings.log_filter)?;
    let requests: Lines = match settings.request_log.as_str() {
        "off" => None,
        "stderr" | "on" | "" => Some(Box::new(|line: &[u8]| {
            let _ = std::io::stderr().write_all(line);
        })),
        path => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("IPAMD_REQUEST_LOG: cannot open {path}: {e}"))?;
            Some(Box::new(move |line: &[u8]| {
                let _ = (&file).write_all(line);
            }))
        }
    };
    // Colour codes only for a terminal: in files and pipes they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    install(filter, json, ansi, std::io::stderr, requests);
    Ok(())
}

/// Installs the global subscriber with the default filter (`info`), text or JSON, coloured only with `ansi`, and
/// the request log on the same writer: what the bench runs (with a writer that discards).
pub fn init<W>(json: bool, ansi: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    let out = writer.clone();
    let lines: Out = Box::new(move |line: &[u8]| {
        let _ = out.make_writer().write_all(line);
    });
    install(EnvFilter::new("info"), json, ansi, writer, Some(lines));
}

/// Writes one request line where the request log goes.
type Out = Box<dyn Fn(&[u8]) + Send + Sync>;

/// Where request lines go: `None` when the request log is off.
type Lines = Option<Out>;

fn install<W>(filter: EnvFilter, json: bool, ansi: bool, writer: W, requests: Lines)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let installed = if json {
        builder.json().try_init()
    } else if ansi {
        builder.try_init()
    } else {
        builder.event_format(Line).try_init()
    };
    // A second set-up (a test, the bench) keeps the first.
    if installed.is_err() {
        return;
    }
    let Some(out) = requests else {
        return;
    };
    let _ = REQUESTS.set(RequestLog {
        json,
        info: tracing::enabled!(target: "ipamd::request", Level::INFO),
        debug: tracing::enabled!(target: "ipamd::request", Level::DEBUG),
        out,
    });
}

/// Parses a `RUST_LOG` filter. tracing takes any word for a target, so a bare word that is no level (`verbose`,
/// `warning`) would silently log nothing of ipamd: such a word is refused, with what to write instead.
fn filter(directives: &str) -> Result<EnvFilter, String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for directive in directives.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains(['=', '[', ':']);
        if bare && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "RUST_LOG: '{directive}' is not a level (trace, debug, info, warn, error, off); \
                 to filter by target write target=level, e.g. 'ipamd=debug,hyper=info'"
            ));
        }
    }
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| format!("RUST_LOG: '{directives}' is not a log filter: {e}"))
}

/// Logs what the server starts with (version, database, listen address, metrics, request log), in the configured
/// format; secrets in URLs (a Redis password) are replaced by `***`.
pub fn started(settings: &Settings, listen: SocketAddr) {
    let (database, storage) = (
        redact(&settings.db.to_string_lossy()),
        redact(&settings.ratelimit_storage_uri),
    );
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        database = database.as_str(),
        listen = %listen,
        metrics = settings.metrics,
        request_log = settings.request_log.as_str(),
        ratelimit = settings.ratelimit_enabled,
        ratelimit_storage = storage.as_str(),
        "ipamd started"
    );
}

/// A URL with the password of its user part replaced by `***` (`redis://:secret@host` → `redis://:***@host`).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    match authority.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{name}:***{}", &rest[user.len()..])
        }
        _ => url.to_string(),
    }
}

/// The request log, once [`setup`] (or [`init`]) installed it.
struct RequestLog {
    json: bool,
    /// Whether `RUST_LOG` lets request lines through (`info`), and the probes' lines (`debug`).
    info: bool,
    debug: bool,
    out: Out,
}

static REQUESTS: OnceLock<RequestLog> = OnceLock::new();

thread_local! {
    /// The buffer every request line of the thread is written into.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// One request, as its line shows it. Empty text fields are left out of the line.
pub struct Request<'a> {
    pub respid: &'a str,
    /// `1.0`, `rest` or `server` (what the server answers itself).
    pub door: &'static str,
    pub verb: &'a str,
    /// Without the query string, cut at [`PATH_MAX`].
    pub path: &'a str,
    /// The method of the table the request called (`/1.0`: the name it asked for).
    pub method: &'a str,
    pub caller: &'a str,
    pub client: IpAddr,
    pub status: u16,
    pub elapsed: Duration,
    /// The error code of a refused request; an `internal_error`'s line is at `ERROR` (its detail is logged apart,
    /// under the same respid).
    pub code: Option<&'static str>,
    /// A liveness, readiness or metrics probe: logged at `debug`.
    pub probe: bool,
}

/// Writes the request's line to the request log, if it is on and the filter lets the line through.
pub fn request(r: &Request) {
    let Some(log) = REQUESTS.get() else {
        return;
    };
    let internal = r.code == Some("internal_error");
    if !(if r.probe { log.debug } else { log.info || internal }) {
        return;
    }
    BUFFER.with(|buffer| {
        let Ok(mut out) = buffer.try_borrow_mut() else {
            return;
        };
        out.clear();
        request_line(&mut out, r, log.json, SystemTime::now());
        (log.out)(&out);
        if out.capacity() > 16 * 1024 {
            *out = Vec::with_capacity(512);
        }
    });
}

/// The line of `r`, as text (the layout of [`Line`]) or JSON (tracing-subscriber's JSON layout).
fn request_line(out: &mut Vec<u8>, r: &Request, json: bool, now: SystemTime) {
    let level = match (r.code, r.probe) {
        (Some("internal_error"), _) => "ERROR",
        (_, true) => "DEBUG",
        _ => "INFO",
    };
    let mut number = itoa::Buffer::new();
    let ms = duration_ms(r.elapsed);
    // Each text field with what precedes its value in either format, so that a field costs one copy before it.
    let texts = [
        (" respid=", ",\"respid\":", r.respid),
        (" door=", ",\"door\":", r.door),
        (" verb=", ",\"verb\":", r.verb),
        (" path=", ",\"path\":", cut(r.path, PATH_MAX)),
        (" method=", ",\"method\":", cut(r.method, PATH_MAX)),
        (" caller=", ",\"caller\":", r.caller),
    ];
    // The longest IPv6 address is 45 bytes as text. An IPv4 address, the usual case, is written octet by octet:
    // `Display` would take it through the formatting machinery. Either needs no escaping.
    let mut client = Inline::<48>::new();
    match r.client {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    let _ = client.write_str(".");
                }
                let _ = client.write_str(number.format(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(client, "{v6}");
        }
    }
    let code = r.code.unwrap_or_default();
    if json {
        out.extend_from_slice(b"{\"timestamp\":\"");
        out.extend_from_slice(&timestamp(now));
        out.extend_from_slice(b"\",\"level\":\"");
        out.extend_from_slice(level.as_bytes());
        out.extend_from_slice(b"\",\"fields\":{\"message\":\"request\"");
        for (_, name, value) in texts.into_iter().filter(|(_, _, v)| !v.is_empty()) {
            out.extend_from_slice(name.as_bytes());
            json_string(out, value);
        }
        out.extend_from_slice(b",\"client\":\"");
        out.extend_from_slice(client.as_bytes());
        out.extend_from_slice(b"\",\"status\":");
        out.extend_from_slice(number.format(r.status).as_bytes());
        out.extend_from_slice(b",\"ms\":");
        out.extend_from_slice(ms.as_bytes());
        if !code.is_empty() {
            out.extend_from_slice(b",\"code\":");
            json_string(out, code);
        }
        out.extend_from_slice(b"},\"target\":\"ipamd::request\"}\n");
        return;
    }
    out.extend_from_slice(&timestamp(now));
    out.extend_from_slice(match level {
        "ERROR" => b" ERROR ipamd::request: request",
        "DEBUG" => b" DEBUG ipamd::request: request",
        _ => b"  INFO ipamd::request: request",
    });
    for (name, _, value) in texts.into_iter().filter(|(_, _, v)| !v.is_empty()) {
        out.extend_from_slice(name.as_bytes());
        text_quoted(out, value);
    }
    out.extend_from_slice(b" client=\"");
    out.extend_from_slice(client.as_bytes());
    out.extend_from_slice(b"\" status=");
    out.extend_from_slice(number.format(r.status).as_bytes());
    out.extend_from_slice(b" ms=");
    out.extend_from_slice(ms.as_bytes());
    if !code.is_empty() {
        out.extend_from_slice(b" code=");
        text_quoted(out, code);
    }
    out.push(b'\n');
}

/// A duration in milliseconds with three decimals (`0.336`, `12.000`): fixed precision, written without float
/// formatting.
fn duration_ms(elapsed: Duration) -> MsText {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let mut text = MsText::default();
    let mut whole = itoa::Buffer::new();
    let whole = whole.format(micros / 1000).as_bytes();
    let frac = micros % 1000;
    text.bytes[..whole.len()].copy_from_slice(whole);
    let at = whole.len();
    text.bytes[at] = b'.';
    text.bytes[at + 1] = b'0' + (frac / 100) as u8;
    text.bytes[at + 2] = b'0' + (frac / 10 % 10) as u8;
    text.bytes[at + 3] = b'0' + (frac % 10) as u8;
    text.len = at + 4;
    text
}

/// The text of [`duration_ms`]: at most 20 digits, a point and three.
#[derive(Default)]
struct MsText {
    bytes: [u8; 24],
    len: usize,
}

impl MsText {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Text of at most `N` bytes kept in place, for the short texts of a line (a client address, an escape, a claimed
/// `org/user`): no allocation per request. Writing past `N` bytes fails and leaves what fitted.
pub struct Inline<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Inline<N> {
    pub fn new() -> Self {
        Inline { bytes: [0; N], len: 0 }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl<const N: usize> Default for Inline<N> {
    fn default() -> Self {
        Inline::new()
    }
}

impl<const N: usize> fmt::Write for Inline<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let end = (0..=max).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    &s[..end]
}

/// A text value of a text line, quoted: `"` and `\\` escaped with `\\`, control characters as Rust escapes them.
fn text_quoted(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    if plain(value.as_bytes()) {
        out.extend_from_slice(value.as_bytes());
        return out.push(b'"');
    }
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push(b'\\');
                out.push(c as u8);
            }
            c if c.is_control() => {
                let mut escaped = Inline::<16>::new();
                let _ = write!(escaped, "{}", c.escape_default());
                out.extend_from_slice(escaped.as_bytes());
            }
            c => {
                let mut utf8 = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Whether every byte is printable ASCII other than `"` and `\\`: what nearly every logged value is, and then it is
/// copied as it is. Eight bytes at a time (a byte-wise test cost more than the rest of the line).
fn plain(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    // Whether some byte of `w` is below `n` (n ≤ 128), or is `b`: the usual word tricks, exact as booleans.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let is = |w: u64, b: u8| below(w ^ (ONES * u64::from(b)), 1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_ne_bytes(word);
        if (w & HIGH) | below(w, b' ') | is(w, b'"') | is(w, b'\\') | is(w, 0x7f) != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|b| printable(*b) && *b != b'"' && *b != b'\\')
}

/// A JSON string.
fn json_string(out: &mut Vec<u8>, value: &str) {
    if plain(value.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        return out.push(b'"');
    }
    let _ = serde_json::to_writer(&mut *out, value);
}

/// The uncoloured text line: time (UTC, microseconds), level, target, the message, then `name=value` fields,
/// strings quoted (`"` and `\` escaped), control characters escaped everywhere (a value cannot start a new line).
pub struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        w.write_str(std::str::from_utf8(&timestamp(SystemTime::now())).unwrap_or_default())?;
        w.write_str(match *meta.level() {
            Level::ERROR => " ERROR ",
            Level::WARN => "  WARN ",
            Level::INFO => "  INFO ",
            Level::DEBUG => " DEBUG ",
            Level::TRACE => " TRACE ",
        })?;
        w.write_str(meta.target())?;
        w.write_char(':')?;
        let mut fields = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_char('\n')
    }
}

/// `2026-11-22T15:30:36.328099Z`, without the formatting machinery or an allocation.
fn timestamp(now: SystemTime) -> [u8; 27] {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(0);
    let (y, mo, d, h, mi, s) = crate::time::civil(secs);
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    // Two digits at a time, by constant divisors (which compile to multiplications).
    let mut two = |at: usize, n: u32| {
        out[at] = b'0' + (n / 10 % 10) as u8;
        out[at + 1] = b'0' + (n % 10) as u8;
    };
    let year = y.clamp(0, 9999) as u32;
    let micros = since.subsec_micros();
    two(0, year / 100);
    two(2, year % 100);
    two(5, mo);
    two(8, d);
    two(11, h);
    two(14, mi);
    two(17, s);
    two(20, micros / 10_000);
    two(22, micros / 100 % 100);
    two(24, micros % 100);
    out
}

struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// ` name=` (the message has no name), then the value.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let w = &mut *self.w;
        self.result = (|| {
            w.write_char(' ')?;
            if field.name() != "message" {
                w.write_str(field.name().strip_prefix("r#").unwrap_or(field.name()))?;
                w.write_char('=')?;
            }
            value(w)
        })();
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            return self.field(field, |w| Escaped(w).write_str(value));
        }
        self.field(field, |w| {
            w.write_char('"')?;
            if value.bytes().all(|b| printable(b) && b != b'"' && b != b'\\') {
                w.write_str(value)?;
                return w.write_char('"');
            }
            for part in value.split_inclusive(['"', '\\']) {
                match part.strip_suffix(['"', '\\']) {
                    Some(head) => {
                        Escaped(w).write_str(head)?;
                        w.write_char('\\')?;
                        w.write_str(&part[head.len()..])?;
                    }
                    None => Escaped(w).write_str(part)?,
                }
            }
            w.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    /// Durations in milliseconds: microseconds are plenty. Written as integers (as `{:.3}` would write them, for the
    /// values a duration takes), which costs a fraction of float formatting on every request's line.
    fn record_f64(&mut self, field: &Field, value: f64) {
        if !(0.0..1e15).contains(&value) {
            return self.field(field, |w| write!(w, "{value:.3}"));
        }
        let thousandths = (value * 1000.0).round() as u64;
        self.field(field, |w| write!(w, "{}.{:03}", thousandths / 1000, thousandths % 1000));
    }

    /// The message and `%value` fields (whose `Debug` is their `Display`), and anything else by `Debug`.
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.field(field, |w| write!(Escaped(w), "{value:?}"));
    }
}

/// Printable ASCII: the bytes of nearly every logged value, written as they are.
fn printable(b: u8) -> bool {
    (b' '..=b'~').contains(&b)
}

/// Writes text with its control characters escaped (`\n`, `\u{1b}`): a logged value cannot forge a line or a
/// terminal sequence.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.bytes().all(printable) || !s.chars().any(char::is_control) {
            return self.0.write_str(s);
        }
        for c in s.chars() {
            if c.is_control() {
                write!(self.0, "{}", c.escape_default())?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_is_rfc3339_with_microseconds() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_766_916_118_000_042);
        assert_eq!(&timestamp(t), b"2025-12-28T10:01:58.000042Z");
        assert_eq!(&timestamp(UNIX_EPOCH), b"1970-01-01T00:00:00.000000Z");
    }

    /// What a subscriber with [`Line`] writes for one event.
    fn line_of(event: impl FnOnce()) -> String {
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink(sink.clone()))
            .event_format(Line)
            .finish();
        tracing::subscriber::with_default(subscriber, event);
        let bytes = out.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn durations_are_written_to_the_microsecond_as_float_formatting_would() {
        for ms in [
            0.0,
            0.0004,
            0.3358,
            1.0,
            2.5,
            17.0426,
            999.9996,
            123_456.789,
            1e16,
            -1.5,
        ] {
            let line = line_of(|| tracing::info!(ms, "request"));
            let written = line.rsplit("ms=").next().unwrap().trim_end();
            assert_eq!(written, format!("{ms:.3}"), "{line}");
        }
    }

    #[test]
    fn writes_one_escaped_line_per_event() {
        let line = line_of(|| {
            let status = 200u16;
            let ms = 0.3358;
            let error = "bad\nline";
            tracing::info!(respid = "01a2", method = "a\"b\\c\nd", status, ms, n = -3, ok = true, error = %error, "request")
        });
        let (time, rest) = line.split_at(27);
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{line}");
        assert_eq!(
            rest,
            "  INFO ipamd::logging::tests: request respid=\"01a2\" method=\"a\\\"b\\\\c\\nd\" status=200 ms=0.336 n=-3 ok=true \
             error=bad\\nline\n"
        );
        let warn = line_of(|| tracing::warn!("one\ntwo"));
        assert!(warn.ends_with("  WARN ipamd::logging::tests: one\\ntwo\n"), "{warn}");
    }

    fn sample(code: Option<&'static str>) -> Request<'static> {
        Request {
            respid: "01a2",
            door: "rest",
            verb: "GET",
            path: "/api/v1/networks/7",
            method: "subnets/get",
            caller: "org=1 user=a\"b app=x\ny",
            client: "2001:db8::1".parse().unwrap(),
            status: 404,
            elapsed: Duration::from_micros(12_345),
            code,
            probe: false,
        }
    }

    #[test]
    fn request_lines_are_one_buffer_in_the_configured_format() {
        let now = UNIX_EPOCH + Duration::from_micros(1_766_916_118_000_042);
        let mut out = Vec::new();
        request_line(&mut out, &sample(Some("not_found")), false, now);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-12-28T10:01:58.000042Z  INFO ipamd::request: request respid=\"01a2\" door=\"rest\" verb=\"GET\" \
             path=\"/api/v1/networks/7\" method=\"subnets/get\" caller=\"org=1 user=a\\\"b app=x\\ny\" \
             client=\"2001:db8::1\" status=404 ms=12.345 code=\"not_found\"\n"
        );
        let mut out = Vec::new();
        request_line(&mut out, &sample(Some("internal_error")), true, now);
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["target"], "ipamd::request");
        assert_eq!(line["timestamp"], "2025-12-28T10:01:58.000042Z");
        let fields = &line["fields"];
        assert_eq!(fields["caller"], "org=1 user=a\"b app=x\ny");
        assert_eq!(
            (&fields["status"], fields["ms"].to_string()),
            (&serde_json::json!(404), "12.345".into())
        );
        assert!(out.ends_with(b"}\n") && out.iter().filter(|b| **b == b'\n').count() == 1);
        // Empty fields are left out; a probe is at debug.
        let mut probe = sample(None);
        (probe.respid, probe.method, probe.caller, probe.probe) = ("", "", "", true);
        let mut out = Vec::new();
        request_line(&mut out, &probe, false, now);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(" DEBUG ipamd::request: request door="), "{text}");
        assert!(!text.contains("respid") && !text.contains("code="), "{text}");
    }

    #[test]
    fn durations_have_three_decimals_and_texts_are_cut_at_a_character() {
        let ms = |micros| String::from_utf8(duration_ms(Duration::from_micros(micros)).as_bytes().to_vec()).unwrap();
        assert_eq!(
            [ms(0), ms(7), ms(1_000), ms(123_456_789)],
            ["0.000", "0.007", "1.000", "123456.789"]
        );
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(redact("redis://:s3cret@cache:6379/0"), "redis://:***@cache:6379/0");
        assert_eq!(redact("redis://user:s3cret@cache/0"), "redis://user:***@cache/0");
        assert_eq!(redact("redis://cache:6379/0"), "redis://cache:6379/0");
        assert_eq!(redact("memory://"), "memory://");
    }

    #[test]
    fn filters_that_would_log_nothing_of_ipamd_are_refused() {
        for ok in ["info", "DEBUG", "ipamd=debug,hyper=info", "warn,ipamd::request=off", ""] {
            assert!(filter(ok).is_ok(), "{ok}");
        }
        for bad in ["verbose", "warning", "ipamd=loud", "info,quiet"] {
            assert!(filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn plain_text_is_told_from_text_to_escape_at_every_position() {
        assert!(plain(b"") && plain(b"org=1 user=admin app=default ~!") && plain(&[b'a'; 40]));
        for special in [b'"', b'\\', b'\n', 0, 0x1f, 0x7f, 0x80, 0xff] {
            for len in [1, 7, 8, 9, 16, 17, 23] {
                for at in 0..len {
                    let mut bytes = vec![b'x'; len];
                    bytes[at] = special;
                    assert!(!plain(&bytes), "{special:#x} at {at} of {len}");
                }
            }
        }
        for edge in [b' ', b'~', b'!', b'#', b'[', b']'] {
            assert!(plain(&[edge; 17]), "{edge}");
        }
    }
}
