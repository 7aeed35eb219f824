//! Golden files: the exact bytes of reply bodies, kept under `tests/it/golden/<name>.json` and compared byte for
//! byte, so that any change of what either door writes (key order, a number that became a string, a field that
//! went missing or appeared) fails a test with a diff.
//!
//! The parts of a reply that differ from run to run are replaced by fixed placeholders first, by [`normalise`],
//! on the raw text (never a parsed and re-serialised tree, which could hide a change of order or of type): the
//! values of the keys in [`VOLATILE`] (times, respids, secrets, backup sizes) and backup file names.
//!
//! With `IPAMD_BLESS=1` in the environment, [`check`] (re)writes the golden files, and deletes those no exchange
//! produced any more, instead of comparing: run it so after a change of output that is intended, and review the
//! files' diff before committing it.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::is_backup_name;

/// The keys whose scalar values change from run to run. A string value becomes `"<key>"` and a number `0`, so the
/// kind of value stays guarded; `null`, `true`, `false`, objects and arrays are kept as they are.
pub const VOLATILE: &[&str] = &[
    // A UUID per reply, and the calls' respids in the audit log.
    "respid",
    // Unix times of the stamps, logins, last uses, the clock and log entries (`ping` echoes its `time` parameter
    // under the same name, so that echo is not compared); RFC 3339 times of backups.
    "created",
    "modifiedat",
    "lastlogin",
    "lastused",
    "servertime",
    "time",
    "created_at",
    // The REST names of the same times and respids.
    "last_login_at",
    "last_used_at",
    "server_time",
    "request_id",
    "updated",
    "updated_at",
    "next_attempt",
    // Secrets shown once and their first characters.
    "key",
    "token",
    "prefix",
    "secret",
    // The size of a backup file.
    "size_bytes",
];

/// Whether this run writes the golden files rather than comparing with them.
pub fn blessing() -> bool {
    std::env::var("IPAMD_BLESS").is_ok_and(|v| v == "1")
}

/// `raw` with the values of the [`VOLATILE`] keys replaced by placeholders, and, inside every string, each backup
/// file name (a key of `backups`, a `name`, a `safety_backup`, a log summary…) replaced by `<backup-N>`, N counting
/// the distinct names in order of their first appearance in `raw`, and the token prefix that names a token's
/// application in the audit log (`token:1a2b3c4d`) by `token:<prefix>`. Everything else is copied byte for byte.
pub fn normalise(raw: &str) -> String {
    let mut backups: Vec<String> = Vec::new();
    replace_values(
        raw,
        |key| VOLATILE.contains(&key),
        |content, _| rewrite(content, &mut backups),
    )
}

/// The keys whose values are record ids that a PostgreSQL database numbers higher than SQLite does: its id
/// sequences keep the gaps an insert rolled back leaves (a failed call's audit entry, a refused duplicate), where
/// SQLite's counters roll back with the insert.
const IDS: &[&str] = &["id", "objectid", "object_id", "change"];

/// `text` with record ids masked, for comparing replies of a PostgreSQL server with the golden files (recorded on
/// SQLite, whose ids they keep): the values of [`IDS`] become `0` or `"<key>"` and every object key made of digits
/// (a record keyed by its id) `"<id>"`. Everything else, the kind of each value included, is compared as it is.
pub fn mask_ids(text: &str) -> String {
    replace_values(
        text,
        |key| IDS.contains(&key),
        |content, is_key| match is_key && !content.is_empty() && content.bytes().all(|c| c.is_ascii_digit()) {
            true => "<id>".to_string(),
            false => content.to_string(),
        },
    )
}

