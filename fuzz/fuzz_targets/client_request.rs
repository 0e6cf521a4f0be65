//! `decode_request` on arbitrary bytes: see `interstate_fuzz::check_client_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| interstate_fuzz::check_client_request(data));
