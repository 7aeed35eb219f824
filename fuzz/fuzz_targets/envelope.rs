//! `rpc::decode` on any body, raw or as a form, for any method name.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/it/decoders.rs"]
mod decoders;

fuzz_target!(|input: (bool, &str, &[u8])| {
    let (form, method, body) = input;
    decoders::check_envelope(method, body, form);
});
