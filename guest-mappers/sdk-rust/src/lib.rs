//! The Rust guest SDK for Interstate mappers.
//!
//! A mapper is a WebAssembly component that implements the `mapper` world of `wit/mapper.wit`.
//! With this crate a mapper crate writes a plain trait impl and one macro line; it never runs
//! `wit_bindgen::generate!` itself and keeps nothing in globals:
//!
//! ```
//! use interstate_mapper_sdk::types::{
//!     Allocation, AuthOutcome, ClientInfo, Desktop, DesktopState, Identity, Launch,
//!     PasswordLogin, RefusalKind, Rejection, RejectionKind, SessionKind,
//! };
//! use interstate_mapper_sdk::{Mapper, host, settings};
//!
//! /// `mapper.settings`: one user and the one desktop it gets.
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct OneDesktop {
//!     username: String,
//!     password_hash: String,
//!     hostname: String,
//! }
//!
//! struct OneDesktopPolicy;
//!
//! impl Mapper for OneDesktopPolicy {
//!     type Settings = OneDesktop;
//!
//!     fn configure(settings_json: &str) -> Result<OneDesktop, String> {
//!         settings::from_json(settings_json)
//!     }
//!
//!     fn authenticate(s: &OneDesktop, login: PasswordLogin) -> Result<AuthOutcome, String> {
//!         let known = login.username == s.username;
//!         if host::verify_password(&login.password, &s.password_hash) && known {
//!             return Ok(AuthOutcome::Accepted(Identity {
//!                 username: login.username,
//!                 domain: login.domain,
//!                 attributes: Vec::new(),
//!             }));
//!         }
//!         let reason = "unknown user or wrong password".to_owned();
//!         Ok(AuthOutcome::Rejected(Rejection { kind: RejectionKind::BadCredentials, reason }))
//!     }
//!
//!     fn list_desktops(
//!         s: &OneDesktop,
//!         _: Identity,
//!         _: ClientInfo,
//!     ) -> Result<Vec<Desktop>, String> {
//!         Ok(vec![Desktop {
//!             id: s.hostname.clone(),
//!             name: s.hostname.clone(),
//!             hostname: s.hostname.clone(),
//!             agent_port: None,
//!             session_kind: SessionKind::Vdi,
//!             state: DesktopState::Unknown,
//!             operations: Vec::new(),
//!         }])
//!     }
//!
//!     fn allocate(
//!         s: &OneDesktop,
//!         _: Identity,
//!         desktop_id: String,
//!         _: ClientInfo,
//!     ) -> Result<Allocation, String> {
//!         if desktop_id != s.hostname {
//!             return Ok(Allocation::Refused((RefusalKind::UnknownDesktop, desktop_id)));
//!         }
//!         Ok(Allocation::Launch(Launch {
//!             hostname: desktop_id,
//!             agent_port: None,
//!             username: None,
//!             domain: None,
//!         }))
//!     }
//! }
//!
//! interstate_mapper_sdk::export_mapper!(OneDesktopPolicy);
//! # fn main() {}
//! ```
//!
//! The crate is a `cdylib` built with `cargo build --release --target wasm32-wasip2`, which
//! emits the component directly. `domains` (none), `continue_authentication` (an error: no
//! challenge was issued), `operate` (`unsupported`) and `change_password` (`unsupported`) have
//! defaults. On other targets [`export_mapper!`] exports nothing, so `cargo test` runs the
//! policy natively.
//!
//! # How a call runs
//! The host creates a fresh instance for every call and calls `configure` first. The SDK hands
//! the settings JSON to [`Mapper::configure`], keeps the parsed settings for the rest of that
//! instance's life, and passes them to the one call that follows. Nothing survives the
//! instance, so nothing leaks from one user to another: what must outlive a call goes in the
//! host's [`store`], or in a dialog's or disclaimer's `state`.
//!
//! # Layout
//! - [`Mapper`]: the policy trait a mapper implements.
//! - [`export_mapper!`]: exports a [`Mapper`] as the component's `interstate:mapper/policy`.
//! - [`settings`]: typed settings from `serde::Deserialize`, with errors that name the key.
//! - [`types`]: the records of the contract, generated from `wit/mapper.wit` (package
//!   `interstate:mapper@0.2.0`; the WIT's doc comments are their reference).
//! - [`host`]: the host's services: `log`, `verify_password`, `hash_password`, `verify_totp`.
//! - [`store`]: the key-value store shared by every broker node, plus typed helpers (strings,
//!   serde JSON values, `Duration` TTLs).
//! - [`directory`]: the operator's LDAP / Active Directory profiles.
//! - [`http`]: one blocking HTTP request over `wasi:http/outgoing-handler`.
//! - `export`: the instance's settings and the dispatch behind [`export_mapper!`].
//!
//! # Native builds
//! The imports (`host`, `store`, `directory`, `http`) exist only in the component: called from
//! a native build they panic. Test a policy natively by passing the host's services in through
//! a trait of your own, as `../example-rust` and `../pool-rust` do.

pub mod directory;
pub mod host;
pub mod http;
pub mod settings;
pub mod store;

mod export;

#[doc(inline)]
pub use crate::bindings::interstate::mapper::types;

use crate::types::{
    Allocation, AuthOutcome, ClientInfo, Desktop, Identity, Operation, OperationOutcome,
    PasswordChange, PasswordChangeOutcome, PasswordLogin, StepAnswer,
};

/// The bindings of the `mapper` world, generated once here for every Rust mapper.
#[doc(hidden)]
pub mod bindings {
    #![allow(
        missing_docs,
        reason = "generated from the WIT, whose doc comments are the reference"
    )]
    #![allow(
        unsafe_code,
        reason = "the canonical ABI glue generated by wit-bindgen"
    )]

    wit_bindgen::generate!({
        world: "mapper",
        path: "../../wit",
        // So that mappers can compare outcomes in their tests.
        additional_derives: [PartialEq, Eq],
        // The export macro runs in the mapper crate, which names these bindings by path.
        pub_export_macro: true,
        export_macro_name: "export_world",
    });
}

