//! The one error type shared by every handler and both front doors: a stable code, a human message and detail.

use serde_json::{Map, Value};

/// The stable error codes (methods.md, Errors). Each maps to one wire string and one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    InvalidParams,
    InvalidSubnet,
    InvalidSplit,
    NotContiguous,
    Overlap,
    Duplicate,
    NotEmpty,
    SubnetFull,
    Ambiguous,
    LastAdmin,
    WeakPassword,
    InvalidBackup,
    Conflict,
    TooLarge,
    QuotaExceeded,
    AuthRequired,
    AuthFailed,
    BadAppkey,
    AppkeyDisabled,
    AccountDisabled,
    AccessDenied,
    NotFound,
    /// A change-feed cursor older than what the feed keeps, or not of this database: the consumer must resync.
    CursorExpired,
    UnknownMethod,
    UnsupportedVersion,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyAttempts,
    RateLimited,
    Internal,
    Unavailable,
    /// A write with an idempotency key that a request still in flight holds.
    InProgress,
    /// An idempotency key used again for a different request.
    KeyReused,
    /// A write whose `If-Match` (or `version`) names a version the record no longer has.
    PreconditionFailed,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::InvalidParams => "invalid_params",
            Code::InvalidSubnet => "invalid_subnet",
            Code::InvalidSplit => "invalid_split",
            Code::NotContiguous => "not_contiguous",
            Code::Overlap => "overlap",
            Code::Duplicate => "duplicate",
            Code::NotEmpty => "not_empty",
            Code::SubnetFull => "subnet_full",
            Code::Ambiguous => "ambiguous",
            Code::LastAdmin => "last_admin",
            Code::WeakPassword => "weak_password",
            Code::InvalidBackup => "invalid_backup",
            Code::Conflict => "conflict",
            Code::TooLarge => "too_large",
            Code::QuotaExceeded => "quota_exceeded",
            Code::AuthRequired => "auth_required",
            Code::AuthFailed => "auth_failed",
            Code::BadAppkey => "bad_appkey",
            Code::AppkeyDisabled => "appkey_disabled",
            Code::AccountDisabled => "account_disabled",
            Code::AccessDenied => "access_denied",
            Code::NotFound => "not_found",
            Code::CursorExpired => "cursor_expired",
            Code::UnknownMethod => "unknown_method",
            Code::UnsupportedVersion => "unsupported_version",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::PayloadTooLarge => "payload_too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::TooManyAttempts => "too_many_attempts",
            Code::RateLimited => "rate_limited",
            Code::Internal => "internal_error",
            Code::Unavailable => "unavailable",
            Code::InProgress => "in_progress",
            Code::KeyReused => "key_reused",
            Code::PreconditionFailed => "precondition_failed",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Code::BadRequest
            | Code::InvalidParams
            | Code::InvalidSubnet
            | Code::InvalidSplit
            | Code::NotContiguous
            | Code::Overlap
            | Code::Duplicate
            | Code::NotEmpty
            | Code::SubnetFull
            | Code::Ambiguous
            | Code::LastAdmin
            | Code::WeakPassword
            | Code::InvalidBackup
            | Code::Conflict
            | Code::TooLarge
            | Code::QuotaExceeded => 400,
            Code::AuthRequired | Code::AuthFailed => 401,
            Code::BadAppkey | Code::AppkeyDisabled | Code::AccountDisabled | Code::AccessDenied => 403,
            Code::NotFound | Code::UnknownMethod | Code::UnsupportedVersion => 404,
            Code::MethodNotAllowed => 405,
            Code::CursorExpired => 410,
            Code::PayloadTooLarge => 413,
            Code::UnsupportedMediaType => 415,
            Code::TooManyAttempts | Code::RateLimited => 429,
            Code::Internal => 500,
            Code::Unavailable => 503,
            Code::InProgress => 409,
            Code::KeyReused => 422,
            Code::PreconditionFailed => 412,
        }
    }
}

/// The most entries an error's `errorData` keeps (see [`Error::with_data`]).
pub const MAX_ERROR_ENTRIES: usize = 100;

