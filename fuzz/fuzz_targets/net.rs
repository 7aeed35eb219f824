//! The address, CIDR and MAC parsers on any string.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/it/decoders.rs"]
mod decoders;

fuzz_target!(|s: &str| {
    decoders::check_address(s);
    decoders::check_cidr(s);
    decoders::check_mac(s);
});
