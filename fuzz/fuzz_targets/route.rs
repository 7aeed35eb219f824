//! `rest::route` on any verb and path.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/it/decoders.rs"]
mod decoders;

fuzz_target!(|input: (u8, &str)| {
    let (verb, path) = input;
    let verb = decoders::VERBS[usize::from(verb) % decoders::VERBS.len()];
    decoders::check_route(verb, path);
});
