//! The invariants the fuzz targets check, kept in a library so that `cargo test` (stable) can
//! replay the seed corpus through exactly the same checks.
//!
//! # Layout
//! - [`check_client_request`]: `decode_request` never panics, its error details and the `Debug`
//!   of what it decodes do not depend on secret text (`<password>`, dialog `<text>`).
//! - [`check_agent_response`]: `decode_launch_session_resp` round-trips through its encoder, and
//!   the session tag (the connect tag a client needs) never shows in errors or `Debug`.
//! - [`check_settings`]: settings parsing never panics, errors name the file, and re-serialising
//!   the raw settings changes nothing the broker would use. Settings come from the
//!   `interstate-config` crate, a leaf, so this crate does not build wasmtime (the `interstate`
//!   crate pulls it in).
//!
//! # The secret-independence check
//! A decoder could leak a secret by quoting it in an error or a `Debug` string. Rather than
//! search for the secret (short secrets occur in any text by chance), each check decodes the
//! input twice: as given, and with every secret's text changed character by character (letters
//! and digits only, so the XML stays exactly as well- or ill-formed as before, at the same byte
//! offsets). Whatever the decoder reports must then be identical.

use std::ops::Range;
use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::Event;

use interstate_config::{RawSettings, Settings};
use interstate_protocol::{
    ClientRequest, decode_launch_session_resp, decode_request, encode_launch_session_resp,
    encode_reply,
};

/// The element names whose text is a secret in client requests.
pub const CLIENT_SECRETS: &[&str] = &["password", "text", "old-password", "new-password"];

/// The element names whose text is a secret in agent answers.
pub const AGENT_SECRETS: &[&str] = &["session-tag"];

/// The byte ranges of the first text of each element named in `names`, when that text is
/// non-empty ASCII letters and digits. Found with quick-xml (the decoder's own tokenizer), so
/// a `<password>` inside an attribute, a comment or CDATA is not mistaken for one.
pub fn secret_spans(input: &[u8], names: &[&str]) -> Vec<Range<usize>> {
    let mut reader = Reader::from_reader(input);
    let mut spans = Vec::new();
    let mut in_secret = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                in_secret = names
                    .iter()
                    .any(|name| start.name().as_ref() == name.as_bytes());
            }
            Ok(Event::Text(text)) if in_secret => {
                in_secret = false;
                // The event borrows from `input`, so its address gives its offset exactly (the
                // reader's own position does not count a skipped byte order mark).
                let content: &[u8] = &text;
                let start = (content.as_ptr() as usize).wrapping_sub(input.as_ptr() as usize);
                let span = start..start.saturating_add(content.len());
                if input.get(span.clone()) == Some(content)
                    && !content.is_empty()
                    && content.iter().all(u8::is_ascii_alphanumeric)
                {
                    spans.push(span);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => in_secret = false,
        }
    }
    spans
}

/// `input` with every byte in `spans` replaced by a different letter or digit.
pub fn rotate(input: &[u8], spans: &[Range<usize>]) -> Vec<u8> {
    let mut out = input.to_vec();
    for span in spans {
        for byte in &mut out[span.clone()] {
            *byte = match *byte {
                b'z' => b'a',
                b'Z' => b'A',
                b'9' => b'0',
                other => other + 1,
            };
        }
    }
    out
}

/// Checks `decode_request` on `data`; panics on a violated invariant.
pub fn check_client_request(data: &[u8]) {
    let first = decode_request(data);
    match &first {
        Ok(request) => {
            let debug = format!("{request:?}");
            if let ClientRequest::Authenticate(_) | ClientRequest::UpdatePassword(_) =
                &request.message
            {
                let shown = format!("{:?}", request.message);
                assert!(
                    !shown.contains("password: \"") && !shown.contains("value: \""),
                    "a secret field printed as a plain string: {shown}"
                );
            }
            assert!(
                data.windows(request.root.as_str().len())
                    .any(|w| w == request.root.as_str().as_bytes()),
                "the decoded root is not in the input"
            );
            let spans = secret_spans(data, CLIENT_SECRETS);
            if !spans.is_empty() {
                let second = decode_request(&rotate(data, &spans))
                    .expect("changing secret text made a valid request invalid");
                assert_eq!(
                    debug,
                    format!("{second:?}"),
                    "Debug of a request shows secret text"
                );
            }
        }
        Err(error) => {
            let reply = encode_reply(error.reply_root(), &error.reply());
            assert!(
                std::str::from_utf8(&reply).is_ok(),
                "the error reply is not UTF-8"
            );
            let spans = secret_spans(data, CLIENT_SECRETS);
            if !spans.is_empty() {
                let second = decode_request(&rotate(data, &spans))
                    .expect_err("changing secret text made an invalid request valid");
                assert_eq!(
                    error, &second,
                    "a decode error depends on secret text (it may quote it)"
                );
            }
        }
    }
}

/// Checks `decode_launch_session_resp` on `data`; panics on a violated invariant.
pub fn check_agent_response(data: &[u8]) {
    let first = decode_launch_session_resp(data);
    let spans = secret_spans(data, AGENT_SECRETS);
    let second = (!spans.is_empty()).then(|| decode_launch_session_resp(&rotate(data, &spans)));
    match (&first, second) {
        (Ok(resp), second) => {
            let encoded = encode_launch_session_resp(resp);
            let again = decode_launch_session_resp(&encoded)
                .unwrap_or_else(|e| panic!("our own encoding does not decode: {e}"));
            assert_eq!(resp, &again, "encode/decode is not a round trip");
            assert_eq!(encoded, encode_launch_session_resp(&again));
            if let Some(second) = second {
                let second = second.expect("changing the session tag made an answer invalid");
                assert_eq!(
                    format!("{resp:?}"),
                    format!("{second:?}"),
                    "Debug shows the session tag"
                );
            }
        }
        (Err(error), second) => {
            assert!(error.root.is_none(), "agent answers have no client root");
            if let Some(second) = second {
                let second =
                    second.expect_err("changing the session tag made an invalid answer valid");
                assert_eq!(error, &second, "a decode error depends on the session tag");
            }
        }
    }
}

/// Checks settings parsing on `text`; panics on a violated invariant.
pub fn check_settings(text: &str) {
    let origin = Path::new("fuzz-settings.json");
    let raw = RawSettings::parse(text, origin);
    let full = Settings::parse(text, origin);
    assert_eq!(
        raw.is_ok() || full.is_ok(),
        raw.is_ok(),
        "Settings::parse accepted what RawSettings::parse refused"
    );
    if let Err(error) = &full {
        let message = error.to_string();
        assert!(
            message.starts_with("fuzz-settings.json: "),
            "a settings error does not name the file: {message}"
        );
    }
    let Ok(raw) = raw else {
        return;
    };
    let printed = serde_json::to_string(&raw).expect("raw settings always serialise");
    let reparsed = RawSettings::parse(&printed, origin)
        .unwrap_or_else(|e| panic!("re-serialised settings do not parse: {e}\n{printed}"));
    let reprinted = serde_json::to_string(&reparsed).expect("raw settings always serialise");
    assert_eq!(
        printed, reprinted,
        "serialising raw settings is not a fixpoint"
    );
    let again = Settings::parse(&printed, origin);
    assert_eq!(
        format!("{full:?}"),
        format!("{again:?}"),
        "re-serialised settings validate differently"
    );
}
