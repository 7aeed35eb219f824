//! `backups/*` (operator-org admins): backups into `BACKUP_DIR`, verification, and restore.
//!
//! A backup is one SQLite database file of schema.sql, whichever engine holds the live data: SQLite's online backup
//! of a SQLite database, or a PostgreSQL database's rows as one snapshot sees them, written into a new SQLite file
//! ([`snapshot`]). So a backup made on either engine restores on either: that is how an installation moves from one
//! engine to the other (`ipamd migrate`).
//!
//! A restore copies every table of a verified backup into the live database inside the call's one write
//! transaction: readers see the old data until it commits and the new data after, never a mix, and a crash leaves
//! the old data whole. A safety backup of the live data is taken first.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::json;

use crate::db::{self, params, Sql, Tx};
use crate::error::{Code, Error, Result};
use crate::handler::{Action, Change, Ctx, Object, ObjectKind, Params};
use crate::model::{Backup, Integrity, List, NewBackup, Page, Restored, Verified};
use crate::net;
use crate::params::Data;
use crate::store;
use crate::time;

/// The backup directory, created when missing.
fn dir(ctx: &Ctx) -> Result<PathBuf> {
    let dir = ctx.settings.backup_dir.clone();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::new(Code::Unavailable, format!("cannot create the backup directory: {e}")))?;
    Ok(dir)
}

/// Checks a backup name: `[A-Za-z0-9._-]+\.db`, so it can only ever name a file inside the backup directory.
pub fn valid_name(name: &str) -> Result<&str> {
    let ok = name.len() <= 200
        && name.len() > 3
        && name.ends_with(".db")
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(name)
    } else {
        Err(Error::param(
            "name",
            "must be a backup file name: letters, digits, '.', '_' and '-', ending in .db",
        ))
    }
}

fn entry(path: &Path, name: &str) -> Result<Backup> {
    let meta = std::fs::metadata(path).map_err(|_| Error::not_found("backup"))?;
    let created = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(Backup {
        id: name.to_string(),
        name: name.to_string(),
        size_bytes: meta.len(),
        created_at: time::rfc3339(created),
    })
}

/// A backup file, opened to be read.
fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
}

/// `PRAGMA integrity_check` of a file; a file that is not a database is "not ok", not an error.
fn integrity(path: &Path) -> Integrity {
    let check = || -> rusqlite::Result<String> {
        let conn = open_read_only(path)?;
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(lines.join("; "))
    };
    let (integrity_ok, integrity_message) = match check() {
        Ok(m) => (m == "ok", m),
        Err(e) => (false, e.to_string()),
    };
    Integrity {
        integrity_ok,
        integrity_message,
    }
}

/// Writes a backup of the live data under a new, unique name, as one self-contained file. The copy is written and
/// synced under a hidden name (never listed, never a valid backup name) and renamed to its own only when complete,
/// so a crash mid-backup never leaves a partial file that looks like a backup.
fn create(ctx: &Ctx) -> Result<(String, PathBuf)> {
    let dir = dir(ctx)?;
    remove_stale_partials(&dir);
    let unavailable = |e: std::io::Error| Error::new(Code::Unavailable, format!("cannot write a backup: {e}"));
    let partial = dir.join(format!(".ipam-backup-{}.partial", ctx.respid));
    let written = match ctx.store.sqlite_path() {
        Some(live) => copy_file(live, &partial),
        None => snapshot(ctx.tx, &partial),
    }
    .and_then(|()| File::open(&partial).and_then(|f| f.sync_all()).map_err(unavailable));
    let named = written.and_then(|()| name_backup(&dir, &partial, &time::compact(ctx.now)));
    if named.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    named
}

/// SQLite's online backup of the live SQLite file into `partial`. A copy of a WAL database is marked WAL too: made
/// a rollback-journal file, it is one self-contained file, and opening it (verify, restore) leaves no -wal and -shm
/// files beside it.
fn copy_file(live: &Path, partial: &Path) -> Result<()> {
    Connection::open(live)
        .and_then(|live| live.backup(rusqlite::MAIN_DB, partial, None))
        .and_then(|()| Connection::open(partial)?.pragma_update(None, "journal_mode", "DELETE"))
        .map_err(Error::from)
}

