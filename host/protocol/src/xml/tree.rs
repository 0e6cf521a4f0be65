//! Reads a message body into a small element tree.
//!
//! Rules, all enforced here so the typed layers never see hostile input:
//! - no DTD (`<!DOCTYPE` is an error wherever it appears), so no entity can be declared;
//! - only the five predefined entities and numeric character references are expanded;
//! - invalid UTF-8, unclosed or mismatched elements, text or a second element after the root
//!   are errors;
//! - at most [`MAX_DEPTH`] levels and [`MAX_ELEMENTS`] elements.
//!
//! Error details name only elements of the protocol's vocabulary, never text content: a
//! malformed body may well have a password in it.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};

/// The deepest nesting accepted, counting the root as 1. Real messages need 5.
pub(crate) const MAX_DEPTH: usize = 32;

/// The most elements accepted in one message. Real messages have fewer than 100.
pub(crate) const MAX_ELEMENTS: usize = 4096;

/// One element: its name, attributes, direct text and child elements.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Element {
    /// The element name, prefix included.
    pub(crate) name: String,
    /// The attributes, unescaped, in document order.
    pub(crate) attributes: Vec<(String, String)>,
    /// The element's own text (text, CDATA and references, concatenated, untrimmed).
    pub(crate) text: String,
    /// The child elements in document order.
    pub(crate) children: Vec<Element>,
}

/// A parsed request may hold a password (in `<password>`'s text, or anywhere in a malformed
/// body), so every element wipes its text and attribute values when it is dropped.
impl Drop for Element {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.text.zeroize();
        for (_, value) in &mut self.attributes {
            value.zeroize();
        }
    }
}

impl Element {
    /// The value of attribute `name`.
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The only child named `name`; a second one is an error.
    pub(crate) fn child(&self, name: &str) -> Result<Option<&Element>, String> {
        let mut found = self.children.iter().filter(|child| child.name == name);
        let first = found.next();
        if first.is_some() && found.next().is_some() {
            return Err(format!("<{}> has more than one <{name}>", self.name));
        }
        Ok(first)
    }

    /// The trimmed text of the only child named `name`.
    pub(crate) fn child_text(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.child(name)?.map(|child| child.text.trim().to_owned()))
    }

    /// The trimmed text of the only child named `name`, or an empty string.
    pub(crate) fn text_or_empty(&self, name: &str) -> Result<String, String> {
        Ok(self.child_text(name)?.unwrap_or_default())
    }

    /// The trimmed text of the only child named `name`, which must be present.
    pub(crate) fn required_text(&self, name: &str) -> Result<String, String> {
        self.child_text(name)?
            .ok_or_else(|| format!("<{}> has no <{name}>", self.name))
    }

    /// The children named `name`.
    pub(crate) fn children_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }
}

/// Why a body could not be read as a tree.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TreeError {
    /// What went wrong, without any text content.
    pub(crate) detail: String,
    /// The root element's name and `version`, when its start tag was read.
    pub(crate) root: Option<(String, Option<String>)>,
}

/// Reads `body` into a tree and returns its root.
pub(crate) fn parse(body: &[u8]) -> Result<Element, TreeError> {
    let mut parser = Parser {
        stack: Vec::new(),
        root: None,
        root_start: None,
        elements: 0,
    };
    parser.run(body).map_err(|detail| TreeError {
        detail,
        root: parser.root_start.take(),
    })
}

struct Parser {
    stack: Vec<Element>,
    root: Option<Element>,
    root_start: Option<(String, Option<String>)>,
    elements: usize,
}