/// `raw` with the scalar value of every key `masked` accepts replaced by a placeholder (a string by `"<key>"`, a
/// number by `0`), and the content of every other string, key or value, by what `strings` makes of it (told
/// whether it is a key). Works on the text, never on a parsed tree.
fn replace_values(raw: &str, masked: impl Fn(&str) -> bool, mut strings: impl FnMut(&str, bool) -> String) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut at = 0;
    while let Some(q) = raw[at..].find('"').map(|q| at + q) {
        out.push_str(&raw[at..q]);
        let end = string_end(b, q);
        let content = &raw[q + 1..end - 1];
        let colon = end + skip_space(&b[end..]);
        let is_key = b.get(colon) == Some(&b':');
        out.push('"');
        out.push_str(&strings(content, is_key));
        out.push('"');
        at = end;
        if !(is_key && masked(content)) {
            continue;
        }
        let value = colon + 1 + skip_space(&b[colon + 1..]);
        out.push_str(&raw[end..value]);
        at = value;
        match b.get(value) {
            Some(b'"') => {
                out.push_str(&format!("\"<{content}>\""));
                at = string_end(b, value);
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                out.push('0');
                at += b[value..]
                    .iter()
                    .take_while(|c| c.is_ascii_digit() || b"-+.eE".contains(c))
                    .count();
            }
            _ => {}
        }
    }
    out.push_str(&raw[at..]);
    out
}

/// The content of a JSON string with its backup names and token prefixes replaced (see [`normalise`]); `backups`
/// holds the names met so far.
fn rewrite(content: &str, backups: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = content;
    while let Some(i) = ["ipam-backup-", "token:"].iter().filter_map(|m| rest.find(m)).min() {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(prefix) = rest.strip_prefix("token:").and_then(|r| r.get(..8)) {
            if prefix.bytes().all(|c| c.is_ascii_hexdigit()) {
                out.push_str("token:<prefix>");
                rest = &rest["token:".len() + 8..];
                continue;
            }
        }
        let run = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
            .unwrap_or(rest.len());
        let name = rest[..run].trim_end_matches('.');
        if !is_backup_name(name) {
            let skip = rest.chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..skip]);
            rest = &rest[skip..];
            continue;
        }
        let n = match backups.iter().position(|n| n == name) {
            Some(n) => n + 1,
            None => {
                backups.push(name.to_string());
                backups.len()
            }
        };
        out.push_str(&format!("<backup-{n}>"));
        rest = &rest[name.len()..];
    }
    out.push_str(rest);
    out
}

/// The index just past the closing quote of the JSON string that opens at `q`.
fn string_end(b: &[u8], q: usize) -> usize {
    let mut i = q + 1;
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    (i + 1).min(b.len())
}

fn skip_space(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_whitespace()).count()
}

