//! `decode_launch_session_resp` on arbitrary bytes: see `interstate_fuzz::check_agent_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| interstate_fuzz::check_agent_response(data));