impl Parser {
    fn run(&mut self, body: &[u8]) -> Result<Element, String> {
        let mut reader = Reader::from_reader(body);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        loop {
            let position = reader.buffer_position();
            let event = reader
                .read_event()
                .map_err(|error| describe(&error, &self.stack, position))?;
            match event {
                Event::Start(start) => self.open(&start)?,
                Event::Empty(start) => {
                    self.open(&start)?;
                    self.close();
                }
                Event::End(_) => self.close(),
                Event::Text(text) => {
                    let text = text.decode().map_err(|_| invalid_utf8(position))?;
                    self.text(&text)?;
                }
                Event::CData(cdata) => {
                    let text = cdata.decode().map_err(|_| invalid_utf8(position))?;
                    self.text(&text)?;
                }
                Event::GeneralRef(reference) => {
                    let resolved = resolve(&reference)?;
                    self.text(&resolved)?;
                }
                Event::DocType(_) => {
                    return Err("document type declarations (DTDs) are not allowed".into());
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.last() {
            return Err(format!(
                "truncated message: {} is not closed",
                safe_name(&open.name)
            ));
        }
        self.root
            .take()
            .ok_or_else(|| "the body holds no XML element".to_owned())
    }

    fn open(&mut self, start: &BytesStart<'_>) -> Result<(), String> {
        if self.stack.is_empty() && self.root.is_some() {
            return Err("more than one root element".into());
        }
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            return Err(format!("the message has more than {MAX_ELEMENTS} elements"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!(
                "elements are nested deeper than {MAX_DEPTH} levels"
            ));
        }
        let name = std::str::from_utf8(start.name().as_ref())
            .map_err(|_| "an element name is not valid UTF-8".to_owned())?
            .to_owned();
        if self.stack.is_empty() {
            self.root_start = Some((name.clone(), None));
        }
        let mut attributes = Vec::new();
        for attribute in start.attributes() {
            let attribute =
                attribute.map_err(|_| format!("malformed attribute on {}", safe_name(&name)))?;
            let key = std::str::from_utf8(attribute.key.as_ref())
                .map_err(|_| "an attribute name is not valid UTF-8".to_owned())?
                .to_owned();
            // XML forbids a raw `<` in an attribute value; quick-xml lets it through, and with
            // it whole elements a broken client meant as markup (a `<password>`, say).
            if attribute.value.contains(&b'<') {
                return Err(format!(
                    "attribute value on {} holds a '<'",
                    safe_name(&name)
                ));
            }
            let value = attribute.unescape_value().map_err(|_| {
                format!(
                    "attribute value on {} is not valid UTF-8 or uses an undefined entity",
                    safe_name(&name)
                )
            })?;
            if let Some(bad) = value.chars().find(|c| !is_xml_char(*c)) {
                return Err(format!(
                    "attribute value on {} holds the forbidden character U+{:04X}",
                    safe_name(&name),
                    u32::from(bad)
                ));
            }
            attributes.push((key, value.into_owned()));
        }
        if let (true, Some((_, version))) = (self.stack.is_empty(), self.root_start.as_mut()) {
            *version = attributes
                .iter()
                .find(|(key, _)| key == "version")
                .map(|(_, value)| value.clone());
        }
        self.stack.push(Element {
            name,
            attributes,
            text: String::new(),
            children: Vec::new(),
        });
        Ok(())
    }

    fn close(&mut self) {
        // quick-xml checks that end tags match (`check_end_names`), so the stack cannot be
        // empty here; tolerate it anyway rather than panic.
        let Some(element) = self.stack.pop() else {
            return;
        };
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(element),
            None => self.root = Some(element),
        }
    }

    fn text(&mut self, text: &str) -> Result<(), String> {
        if let Some(bad) = text.chars().find(|c| !is_xml_char(*c)) {
            return Err(format!(
                "text holds the forbidden character U+{:04X}",
                u32::from(bad)
            ));
        }
        match self.stack.last_mut() {
            Some(element) => {
                element.text.push_str(text);
                Ok(())
            }
            None if text.chars().all(|c| c.is_whitespace() || c == '\u{feff}') => Ok(()),
            None => Err("text outside the root element".into()),
        }
    }
}

/// Expands a reference: the five predefined entities and numeric character references only.
fn resolve(reference: &BytesRef<'_>) -> Result<Cow<'static, str>, String> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(c)) if is_xml_char(c) => Ok(Cow::Owned(c.to_string())),
            _ => Err("invalid numeric character reference".into()),
        };
    }
    let expanded = match reference.as_ref() {
        b"lt" => "<",
        b"gt" => ">",
        b"amp" => "&",
        b"apos" => "'",
        b"quot" => "\"",
        _ => {
            return Err(
                "reference to an undefined entity (only the predefined ones are allowed)".into(),
            );
        }
    };
    Ok(Cow::Borrowed(expanded))
}

/// True for a character allowed in an XML 1.0 document.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

fn invalid_utf8(position: u64) -> String {
    format!("invalid UTF-8 near byte {position}")
}

