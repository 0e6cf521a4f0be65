//! Escaping of values put in search filters (RFC 4515) and in DN components (RFC 4514).
//!
//! Every user name and DN that reaches a filter goes through [`filter_value`]: `*)(uid=*` is a
//! literal name, never a wildcard or a second filter.

/// A value for an assertion in a search filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL as
/// `\XX`, and every non-ASCII byte too (so the filter is plain ASCII whatever the server's
/// handling of UTF-8).
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'*' | b'(' | b')' | b'\\' | 0 | 0x80..=0xff => {
                out.push_str(&format!("\\{byte:02x}"));
            }
            _ => out.push(char::from(byte)),
        }
    }
    out
}

/// A value for one RDN of a DN (RFC 4514 §2.4): `"`, `+`, `,`, `;`, `<`, `>`, `\` escaped with a
/// backslash, a leading `#` or space and a trailing space escaped, NUL as `\00`.
pub fn dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_literal() {
        assert_eq!(filter_value("alice"), "alice");
        assert_eq!(filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(filter_value("a\\b\0"), "a\\5cb\\00");
        // RFC 4515 §4's examples.
        assert_eq!(
            filter_value("Parens R Us (for all your parenthetical needs)"),
            "Parens R Us \\28for all your parenthetical needs\\29"
        );
        assert_eq!(filter_value("Lučić"), "Lu\\c4\\8di\\c4\\87");
    }

    #[test]
    fn dn_values_are_one_component() {
        assert_eq!(dn_value("Smith, John"), "Smith\\, John");
        assert_eq!(dn_value("#1 "), "\\#1\\ ");
        assert_eq!(
            dn_value(" a+b=c;<d>\"e\\"),
            "\\ a\\+b\\=c\\;\\<d\\>\\\"e\\\\"
        );
        assert_eq!(dn_value("x\0"), "x\\00");
    }
}
