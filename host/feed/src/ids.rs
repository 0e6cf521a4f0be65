//! UUIDs for connection and event ids: random version 4, written in canonical lower-case form,
//! read in the forms Python's `uuid.UUID` accepts (hyphens optional, braces, `urn:uuid:`).

use std::fmt;

/// A 128-bit UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(u128);

impl Uuid {
    /// A random version-4 UUID.
    pub fn random() -> Self {
        let bits: u128 = rand::random();
        Self((bits & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62))
    }

    /// Parses a UUID, `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.strip_prefix("urn:uuid:").unwrap_or(text);
        let text = text
            .strip_prefix('{')
            .and_then(|inner| inner.strip_suffix('}'))
            .unwrap_or(text);
        let digits: String = text.chars().filter(|c| *c != '-').collect();
        if digits.len() != 32 || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        if text.contains('-') {
            let groups: Vec<usize> = text.split('-').map(str::len).collect();
            if groups != [8, 4, 4, 4, 12] {
                return None;
            }
        }
        u128::from_str_radix(&digits, 16).ok().map(Self)
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn round_trips_and_accepts_python_forms() {
        let id = Uuid::random();
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4");
        assert_eq!(Uuid::parse(&text), Some(id));
        assert_eq!(Uuid::parse(&text.to_uppercase()), Some(id));
        assert_eq!(Uuid::parse(&text.replace('-', "")), Some(id));
        assert_eq!(Uuid::parse(&format!("{{{text}}}")), Some(id));
        assert_eq!(Uuid::parse(&format!("urn:uuid:{text}")), Some(id));
    }

    #[test]
    fn refuses_malformed_ids() {
        for bad in [
            "",
            "abc",
            "030638ea-0000-0000-0000-00000000000g",
            "0306-38ea00000000000000000000000000",
        ] {
            assert_eq!(Uuid::parse(bad), None, "{bad}");
        }
    }
}
