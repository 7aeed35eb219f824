//! Every setting of ipamd: command-line flags with matching environment variables and keys of the config file,
//! parsed once in `main` ([`parse`]), and the subcommands.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ipamd",
    version,
    about = "IP address management server",
    long_about = "IP address management server. With no command it serves (`ipamd serve`), and takes the server's \
                  flags as `serve` does.",
    after_help = "Each server flag also reads the environment variable in brackets, and the config file's key of its \
                  name (`--max-split` is `max_split` or `max-split`); a flag wins over the environment, the \
                  environment over the file. RUST_LOG filters the log lines (default `info`, e.g. \
                  `RUST_LOG=ipamd=debug`)."
)]
pub struct Cli {
    /// A TOML file of settings, one key per server flag (`listen = "0.0.0.0:5000"`); flags and the environment
    /// override it.
    #[arg(long, env = "IPAMD_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default). Creates the database and the operator org on first run.
    Serve(Box<Settings>),
    /// Create the database and the operator org, its admin, an app key and a REST token.
    Init {
        /// The admin's password (default: generated, 24 characters).
        #[arg(long, env = "IPAMD_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Print the credentials as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
        #[command(flatten)]
        passwords: Passwords,
    },
    /// Manage organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Recover a user's access: a new password, or the end of a lockout.
    #[command(subcommand)]
    User(UserCommand),
    /// Create REST tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Backups of the database in the backup directory.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Copy every record of the database into another, empty database of either engine (SQLite or PostgreSQL):
    /// a backup of this one, restored into the other. Prints the rows copied of each table.
    Migrate {
        /// The target database: a SQLite file (created when missing) or a postgres:// URL of an existing
        /// database. It must hold no organisation.
        #[arg(long)]
        to: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dirs: BackupDirs,
    },
    /// Export networks, hosts and DHCP ranges (of the org, a network or a group's subtree) as CSV or JSON, page by
    /// page in constant memory; progress on a terminal.
    Export {
        #[command(flatten)]
        who: ActingAs,
        #[command(flatten)]
        scope: Scope,
        /// csv or json.
        #[arg(long, default_value = "csv", value_parser = ["csv", "json"])]
        format: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        db: Database,
    },
    /// Import networks, hosts and DHCP ranges from a CSV or JSON file, all or nothing (at most 100,000 rows);
    /// --dry-run reports what each row would do. Progress on a terminal.
    Import {
        #[command(flatten)]
        who: ActingAs,
        /// The file to read (CSV, or JSON rows when it ends in .json or with --format json).
        file: PathBuf,
        /// csv or json (default: json for a file ending in .json, else csv).
        #[arg(long, value_parser = ["csv", "json"])]
        format: Option<String>,
        /// Whose columns the file uses: ipamd (an `ipamd export`), phpipam or netbox.
        #[arg(long, default_value = "ipamd", value_parser = ["ipamd", "phpipam", "netbox"])]
        source: String,
        /// The group of new networks whose row names none.
        #[arg(long)]
        group: Option<i64>,
        /// Report what each row would do; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
    /// Generate DNS or DHCP server configuration from the hosts of the org, a network or a group's subtree.
    Output {
        #[command(flatten)]
        who: ActingAs,
        #[command(flatten)]
        scope: Scope,
        /// dnsmasq, kea4, kea6, bind, bind-reverse or bind-delegation.
        #[arg(long)]
        format: String,
        /// The forward zone (bind), or the domain of names without one (bind-reverse).
        #[arg(long)]
        zone: Option<String>,
        /// The records' TTL in seconds (bind formats).
        #[arg(long)]
        ttl: Option<i64>,
        /// The name servers of RFC 2317 delegated zones, comma-separated (bind-delegation).
        #[arg(long)]
        ns: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        db: Database,
    },
    /// Print a shell completion script (e.g. `ipamd completions bash > /etc/bash_completion.d/ipamd`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; e.g. `ipamd man | man -l -`).
    Man,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// List the backups, newest first: a table, or with --json an array of {name, size_bytes, created_at}.
    List {
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        dirs: BackupDirs,
    },
    /// Take an online backup and verify it.
    Create {
        #[command(flatten)]
        dirs: BackupDirs,
    },
    /// Check a backup's integrity; exits non-zero when it fails.
    Verify {
        /// The backup's name, as `backup list` prints it.
        name: String,
        #[command(flatten)]
        dirs: BackupDirs,
    },
    /// Replace the live data with a backup (after a safety backup of the live data). Asks first on a terminal.
    Restore {
        /// The backup's name, as `backup list` prints it.
        name: String,
        /// Restore without asking (required when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        dirs: BackupDirs,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org with its first admin, one app key and one REST token.
    Add {
        /// The org identifier, the prefix of `userdata` ([a-z0-9._-]{1,64}).
        identifier: String,
        /// The first admin's username.
        #[arg(long)]
        admin: String,
        /// The admin's password (default: generated, 24 characters).
        #[arg(long)]
        password: Option<String>,
        /// A description of the org.
        #[arg(long, default_value = "")]
        description: String,
        /// Print the credentials as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
        #[command(flatten)]
        passwords: Passwords,
    },
    /// List the organisations: a table, or with --json an array of {id, identifier, description, operator, created}.
    List {
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Give a user a new password, printed once; it applies at once, also in a running server.
    ResetPassword {
        /// The org's identifier.
        org: String,
        /// The user's username.
        user: String,
        /// The new password (default: generated, 24 characters).
        #[arg(long)]
        password: Option<String>,
        /// Print the new credentials as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
        #[command(flatten)]
        passwords: Passwords,
    },
    /// End a user's lockout after failed logins, also in a running server.
    Unlock {
        /// The org's identifier.
        org: String,
        /// The user's username.
        user: String,
        #[command(flatten)]
        db: Database,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a REST token for a user, printed once; it carries the user's org and level.
    Create {
        /// The org's identifier.
        org: String,
        /// The user's username.
        user: String,
        /// Print the token as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Database,
    },
}

/// The user a command acts as: its org and username (no password: the command holds the database file).
#[derive(Debug, Clone, Args)]
pub struct ActingAs {
    /// The org's identifier.
    #[arg(long)]
    pub org: String,
    /// The username to act as: the audit log names them, and their level applies.
    #[arg(long)]
    pub user: String,
}

/// What an export or generated configuration covers: one network, a group's subtree, or (neither) the org.
#[derive(Debug, Clone, Args)]
pub struct Scope {
    /// One network, by id.
    #[arg(long, conflicts_with = "group")]
    pub network: Option<i64>,
    /// A group and the groups below it, by id.
    #[arg(long)]
    pub group: Option<i64>,
}

/// The database file of the commands that work on it directly; the same flag, variable and default as the
/// server's (a unit test keeps them alike).
#[derive(Debug, Clone, Args)]
pub struct Database {
    /// SQLite database file, which only `serve` and `init` create; or a postgres:// URL (preview).
    #[arg(long, env = "IPAMD_DB", default_value = "ipam.db", hide_env_values = true)]
    pub db: PathBuf,
}

/// The database and the backup directory, for `ipamd backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupDirs {
    #[command(flatten)]
    pub db: Database,
    /// Directory of the backups; created when missing.
    #[arg(long, env = "BACKUP_DIR", default_value = "backups")]
    pub backup_dir: PathBuf,
}

/// The password rule of the commands that set a password.
#[derive(Debug, Clone, Args)]
pub struct Passwords {
    /// The shortest password accepted (in characters) where one is set: init, org add, user reset-password and the
    /// API's users/add and users/edit.
    #[arg(long, env = "IPAMD_MIN_PASSWORD_LENGTH", default_value = "12", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub min_password_length: u32,
}

/// The server's settings: the flags of `serve` (and of `ipamd` with no command). Each has an environment variable
/// and is a key of the config file; a setting added here is in all three with no other code.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on: IP:PORT, HOST:PORT (resolved at start) or a bare PORT (127.0.0.1:PORT).
    #[arg(long, env = "IPAMD_LISTEN", default_value = "127.0.0.1:5000", value_parser = parse_listen)]
    pub listen: String,
    /// SQLite database file, created (with its directory) when missing; or a postgres:// URL (preview).
    #[arg(long, env = "IPAMD_DB", default_value = "ipam.db", hide_env_values = true)]
    pub db: PathBuf,
    /// Directory of the backups; created when missing.
    #[arg(long, env = "BACKUP_DIR", default_value = "backups")]
    pub backup_dir: PathBuf,
    /// Comma-separated operator tokens for the REST API (admin of the operator org).
    #[arg(long, env = "API_TOKENS", default_value = "", hide_env_values = true)]
    pub api_tokens: String,
    /// Whether new address records are marked assigned when the request does not say.
    #[arg(long, env = "HOST_ASSIGN_ON_CREATE", default_value = "true", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub host_assign_on_create: bool,
    /// Enable rate limiting.
    #[arg(long, env = "RATELIMIT_ENABLED", default_value = "true", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub ratelimit_enabled: bool,
    /// Rate limit per caller, e.g. "200 per minute" or "10/second".
    #[arg(long, env = "API_RATE_LIMIT", default_value = "200 per minute")]
    pub api_rate_limit: String,
    /// Rate limiter storage: memory:// or redis://host:port/db.
    #[arg(long, env = "RATELIMIT_STORAGE_URI", default_value = "memory://")]
    pub ratelimit_storage_uri: String,
    /// Log format: text or json.
    #[arg(long, env = "IPAMD_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Password of the first admin, for unattended installs.
    #[arg(long, env = "IPAMD_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// The shortest password accepted (in characters) where one is set in clear: the first admin's and the API's
    /// users/add and users/edit (a client-side `hash` cannot be measured).
    #[arg(long, env = "IPAMD_MIN_PASSWORD_LENGTH", default_value = "12", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub min_password_length: u32,
    /// Failed logins for one user within the lockout window that trigger a lockout.
    #[arg(long, env = "IPAMD_LOCKOUT_ATTEMPTS", default_value = "10")]
    pub lockout_attempts: u32,
    /// Lockout window and duration, in seconds.
    #[arg(long, env = "IPAMD_LOCKOUT_SECONDS", default_value = "300")]
    pub lockout_seconds: u64,
    /// Most app keys one user may own.
    #[arg(long, env = "IPAMD_MAX_APPKEYS_PER_USER", default_value = "10", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_appkeys_per_user: u32,
    /// Most REST tokens one user may own.
    #[arg(long, env = "IPAMD_MAX_TOKENS_PER_USER", default_value = "10", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tokens_per_user: u32,
    /// How long a successful password verification is remembered, in seconds (0 disables the cache).
    #[arg(long, env = "IPAMD_AUTH_CACHE_SECONDS", default_value = "300")]
    pub auth_cache_seconds: u64,
    /// Most children one subnets/split may create.
    #[arg(long, env = "IPAMD_MAX_SPLIT", default_value = "256")]
    pub max_split: u32,
    /// Seconds a client gets to send its request headers; also how long an idle keep-alive connection stays open.
    #[arg(long = "header-timeout-secs", env = "IPAMD_HEADER_TIMEOUT", default_value = "10", value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,
    /// Seconds a client gets to send its request body.
    #[arg(long = "body-timeout-secs", env = "IPAMD_BODY_TIMEOUT", default_value = "30", value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_secs: u64,
    /// Most connections served at once. When none is free, the connection idle the longest is closed to make room;
    /// when every one is busy, further clients wait in the listen backlog.
    #[arg(long, env = "IPAMD_MAX_CONNECTIONS", default_value = "1024", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Most connections one client address may hold (0: as many as IPAMD_MAX_CONNECTIONS). Past it, the address's
    /// longest-idle connection is closed to make room, or the new one when all of them are busy. Behind a reverse
    /// proxy every client has the proxy's address: raise it to IPAMD_MAX_CONNECTIONS there.
    #[arg(long, env = "IPAMD_MAX_CONNECTIONS_PER_ADDRESS", default_value = "256")]
    pub max_connections_per_address: u32,
    /// How long the answer of a write with an idempotency key (`Idempotency-Key`, `requestkey`) is kept for its
    /// retries, in seconds.
    #[arg(long, env = "IPAMD_IDEMPOTENCY_SECONDS", default_value = "86400", value_parser = clap::value_parser!(u64).range(1..))]
    pub idempotency_seconds: u64,
    /// Log filter: a level (trace, debug, info, warn, error, off) or target=level directives, comma-separated.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
    /// The request log, one line per request: stderr (with the rest of the log), off, or a file to append to.
    #[arg(long, env = "IPAMD_REQUEST_LOG", default_value = "stderr")]
    pub request_log: String,
    /// Serve Prometheus metrics at GET /metrics on the listen address (no credentials asked).
    #[arg(long, env = "IPAMD_METRICS", default_value = "false", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub metrics: bool,
    /// Minutes a web UI session may stay unused before it ends (the idle timeout).
    #[arg(long, env = "IPAMD_UI_IDLE_MINUTES", default_value = "30", value_parser = clap::value_parser!(u64).range(1..=10_080))]
    pub ui_idle_minutes: u64,
    /// Hours a web UI session lasts at most, however busy (the absolute timeout).
    #[arg(long, env = "IPAMD_UI_SESSION_HOURS", default_value = "12", value_parser = clap::value_parser!(u64).range(1..=8_760))]
    pub ui_session_hours: u64,
    /// Mark the web UI's session cookie `Secure` (sent over HTTPS only). ipamd speaks plain HTTP: set this when a
    /// TLS-terminating proxy serves it. A request whose `X-Forwarded-Proto` is `https` gets a `Secure` cookie anyway.
    #[arg(long, env = "IPAMD_UI_SECURE_COOKIE", default_value = "false", value_parser = parse_bool, action = clap::ArgAction::Set)]
    pub ui_secure_cookie: bool,

    /// Days the change feed and the webhook delivery log keep an entry; older ones are purged in small batches as
    /// new changes are written. A feed cursor older than what is kept is answered `cursor_expired`.
    #[arg(long, env = "IPAMD_FEED_RETENTION_DAYS", default_value = "30", value_parser = clap::value_parser!(u64).range(1..))]
    pub feed_retention_days: u64,
    /// Most seconds a change-feed call waits for a change (`wait`); longer waits are cut to this. Kept below the
    /// 30 s drain at shutdown.
    #[arg(long, env = "IPAMD_FEED_MAX_WAIT", default_value = "25")]
    pub feed_max_wait: u64,
    /// Where webhooks may deliver: comma-separated CIDRs and host names. Empty: any public (globally routable)
    /// address. Loopback, private and link-local addresses are reached only when a listed CIDR holds them.
    #[arg(long, env = "IPAMD_WEBHOOK_ALLOW", default_value = "")]
    pub webhook_allow: String,
    /// A PEM file of CA certificates that https webhook receivers' certificates may also chain to, besides the
    /// public roots built in (Mozilla's): for receivers with certificates of a private CA. Empty: none.
    #[arg(long, env = "IPAMD_WEBHOOK_CA_FILE", default_value = "")]
    pub webhook_ca_file: String,
    /// Milliseconds a webhook receiver gets to connect and answer one delivery.
    #[arg(long, env = "IPAMD_WEBHOOK_TIMEOUT_MS", default_value = "10000", value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_timeout_ms: u64,
    /// Milliseconds before the first retry of a failed delivery; each further retry waits twice as long (at most an
    /// hour), with jitter.
    #[arg(long, env = "IPAMD_WEBHOOK_RETRY_MS", default_value = "5000", value_parser = clap::value_parser!(u64).range(1..))]
    pub webhook_retry_ms: u64,
    /// Attempts of one delivery before it is marked failed.
    #[arg(long, env = "IPAMD_WEBHOOK_ATTEMPTS", default_value = "10", value_parser = clap::value_parser!(u32).range(1..))]
    pub webhook_attempts: u32,
}

impl Settings {
    /// Settings with every default, for tests and embedding.
    pub fn defaults() -> Settings {
        match Settings::from_env() {
            Ok(settings) => settings,
            // The defaults above are constants; failing here means the table above is broken.
            Err(e) => unreachable!("default settings do not parse: {e}"),
        }
    }

    /// The settings of the environment (and so of the config file, see [`parse`]) over the defaults: what the
    /// commands other than `serve` run with, apart from their own flags.
    pub fn from_env() -> Result<Settings, clap::Error> {
        Cli::try_parse_from(["ipamd"]).map(|cli| cli.settings)
    }

    pub fn lockout_window(&self) -> Duration {
        Duration::from_secs(self.lockout_seconds)
    }

    pub fn auth_cache_ttl(&self) -> Duration {
        Duration::from_secs(self.auth_cache_seconds)
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }

    /// The operator tokens of `API_TOKENS`, blanks dropped.
    pub fn operator_tokens(&self) -> Vec<String> {
        self.api_tokens
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Accepts the boolean spellings people put in environment files.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("not a boolean: '{other}'")),
    }
}

/// Checks a listen address: `IP:PORT` and `HOST:PORT` as given (a host name is resolved at start), a bare `PORT` as
/// `127.0.0.1:PORT`.
pub fn parse_listen(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(format!("127.0.0.1:{port}"));
    }
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(s.to_string());
    }
    match s.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() && valid_host(host) => Ok(s.to_string()),
        _ => Err(format!(
            "'{s}' is not IP:PORT, HOST:PORT or a port (e.g. 127.0.0.1:5000, localhost:5000, 5000)"
        )),
    }
}

