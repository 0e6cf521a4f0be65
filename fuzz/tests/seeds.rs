//! Replays the committed seeds through the fuzz targets' invariants (stable toolchain), so a
//! broken invariant or a seed that trips one shows up in `cargo test` without nightly.

use std::path::Path;

use interstate_fuzz::{
    AGENT_SECRETS, CLIENT_SECRETS, check_agent_response, check_client_request, check_settings,
    rotate, secret_spans,
};

#[test]
fn spans_cover_only_plain_secret_text() {
    let input = b"<a x='<password>no'><!--<password>no--><b><![CDATA[<password>no]]></b>\
        <password>abc9Z</password><text do-not-log='1'>12</text><password/><password>a&amp;</password></a>";
    let spans = secret_spans(input, CLIENT_SECRETS);
    let texts: Vec<&[u8]> = spans.iter().map(|span| &input[span.clone()]).collect();
    assert_eq!(texts, [&b"abc9Z"[..], b"12", b"a"]);
    let rotated = rotate(input, &spans);
    assert_eq!(&rotated[spans[0].clone()], b"bcd0A");
    assert_eq!(rotated.len(), input.len());

    let with_bom = b"\xef\xbb\xbf<a><session-tag>23</session-tag></a>";
    let spans = secret_spans(with_bom, AGENT_SECRETS);
    assert_eq!(spans.len(), 1);
    assert_eq!(
        &with_bom[spans[0].clone()],
        b"23",
        "a byte order mark shifts nothing"
    );
}

#[test]
fn seeds_hold_every_invariant() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut seen = 0;
    for (target, check) in [
        ("client_request", check_client_request as fn(&[u8])),
        ("agent_response", check_agent_response),
        ("settings", |data: &[u8]| {
            if let Ok(text) = std::str::from_utf8(data) {
                check_settings(text);
            }
        }),
    ] {
        for entry in std::fs::read_dir(root.join(target)).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            check(&data);
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} seeds");
}
