//! Fixture access and an XML canonical form for comparing shapes.

use std::path::PathBuf;

use quick_xml::Reader;
use quick_xml::events::Event;

/// `testdata/<relative>`.
pub fn path(relative: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata")).join(relative)
}

/// The bytes of `testdata/<relative>`.
pub fn read(relative: &str) -> Vec<u8> {
    let path = path(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Compares `actual` with the golden file `testdata/replies/<name>` byte for byte, or rewrites
/// it when `INTERSTATE_BLESS=1`.
pub fn assert_golden(name: &str, actual: &[u8]) {
    let path = path(&format!("replies/{name}"));
    if std::env::var_os("INTERSTATE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with INTERSTATE_BLESS=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected),
        "golden file {name} differs"
    );
}

/// A document as a flat list of tokens: elements with sorted attributes, and trimmed,
/// non-empty text. Layout, comments and the declaration are ignored, and `<a/>` equals
/// `<a></a>`.
pub fn canonical(xml: &[u8]) -> Vec<String> {
    let mut reader = Reader::from_reader(xml);
    let mut out = Vec::new();
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut Vec<String>| {
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            out.push(format!("text {trimmed}"));
        }
        text.clear();
    };
    loop {
        match reader.read_event().unwrap() {
            Event::Start(start) => {
                flush(&mut text, &mut out);
                out.push(start_token(&start));
            }
            Event::Empty(start) => {
                flush(&mut text, &mut out);
                out.push(start_token(&start));
                out.push(format!(
                    "end {}",
                    String::from_utf8_lossy(start.name().as_ref())
                ));
            }
            Event::End(end) => {
                flush(&mut text, &mut out);
                out.push(format!(
                    "end {}",
                    String::from_utf8_lossy(end.name().as_ref())
                ));
            }
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let name = r.decode().unwrap();
                let expanded = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::unescape(&format!("&{name};"))
                        .unwrap()
                        .into_owned(),
                };
                text.push_str(&expanded);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn start_token(start: &quick_xml::events::BytesStart<'_>) -> String {
    let mut attributes: Vec<String> = start
        .attributes()
        .map(|a| {
            let a = a.unwrap();
            format!(
                "{}={}",
                String::from_utf8_lossy(a.key.as_ref()),
                a.unescape_value().unwrap()
            )
        })
        .collect();
    attributes.sort();
    format!(
        "start {} {}",
        String::from_utf8_lossy(start.name().as_ref()),
        attributes.join(" ")
    )
}
