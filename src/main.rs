//! The `ipamd` binary: parse the settings, then serve or run one command-line task.

use std::process::ExitCode;

/// glibc's malloc spent a quarter of the server's CPU under load (arena contention across threads); mimalloc
/// does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use tokio::net::TcpListener;

use ipamd::app::App;
use ipamd::cli::{self, Credentials};
use ipamd::config::{BackupCommand, Cli, Command, OrgCommand, Settings};
use ipamd::dispatch;
use ipamd::error::{Code, Error};
use ipamd::handler::{self, Call};
use ipamd::methods::METHODS;
use ipamd::store::Store;

fn main() -> ExitCode {
    let args = Cli::parse();
    if let Err(e) = ipamd::logging::setup(&args.settings) {
        eprintln!("ipamd: {e}");
        return ExitCode::FAILURE;
    }
    let result = match args.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(args.settings),
        Command::Init { password, json } => init(&args.settings, password, json),
        Command::Org(OrgCommand::Add {
            identifier,
            admin,
            password,
            description,
            json,
        }) => Store::open(&args.settings.db)
            .and_then(|store| cli::create_org(&store, &identifier, &description, &admin, password, false))
            .map(|creds| print_credentials(&creds, json, &format!("Created org '{identifier}'."))),
        Command::Backup(cmd) => backup(args.settings, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipamd: {}", e.message);
            ExitCode::FAILURE
        }
    }
}

fn init(settings: &Settings, password: Option<String>, json: bool) -> Result<(), Error> {
    let store = Store::open(&settings.db)?;
    let password = password.or_else(|| settings.admin_password.clone());
    match cli::first_run(&store, password)? {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let listen = settings.listen;
        let admin_password = settings.admin_password.clone();
        let app = App::open(settings, METHODS)?;
        // An unreachable Redis is reported now rather than met by the first call.
        if let Some(limiter) = &app.limiter {
            limiter.check_storage().await;
        }
        let store = app.store.clone();
        let creds = tokio::task::spawn_blocking(move || cli::first_run(&store, admin_password))
            .await
            .map_err(|e| Error::internal(format!("first run: {e}")))??;
        if let Some(creds) = creds {
            print_credentials(&creds, false, "First run: created the operator organisation.");
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| Error::new(Code::Unavailable, format!("cannot listen on {listen}: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Error::internal(e.to_string()))?;
        ipamd::logging::started(&app.settings, addr);
        println!("ipamd listening on http://{addr}");
        ipamd::server::run(listener, app, shutdown_signal())
            .await
            .map_err(|e| Error::internal(format!("server: {e}")))
    })
}

/// Runs a `backups/*` method through the dispatcher as the command line, and prints its reply as JSON.
fn backup(settings: Settings, cmd: BackupCommand) -> Result<(), Error> {
    let (method, data) = match cmd {
        BackupCommand::List => ("backups/get", serde_json::json!({"perpage": 1000})),
        BackupCommand::Create => ("backups/add", serde_json::json!({})),
        BackupCommand::Verify { name } => ("backups/verify", serde_json::json!({"name": name})),
        BackupCommand::Restore { name } => ("backups/restore", serde_json::json!({"name": name})),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the runtime: {e}")))?;
    let app = App::open(settings, METHODS)?;
    let call = Call {
        method: method.into(),
        credentials: handler::Credentials::Local,
        data,
    };
    let reply = runtime.block_on(dispatch::dispatch(&app, call)).result?;
    println!("{}", serde_json::to_string_pretty(&reply).unwrap_or_default());
    Ok(())
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