fn describe(error: &quick_xml::Error, stack: &[Element], position: u64) -> String {
    use quick_xml::errors::{Error, IllFormedError};
    match error {
        Error::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => format!(
            "{} is not closed (found the end tag of {})",
            safe_name(expected),
            safe_name(found)
        ),
        Error::IllFormed(IllFormedError::UnmatchedEndTag(found)) => {
            format!("end tag of {} without a start tag", safe_name(found))
        }
        Error::IllFormed(IllFormedError::MissingEndTag(open)) => {
            format!("truncated message: {} is not closed", safe_name(open))
        }
        Error::Syntax(syntax) => match stack.last() {
            Some(open) => format!(
                "XML syntax error inside {} near byte {position}: {syntax}",
                safe_name(&open.name)
            ),
            None => format!("XML syntax error near byte {position}: {syntax}"),
        },
        Error::Encoding(_) => invalid_utf8(position),
        Error::Escape(_) => format!("invalid entity or character reference near byte {position}"),
        _ => format!("malformed XML near byte {position}"),
    }
}

/// Element names of the protocols. Details name only these; anything else could be text a
/// broken client failed to escape.
const VOCABULARY: &[&str] = &[
    "pcoip-client",
    "pcoip-broker",
    "pcoip-agent",
    "hello",
    "client-info",
    "pcm-info",
    "product-name",
    "product-version",
    "platform",
    "locale",
    "hostname",
    "serial-number",
    "device-name",
    "pcoip-unique-id",
    "caps",
    "cap",
    "server-address",
    "ip-address",
    "authenticate",
    "username",
    "password",
    "domain",
    "fields",
    "field",
    "id",
    "text",
    "button-id",
    "get-resource-list",
    "protocols",
    "protocol",
    "resource-types",
    "resource-type",
    "allocate-resource",
    "resource-id",
    "mac-address",
    "time-zone-windows",
    "bye",
    "reason",
    "launch-session",
    "launch-session-resp",
    "session-type",
    "logon",
    "client-mac",
    "client-ip",
    "client-name",
    "license-path",
    "session-log-id",
    "result-id",
    "session-info",
    "sni",
    "port",
    "session-id",
    "session-tag",
    "fail-reason",
];

/// `<name>` when `name` is a protocol element, else a placeholder.
pub(crate) fn safe_name(name: &str) -> String {
    if VOCABULARY.contains(&name) {
        format!("<{name}>")
    } else {
        "an element".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_text_references_and_cdata() {
        let root = parse(b"<a x='1&amp;2'>one &lt;&#x41;&#66;<![CDATA[<c>]]><b/></a>").unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.attribute("x"), Some("1&2"));
        assert_eq!(root.text, "one <AB<c>");
        assert_eq!(root.children.len(), 1);
    }

    #[test]
    fn rejects_what_the_rules_forbid() {
        let cases: &[&[u8]] = &[
            b"<!DOCTYPE a><a/>",
            b"<a><!DOCTYPE a></a>",
            b"<a>&foo;</a>",
            b"<a>&#0;</a>",
            b"<a>&#1;</a>",
            b"<a><b></a>",
            b"<a>",
            b"<a/><b/>",
            b"<a/>text",
            b"<a x=\"1<2\"/>",
            b"<a>\xff</a>",
            b"",
            b"not xml",
        ];
        for case in cases {
            assert!(parse(case).is_err(), "{}", String::from_utf8_lossy(case));
        }
    }

    #[test]
    fn details_never_quote_unknown_names() {
        let error =
            parse(b"<pcoip-client version='2.1'><password>ab<secret></password>").unwrap_err();
        assert!(!error.detail.contains("secret"), "{}", error.detail);
        assert_eq!(
            error.root,
            Some(("pcoip-client".into(), Some("2.1".into())))
        );
    }

    #[test]
    fn limits_depth_and_count() {
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(
            parse(deep.as_bytes())
                .unwrap_err()
                .detail
                .contains("nested")
        );
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse(ok.as_bytes()).is_ok());
        let many = format!("<a>{}</a>", "<b/>".repeat(MAX_ELEMENTS));
        assert!(
            parse(many.as_bytes())
                .unwrap_err()
                .detail
                .contains("elements")
        );
    }
}
