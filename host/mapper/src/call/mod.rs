//! One mapper call: a permit, a fresh store with its limits and deadline, `configure`, the
//! call itself, and the classification of whatever went wrong.

use std::sync::Arc;
use std::time::{Duration, Instant};

use interstate_protocol::policy::{
    Allocation, AuthOutcome, ClientContext, Desktop, Identity, MapperError, Operation,
    OperationOutcome, PasswordChange, PasswordChangeOutcome, PasswordLogin, Secret, StepAnswer,
};
use tokio::sync::Semaphore;
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use crate::bindings;
use crate::convert::guest_message;
use crate::hashpool::HashPool;
use crate::inspect::ContractVersion;
use crate::state::{CallState, HostServices};

mod v01;
mod v02;

pub(crate) use self::v01::no_disclaimer_in_0_1;

/// How long a call waits for a free slot before it is refused as unavailable.
const QUEUE_WAIT: Duration = Duration::from_millis(500);
/// Extra time past the deadline before the whole call is abandoned. The epoch callback ends
/// running wasm within a tick or two; this covers a guest blocked in a host call (HTTP, a
/// clock wait) where no epoch check runs.
const DEADLINE_MARGIN: Duration = Duration::from_millis(50);
/// Bytes a guest may hand the host in one import call or one answer (wasmtime's default is
/// 128 MiB). The contract's largest legal answer (512 desktops) is well under 1 MiB; beyond
/// this the copy stops early instead of allocating what a hostile guest asks for.
const HOSTCALL_FUEL: usize = 4 << 20;
/// Live component-model handles per store (wasmtime's default is 100,000).
const MAX_COMPONENT_HANDLES: usize = 4096;

/// What the runtime shares with every mapper it loaded.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    /// Bounds the calls in flight (and so the pooling allocator's slots in use).
    pub(crate) calls: Arc<Semaphore>,
    pub(crate) max_calls: usize,
    /// Where `verify-password` hashes run.
    pub(crate) hashes: HashPool,
}

/// What to ask the mapper after `configure`, in the broker's types; each version's module
/// converts it to its bindings (and wipes the secrets it copied once the call returns).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request<'a> {
    Domains,
    Authenticate(&'a PasswordLogin),
    Continue {
        state: &'a Secret,
        answer: &'a StepAnswer,
        client: &'a ClientContext,
    },
    ListDesktops {
        user: &'a Identity,
        client: &'a ClientContext,
    },
    Allocate {
        user: &'a Identity,
        desktop_id: &'a str,
        client: &'a ClientContext,
    },
    Operate {
        user: &'a Identity,
        desktop_id: &'a str,
        op: Operation,
        client: &'a ClientContext,
    },
    ChangePassword(&'a PasswordChange),
}

/// The mapper's answer, converted and bounded.
#[derive(Debug)]
pub(crate) enum Reply {
    Domains(Vec<String>),
    Auth(AuthOutcome),
    Desktops(Vec<Desktop>),
    Allocation(Allocation),
    Operation(OperationOutcome),
    PasswordChange(PasswordChangeOutcome),
}

impl Reply {
    /// The variant's name, for internal errors (the content may hold secrets).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Domains(_) => "domains",
            Self::Auth(_) => "authentication",
            Self::Desktops(_) => "desktop list",
            Self::Allocation(_) => "allocation",
            Self::Operation(_) => "operation",
            Self::PasswordChange(_) => "password change",
        }
    }
}

/// A component pre-instantiated for the contract version it exports.
pub(crate) enum Pre {
    /// `interstate:mapper@0.1.x`.
    V01(bindings::v01::MapperPre<CallState>),
    /// `interstate:mapper@0.2.x`.
    V02(bindings::v02::MapperPre<CallState>),
}

impl Pre {
    /// The contract version.
    pub(crate) fn version(&self) -> ContractVersion {
        match self {
            Self::V01(_) => ContractVersion::V01,
            Self::V02(_) => ContractVersion::V02,
        }
    }
}

/// Why a call produced no reply.
#[derive(Debug)]
pub(crate) enum CallError {
    /// `configure` returned `err(message)`.
    Configure(String),
    /// Anything else: the guest's own `err`, an answer out of bounds, a trap, a deadline.
    Mapper(MapperError),
}

impl CallError {
    /// The guest answered `err(message)`.
    pub(crate) fn guest(message: String) -> Self {
        Self::Mapper(MapperError::Guest(guest_message(message)))
    }
}

impl From<MapperError> for CallError {
    fn from(err: MapperError) -> Self {
        Self::Mapper(err)
    }
}

/// A loaded component plus everything needed to call it.
pub(crate) struct Callable {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pre: Pre,
    pub(crate) name: Arc<str>,
    pub(crate) services: HostServices,
    pub(crate) settings_json: String,
    pub(crate) timeout: Duration,
    pub(crate) memory_limit_bytes: u64,
    pub(crate) allowed_hosts: Arc<[String]>,
    pub(crate) deny_private_addresses: bool,
}

impl std::fmt::Debug for Callable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callable")
            .field("name", &self.name)
            .field("version", &self.pre.version())
            .field("timeout", &self.timeout)
            .field("memory_limit_bytes", &self.memory_limit_bytes)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("deny_private_addresses", &self.deny_private_addresses)
            .finish_non_exhaustive()
    }
}

