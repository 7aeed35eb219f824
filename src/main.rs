//! The `ipamd` binary: parse the settings (flags, environment, config file), then serve or run one command-line
//! task.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// glibc's malloc spent a quarter of the server's CPU under load (arena contention across threads); mimalloc
/// does not. The bundled SQLite allocates through glibc's, tuned by [`ipamd::tune_malloc`].
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::CommandFactory;
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;

use ipamd::app::App;
use ipamd::cli::{self, Credentials};
use ipamd::config::{
    self, BackupCommand, BackupDirs, Cli, Command, Database, OrgCommand, Settings, TokenCommand, UserCommand,
};
use ipamd::error::{Code, Error};
use ipamd::handler;
use ipamd::methods::METHODS;
use ipamd::model::{Backup, Reply};
use ipamd::store::Store;

fn main() -> ExitCode {
    ipamd::tune_malloc();
    let args = match config::parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("ipamd: {e}");
            // clap's own exit code for a usage error.
            return ExitCode::from(2);
        }
    };
    let result = match args.command {
        None => serve(args.settings),
        Some(Command::Serve(settings)) => serve(*settings),
        Some(Command::Init {
            password,
            json,
            db,
            passwords,
        }) => init(&db, password, passwords.min_password_length, json),
        Some(Command::Org(OrgCommand::Add {
            identifier,
            admin,
            password,
            description,
            json,
            db,
            passwords,
        })) => local(&db).and_then(|settings| {
            let store = Store::open(&settings.db)?;
            let min = passwords.min_password_length;
            let creds = cli::create_org(&store, &identifier, &description, &admin, password, false, min)?;
            print_credentials(&creds, json, &format!("Created org '{}'.", creds.org));
            Ok(())
        }),
        Some(Command::Org(OrgCommand::List { json, db })) => local(&db).and_then(|settings| {
            let orgs = cli::orgs(&Store::open(&settings.db)?)?;
            let rows = orgs.iter().map(|o| {
                let role = if o.operator { "operator" } else { "" };
                [
                    o.name.id.to_string(),
                    o.name.identifier.clone(),
                    role.into(),
                    o.name.description.clone(),
                ]
            });
            print_list(json, &orgs, ["ID", "IDENTIFIER", "ROLE", "DESCRIPTION"], rows);
            Ok(())
        }),
        Some(Command::User(UserCommand::ResetPassword {
            org,
            user,
            password,
            json,
            db,
            passwords,
        })) => open(&db, |s| s.min_password_length = passwords.min_password_length).and_then(|app| {
            let new = cli::reset_password(&app, &org, &user, password)?;
            match json {
                true => println!("{}", serde_json::to_string(&new).unwrap_or_default()),
                false => println!(
                    "New password of {}/{}. It is shown once; keep it safe:\n  password:  {}\n  userdata:  {}",
                    new.org, new.username, new.password, new.userdata
                ),
            }
            Ok(())
        }),
        Some(Command::User(UserCommand::Unlock { org, user, db })) => open(&db, |_| {}).and_then(|app| {
            cli::unlock(&app, &org, &user)?;
            println!("Unlocked {org}/{user}: the lockout ends at the next login, also in a running server.");
            Ok(())
        }),
        Some(Command::Token(TokenCommand::Create { org, user, json, db })) => open(&db, |_| {}).and_then(|app| {
            let new = cli::create_token(&app, &org, &user)?;
            match json {
                true => println!("{}", serde_json::to_string(&new).unwrap_or_default()),
                false => println!(
                    "New REST token of {}/{}. It is shown once; keep it safe:\n  token:     {}",
                    new.org, new.username, new.token
                ),
            }
            Ok(())
        }),
        Some(Command::Backup(cmd)) => backup(cmd),
        Some(Command::Migrate { to, json, dirs }) => migrate(dirs, to, json),
        Some(cmd @ (Command::Export { .. } | Command::Import { .. } | Command::Output { .. })) => transfer(cmd),
        Some(Command::Completions { shell }) => {
            // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ipamd", &mut script);
            write_out(&script)
        }
        Some(Command::Man) => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| Error::internal(format!("cannot render the man page: {e}")))
                .and_then(|()| write_out(&page))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipamd: {}", e.message);
            ExitCode::FAILURE
        }
    }
}

fn init(db: &Database, password: Option<String>, min_password_length: u32, json: bool) -> Result<(), Error> {
    let settings = settings_with(db, |_| {})?;
    let new = NewDatabase::note(&settings.db);
    let created =
        new.keep_if(Store::open(&settings.db).and_then(|store| cli::first_run(&store, password, min_password_length)))?;
    match created {
        Some(creds) => {
            print_credentials(&creds, json, "Initialised the database.");
            Ok(())
        }
        None => Err(Error::new(
            Code::Conflict,
            format!("{} is already initialised", settings.db.display()),
        )),
    }
}