/// What [`export_mapper!`] expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::exports::interstate::mapper::policy::Guest;
    pub use crate::export::{
        allocate, authenticate, change_password, configure, continue_authentication, domains,
        list_desktops, operate,
    };
}

/// A mapper's policy: the exports of `interstate:mapper/policy`, each given the settings that
/// `configure` parsed in the same instance.
///
/// The methods have no `self`: every call runs in a fresh instance, so all a call knows is its
/// settings and its arguments. Put whatever a second authentication step needs in the dialog's
/// `state`.
pub trait Mapper: 'static {
    /// The validated `mapper.settings`, as the policy wants them.
    type Settings: 'static;

    /// Parses and validates the operator's `mapper.settings` object (JSON text). The host calls
    /// it before every call, and once on its own at start-up, where an error stops the broker
    /// and shows the operator the message; so name the key and what was expected. For a
    /// `serde::Deserialize` type, [`settings::from_json`] does all of this.
    ///
    /// # Errors
    /// A message naming the offending key.
    fn configure(settings_json: &str) -> Result<Self::Settings, String>;

    /// The logon domains offered to clients, in display order. The host asks once, at load.
    /// None by default.
    fn domains(settings: &Self::Settings) -> Vec<String> {
        let _ = settings;
        Vec::new()
    }

    /// Checks a password login. A wrong password is `Ok(AuthOutcome::Rejected(..))`.
    ///
    /// # Errors
    /// A mapper failure (a bug, an upstream service down), which fails the request.
    fn authenticate(settings: &Self::Settings, login: PasswordLogin)
    -> Result<AuthOutcome, String>;

    /// Continues an authentication that returned `AuthOutcome::Challenge` or
    /// `AuthOutcome::Disclaimer`: `state` is that step's state, `answer` what the user did
    /// (`StepAnswer::Dialog` with the field values and the button pressed, or
    /// `StepAnswer::DisclaimerAccepted`). By default an error, for mappers that never ask for a
    /// second step.
    ///
    /// # Errors
    /// A mapper failure, or a `state` this mapper did not write.
    fn continue_authentication(
        settings: &Self::Settings,
        state: String,
        answer: StepAnswer,
        client: ClientInfo,
    ) -> Result<AuthOutcome, String> {
        let _ = (settings, state, answer, client);
        Err("this mapper never issues a challenge, so there is nothing to continue".to_owned())
    }

    /// Lists the desktops of an accepted user, each with a stable id.
    ///
    /// # Errors
    /// A mapper failure, which fails the request.
    fn list_desktops(
        settings: &Self::Settings,
        user: Identity,
        client: ClientInfo,
    ) -> Result<Vec<Desktop>, String>;

    /// Decides how to connect `user` to the desktop with `desktop_id`.
    ///
    /// # Errors
    /// A mapper failure, which fails the request; an unknown desktop is
    /// `Ok(Allocation::Refused(..))`.
    fn allocate(
        settings: &Self::Settings,
        user: Identity,
        desktop_id: String,
        client: ClientInfo,
    ) -> Result<Allocation, String>;

    /// Performs `op` (restart, power down, power up) on the user's desktop `desktop_id`. The
    /// host calls it only for a desktop the user listed with `op` among its `operations`. By
    /// default `OperationOutcome::Unsupported`, for mappers that list no operations.
    ///
    /// # Errors
    /// A mapper failure, which fails the request; a power API that failed is better answered
    /// `Ok(OperationOutcome::Refused(..))`, which keeps the session.
    fn operate(
        settings: &Self::Settings,
        user: Identity,
        desktop_id: String,
        op: Operation,
        client: ClientInfo,
    ) -> Result<OperationOutcome, String> {
        let _ = (settings, user, desktop_id, op, client);
        Ok(OperationOutcome::Unsupported)
    }

    /// Changes a password the client asked to change, after `RejectionKind::ExpiredPassword`.
    /// A wrong current password is `Ok(PasswordChangeOutcome::Rejected(..))` with
    /// `PasswordRejectionKind::WrongPassword`; a change is `Changed` with what the login does
    /// next. By default `PasswordChangeOutcome::Unsupported`. Never log either password.
    ///
    /// # Errors
    /// A mapper failure, which fails the request.
    fn change_password(
        settings: &Self::Settings,
        change: PasswordChange,
    ) -> Result<PasswordChangeOutcome, String> {
        let _ = (settings, change);
        Ok(PasswordChangeOutcome::Unsupported)
    }
}

