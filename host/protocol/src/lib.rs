//! Sans-IO codec and session state machine for the PCoIP broker protocol.
//!
//! Nothing here does IO or knows about tokio, hyper, rustls or wasmtime: the broker hands in
//! request bodies and the current time, and gets back typed messages, replies to encode, and
//! the work to do (a mapper call, an agent call).
//!
//! ```text
//!  body ──decode_request──▶ Request ──Session::on_request──▶ Step ──(caller runs the mapper)──┐
//!                                                                                            │
//!  bytes ◀──encode_reply── BrokerReply ◀──── the step's Pending*::finish(session, result) ◀──┘
//! ```
//!
//! # Layout
//! - [`root`]: the root element (`Root`) and the protocol version, shared by both directions.
//! - [`message`]: the request envelope (`Request`), [`decode_request`] and [`DecodeError`].
//! - [`client`]: the client's messages (`hello`, `authenticate`, `get-resource-list`, ...).
//! - [`reply`]: the broker's replies and [`encode_reply`].
//! - [`result_id`]: the result and error ids the client knows.
//! - [`agent`]: the broker → agent `launch-session` codec.
//! - [`session`]: the per-client session state machine.
//! - [`policy`]: the seam to site policy (the `Mapper` trait and its types).
//! - [`capability`]: what the host offers mappers (the `KeyValue` and `Directory` seams).
//! - `xml` (private): the bounded, DTD-free reader and the writer.
#![deny(missing_docs)]

pub mod agent;
pub mod capability;
pub mod client;
pub mod message;
pub mod policy;
pub mod reply;
pub mod result_id;
pub mod root;
pub mod session;
mod xml;

pub use agent::{
    LaunchSession, LaunchSessionResp, SessionInfo, decode_launch_session,
    decode_launch_session_resp, encode_launch_session, encode_launch_session_resp,
};
pub use client::{
    AllocateResource, Authenticate, ClientRequest, GetResourceList, Hello, HelloClientInfo,
    PerformOperation, RequestedOperation, ServerAddress, UpdatePassword,
};
pub use message::{DecodeError, Request, Root, decode_request};
pub use reply::{
    AllocateResp, AuthenticateResp, BrokerInfo, BrokerReply, DialogButton, DialogParameters,
    ErrorResp, HelloResp, NextAuthentication, OperationResp, ResourceListResp, UpdatePasswordResp,
    encode_reply,
};
pub use result_id::{
    AllocResult, AuthResult, ErrorId, ListResult, OperationResult, PasswordResult,
};
pub use session::{
    AgentFailure, AllocStep, LaunchRequest, Limits, OPERATION_TRY_AGAIN_TEXT, PendingAllocation,
    PendingDialog, PendingLaunch, PendingListing, PendingLogin, PendingOperation,
    PendingPasswordChange, Phase, RecordError, Session, SessionRecord, Step, hello_reply,
};