/// Writes the rows `tx` sees (on PostgreSQL, the call's one snapshot: a read is `REPEATABLE READ`, a restore's
/// safety backup holds the write lock) into a new SQLite database at `partial` with schema.sql at this version, in
/// one SQLite transaction: the file a SQLite server holding the same data would back up. The derived tables are not
/// read: schema.sql's triggers fill them as the rows arrive, and [`store::flush_fts`] the full-text index. Rows are
/// streamed (a cursor on PostgreSQL), so memory holds a batch of rows, whatever the size of the data.
///
/// The triggers that count or version the rows of *other* tables on insert (a subnet raises its group's and its
/// pool's counts, a custom field value moves its record's version) must find nothing to change, or the copies
/// would not keep the source's counts and versions: so `field_values` is copied before `addresses`, and `subnets`
/// before `groups`, a pool's children (longer prefixes) before the pool.
fn snapshot(tx: &Tx, partial: &Path) -> Result<()> {
    let file = Connection::open(partial)?;
    store::migrate(&file)?;
    let statements = db::Statements::new(&file);
    let out = Tx::on_sqlite(&statements);
    // The tables are copied in the order above, not the order of their references: checked once all are in.
    out.batch("PRAGMA foreign_keys = OFF; BEGIN")?;
    let mut tables = tables(&out, &DERIVED)?;
    tables.sort_by_key(|t| (t != "field_values", t != "subnets", t.clone()));
    for t in &tables {
        // The rows schema.sql starts with (the counters) make way for the source's.
        out.execute(&format!("DELETE FROM \"{t}\""), params![])?;
        let order = match t.as_str() {
            "subnets" => " ORDER BY prefix DESC, id",
            _ => "",
        };
        copy_rows(tx, &out, t, &columns(&out, t)?, order)?;
    }
    advance_ids(&out, &id_counters(tx)?)?;
    store::flush_fts(&out)?;
    if out.query_row(
        "SELECT EXISTS(SELECT 1 FROM pragma_foreign_key_check)",
        params![],
        |r| r.get(0),
    )? {
        return Err(Error::internal("the snapshot has rows that refer to missing rows"));
    }
    out.batch("COMMIT")
}

/// A hidden partial backup unchanged for this long was left by a backup that never finished (a crash): one being
/// written changes all the time, whichever process writes it (the server, or `ipamd backup create` beside it).
const STALE_PARTIAL: Duration = Duration::from_secs(3600);

/// Deletes the hidden partial backups (see [`create`]) that nothing has written to for [`STALE_PARTIAL`].
fn remove_stale_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let partial = name
            .to_str()
            .is_some_and(|n| n.starts_with(".ipam-backup-") && n.ends_with(".partial"));
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if partial && age.is_some_and(|a| a > STALE_PARTIAL) && std::fs::remove_file(entry.path()).is_ok() {
            tracing::info!(file = ?name, "removed a partial backup left by an interrupted backup");
        }
    }
}

/// Gives the complete backup at `partial` the first free name of its second: the name is reserved with
/// `create_new` (two backups in one second never share one) and the empty reservation replaced by the backup in
/// one rename.
fn name_backup(dir: &Path, partial: &Path, stamp: &str) -> Result<(String, PathBuf)> {
    let unavailable = |e: std::io::Error| Error::new(Code::Unavailable, format!("cannot write a backup: {e}"));
    for n in 1..1000 {
        let name = match n {
            1 => format!("ipam-backup-{stamp}.db"),
            n => format!("ipam-backup-{stamp}-{n}.db"),
        };
        let path = dir.join(&name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(unavailable(e)),
        }
        if let Err(e) = std::fs::rename(partial, &path) {
            let _ = std::fs::remove_file(&path);
            return Err(unavailable(e));
        }
        // The rename itself is on disk once the directory is.
        File::open(dir).and_then(|d| d.sync_all()).map_err(unavailable)?;
        return Ok((name, path));
    }
    Err(Error::new(Code::Conflict, "too many backups in one second"))
}

pub struct ListParams {
    page: i64,
    perpage: i64,
}

impl Params for ListParams {
    fn decode(d: &mut Data) -> Result<Self> {
        Ok(ListParams {
            page: d.page("page")?,
            perpage: d.per_page("perpage", 50, 1000)?,
        })
    }
}

/// The backups, newest first.
pub fn get(ctx: &Ctx, p: ListParams) -> Result<List<Backup>> {
    let dir = dir(ctx)?;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::new(Code::Unavailable, format!("cannot read the backup directory: {e}")))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| valid_name(n).is_ok())
        .collect();
    names.sort_unstable_by(|a, b| b.cmp(a));
    let total = names.len() as i64;
    let skip = usize::try_from((p.page - 1).saturating_mul(p.perpage)).unwrap_or(usize::MAX);
    let mut backups = Vec::new();
    for name in names.iter().skip(skip).take(p.perpage as usize) {
        backups.push(entry(&dir.join(name), name)?);
    }
    let mut list = List::of(backups, "backups");
    list.page = Some(Page {
        page: p.page,
        perpage: p.perpage,
        pages: (total + p.perpage - 1) / p.perpage,
        total,
    });
    Ok(list)
}