/// A host name as DNS spells one: dot-separated labels of letters, digits and hyphens.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
        })
}

/// Parses the command line, with the config file (`--config`, `IPAMD_CONFIG`) under the environment and the flags.
///
/// The file's keys are the long names of [`Settings`]' flags (`-` or `_`), each checked by that flag's own value
/// parser; every accepted value is then handed to clap as the flag's environment variable, where the environment
/// has none, so clap applies one order everywhere: flag, environment, file, default. The variables are set before
/// anything else runs (no other thread exists yet).
pub fn parse() -> Result<Cli, String> {
    let cli = parse_args();
    let Some(path) = cli.config.clone() else {
        return Ok(cli);
    };
    for (var, value) in file_settings(&path)? {
        if std::env::var_os(&var).is_none() {
            std::env::set_var(var, value);
        }
    }
    Ok(parse_args())
}

/// The command line, or clap's answer (help, version, a usage error) and exit. A server flag given before a
/// command is refused: it belongs to `serve`, and the command would not see it.
fn parse_args() -> Cli {
    let mut cmd = Cli::command();
    let matches = cmd.get_matches_mut();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit());
    if matches.subcommand().is_some() {
        // The whole command, `org list` say, for the message.
        let mut name = Vec::new();
        let mut at = &matches;
        while let Some((sub, sub_matches)) = at.subcommand() {
            name.push(sub);
            at = sub_matches;
        }
        let name = name.join(" ");
        let early = cmd
            .get_arguments()
            .filter(|a| a.get_id() != "config")
            .find(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
            .and_then(|a| a.get_long());
        if let Some(long) = early {
            let message = format!("--{long} goes after the command: `ipamd {name} --{long} …` (where it takes it)");
            cmd.error(ErrorKind::ArgumentConflict, message).exit();
        }
    }
    cli
}

