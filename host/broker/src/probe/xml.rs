//! Just enough XML reading for checking answers from any broker: the root element, the listed
//! resources. Brokers differ in whitespace and attribute order, so nothing here depends on them.

use crate::client::element_text;

/// One desktop from a `get-resource-list-resp`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedResource {
    /// `resource-id`.
    pub id: String,
    /// `resource-name`.
    pub name: String,
}

/// The name of the document's root element, skipping a byte order mark, the XML declaration,
/// comments and whitespace.
pub fn root_element(xml: &str) -> Option<&str> {
    let mut rest = xml.trim_start_matches('\u{feff}');
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("<?") {
            rest = &after[after.find("?>")? + 2..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = &after[after.find("-->")? + 3..];
        } else if let Some(after) = rest.strip_prefix("<!") {
            rest = &after[after.find('>')? + 1..];
        } else {
            let after = rest.strip_prefix('<')?;
            let end = after
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(after.len());
            return Some(&after[..end]).filter(|name| !name.is_empty());
        }
    }
}

/// The first child element of the root: the message name (`hello-resp`, `error-resp`, ...).
pub fn message_element(xml: &str) -> Option<&str> {
    let root = root_element(xml)?;
    let start = xml.find(&format!("<{root}"))?;
    let after_root = start + xml[start..].find('>')? + 1;
    let rest = &xml[after_root..];
    let open = rest.find('<')?;
    let after = &rest[open + 1..];
    let end = after
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(after.len());
    Some(&after[..end]).filter(|name| !name.is_empty() && !name.starts_with('/'))
}

/// Replaces the five predefined entities and numeric character references.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The resources of a `get-resource-list-resp`, in order.
pub fn resources(xml: &str) -> Vec<ListedResource> {
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = find_open(rest, "resource") {
        let after = &rest[start..];
        let Some(end) = after.find("</resource>") else {
            break;
        };
        let block = &after[..end];
        found.push(ListedResource {
            id: element_text(block, "resource-id")
                .map(|t| unescape(t.trim()))
                .unwrap_or_default(),
            name: element_text(block, "resource-name")
                .map(|t| unescape(t.trim()))
                .unwrap_or_default(),
        });
        rest = &after[end + "</resource>".len()..];
    }
    found
}

/// The texts of every `<name>` element, in order, entities decoded.
pub fn texts(xml: &str, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    let close = format!("</{name}>");
    while let Some(start) = find_open(rest, name) {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        if after[..open_end].ends_with('/') {
            out.push(String::new());
            rest = &after[open_end + 1..];
            continue;
        }
        let body = &after[open_end + 1..];
        let Some(end) = body.find(&close) else {
            break;
        };
        out.push(unescape(body[..end].trim()));
        rest = &body[end + close.len()..];
    }
    out
}

/// The position of `<name>`, `<name/>` or `<name attr...>`, not of `<name-longer>`.
fn find_open(xml: &str, name: &str) -> Option<usize> {
    let needle = format!("<{name}");
    let mut offset = 0;
    while let Some(pos) = xml[offset..].find(&needle) {
        let at = offset + pos;
        let next = xml[at + needle.len()..].chars().next();
        if matches!(next, Some(c) if c == '>' || c == '/' || c.is_whitespace()) {
            return Some(at);
        }
        offset = at + needle.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_messages_are_found() {
        let xml = "\u{feff}<?xml version=\"1.0\"?>\n<!-- hi -->\n<pcoip-client version=\"2.1\">\n  <hello-resp/></pcoip-client>";
        assert_eq!(root_element(xml), Some("pcoip-client"));
        assert_eq!(message_element(xml), Some("hello-resp"));
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
        assert_eq!(unescape("a &bogus; b &"), "a &bogus; b &");
    }

    #[test]
    fn texts_skip_longer_names() {
        let xml = "<domains><domain>EXAMPLE</domain><domain/><domain>R&amp;D</domain></domains>";
        assert_eq!(texts(xml, "domain"), ["EXAMPLE", "", "R&D"]);
        assert!(texts("<x/>", "domain").is_empty());
    }
}
