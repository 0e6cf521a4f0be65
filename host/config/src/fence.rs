//! `agent.allowed_hosts`: where launches (which carry the user's password) may go, whatever
//! the mapper answers. Also the host-name syntax every agent host must have.

use std::net::IpAddr;

/// An address block, `10.20.0.0/16` or `fd00::/8`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `addr/prefix` or a bare address.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
            Some(_) => return None,
            None => max,
        };
        (prefix <= max).then_some(Self { network, prefix })
    }

    /// Whether `ip` is inside; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// `agent.allowed_hosts`, parsed: address blocks and names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentFence {
    /// Addresses allowed, directly or as what a name resolves to.
    pub cidrs: Vec<Cidr>,
    /// Names allowed, lower case: `.example.com` allows every name under `example.com`,
    /// `host.example.com` that one name.
    pub names: Vec<String>,
}

impl AgentFence {
    /// Parses one entry into the fence; `false` when it is neither a block nor a name.
    pub fn add(&mut self, entry: &str) -> bool {
        if let Some(cidr) = Cidr::parse(entry) {
            self.cidrs.push(cidr);
            return true;
        }
        let name = entry.strip_prefix('.').unwrap_or(entry);
        if !is_host_name(name) {
            return false;
        }
        self.names
            .push(entry.trim_end_matches('.').to_ascii_lowercase());
        true
    }

    /// Whether a host name (not an address) is allowed by a name entry.
    pub fn allows_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|entry| {
            if entry.starts_with('.') {
                name.ends_with(entry.as_str())
            } else {
                *entry == name
            }
        })
    }

    /// Whether an address is inside one of the blocks.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.cidrs.iter().any(|cidr| cidr.contains(ip))
    }
}

/// Whether `name` is a DNS host name: dot-separated labels of letters, digits, `-` and `_`,
/// 1 to 63 bytes each, not starting or ending with `-`, 253 bytes at most; one trailing dot
/// is allowed.
pub fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let block = Cidr::parse("10.20.0.0/16").unwrap();
        assert!(block.contains(ip("10.20.255.1")));
        assert!(block.contains(ip("::ffff:10.20.0.9")));
        assert!(!block.contains(ip("10.21.0.1")));
        assert!(!block.contains(ip("::1")));
        let one = Cidr::parse("127.0.0.3").unwrap();
        assert!(one.contains(ip("127.0.0.3")) && !one.contains(ip("127.0.0.2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "::/129",
            "10.0.0/8",
            "x",
        ] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn names_match_exactly_or_by_suffix() {
        let mut fence = AgentFence::default();
        assert!(fence.add(".Render.example.com"));
        assert!(fence.add("ws1.example.com"));
        assert!(fence.allows_name("a.render.example.com"));
        assert!(fence.allows_name("B.RENDER.example.com."));
        assert!(!fence.allows_name("render.example.com"));
        assert!(!fence.allows_name("evilrender.example.com"));
        assert!(!fence.allows_name("a.render.example.com.attacker"));
        assert!(fence.allows_name("ws1.example.com"));
        assert!(!fence.allows_name("x.ws1.example.com"));
        assert!(!fence.add("bad host!"));
        assert!(!fence.add(""));
    }

    #[test]
    fn host_name_syntax() {
        for good in [
            "ws-1.example.com",
            "localhost",
            "a_b.lan",
            "x.",
            "10-0-0-1.render",
        ] {
            assert!(is_host_name(good), "{good}");
        }
        for bad in [
            "bad host!",
            "",
            ".",
            "a..b",
            "-a.b",
            "a-.b",
            "a/b",
            "a:b",
            "ä.com",
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
        assert!(!is_host_name(&"a".repeat(64)));
    }
}