fn serve(settings: Settings) -> Result<(), Error> {
    start_logging(&settings)?;
    // Refused here rather than by the delivery task, which could only log it and deliver nothing.
    ipamd::webhooks::Outbound::new(&settings).map_err(|e| Error::new(Code::BadRequest, e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        // Bound before the database is touched: a taken port or an unknown host leaves nothing behind.
        let listen = settings.listen.clone();
        let addrs: Vec<_> = tokio::net::lookup_host(&listen)
            .await
            .map_err(|e| {
                Error::new(
                    Code::Unavailable,
                    format!("cannot resolve the listen address {listen}: {e}"),
                )
            })?
            .collect();
        let listener = TcpListener::bind(&addrs[..])
            .await
            .map_err(|e| Error::new(Code::Unavailable, format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Error::internal(e.to_string()))?;
        let admin_password = settings.admin_password.clone();
        let min_password_length = settings.min_password_length;
        let new = NewDatabase::note(&settings.db);
        let opened = async {
            let app = App::open(settings, METHODS)?;
            let store = app.store.clone();
            let creds =
                tokio::task::spawn_blocking(move || cli::first_run(&store, admin_password, min_password_length))
                    .await
                    .map_err(|e| Error::internal(format!("first run: {e}")))??;
            Ok::<_, Error>((app, creds))
        }
        .await;
        let (app, creds) = new.keep_if(opened)?;
        // An unreachable Redis is reported now rather than met by the first call.
        if let Some(limiter) = &app.limiter {
            limiter.check_storage().await;
        }
        if let Some(creds) = creds {
            print_credentials(&creds, false, "First run: created the operator organisation.");
        }
        ipamd::logging::started(&app.settings, addr);
        println!("ipamd listening on http://{addr}");
        ipamd::server::run(listener, app, shutdown_signal())
            .await
            .map_err(|e| Error::internal(format!("server: {e}")))
    })
}

/// The files a first start or `init` may create for a database that did not exist, so that a failure (a full disk)
/// leaves none of them behind.
struct NewDatabase {
    /// The database and its journal files; empty when the database existed.
    files: Vec<PathBuf>,
    /// The directories that did not exist, innermost first.
    dirs: Vec<PathBuf>,
}

impl NewDatabase {
    fn note(db: &Path) -> NewDatabase {
        if db.exists() {
            return NewDatabase {
                files: Vec::new(),
                dirs: Vec::new(),
            };
        }
        let files = ["", "-wal", "-shm", "-journal"]
            .iter()
            .map(|suffix| {
                let mut name = OsString::from(db.as_os_str());
                name.push(suffix);
                PathBuf::from(name)
            })
            .collect();
        let dirs = db
            .ancestors()
            .skip(1)
            .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
            .map(Path::to_path_buf)
            .collect();
        NewDatabase { files, dirs }
    }

    /// `result`, after removing what was created when it is an error.
    fn keep_if<T>(self, result: Result<T, Error>) -> Result<T, Error> {
        if result.is_err() {
            for file in &self.files {
                let _ = std::fs::remove_file(file);
            }
            // Only directories left empty: nothing someone else put there is removed.
            for dir in &self.dirs {
                let _ = std::fs::remove_dir(dir);
            }
        }
        result
    }
}

/// The settings of a command that works on the database file directly: the environment's and the config file's,
/// with the command's database over them. The database must exist: only `serve` and `init` create one,
/// so a command run in the wrong directory says where it looked instead of leaving an empty database there.
fn local(db: &Database) -> Result<Settings, Error> {
    let settings = settings_with(db, |_| {})?;
    if !settings.db.is_file() && !Store::names_postgres(&settings.db) {
        let looked = std::path::absolute(&settings.db).unwrap_or_else(|_| settings.db.clone());
        return Err(Error::new(
            Code::NotFound,
            format!(
                "no database at {}: point --db (or IPAMD_DB, or `db` in the config file) at the server's database, \
                 or create one with `ipamd init`",
                looked.display()
            ),
        ));
    }
    Ok(settings)
}

/// The environment's and the config file's settings with the command's database and `adjust` over them; starts the
/// log with them.
fn settings_with(db: &Database, adjust: impl FnOnce(&mut Settings)) -> Result<Settings, Error> {
    let mut settings = Settings::from_env().map_err(|e| Error::new(Code::BadRequest, e.to_string()))?;
    settings.db = db.db.clone();
    adjust(&mut settings);
    start_logging(&settings)?;
    Ok(settings)
}

/// The app of a command that calls methods on an existing database (`adjust` sets its own flags).
fn open(db: &Database, adjust: impl FnOnce(&mut Settings)) -> Result<App, Error> {
    let mut settings = local(db)?;
    adjust(&mut settings);
    App::open(settings, METHODS)
}

/// Runs a `backups/*` method through the dispatcher as the command line, and prints its reply.
fn backup(cmd: BackupCommand) -> Result<(), Error> {
    let dirs = match &cmd {
        BackupCommand::List { dirs, .. }
        | BackupCommand::Create { dirs }
        | BackupCommand::Verify { dirs, .. }
        | BackupCommand::Restore { dirs, .. } => dirs.clone(),
    };
    let BackupDirs { db, backup_dir } = dirs;
    let app = open(&db, |s| s.backup_dir = backup_dir)?;
    let local = || handler::Credentials::Local;
    let reply = match cmd {
        BackupCommand::List { json, .. } => return list_backups(&app, json),
        BackupCommand::Create { .. } => cli::call(&app, local(), "backups/add", json!({}))?,
        BackupCommand::Verify { name, .. } => cli::call(&app, local(), "backups/verify", json!({"name": name}))?,
        BackupCommand::Restore { name, yes, .. } => {
            if !yes
                && !confirm(&format!(
                    "Replace every record in {} with backup {name}? (a safety backup of the live data is taken first)",
                    app.settings.db.display()
                ))?
            {
                return Err(Error::new(Code::Conflict, "restore cancelled: nothing changed"));
            }
            cli::call(&app, local(), "backups/restore", json!({"name": name}))?
        }
    };
    println!("{}", serde_json::to_string_pretty(&reply).unwrap_or_default());
    match &reply {
        Reply::Verified(v) if !v.integrity.integrity_ok => Err(Error::new(
            Code::InvalidBackup,
            format!("backup {} failed its check: {}", v.name, v.integrity.integrity_message),
        )),
        _ => Ok(()),
    }
}

/// `ipamd migrate`: the database copied into the empty one `to` names, through a backup in the backup directory.
fn migrate(dirs: BackupDirs, to: PathBuf, json: bool) -> Result<(), Error> {
    let BackupDirs { db, backup_dir } = dirs;
    let source = open(&db, |s| s.backup_dir = backup_dir.clone())?;
    let target_db = Database { db: to };
    // A SQLite target made here is removed again when the copy fails.
    let new = NewDatabase::note(&target_db.db);
    let migrated = new.keep_if(
        settings_with(&target_db, |s| s.backup_dir = backup_dir)
            .and_then(|settings| App::open(settings, METHODS))
            .and_then(|target| cli::migrate(&source, &target)),
    )?;
    if !json {
        println!(
            "Copied {} into {} through backup {}. Rows of each table:",
            ipamd::logging::redact(&source.settings.db.to_string_lossy()),
            ipamd::logging::redact(&target_db.db.to_string_lossy()),
            migrated.backup
        );
    }
    let rows = migrated
        .tables
        .iter()
        .map(|t| [t.table.clone(), t.backup.to_string(), t.target.to_string()]);
    print_list(json, &migrated, ["TABLE", "BACKUP", "TARGET"], rows);
    Ok(())
}

/// Prints every backup, newest first, a page of `backups/get` at a time.
fn list_backups(app: &App, json: bool) -> Result<(), Error> {
    let mut backups: Vec<Backup> = Vec::new();
    for page in 1.. {
        let data = json!({"page": page, "perpage": 1000});
        let Reply::Backups(list) = cli::call(app, handler::Credentials::Local, "backups/get", data)? else {
            return Err(Error::internal("backups/get answered no list"));
        };
        let last = list.page.is_none_or(|p| p.page >= p.pages);
        backups.extend(list.records.0);
        if last {
            break;
        }
    }
    #[derive(Serialize)]
    struct Shown<'a> {
        name: &'a str,
        size_bytes: u64,
        created_at: &'a str,
    }
    let shown: Vec<Shown> = backups
        .iter()
        .map(|b| Shown {
            name: &b.name,
            size_bytes: b.size_bytes,
            created_at: &b.created_at,
        })
        .collect();
    let rows = shown
        .iter()
        .map(|b| [b.name.to_string(), b.size_bytes.to_string(), b.created_at.to_string()]);
    print_list(json, &shown, ["NAME", "BYTES", "CREATED"], rows);
    Ok(())
}