impl Callable {
    fn timeout_ms(&self) -> u64 {
        u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX)
    }

    fn memory_limit_mib(&self) -> u64 {
        self.memory_limit_bytes >> 20
    }

    /// Runs `request` in a fresh instance.
    pub(crate) async fn invoke(&self, request: Request<'_>) -> Result<Reply, CallError> {
        let permit =
            match tokio::time::timeout(QUEUE_WAIT, Arc::clone(&self.shared.calls).acquire_owned())
                .await
            {
                Ok(Ok(permit)) => permit,
                _ => {
                    return Err(CallError::Mapper(MapperError::Unavailable(format!(
                        "all {} mapper call slots are busy",
                        self.shared.max_calls
                    ))));
                }
            };

        let deadline = Instant::now() + self.timeout;
        let mut store = Store::new(
            &self.shared.engine,
            CallState::new(
                Arc::clone(&self.name),
                deadline,
                self.shared.hashes.clone(),
                self.memory_limit_bytes,
                Arc::clone(&self.allowed_hosts),
                self.deny_private_addresses,
                self.services.clone(),
            ),
        );
        store.limiter(|state| &mut state.limiter);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        store.set_max_component_handles(MAX_COMPONENT_HANDLES);
        store.set_epoch_deadline(1);
        // Yield at every tick so that a spinning guest never holds a tokio worker, and trap
        // once the call's deadline has passed.
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });

        let outcome = tokio::time::timeout(
            self.timeout + DEADLINE_MARGIN,
            run(&self.pre, &mut store, &self.settings_json, request),
        )
        .await;
        let result = match outcome {
            Err(_elapsed) => Err(CallError::Mapper(MapperError::Timeout(self.timeout_ms()))),
            Ok(Ok(answer)) => answer,
            Ok(Err(err)) => Err(CallError::Mapper(self.classify(&err, store.data()))),
        };
        // The store returns its pool slots when dropped: do that before the next call may
        // take this permit.
        drop(store);
        drop(permit);
        result
    }

    /// Turns a wasmtime error into the failure the broker reports.
    fn classify(&self, err: &wasmtime::Error, state: &CallState) -> MapperError {
        let trap = err.downcast_ref::<Trap>();
        if trap == Some(&Trap::Interrupt) {
            return MapperError::Timeout(self.timeout_ms());
        }
        if state.limiter.refused() {
            return MapperError::OutOfMemory(self.memory_limit_mib());
        }
        if format!("{err:#}").contains("fuel allocated for hostcalls has been exhausted") {
            return MapperError::InvalidOutput(format!(
                "the mapper moved more than {} MiB to the host in one value",
                HOSTCALL_FUEL >> 20
            ));
        }
        if err.is::<PoolConcurrencyLimitError>() {
            return MapperError::Unavailable(format!("no free instance slot: {err}"));
        }
        let message = match trap {
            Some(Trap::StackOverflow) => "stack overflow".to_owned(),
            Some(trap) => trap.to_string(),
            None => format!("{err:#}"),
        };
        tracing::debug!(
            target: "interstate::mapper",
            mapper = %self.name,
            "mapper call failed: {err:?}"
        );
        MapperError::Trap(first_line(&message))
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// Instantiates, configures, then makes the call through the component's version. The outer
/// error is wasmtime's (a trap); the inner one a configure refusal or the guest's own answer.
async fn run(
    pre: &Pre,
    store: &mut Store<CallState>,
    settings_json: &str,
    request: Request<'_>,
) -> wasmtime::Result<Result<Reply, CallError>> {
    match pre {
        Pre::V01(pre) => self::v01::run(pre, store, settings_json, request).await,
        Pre::V02(pre) => self::v02::run(pre, store, settings_json, request).await,
    }
}

/// The guest's `result` converted and bounded into a [`Reply`].
fn reply<T, U>(
    answer: Result<T, String>,
    convert: impl FnOnce(T) -> Result<U, MapperError>,
    wrap: impl FnOnce(U) -> Reply,
) -> Result<Reply, CallError> {
    match answer {
        Ok(value) => Ok(wrap(convert(value)?)),
        Err(message) => Err(CallError::guest(message)),
    }
}

/// Instantiates `$pre`, runs `configure`, then the call `$request` asks for: the calls both
/// versions share, and the version's own `$arms` (which see the instance's policy as
/// `$policy`). `$to` is the version's conversion module. Secrets copied into the bindings are
/// wiped as soon as the call returns, trap or not.
macro_rules! call_policy {
    ($pre:ident, $store:ident, $settings:ident, $request:ident, $to:path, $policy:ident,
     { $($arms:tt)* }) => {{
        use $to as to;
        use zeroize::Zeroize as _;
        use $crate::call::{CallError, Reply, Request, reply};
        use $crate::convert::guest_message;

        let instance = $pre.instantiate_async(&mut *$store).await?;
        let $policy = instance.interstate_mapper_policy();
        if let Err(message) = $policy.call_configure(&mut *$store, $settings).await? {
            return Ok(Err(CallError::Configure(guest_message(message))));
        }
        Ok(match $request {
            Request::Domains => Ok(Reply::Domains($policy.call_domains(&mut *$store).await?)),
            Request::Authenticate(login) => {
                let mut login = to::login_to_wit(login);
                let answer = $policy.call_authenticate(&mut *$store, &login).await;
                login.password.zeroize();
                reply(answer?, to::auth_outcome, Reply::Auth)
            }
            Request::ListDesktops { user, client } => {
                let answer = $policy
                    .call_list_desktops(
                        &mut *$store,
                        &to::identity_to_wit(user),
                        &to::client_to_wit(client),
                    )
                    .await?;
                reply(answer, to::desktops, Reply::Desktops)
            }
            Request::Allocate {
                user,
                desktop_id,
                client,
            } => {
                let answer = $policy
                    .call_allocate(
                        &mut *$store,
                        &to::identity_to_wit(user),
                        desktop_id,
                        &to::client_to_wit(client),
                    )
                    .await?;
                reply(answer, to::allocation, Reply::Allocation)
            }
            $($arms)*
        })
    }};
}
use call_policy;