/// Exports a [`Mapper`] as the component's `interstate:mapper/policy@0.2.0`. Write it once, at the
/// top level of the mapper crate (a `cdylib` built for `wasm32-wasip2`):
///
/// ```ignore
/// interstate_mapper_sdk::export_mapper!(MyPolicy);
/// ```
///
/// It expands to nothing on other targets, so `cargo test` of the mapper runs natively.
#[macro_export]
macro_rules! export_mapper {
    ($mapper:ty) => {
        // Only wasm gets the export shims: their symbol names (`interstate:mapper/...`) are not
        // valid in a native linker script, and native builds exist only to run unit tests. The
        // shims' `unsafe` comes from wit-bindgen's macro in this crate, and rustc does not apply
        // the mapper crate's `unsafe_code` lint to another crate's macro expansion, so the
        // mapper keeps `unsafe_code = "deny"` with no exception.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct InterstateMapperExport;

            impl $crate::__private::Guest for InterstateMapperExport {
                fn configure(settings_json: String) -> Result<(), String> {
                    $crate::__private::configure::<$mapper>(&settings_json)
                }

                fn domains() -> Vec<String> {
                    $crate::__private::domains::<$mapper>()
                }

                fn authenticate(
                    login: $crate::types::PasswordLogin,
                ) -> Result<$crate::types::AuthOutcome, String> {
                    $crate::__private::authenticate::<$mapper>(login)
                }

                fn continue_authentication(
                    state: String,
                    answer: $crate::types::StepAnswer,
                    client: $crate::types::ClientInfo,
                ) -> Result<$crate::types::AuthOutcome, String> {
                    $crate::__private::continue_authentication::<$mapper>(state, answer, client)
                }

                fn list_desktops(
                    user: $crate::types::Identity,
                    client: $crate::types::ClientInfo,
                ) -> Result<Vec<$crate::types::Desktop>, String> {
                    $crate::__private::list_desktops::<$mapper>(user, client)
                }

                fn allocate(
                    user: $crate::types::Identity,
                    desktop_id: String,
                    client: $crate::types::ClientInfo,
                ) -> Result<$crate::types::Allocation, String> {
                    $crate::__private::allocate::<$mapper>(user, desktop_id, client)
                }

                fn operate(
                    user: $crate::types::Identity,
                    desktop_id: String,
                    op: $crate::types::Operation,
                    client: $crate::types::ClientInfo,
                ) -> Result<$crate::types::OperationOutcome, String> {
                    $crate::__private::operate::<$mapper>(user, desktop_id, op, client)
                }

                fn change_password(
                    change: $crate::types::PasswordChange,
                ) -> Result<$crate::types::PasswordChangeOutcome, String> {
                    $crate::__private::change_password::<$mapper>(change)
                }
            }

    $crate::bindings::export_world!(InterstateMapperExport with_types_in $crate::bindings);
        };

        // Native builds name the dispatch without exporting it, so the mapper's policy counts
        // as used code there too.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            let _ = $crate::__private::configure::<$mapper>;
            let _ = $crate::__private::domains::<$mapper>;
            let _ = $crate::__private::authenticate::<$mapper>;
            let _ = $crate::__private::continue_authentication::<$mapper>;
            let _ = $crate::__private::list_desktops::<$mapper>;
            let _ = $crate::__private::allocate::<$mapper>;
            let _ = $crate::__private::operate::<$mapper>;
            let _ = $crate::__private::change_password::<$mapper>;
        };
    };
}