fn write_out(bytes: &[u8]) -> Result<(), Error> {
    std::io::stdout()
        .write_all(bytes)
        .map_err(|e| Error::internal(format!("cannot write to standard output: {e}")))
}

/// `ipamd export`, `import` and `output`: methods called as the user the command names.
fn transfer(cmd: Command) -> Result<(), Error> {
    match cmd {
        Command::Export {
            who,
            scope,
            format,
            output,
            db,
        } => {
            let app = open(&db, |_| {})?;
            let mut out = destination(output.as_deref())?;
            let rows = cli::export(&app, &who.org, &who.user, scope_params(&scope), &format, &mut out)?;
            if output.is_some() {
                eprintln!("Exported {rows} rows.");
            }
            Ok(())
        }
        Command::Import {
            who,
            file,
            format,
            source,
            group,
            dry_run,
            json,
            db,
        } => {
            let app = open(&db, |_| {})?;
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Error::new(Code::BadRequest, format!("cannot read {}: {e}", file.display())))?;
            let format = format.unwrap_or_else(|| {
                let json = file.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
                if json { "json" } else { "csv" }.to_string()
            });
            let params = serde_json::json!({"format": format, "source": source, "group": group, "dry_run": dry_run,
                                            "data": text});
            let report = cli::import(&app, &who.org, &who.user, params)?;
            if json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
                return Ok(());
            }
            for row in report.rows.iter().filter(|r| dry_run || r.action == "refused") {
                let errors: Vec<String> = row
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.column.as_deref().unwrap_or("row"), e.message))
                    .collect();
                println!("row {}: {} {} {}", row.row, row.kind, row.action, errors.join("; "));
            }
            let what = if dry_run {
                "Dry run, nothing changed"
            } else {
                "Imported"
            };
            println!(
                "{what}: {} created, {} updated, {} refused.",
                report.created, report.updated, report.refused
            );
            match report.refused {
                0 => Ok(()),
                n => Err(Error::new(Code::InvalidParams, format!("{n} rows would be refused"))),
            }
        }
        Command::Output {
            who,
            scope,
            format,
            zone,
            ttl,
            ns,
            output,
            db,
        } => {
            let app = open(&db, |_| {})?;
            let mut params = scope_params(&scope);
            params["format"] = format.into();
            params["zone"] = zone.into();
            params["ttl"] = ttl.into();
            params["ns"] = ns.into();
            let credentials = ipamd::handler::Credentials::LocalUser {
                org: who.org,
                username: who.user,
            };
            let generated = match cli::call(&app, credentials, "output/get", params)? {
                Reply::Generated(g) => g,
                _ => return Err(Error::internal("output/get answered no configuration")),
            };
            for s in &generated.skipped {
                eprintln!("skipped record {} ({}): {}", s.id, s.ip, s.reason);
            }
            let mut out = destination(output.as_deref())?;
            out.write_all(generated.text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Error::internal(format!("cannot write the configuration: {e}")))
        }
        _ => Err(Error::internal("not a transfer command")),
    }
}

