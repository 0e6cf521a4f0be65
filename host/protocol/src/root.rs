//! The root element every broker protocol message is wrapped in, and the protocol version.
//!
//! Its own module because both directions use it: requests are decoded in it ([`crate::message`])
//! and replies are encoded in it ([`crate::reply`]).

/// The only protocol version the broker speaks.
pub const PROTOCOL_VERSION: &str = "2.1";

/// The root element of a broker protocol message. Clients send `pcoip-client`; a PCoIP
/// Connection Manager sends `pcoip-broker`. The reply uses the request's root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Root {
    /// `<pcoip-client version="2.1">`.
    PcoipClient,
    /// `<pcoip-broker version="2.1">`.
    PcoipBroker,
}

impl Root {
    /// The element name.
    pub fn as_str(self) -> &'static str {
        match self {
            Root::PcoipClient => "pcoip-client",
            Root::PcoipBroker => "pcoip-broker",
        }
    }

    /// The root named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Root> {
        match name {
            "pcoip-client" => Some(Root::PcoipClient),
            "pcoip-broker" => Some(Root::PcoipBroker),
            _ => None,
        }
    }
}