/// An error as the client sees it. `Internal` errors keep their detail for the log only.
#[derive(Debug, Clone)]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub data: Option<Value>,
    /// Seconds for the `Retry-After` header (429, 503).
    pub retry_after: Option<u64>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            data: None,
            retry_after: None,
        }
    }

    /// Sets the detail, cut to its first [`MAX_ERROR_ENTRIES`] entries: an error reply stays small whatever the
    /// request named (a `massdelete` of thousands of unknown ids). A cut object gains `"omitted"`, a cut list a last
    /// item `"omitted: <n>"`, counting what was left out.
    pub fn with_data(mut self, data: Value) -> Error {
        self.data = Some(match data {
            Value::Object(m) if m.len() > MAX_ERROR_ENTRIES => {
                let omitted = m.len() - MAX_ERROR_ENTRIES;
                let mut kept: Map<String, Value> = m.into_iter().take(MAX_ERROR_ENTRIES).collect();
                kept.insert("omitted".into(), Value::from(omitted));
                Value::Object(kept)
            }
            Value::Array(mut a) if a.len() > MAX_ERROR_ENTRIES => {
                let omitted = a.len() - MAX_ERROR_ENTRIES;
                a.truncate(MAX_ERROR_ENTRIES);
                a.push(Value::String(format!("omitted: {omitted}")));
                Value::Array(a)
            }
            other => other,
        });
        self
    }

    /// `too_large`: a call would return or change more than `limit` records at once; `errorData` `{"limit": n}`.
    pub fn too_large(message: impl Into<String>, limit: usize) -> Error {
        let mut data = Map::new();
        data.insert("limit".into(), Value::from(limit));
        Error::new(Code::TooLarge, message).with_data(Value::Object(data))
    }

    /// `invalid_params` naming one field.
    pub fn param(field: &str, message: impl Into<String>) -> Error {
        let message = message.into();
        let mut data = Map::new();
        data.insert(field.to_string(), Value::String(message.clone()));
        Error::new(Code::InvalidParams, format!("{field}: {message}")).with_data(Value::Object(data))
    }

    pub fn not_found(what: &str) -> Error {
        Error::new(Code::NotFound, format!("{what} not found"))
    }

    pub fn access_denied() -> Error {
        Error::new(Code::AccessDenied, "your level does not allow this")
    }

    pub fn internal(detail: impl Into<String>) -> Error {
        Error::new(Code::Internal, detail)
    }

    /// The message a client may see: internal details stay in the server log.
    pub fn public_message(&self) -> &str {
        match self.code {
            Code::Internal => "internal error",
            _ => &self.message,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    /// The database refusing to write for a reason outside ipamd is `unavailable`: read-only, full, locked by
    /// another program, or an I/O error (a file system remounted read-only fails writes with EROFS, which SQLite
    /// reports as `SQLITE_IOERR_WRITE`). Anything else is a bug, `internal_error`.
    fn from(e: rusqlite::Error) -> Error {
        use rusqlite::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(
                C::ReadOnly | C::DiskFull | C::DatabaseBusy | C::DatabaseLocked | C::CannotOpen | C::SystemIoFailure,
            ) => Error::new(Code::Unavailable, format!("the database is not available: {e}")),
            _ => Error::internal(format!("database: {e}")),
        }
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Error {
        Error::new(Code::Unavailable, format!("no database connection: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_data_keeps_its_first_entries_and_counts_the_rest() {
        let many: Map<String, Value> = (0..250).map(|i| (i.to_string(), json!("not found"))).collect();
        let e = Error::new(Code::NotFound, "x").with_data(Value::Object(many));
        let data = e.data.unwrap();
        assert_eq!(data.as_object().unwrap().len(), MAX_ERROR_ENTRIES + 1);
        assert_eq!(data["99"], json!("not found"));
        assert_eq!(data["omitted"], json!(150));
        let list = Error::new(Code::NotFound, "x").with_data(json!((0..101).collect::<Vec<_>>()));
        assert_eq!(
            list.data.unwrap().as_array().unwrap().last(),
            Some(&json!("omitted: 1"))
        );
        let few = Error::param("id", "must be an integer");
        assert_eq!(few.data, Some(json!({"id": "must be an integer"})));
    }
}
