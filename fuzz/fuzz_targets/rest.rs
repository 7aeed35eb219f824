//! Whole REST requests through the REST door (route, parameter building, dispatch, handler, rendering) as the
//! operator, on one scratch database that the inputs change as they go: never a server error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

use ipamd::app::App;
use ipamd::config::Settings;
use ipamd::methods::METHODS;

#[allow(dead_code)]
#[path = "../../tests/it/decoders.rs"]
mod decoders;

const TOKEN: &str = "fuzz-operator-token";

struct World {
    app: App,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::defaults();
        settings.db = dir.path().join("ipam.db");
        settings.backup_dir = dir.path().join("backups");
        settings.api_tokens = TOKEN.into();
        settings.ratelimit_enabled = false;
        let app = App::open(settings, METHODS).unwrap();
        ipamd::cli::first_run(
            &app.store,
            Some("fuzz-password".into()),
            app.settings.min_password_length,
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        World {
            app,
            runtime,
            _dir: dir,
        }
    })
}

fuzz_target!(|input: (u8, &str, &str, &[u8])| {
    let (verb, path, query, body) = input;
    let verb = decoders::VERBS[usize::from(verb) % decoders::VERBS.len()];
    let w = world();
    let answer = w
        .runtime
        .block_on(decoders::rest_answer(&w.app, verb, path, query, TOKEN, body));
    decoders::check_rest_answer(&format!("{verb} {path}?{query}"), &answer);
});
