//! Reading answers from any broker with quick-xml: the root element, the message element, the
//! texts of an element name, the listed resources. Brokers differ in whitespace, attribute order
//! and empty-element style, so nothing here depends on them.
//!
//! Reading is lenient, as a checker's must be: a malformed document yields what was read before
//! the fault. Entity references outside the five predefined ones and character references are
//! kept as written.

use quick_xml::Reader;
use quick_xml::events::{BytesRef, Event};

/// One desktop from a `get-resource-list-resp`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedResource {
    /// `resource-id`.
    pub id: String,
    /// `resource-name`.
    pub name: String,
}

/// What the walk over a document reports.
enum Item<'a> {
    /// An element opened at `depth` (the root is at depth 0).
    Open { name: &'a str, depth: usize },
    /// Text (already unescaped) inside the innermost open element.
    Text(&'a str),
    /// The element opened at `depth` closed.
    Close { depth: usize },
}

/// Walks `xml` and hands every item to `visit`, which returns false to stop early.
fn walk(xml: &str, mut visit: impl FnMut(Item<'_>) -> bool) {
    let mut reader = Reader::from_str(xml.trim_start_matches('\u{feff}'));
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = false;
    config.trim_text(false);
    let mut depth = 0_usize;
    loop {
        let keep_going = match reader.read_event() {
            Ok(Event::Start(start)) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                depth += 1;
                visit(Item::Open {
                    name: &name,
                    depth: depth - 1,
                })
            }
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                visit(Item::Close { depth })
            }
            Ok(Event::Text(text)) => match text.decode() {
                Ok(text) => visit(Item::Text(&text)),
                Err(_) => false,
            },
            Ok(Event::CData(cdata)) => match cdata.decode() {
                Ok(text) => visit(Item::Text(&text)),
                Err(_) => false,
            },
            Ok(Event::GeneralRef(reference)) => visit(Item::Text(&resolve(&reference))),
            Ok(Event::Eof) | Err(_) => false,
            Ok(_) => true,
        };
        if !keep_going {
            return;
        }
    }
}

/// Expands the five predefined entities and character references; anything else stays as
/// written (`&name;`).
fn resolve(reference: &BytesRef<'_>) -> String {
    if let Ok(Some(c)) = reference.resolve_char_ref() {
        return c.to_string();
    }
    let raw = String::from_utf8_lossy(reference.as_ref());
    match raw.as_ref() {
        "lt" => "<".into(),
        "gt" => ">".into(),
        "amp" => "&".into(),
        "apos" => "'".into(),
        "quot" => "\"".into(),
        other => format!("&{other};"),
    }
}

/// The name of the document's root element (a byte order mark, the XML declaration, comments
/// and a document type are skipped).
pub fn root_element(xml: &str) -> Option<String> {
    let mut found = None;
    walk(xml, |item| match item {
        Item::Open { name, .. } => {
            found = Some(name.to_owned());
            false
        }
        _ => true,
    });
    found.filter(|name| !name.is_empty())
}

/// The first child element of the root: the message name (`hello-resp`, `error-resp`, ...).
pub fn message_element(xml: &str) -> Option<String> {
    let mut found = None;
    walk(xml, |item| match item {
        Item::Open { name, depth: 1 } => {
            found = Some(name.to_owned());
            false
        }
        Item::Close { depth: 0 } => false,
        _ => true,
    });
    found
}

/// The texts of every `<name>` element, in order, entities decoded, untrimmed (text of nested
/// elements included). An empty element gives an empty text.
pub fn all_texts(xml: &str, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut open: Option<(usize, String)> = None;
    walk(xml, |item| {
        match item {
            Item::Open { name: n, depth } if open.is_none() && n == name => {
                open = Some((depth, String::new()));
            }
            Item::Text(text) => {
                if let Some((_, collected)) = &mut open {
                    collected.push_str(text);
                }
            }
            Item::Close { depth } if open.as_ref().is_some_and(|(at, _)| *at == depth) => {
                if let Some((_, text)) = open.take() {
                    found.push(text);
                }
            }
            _ => {}
        }
        true
    });
    found
}

/// The text of the first `<name>` element, untrimmed, entities decoded; `None` when there is
/// none.
pub fn element_text(xml: &str, name: &str) -> Option<String> {
    all_texts(xml, name).into_iter().next()
}