/// Takes a backup and verifies it.
pub fn add(ctx: &Ctx, _: ()) -> Result<NewBackup> {
    let (name, path) = create(ctx)?;
    let integrity = integrity(&path);
    let backup = entry(&path, &name)?;
    tracing::info!(backup = %name, respid = ctx.respid, "backup created");
    Ok(NewBackup { backup, integrity })
}

pub struct NameParam {
    name: String,
}

impl NameParam {
    /// The name of a backup, checked as the method's parameter is.
    pub fn new(name: &str) -> Result<NameParam> {
        valid_name(name)?;
        Ok(NameParam { name: name.to_string() })
    }
}

impl Params for NameParam {
    fn decode(d: &mut Data) -> Result<Self> {
        let name = d.req_str("name")?;
        valid_name(&name)?;
        Ok(NameParam { name })
    }
}

fn existing(ctx: &Ctx, name: &str) -> Result<PathBuf> {
    let path = dir(ctx)?.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::not_found("backup"))
    }
}

pub fn verify(ctx: &Ctx, p: NameParam) -> Result<Verified> {
    let integrity = integrity(&existing(ctx, &p.name)?);
    Ok(Verified {
        name: p.name,
        integrity,
    })
}

/// Replaces the live data with a verified backup of this schema version, after a safety backup.
pub fn restore(ctx: &Ctx, p: NameParam) -> Result<Restored> {
    let path = existing(ctx, &p.name)?;
    let integrity = integrity(&path);
    if !integrity.integrity_ok {
        return Err(Error::new(
            Code::InvalidBackup,
            format!("{} fails its integrity check: {}", p.name, integrity.integrity_message),
        ));
    }
    let backup = open_read_only(&path)?;
    let version: i64 = backup.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // A backup taken before an upgrade: restore from a copy brought up to this schema (the backup stays as it was).
    // The copy outlives the connection on it (declared first, dropped last).
    let upgraded = match version >= 1 && version < store::schema_version()? {
        true => Some(Upgraded::new(&path)?),
        false => None,
    };
    let src = match &upgraded {
        Some(copy) => {
            let c = Connection::open(&copy.0)?;
            store::migrate(&c).map_err(|e| {
                Error::new(
                    Code::InvalidBackup,
                    format!("{} cannot be upgraded to this version: {}", p.name, e.message),
                )
            })?;
            c
        }
        None => backup,
    };
    let version: i64 = src.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tables = live_tables(ctx)?;
    let has_all: bool = tables.iter().all(|t| {
        src.query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [t],
            |r| r.get(0),
        )
        .unwrap_or(false)
    });
    if version != store::schema_version()? || !has_all {
        return Err(Error::new(
            Code::InvalidBackup,
            format!("{} is not an ipamd database of this version", p.name),
        ));
    }
    // integrity_check does not look at foreign keys; a backup whose rows point nowhere would fail at commit.
    let dangling: bool = src.query_row("SELECT EXISTS(SELECT 1 FROM pragma_foreign_key_check)", [], |r| {
        r.get(0)
    })?;
    if dangling {
        return Err(Error::new(
            Code::InvalidBackup,
            format!("{} has rows that refer to missing rows", p.name),
        ));
    }
    // The rule every subnet's block keeps (subnets::storable): no IPv6 block overlaps the IPv4-mapped addresses.
    let (lo, hi) = (net::key_bytes(net::MAPPED.0), net::key_bytes(net::MAPPED.1));
    let mapped: Option<i64> = src
        .query_row(
            "SELECT id FROM subnets WHERE family = 6 AND net_start <= ?2 AND net_end >= ?1 LIMIT 1",
            rusqlite::params![&lo[..], &hi[..]],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = mapped {
        return Err(Error::new(
            Code::InvalidBackup,
            format!(
                "{} has subnet {id}, an IPv6 block that overlaps ::ffff:0:0/96 (IPv4-mapped)",
                p.name
            ),
        ));
    }
    let (safety, _) = create(ctx)?;
    ctx.tx.execute(
        Sql::Dialects("PRAGMA defer_foreign_keys = ON", "SET CONSTRAINTS ALL DEFERRED"),
        params![],
    )?;
    for t in &tables {
        ctx.tx.execute(&format!("DELETE FROM \"{t}\""), params![])?;
    }
    ctx.tx.execute("DELETE FROM sessions", params![])?;
    let statements = db::Statements::new(&src);
    let from = Tx::on_sqlite(&statements);
    for t in &tables {
        // A row the live schema refuses (a CHECK, a bad value) makes the backup unfit, not the server broken.
        copy_rows(&from, ctx.tx, t, &columns(ctx.tx, t)?, "").map_err(|e| match e.code {
            Code::Internal | Code::Duplicate | Code::InvalidParams => Error::new(
                Code::InvalidBackup,
                format!("{} does not fit this schema: {}", p.name, e.message),
            ),
            _ => e,
        })?;
    }
    // New rows take ids past the restored ones, and past every id the backup's database or this one ever gave.
    advance_ids(ctx.tx, &id_counters(&from)?)?;
    // Each group's subnet count is derived too: copied from the backup, then raised again by the triggers as its
    // subnets arrived. Counted afresh from the rows restored.
    ctx.tx.execute(
        "UPDATE groups SET subnet_count = (SELECT count(*) FROM subnets s WHERE s.group_id = groups.id)",
        params![],
    )?;
    // So is each pool's child count.
    ctx.tx.execute(
        "UPDATE subnets SET child_count = (SELECT count(*) FROM subnets c WHERE c.parent_id = subnets.id)",
        params![],
    )?;
    // Every remembered caller and every write authorised before the restore is checked again, whatever the
    // restore's deletes already moved.
    ctx.tx.execute("UPDATE credential_epoch SET n = n + 1", params![])?;
    let backup = Object {
        kind: ObjectKind::Backup,
        id: None,
    };
    ctx.log(
        Change::new(backup, Action::Restored, format!("restored {}", p.name)).detail(json!({"safety_backup": safety})),
    )?;
    tracing::warn!(backup = %p.name, safety = %safety, respid = ctx.respid, "database restored from backup");
    Ok(Restored {
        name: p.name,
        restored: true,
        integrity,
        safety_backup: safety,
    })
}

