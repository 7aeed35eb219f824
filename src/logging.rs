//! The server's log: one line per event, as text or as JSON (`IPAMD_LOG_FORMAT`), filtered by `RUST_LOG`
//! (default `info`).
//!
//! Text to a terminal is tracing-subscriber's coloured format. Text to a file or a pipe is the same line without
//! colours, written by [`Line`]: every request writes one, and the stock formatter spent more on it (escaping each
//! field through `Debug`, the timestamp through `Display`) than a cheap request spends on its own work.
//! `2026-11-22T15:30:36.328099Z  INFO ipamd::server: request respid=01a2… method="groups/get" status=200 ms=0.33`

use std::fmt::{self, Debug, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: JSON objects with `json`, else text, coloured only with `ansi`.
pub fn init<W>(json: bool, ansi: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    if json {
        builder.json().init();
    } else if ansi {
        builder.init();
    } else {
        builder.event_format(Line).init();
    }
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
        w.write_str(&timestamp(SystemTime::now()))?;
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

/// `2026-11-22T15:30:36.328099Z`, without the formatting machinery.
fn timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(0);
    let (y, mo, d, h, mi, s) = crate::time::civil(secs);
    let mut out = String::with_capacity(27);
    let mut digits = |n: u64, width: u32, sep: char| {
        for i in (0..width).rev() {
            out.push(char::from(b'0' + (n / 10u64.pow(i) % 10) as u8));
        }
        out.push(sep);
    };
    digits(y.clamp(0, 9999) as u64, 4, '-');
    digits(mo.into(), 2, '-');
    digits(d.into(), 2, 'T');
    digits(h.into(), 2, ':');
    digits(mi.into(), 2, ':');
    digits(s.into(), 2, '.');
    digits(since.subsec_micros().into(), 6, 'Z');
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
        assert_eq!(timestamp(t), "2025-12-28T10:01:58.000042Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
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
}
