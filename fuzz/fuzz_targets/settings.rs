//! Settings parsing on arbitrary UTF-8: see `interstate_fuzz::check_settings`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        interstate_fuzz::check_settings(text);
    }
});