/// A private copy of a backup for upgrading its schema before a restore, deleted when dropped.
struct Upgraded(PathBuf);

impl Upgraded {
    fn new(backup: &Path) -> Result<Upgraded> {
        // A hidden name the backup listing never shows; a crash may leave it behind, the next restore replaces it.
        let name = backup
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let copy = backup.with_file_name(format!(".{name}.upgrading"));
        std::fs::copy(backup, &copy)
            .map_err(|e| Error::new(Code::Unavailable, format!("cannot copy the backup to upgrade it: {e}")))?;
        Ok(Upgraded(copy))
    }
}

impl Drop for Upgraded {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = self.0.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}

/// The rows of each table a restore copies, by table: of a backup file, or of a live database (`ipamd migrate`
/// compares the two).
pub fn row_counts(tx: &Tx) -> Result<Vec<(String, i64)>> {
    restored_tables(tx)?
        .into_iter()
        .map(|t| {
            let n = tx.query_row(&format!("SELECT count(*) FROM \"{t}\""), params![], |r| r.get(0))?;
            Ok((t, n))
        })
        .collect()
}

/// The operator org of the backup file at `path`: whom a restore into an empty database acts as.
pub fn operator_org(path: &Path) -> Result<i64> {
    let file = open_read_only(path)?;
    let statements = db::Statements::new(&file);
    let operator = Tx::on_sqlite(&statements).query_opt(
        "SELECT id FROM orgs WHERE operator = 1 ORDER BY id LIMIT 1",
        params![],
        |r| r.get(0),
    )?;
    operator.ok_or_else(|| Error::new(Code::InvalidBackup, "the backup holds no operator organisation"))
}

/// The rows of each table of the backup file at `path` (see [`row_counts`]).
pub fn file_row_counts(path: &Path) -> Result<Vec<(String, i64)>> {
    let file = open_read_only(path)?;
    let statements = db::Statements::new(&file);
    row_counts(&Tx::on_sqlite(&statements))
}

/// The tables schema.sql's triggers keep from the rows of others: never copied, rebuilt by the triggers (of
/// either engine) as those rows arrive. (`addresses_fts*`, SQLite's full-text index, is derived too.)
const DERIVED: [&str; 3] = ["subnet_prefixes", "address_runs", "pool_free_counts"];

/// The tables a restore leaves as they are besides the derived ones (see [`live_tables`]).
const KEPT: [&str; 6] = [
    "credential_epoch",
    "login_failures",
    "version_seq",
    "changes",
    "changes_purged",
    "sessions",
];

