//! One mapper call: a permit, a fresh store with its limits and deadline, `configure`, the
//! call itself, and the classification of whatever went wrong.

use std::sync::Arc;
use std::time::{Duration, Instant};

use interstate_protocol::policy::MapperError;
use tokio::sync::Semaphore;
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};

use crate::bindings::{MapperPre, wit};
use crate::convert::guest_message;
use crate::hashpool::HashPool;
use crate::state::CallState;

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

/// What to ask the mapper after `configure`.
#[derive(Debug)]
pub(crate) enum Request {
    Domains,
    Authenticate(wit::PasswordLogin),
    Continue {
        state: String,
        answers: Vec<wit::FieldAnswer>,
        client: wit::ClientInfo,
    },
    ListDesktops {
        user: wit::Identity,
        client: wit::ClientInfo,
    },
    Allocate {
        user: wit::Identity,
        desktop_id: String,
        client: wit::ClientInfo,
    },
}

/// The mapper's raw answer, not yet converted or bounded.
#[derive(Debug)]
pub(crate) enum Reply {
    Domains(Vec<String>),
    Auth(Result<wit::AuthOutcome, String>),
    Desktops(Result<Vec<wit::Desktop>, String>),
    Allocation(Result<wit::Allocation, String>),
}

impl Reply {
    /// The variant's name, for internal errors (the content may hold secrets).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Domains(_) => "domains",
            Self::Auth(_) => "authentication",
            Self::Desktops(_) => "desktop list",
            Self::Allocation(_) => "allocation",
        }
    }
}

/// Why a call produced no reply.
#[derive(Debug)]
pub(crate) enum CallError {
    /// `configure` returned `err(message)`.
    Configure(String),
    /// Anything else.
    Mapper(MapperError),
}

/// A loaded component plus everything needed to call it.
pub(crate) struct Callable {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pre: MapperPre<CallState>,
    pub(crate) name: Arc<str>,
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
    pub(crate) async fn invoke(&self, request: &Request) -> Result<Reply, CallError> {
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
            Ok(Ok(Ok(reply))) => Ok(reply),
            Ok(Ok(Err(message))) => Err(CallError::Configure(guest_message(message))),
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

/// Instantiates, configures, then makes the call. `Ok(Err(message))` is a configure refusal.
async fn run(
    pre: &MapperPre<CallState>,
    store: &mut Store<CallState>,
    settings_json: &str,
    request: &Request,
) -> wasmtime::Result<Result<Reply, String>> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let policy = instance.interstate_mapper_policy();
    if let Err(message) = policy.call_configure(&mut *store, settings_json).await? {
        return Ok(Err(message));
    }
    let reply = match request {
        Request::Domains => Reply::Domains(policy.call_domains(&mut *store).await?),
        Request::Authenticate(login) => {
            Reply::Auth(policy.call_authenticate(&mut *store, login).await?)
        }
        Request::Continue {
            state,
            answers,
            client,
        } => Reply::Auth(
            policy
                .call_continue_authentication(&mut *store, state, answers, client)
                .await?,
        ),
        Request::ListDesktops { user, client } => {
            Reply::Desktops(policy.call_list_desktops(&mut *store, user, client).await?)
        }
        Request::Allocate {
            user,
            desktop_id,
            client,
        } => Reply::Allocation(
            policy
                .call_allocate(&mut *store, user, desktop_id, client)
                .await?,
        ),
    };
    Ok(Ok(reply))
}