/// The `subnet` or `group` parameter of a scope (none: the whole org).
fn scope_params(scope: &ipamd::config::Scope) -> serde_json::Value {
    match (scope.network, scope.group) {
        (Some(n), _) => serde_json::json!({"subnet": n}),
        (None, Some(g)) => serde_json::json!({"group": g}),
        (None, None) => serde_json::json!({}),
    }
}

/// Where a command writes: the file `path` (created or truncated), else standard output; buffered.
fn destination(path: Option<&std::path::Path>) -> Result<Box<dyn Write>, Error> {
    Ok(match path {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(|e| {
            Error::new(Code::BadRequest, format!("cannot create {}: {e}", p.display()))
        })?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

/// Asks `question` on the terminal; without one (a script), refuses: `--yes` is how a script confirms.
fn confirm(question: &str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            Code::Conflict,
            "restore replaces everything: confirm with --yes (standard input is not a terminal to ask on)",
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::internal(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// Prints `items` as one JSON array, or `rows` as a table under `header` with its columns aligned.
fn print_list<const N: usize>(
    json: bool,
    items: &impl Serialize,
    header: [&str; N],
    rows: impl Iterator<Item = [String; N]>,
) {
    if json {
        println!("{}", serde_json::to_string(items).unwrap_or_default());
        return;
    }
    let rows: Vec<[String; N]> = std::iter::once(header.map(str::to_string)).chain(rows).collect();
    let widths: Vec<usize> = (0..N)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn print_credentials(creds: &Credentials, json: bool, headline: &str) {
    if json {
        println!("{}", serde_json::to_string(creds).unwrap_or_default());
    } else {
        println!(
            "{headline} These credentials are shown once; keep them safe:\n{}",
            creds.text()
        );
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down: draining in-flight requests");
}

/// Starts the log with the settings' format, filter and request log; a value it cannot use stops the command.
fn start_logging(settings: &Settings) -> Result<(), Error> {
    ipamd::logging::setup(settings).map_err(|e| Error::new(Code::BadRequest, e))
}