/// Compares each `(name, normalised body)` with `dir/<name>.json`, or writes them when [`blessing`]. Panics naming
/// every golden that differs (with a diff), is missing, or is left over in `dir` without an exchange. With
/// `ids_vary` (a PostgreSQL server) both sides are compared with their ids masked ([`mask_ids`]), and the files,
/// whose ids are SQLite's, are not written.
pub fn check(dir: &Path, goldens: &[(String, String)], ids_vary: bool) {
    let mut names = BTreeSet::new();
    for (name, _) in goldens {
        assert!(names.insert(name.as_str()), "the golden name {name} is used twice");
    }
    let stale: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|f| f.strip_suffix(".json").is_some_and(|n| !names.contains(n)))
                .collect()
        })
        .unwrap_or_default();
    if blessing() {
        assert!(
            !ids_vary,
            "IPAMD_BLESS=1 writes the golden files from a SQLite server: leave out IPAMD_TEST_ENGINE=postgres"
        );
        std::fs::create_dir_all(dir).unwrap();
        for (name, body) in goldens {
            std::fs::write(dir.join(format!("{name}.json")), body).unwrap();
        }
        for file in &stale {
            std::fs::remove_file(dir.join(file)).unwrap();
        }
        println!(
            "IPAMD_BLESS=1: wrote {} golden files to {}",
            goldens.len(),
            dir.display()
        );
        return;
    }
    let mut problems: Vec<String> = stale
        .iter()
        .map(|f| format!("golden file {f} belongs to no exchange of the fixture (IPAMD_BLESS=1 deletes it)"))
        .collect();
    for (name, actual) in goldens {
        match std::fs::read_to_string(dir.join(format!("{name}.json"))) {
            Err(e) => problems.push(format!(
                "golden {name}: cannot read its file ({e}); IPAMD_BLESS=1 writes it"
            )),
            Ok(expected) if ids_vary && mask_ids(&expected) != mask_ids(actual) => {
                problems.push(mismatch(name, &mask_ids(&expected), &mask_ids(actual)))
            }
            Ok(expected) if !ids_vary && expected != *actual => problems.push(mismatch(name, &expected, actual)),
            Ok(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with the {} golden replies (run with IPAMD_BLESS=1 to accept new output if it is intended):\n\n{}",
        problems.len(),
        goldens.len(),
        problems.join("\n\n")
    );
}

/// The report of one differing golden: where the bytes first differ, and a line diff of both bodies
/// pretty-printed (keys in their order, numbers as written).
fn mismatch(name: &str, expected: &str, actual: &str) -> String {
    let at = expected.bytes().zip(actual.bytes()).take_while(|(e, a)| e == a).count();
    let around = |s: &str| {
        let from = (0..=at.saturating_sub(40))
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        let to = ((at + 40).min(s.len())..=s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(s.len());
        s[from..to].to_string()
    };
    format!(
        "golden {name}: first difference at byte {at}\n  expected …{}…\n  actual   …{}…\n--- expected\n+++ actual\n{}",
        around(expected),
        around(actual),
        line_diff(&pretty(expected), &pretty(actual))
    )
}

/// `text` pretty-printed when it is JSON (without reordering: `serde_json` keeps the order here), else as it is.
fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}

/// A unified-style diff of two texts' lines (longest common subsequence), with two lines of context.
fn line_diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut common = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = match a[i] == b[j] {
                true => common[i + 1][j + 1] + 1,
                false => common[i + 1][j].max(common[i][j + 1]),
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        ops[k.saturating_sub(2)..(k + 3).min(ops.len())]
            .iter()
            .any(|(op, _)| *op != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if near_change(k) {
            out.push_str(&format!("{op}{line}\n"));
            skipped = false;
        } else if !skipped {
            out.push_str(" …\n");
            skipped = true;
        }
    }
    if ops.iter().all(|(op, _)| *op == ' ') {
        out.push_str("(the pretty-printed forms are alike: the difference is in spacing or escapes, see above)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Record ids are masked, keys and values alike, keeping their kind; nothing else changes.
    #[test]
    fn masked_ids_hide_record_ids_and_nothing_else() {
        let reply =
            r#"{"logs":{"57":{"id":"57","objectid":9,"summary":"added 9"}},"data":[{"id":12,"change":103,"n":7}]}"#;
        assert_eq!(
            mask_ids(reply),
            r#"{"logs":{"<id>":{"id":"<id>","objectid":0,"summary":"added 9"}},"data":[{"id":0,"change":0,"n":7}]}"#
        );
        assert_ne!(mask_ids(r#"{"id":1,"n":7}"#), mask_ids(r#"{"id":1,"n":"7"}"#));
    }

    /// Volatile values are replaced keeping their kind, backup names are numbered, and nothing else changes.
    #[test]
    fn golden_normaliser_replaces_only_what_varies() {
        let raw = r#"{"id":"7","created": "1795361430","size_bytes":122880,"lastused":null,"note":"created","x":{"time":-1.5e3},"backups":{"ipam-backup-20261122-153959Z.db":{"name":"ipam-backup-20261122-153959Z-2.db","a":"ipam-backup-20261122-153959Z.db"}},"s":"é\"respid\":\"1","summary":"restored ipam-backup-20261122-153959Z-2.db.","application":"token:0123abcd","other":"token:xyz ipam-backup-x.db"}"#;
        assert_eq!(
            normalise(raw),
            r#"{"id":"7","created": "<created>","size_bytes":0,"lastused":null,"note":"created","x":{"time":0},"backups":{"<backup-1>":{"name":"<backup-2>","a":"<backup-1>"}},"s":"é\"respid\":\"1","summary":"restored <backup-2>.","application":"token:<prefix>","other":"token:xyz ipam-backup-x.db"}"#
        );
    }

    #[test]
    fn golden_diff_shows_changed_lines_with_context() {
        let d = line_diff("a\nb\nc\nd\ne\nf\ng", "a\nb\nc\nD\ne\nf\ng");
        assert_eq!(d, " …\n b\n c\n-d\n+D\n e\n f\n …\n");
    }
}
