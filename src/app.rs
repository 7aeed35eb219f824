//! The shared application state: one cheap-to-clone handle given to every connection and every call.

use std::sync::Arc;

use crate::auth::Auth;
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{Code, Error, Result};
use crate::handler::Method;
use crate::idempotency::InFlight;
use crate::ratelimit::Limiter;
use crate::slots::Slots;
use crate::store::Store;

#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub auth: Arc<Auth>,
    /// The [`Auth::token_key`]s of the `API_TOKENS` operator tokens; the tokens themselves are not kept.
    pub operator_tokens: Arc<Vec<[u8; 32]>>,
    /// `None` when rate limiting is off.
    pub limiter: Option<Arc<Limiter>>,
    /// The connection slots of the server that serves this app (`server::run`).
    pub slots: Arc<Slots>,
    /// Where every expiry, window and stamp reads the time; `auth` and `limiter` hold copies of it.
    pub clock: Clock,
    /// The method table the dispatcher serves (`methods::METHODS`), handed in by whoever builds the app, so the
    /// dispatcher stands on the handlers' vocabulary without importing the handlers.
    pub methods: &'static [Method],
    /// The idempotency keys of the writes in flight in this process.
    pub in_flight: Arc<InFlight>,
}

impl App {
    /// Opens the store (creating and migrating it) and prepares the authentication state, to serve `methods`, on
    /// the system clock.
    pub fn open(settings: Settings, methods: &'static [Method]) -> Result<App> {
        App::open_with_clock(settings, methods, Clock::System)
    }

    /// [`App::open`] with the time read from `clock`: a test's manual clock.
    pub fn open_with_clock(settings: Settings, methods: &'static [Method], clock: Clock) -> Result<App> {
        let store = Store::open(&settings.db)?;
        let auth = Auth::new(
            clock.clone(),
            settings.auth_cache_ttl(),
            settings.lockout_attempts,
            settings.lockout_window(),
        )?;
        let operator_tokens = settings.operator_tokens().iter().map(|t| auth.token_key(t)).collect();
        let limiter = Limiter::new(
            settings.ratelimit_enabled,
            &settings.api_rate_limit,
            &settings.ratelimit_storage_uri,
            clock.clone(),
        )
        .map_err(|e| Error::new(Code::BadRequest, e))?
        .map(Arc::new);
        let slots = Arc::new(Slots::new(
            settings.max_connections as usize,
            settings.max_connections_per_address as usize,
        ));
        Ok(App {
            slots,
            store,
            settings: Arc::new(settings),
            auth: Arc::new(auth),
            operator_tokens: Arc::new(operator_tokens),
            limiter,
            clock,
            methods,
            in_flight: Arc::default(),
        })
    }
}
