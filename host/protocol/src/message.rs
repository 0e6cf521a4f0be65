//! The broker protocol envelope: the root element, decoding a request, and decode errors.

use thiserror::Error;

pub use crate::root::{PROTOCOL_VERSION, Root};

use crate::client::{self, ClientRequest};
use crate::result_id::ErrorId;
use crate::xml::tree::{self, TreeError};

/// A decoded client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The root it came in, which the reply must use.
    pub root: Root,
    /// The message.
    pub message: ClientRequest,
}

/// Why a body is not a valid request. Answered with an `error-resp` (see `DecodeError::reply`,
/// which lives with the replies).
///
/// The detail names elements and limits, never text content, so it cannot carry a password.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{detail}")]
pub struct DecodeError {
    /// The request's root, when it was read; `None` means "answer with `pcoip-client`".
    pub root: Option<Root>,
    /// The error id for the `error-resp`.
    pub result_id: ErrorId,
    /// What was wrong, for the log and the reply's `err-detail`.
    pub detail: String,
}

impl DecodeError {
    pub(crate) fn new(root: Option<Root>, result_id: ErrorId, detail: impl Into<String>) -> Self {
        Self {
            root,
            result_id,
            detail: detail.into(),
        }
    }

    /// The root to answer with: the request's, else `pcoip-client`.
    pub fn reply_root(&self) -> Root {
        self.root.unwrap_or(Root::PcoipClient)
    }

    pub(crate) fn from_tree(error: TreeError) -> Self {
        let root = error
            .root
            .as_ref()
            .and_then(|(name, _)| Root::from_name(name));
        Self::new(root, ErrorId::InvalidMsgFormat, error.detail)
    }
}

/// Decodes a client request body.
///
/// # Errors
///
/// A [`DecodeError`] whose id follows the reference: not XML, invalid UTF-8, a DTD, an
/// undefined entity, truncated or over a limit gives `ERR_INVALID_MSG_FORMAT`; another root
/// element `ERR_INVALID_MSG_ENVELOPE`; a version other than 2.1 `ERR_UNSUPPORTED_VERSION`; no
/// message `ERR_INVALID_MISSING_MSG_CONTENT`; two messages, a missing required element or a
/// duplicated one `ERR_INVALID_INVALID_MSG_CONTENT`.
pub fn decode_request(body: &[u8]) -> Result<Request, DecodeError> {
    let root_element = tree::parse(body).map_err(DecodeError::from_tree)?;
    let Some(root) = Root::from_name(&root_element.name) else {
        return Err(DecodeError::new(
            None,
            ErrorId::InvalidMsgEnvelope,
            "the root element is not <pcoip-client> or <pcoip-broker>",
        ));
    };
    match root_element.attribute("version").map(str::trim) {
        Some(PROTOCOL_VERSION) => {}
        Some(_) => {
            return Err(DecodeError::new(
                Some(root),
                ErrorId::UnsupportedVersion,
                format!("only protocol version {PROTOCOL_VERSION} is supported"),
            ));
        }
        None => {
            return Err(DecodeError::new(
                Some(root),
                ErrorId::UnsupportedVersion,
                format!("<{}> has no version attribute", root.as_str()),
            ));
        }
    }
    let message = match root_element.children.as_slice() {
        [] => {
            return Err(DecodeError::new(
                Some(root),
                ErrorId::InvalidMissingMsgContent,
                format!("<{}> holds no message", root.as_str()),
            ));
        }
        [message] => message,
        [_, _, ..] => {
            return Err(DecodeError::new(
                Some(root),
                ErrorId::InvalidInvalidMsgContent,
                format!("<{}> holds more than one message", root.as_str()),
            ));
        }
    };
    let message = client::from_element(message).map_err(|detail| {
        DecodeError::new(Some(root), ErrorId::InvalidInvalidMsgContent, detail)
    })?;
    Ok(Request { root, message })
}
