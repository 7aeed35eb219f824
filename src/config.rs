//! Every setting of ipamd: command-line flags with matching environment variables, parsed once in `main`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "ipamd", version, about = "IP address management server")]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default). Creates the database and the operator org on first run.
    Serve,
    /// Create the database and the operator org, its admin, an app key and a REST token.
    Init {
        /// The admin's password (default: generated, or IPAMD_ADMIN_PASSWORD).
        #[arg(long)]
        password: Option<String>,
        /// Print the credentials as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Manage organisations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Backups of the database in BACKUP_DIR.
    #[command(subcommand)]
    Backup(BackupCommand),
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// List the backups, newest first.
    List,
    /// Take an online backup and verify it.
    Create,
    /// Check a backup's integrity.
    Verify { name: String },
    /// Replace the live data with a backup (after a safety backup of the live data).
    Restore { name: String },
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
        /// The admin's password (default: generated).
        #[arg(long)]
        password: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        json: bool,
    },
}

/// Settings shared by every subcommand. Flags may come before or after the subcommand.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "IPAMD_LISTEN", default_value = "127.0.0.1:5000", global = true)]
    pub listen: SocketAddr,
    /// SQLite database file (created when missing).
    #[arg(long, env = "IPAMD_DB", default_value = "ipam.db", global = true)]
    pub db: PathBuf,
    /// Directory for backups.
    #[arg(long, env = "BACKUP_DIR", default_value = "backups", global = true)]
    pub backup_dir: PathBuf,
    /// Comma-separated operator tokens for the REST API (admin of the operator org).
    #[arg(long, env = "API_TOKENS", default_value = "", hide_env_values = true, global = true)]
    pub api_tokens: String,
    /// Whether new address records are marked assigned when the request does not say.
    #[arg(long, env = "HOST_ASSIGN_ON_CREATE", default_value = "true", value_parser = parse_bool, action = clap::ArgAction::Set, global = true)]
    pub host_assign_on_create: bool,
    /// Enable rate limiting.
    #[arg(long, env = "RATELIMIT_ENABLED", default_value = "true", value_parser = parse_bool, action = clap::ArgAction::Set, global = true)]
    pub ratelimit_enabled: bool,
    /// Rate limit per caller, e.g. "200 per minute" or "10/second".
    #[arg(long, env = "API_RATE_LIMIT", default_value = "200 per minute", global = true)]
    pub api_rate_limit: String,
    /// Rate limiter storage: memory:// or redis://host:port/db.
    #[arg(long, env = "RATELIMIT_STORAGE_URI", default_value = "memory://", global = true)]
    pub ratelimit_storage_uri: String,
    /// Log format: text or json.
    #[arg(long, env = "IPAMD_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    /// Password of the first admin, for unattended installs.
    #[arg(long, env = "IPAMD_ADMIN_PASSWORD", hide_env_values = true, global = true)]
    pub admin_password: Option<String>,
    /// Failed logins for one user within the lockout window that trigger a lockout.
    #[arg(long, env = "IPAMD_LOCKOUT_ATTEMPTS", default_value = "10", global = true)]
    pub lockout_attempts: u32,
    /// Lockout window and duration, in seconds.
    #[arg(long, env = "IPAMD_LOCKOUT_SECONDS", default_value = "300", global = true)]
    pub lockout_seconds: u64,
    /// Most app keys one user may own.
    #[arg(long, env = "IPAMD_MAX_APPKEYS_PER_USER", default_value = "10", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_appkeys_per_user: u32,
    /// Most REST tokens one user may own.
    #[arg(long, env = "IPAMD_MAX_TOKENS_PER_USER", default_value = "10", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_tokens_per_user: u32,
    /// How long a successful password verification is remembered, in seconds (0 disables the cache).
    #[arg(long, env = "IPAMD_AUTH_CACHE_SECONDS", default_value = "300", global = true)]
    pub auth_cache_seconds: u64,
    /// Most children one subnets/split may create.
    #[arg(long, env = "IPAMD_MAX_SPLIT", default_value = "256", global = true)]
    pub max_split: u32,
    /// Seconds a client gets to send its request headers; also how long an idle keep-alive connection stays open.
    #[arg(long = "header-timeout-secs", env = "IPAMD_HEADER_TIMEOUT", default_value = "10", value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub header_timeout_secs: u64,
    /// Seconds a client gets to send its request body.
    #[arg(long = "body-timeout-secs", env = "IPAMD_BODY_TIMEOUT", default_value = "30", value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub body_timeout_secs: u64,
    /// Most connections served at once. When none is free, the connection idle the longest is closed to make room;
    /// when every one is busy, further clients wait in the listen backlog.
    #[arg(long, env = "IPAMD_MAX_CONNECTIONS", default_value = "1024", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections: u32,
    /// Most connections one client address may hold (0: as many as IPAMD_MAX_CONNECTIONS). Past it, the address's
    /// longest-idle connection is closed to make room, or the new one when all of them are busy. Behind a reverse
    /// proxy every client has the proxy's address: raise it to IPAMD_MAX_CONNECTIONS there.
    #[arg(
        long,
        env = "IPAMD_MAX_CONNECTIONS_PER_ADDRESS",
        default_value = "256",
        global = true
    )]
    pub max_connections_per_address: u32,
    /// Days the change feed and the webhook delivery log keep an entry; older ones are purged in small batches as
    /// new changes are written. A feed cursor older than what is kept is answered `cursor_expired`.
    #[arg(long, env = "IPAMD_FEED_RETENTION_DAYS", default_value = "30", value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub feed_retention_days: u64,
    /// Most seconds a change-feed call waits for a change (`wait`); longer waits are cut to this. Kept below the
    /// 30 s drain at shutdown.
    #[arg(long, env = "IPAMD_FEED_MAX_WAIT", default_value = "25", global = true)]
    pub feed_max_wait: u64,
    /// Where webhooks may deliver: comma-separated CIDRs and host names. Empty: any public (globally routable)
    /// address. Loopback, private and link-local addresses are reached only when a listed CIDR holds them.
    #[arg(long, env = "IPAMD_WEBHOOK_ALLOW", default_value = "", global = true)]
    pub webhook_allow: String,
    /// Milliseconds a webhook receiver gets to connect and answer one delivery.
    #[arg(long, env = "IPAMD_WEBHOOK_TIMEOUT_MS", default_value = "10000", value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub webhook_timeout_ms: u64,
    /// Milliseconds before the first retry of a failed delivery; each further retry waits twice as long (at most an
    /// hour), with jitter.
    #[arg(long, env = "IPAMD_WEBHOOK_RETRY_MS", default_value = "5000", value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub webhook_retry_ms: u64,
    /// Attempts of one delivery before it is marked failed.
    #[arg(long, env = "IPAMD_WEBHOOK_ATTEMPTS", default_value = "10", value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub webhook_attempts: u32,
}

impl Settings {
    /// Settings with every default, for tests and embedding.
    pub fn defaults() -> Settings {
        match Cli::try_parse_from(["ipamd"]) {
            Ok(cli) => cli.settings,
            // The defaults above are constants; failing here means the table above is broken.
            Err(e) => unreachable!("default settings do not parse: {e}"),
        }
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