/// The settings of the config file at `path`, as (environment variable, value), each value checked.
fn file_settings(path: &Path) -> Result<Vec<(String, String)>, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the config file {shown}: {e}"))?;
    // Only the message and the line: toml's own rendering quotes the line, which may hold a secret.
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map_or(0, |span| text[..span.start.min(text.len())].lines().count().max(1));
        format!("{shown}, line {line}: {}", e.message().trim())
    })?;
    let cmd = Settings::augment_args(clap::Command::new("ipamd"));
    let flags: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| a.get_env().is_some()).collect();
    let mut seen = HashSet::new();
    let mut settings = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let Some(arg) = flags.iter().find(|a| a.get_long() == Some(name.as_str())) else {
            let near = flags
                .iter()
                .filter_map(|a| a.get_long())
                .map(|long| (strsim::jaro(&name, long), long))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, long)| format!(" (did you mean `{}`?)", long.replace('-', "_")))
                .unwrap_or_default();
            return Err(format!("{shown}: unknown key `{key}`{near}"));
        };
        if !seen.insert(arg.get_id().clone()) {
            return Err(format!("{shown}: `{key}` is given twice"));
        }
        let value = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => return Err(format!("{shown}: `{key}` must be a string, a number or a boolean")),
        };
        // The flag's own parser, run on the flag alone.
        let alone = clap::Command::new("ipamd").no_binary_name(true).arg((*arg).clone());
        if let Err(e) = alone.try_get_matches_from([format!("--{name}={value}")]) {
            // The reason alone: clap's message names the flag and repeats the value, which may be a secret.
            let reason = std::error::Error::source(&e).map_or_else(|| "invalid value".to_string(), |r| r.to_string());
            return Err(match arg.is_hide_env_values_set() {
                true => format!("{shown}: `{key}`: {reason}"),
                false => format!("{shown}: `{key}` = {value:?}: {reason}"),
            });
        }
        if let Some(var) = arg.get_env().and_then(OsStr::to_str) {
            settings.push((var.to_string(), value));
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command and argument below `cmd`, with the path that reaches it.
    fn walk<'a>(cmd: &'a clap::Command, path: String, out: &mut Vec<(String, &'a clap::Arg)>) {
        for arg in cmd.get_arguments() {
            out.push((path.clone(), arg));
        }
        for sub in cmd.get_subcommands() {
            walk(sub, format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_argument_has_help() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut args = Vec::new();
        walk(&cmd, "ipamd".into(), &mut args);
        let missing: Vec<String> = args
            .iter()
            .filter(|(_, a)| a.get_help().is_none_or(|h| h.to_string().trim().is_empty()))
            .map(|(path, a)| format!("{path} {}", a.get_id()))
            .collect();
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
        assert!(args.len() > 40, "the walk found the arguments: {}", args.len());
    }

    /// A command's flag that is also a server setting (`--db`, `--backup-dir`, the password rule, `init
    /// --password`) reads the same environment variable with the same default, so the config file and the
    /// environment mean the same thing to every command.
    #[test]
    fn the_commands_share_the_servers_variables_and_defaults() {
        let mut cmd = Cli::command();
        cmd.build();
        let settings: Vec<&clap::Arg> = cmd.get_arguments().filter(|a| a.get_env().is_some()).collect();
        let mut args = Vec::new();
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "serve") {
            walk(sub, sub.get_name().into(), &mut args);
        }
        let mut shared = 0;
        for (path, arg) in args
            .iter()
            .filter(|(_, a)| a.get_env().is_some() && a.get_id() != "config")
        {
            let server = settings
                .iter()
                .find(|s| s.get_env() == arg.get_env())
                .unwrap_or_else(|| panic!("{path} {}: a variable no server setting reads", arg.get_id()));
            assert_eq!(
                arg.get_default_values(),
                server.get_default_values(),
                "{path} {}",
                arg.get_id()
            );
            shared += 1;
        }
        assert!(shared >= 8, "{shared}");
    }

    /// A server setting is a flag of `serve` only: a global one would be shown and accepted by every command, which
    /// ignores it. Each has an environment variable, so it is also a key of the config file.
    #[test]
    fn server_settings_are_flags_of_serve_with_a_variable() {
        let cmd = Settings::augment_args(clap::Command::new("ipamd"));
        for arg in cmd.get_arguments() {
            assert!(!arg.is_global_set(), "--{:?} is global", arg.get_long());
            assert!(
                arg.get_env().is_some(),
                "--{:?} has no environment variable",
                arg.get_long()
            );
        }
    }

    #[test]
    fn listen_takes_addresses_host_names_and_bare_ports() {
        assert_eq!(parse_listen("5733").unwrap(), "127.0.0.1:5733");
        assert_eq!(parse_listen("0.0.0.0:80").unwrap(), "0.0.0.0:80");
        assert_eq!(parse_listen("[::1]:5000").unwrap(), "[::1]:5000");
        assert_eq!(parse_listen("localhost:5733").unwrap(), "localhost:5733");
        assert_eq!(parse_listen("ipam.example.org:443").unwrap(), "ipam.example.org:443");
        for bad in [
            "",
            "localhost",
            "localhost:99999",
            ":80",
            "a b:80",
            "-x:80",
            "70000",
            "::1:5000x",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad}");
        }
    }
}