/// The tables a restore copies: all but SQLite's own, the derived ones ([`DERIVED`]), `credential_epoch` and
/// `version_seq`, which must keep moving forward (the restore moves the epoch; every write moves the count), and
/// the change feed (`changes`, `changes_purged`), which goes on across the restore so its cursors stay valid: the
/// restore is an entry of every org's feed. Webhooks and their delivery log are copied. The web UI's sessions are
/// not: a restore ends them all (their users may be other users now). Nor are the users' failed logins
/// (`login_failures`): a lockout in force stays in force.
fn live_tables(ctx: &Ctx) -> Result<Vec<String>> {
    restored_tables(ctx.tx)
}

/// The tables of a database a restore copies (see [`live_tables`]).
fn restored_tables(tx: &Tx) -> Result<Vec<String>> {
    tables(tx, &[&DERIVED[..], &KEPT[..]].concat())
}

/// The data tables of a database but `leaving` (and SQLite's own and full-text tables, and PostgreSQL's
/// `schema_version`), by name.
fn tables(tx: &Tx, leaving: &[&str]) -> Result<Vec<String>> {
    let leaving = leaving.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
    let sqlite = format!(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
         AND name NOT LIKE '%\\_fts%' ESCAPE '\\' AND name NOT IN ({leaving}) ORDER BY name"
    );
    let postgres = format!(
        "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
           AND table_name NOT IN ('schema_version', {leaving}) ORDER BY 1"
    );
    tx.rows(Sql::Dialects(&sqlite, &postgres), params![], |r| r.get(0))
}

/// The columns of table `t`, in order.
fn columns(tx: &Tx, t: &str) -> Result<Vec<String>> {
    tx.rows(
        Sql::Dialects(
            "SELECT name FROM pragma_table_info(?1)",
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position",
        ),
        params![t],
        |r| r.get(0),
    )
}

/// Copies every row of table `t` that `from` reads into `to`, column by column name, in `order` (an `ORDER BY`
/// clause, or none). The rows are streamed: memory holds one, and a cursor's batch on PostgreSQL.
fn copy_rows(from: &Tx, to: &Tx, t: &str, cols: &[String], order: &str) -> Result<()> {
    let list = cols.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
    let marks = vec!["?"; cols.len()].join(", ");
    let read = format!("SELECT {list} FROM \"{t}\"{order}");
    let write = format!("INSERT INTO \"{t}\" ({list}) VALUES ({marks})");
    let row = |r: &db::Row| {
        (0..cols.len())
            .map(|i| r.cell(i).map(db::Value::from))
            .collect::<Result<Vec<_>>>()
    };
    from.scan(&read, params![], row, |rows| {
        for values in rows {
            to.execute(&write, &db::param_list(&values?))?;
        }
        Ok(())
    })?
}

/// The highest id each table's counter has given, by table: SQLite's `sqlite_sequence` (the AUTOINCREMENT
/// tables), PostgreSQL's identity sequences (`None` for a sequence never used).
fn id_counters(tx: &Tx) -> Result<Vec<(String, Option<i64>)>> {
    tx.rows(
        Sql::Dialects(
            "SELECT name, seq FROM sqlite_sequence ORDER BY name",
            "SELECT CAST(table_name AS TEXT),
                    pg_sequence_last_value(CAST(pg_get_serial_sequence(quote_ident(CAST(table_name AS TEXT)), 'id')
                                                AS regclass))
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND column_name = 'id' AND is_identity = 'YES' ORDER BY 1",
        ),
        params![],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Moves the id counters of the database `tx` writes past `counters` (another database's, see [`id_counters`])
/// and past the ids its tables hold: never back, so no id is given twice. The engines keep them in different
/// places: SQLite in `sqlite_sequence` (an AUTOINCREMENT table's row appears with its first id), PostgreSQL in a
/// sequence per identity column.
fn advance_ids(tx: &Tx, counters: &[(String, Option<i64>)]) -> Result<()> {
    let at_least = |t: &str| counters.iter().find(|(name, _)| name == t).and_then(|(_, n)| *n);
    if !tx.is_postgres() {
        for (t, n) in counters.iter().filter_map(|(t, n)| Some((t, (*n)?))) {
            tx.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2
                 WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1
                                                             AND sql LIKE '%AUTOINCREMENT%')
                   AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
                params![t, n],
            )?;
            tx.execute(
                "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1",
                params![t, n],
            )?;
        }
        return Ok(());
    }
    for (t, _) in id_counters(tx)? {
        let sequence = format!("CAST(pg_get_serial_sequence('\"{t}\"', 'id') AS regclass)");
        tx.execute(
            &format!(
                "SELECT setval({sequence}, GREATEST(CAST(?1 AS BIGINT), (SELECT max(id) FROM \"{t}\"),
                                                    pg_sequence_last_value({sequence}), 1))"
            ),
            params![at_least(&t).unwrap_or(0)],
        )?;
    }
    Ok(())
}