/// The trimmed texts of every `<name>` element, in order (the domains of a `hello-resp`, ...).
pub fn texts(xml: &str, name: &str) -> Vec<String> {
    all_texts(xml, name)
        .into_iter()
        .map(|text| text.trim().to_owned())
        .collect()
}

/// The resources of a `get-resource-list-resp`, in order.
pub fn resources(xml: &str) -> Vec<ListedResource> {
    let mut found = Vec::new();
    // The resource being read (its depth), and the field being read in it.
    let mut resource: Option<(usize, ListedResource)> = None;
    let mut field: Option<(usize, bool, String)> = None;
    walk(xml, |item| {
        match item {
            Item::Open {
                name: "resource",
                depth,
            } if resource.is_none() => {
                resource = Some((
                    depth,
                    ListedResource {
                        id: String::new(),
                        name: String::new(),
                    },
                ));
            }
            Item::Open { name, depth } if resource.is_some() && field.is_none() => {
                if name == "resource-id" || name == "resource-name" {
                    field = Some((depth, name == "resource-id", String::new()));
                }
            }
            Item::Text(text) => {
                if let Some((_, _, collected)) = &mut field {
                    collected.push_str(text);
                }
            }
            Item::Close { depth } if field.as_ref().is_some_and(|(at, _, _)| *at == depth) => {
                if let (Some((_, is_id, text)), Some((_, listed))) = (field.take(), &mut resource) {
                    let text = text.trim().to_owned();
                    if is_id {
                        listed.id = text;
                    } else {
                        listed.name = text;
                    }
                }
            }
            Item::Close { depth } if resource.as_ref().is_some_and(|(at, _)| *at == depth) => {
                if let Some((_, listed)) = resource.take() {
                    found.push(listed);
                }
            }
            Item::Close { .. } => {}
            Item::Open { .. } => {}
        }
        true
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_messages_are_found() {
        let xml = "\u{feff}<?xml version=\"1.0\"?>\n<!-- hi -->\n<pcoip-client version=\"2.1\">\n  <hello-resp/></pcoip-client>";
        assert_eq!(root_element(xml).as_deref(), Some("pcoip-client"));
        assert_eq!(message_element(xml).as_deref(), Some("hello-resp"));
        assert_eq!(root_element("{\"json\": 1}"), None);
        assert_eq!(message_element("<a></a>"), None);
    }

    #[test]
    fn resources_are_listed_with_entities_decoded() {
        let xml = "<r><get-resource-list-resp><result><result-id>LIST_SUCCESSFUL</result-id></result>\
            <resource><resource-name>Shared &lt;R&amp;D&gt; host</resource-name><resource-id>1</resource-id>\
            <resource-type session-type=\"VDI\">DESKTOP</resource-type></resource>\
            <resource>\n<resource-id>b&#38;c</resource-id><resource-name>Two</resource-name></resource>\
            </get-resource-list-resp></r>";
        let found = resources(xml);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "Shared <R&D> host");
        assert_eq!(found[0].id, "1");
        assert_eq!(found[1].id, "b&c");
        assert_eq!(texts("<a>x &bogus; y</a>", "a"), ["x &bogus; y"]);
    }

    #[test]
    fn texts_skip_longer_names_and_read_empty_elements() {
        let xml = "<domains><domain>EXAMPLE</domain><domain/><domain> R&amp;D </domain></domains>";
        assert_eq!(texts(xml, "domain"), ["EXAMPLE", "", "R&D"]);
        assert!(texts("<x/>", "domain").is_empty());
        let xml = "<a><result-id>OK</result-id><b attr=\"1\">x</b><c/></a>";
        assert_eq!(element_text(xml, "result-id").as_deref(), Some("OK"));
        assert_eq!(element_text(xml, "b").as_deref(), Some("x"));
        assert_eq!(element_text(xml, "c").as_deref(), Some(""));
        assert_eq!(element_text(xml, "d"), None);
        assert_eq!(
            element_text("<a><![CDATA[<x>]]></a>", "a").as_deref(),
            Some("<x>")
        );
    }

    #[test]
    fn malformed_documents_give_what_came_before_the_fault() {
        assert_eq!(texts("<a><b>1</b><b>2</b><oops", "b"), ["1", "2"]);
        assert_eq!(
            element_text("<pcoip-agent version=\"1.0\"><oops", "x"),
            None
        );
    }
}
