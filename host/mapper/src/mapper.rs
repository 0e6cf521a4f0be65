//! A loaded mapper: [`WasmMapper`] implements the broker's [`Mapper`] seam.

use std::sync::Arc;
use std::time::Duration;

use interstate_protocol::policy::{
    Allocation, AuthOutcome, BoxFuture, Capabilities, ClientContext, Desktop, Identity, Mapper,
    MapperError, Operation, OperationOutcome, PasswordChange, PasswordChangeOutcome, PasswordLogin,
    Secret, StepAnswer,
};

use crate::call::{CallError, Callable, Reply, Request};
use crate::inspect::ContractVersion;

/// What the host learned about a mapper when it loaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapperInfo {
    /// The name used in logs (`SimpleMapper`, the file stem, or the given name).
    pub name: String,
    /// The contract version the component exports, such as `0.1.0`.
    pub world_version: String,
    /// Lowercase hex SHA-256 of the component bytes.
    pub sha256: String,
    /// The component's size in bytes.
    pub size_bytes: usize,
    /// Every export name.
    pub exports: Vec<String>,
    /// Every import name.
    pub imports: Vec<String>,
    /// The domains `domains()` answered at load time.
    pub domains: Vec<String>,
    /// Compiling the component, or reading it from the compile cache.
    pub compile_time: Duration,
    /// The whole load, compile, checks, configure and domains included.
    pub load_time: Duration,
    /// Whether the compiled component came from the disk cache.
    pub from_cache: bool,
}

/// A loaded mapper component. Cheap to clone; every call runs in a fresh instance.
#[derive(Debug, Clone)]
pub struct WasmMapper {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    callable: Callable,
    info: MapperInfo,
}

impl WasmMapper {
    pub(crate) fn new(callable: Callable, info: MapperInfo) -> Self {
        Self {
            inner: Arc::new(Inner { callable, info }),
        }
    }

    /// What the host learned at load time.
    pub fn info(&self) -> &MapperInfo {
        &self.inner.info
    }

    /// The contract version the component speaks.
    fn version(&self) -> ContractVersion {
        self.inner.callable.pre.version()
    }

    async fn invoke(&self, request: Request<'_>) -> Result<Reply, MapperError> {
        self.inner
            .callable
            .invoke(request)
            .await
            .map_err(|err| match err {
                CallError::Configure(message) => {
                    MapperError::Guest(format!("configure failed: {message}"))
                }
                CallError::Mapper(err) => err,
            })
    }

    async fn auth(&self, request: Request<'_>) -> Result<AuthOutcome, MapperError> {
        match self.invoke(request).await? {
            Reply::Auth(outcome) => Ok(outcome),
            other => Err(mismatch(&other)),
        }
    }
}

fn mismatch(reply: &Reply) -> MapperError {
    MapperError::Unavailable(format!("internal error: unexpected {} reply", reply.kind()))
}

impl Mapper for WasmMapper {
    fn domains(&self) -> Vec<String> {
        self.inner.info.domains.clone()
    }

    /// An ILS PBKDF2 hash on the process's hash pool, within this mapper's call deadline.
    fn spend_like_a_password_check(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let callable = &self.inner.callable;
            let deadline = std::time::Instant::now() + callable.timeout;
            callable.shared.hashes.spend_like_a_check(deadline).await;
        })
    }

    /// The password is copied into the call and wiped when it returns.
    fn authenticate<'a>(
        &'a self,
        login: &'a PasswordLogin,
    ) -> BoxFuture<'a, Result<AuthOutcome, MapperError>> {
        Box::pin(self.auth(Request::Authenticate(login)))
    }

    /// 0.2 components export `operate` and `change-password`; 0.1 components neither.
    fn capabilities(&self) -> Capabilities {
        match self.version() {
            ContractVersion::V01 => Capabilities::default(),
            ContractVersion::V02 => Capabilities {
                operate: true,
                change_password: true,
            },
        }
    }

    /// A 0.1 component gets the dialog's field values (it has no buttons nor disclaimers: a
    /// disclaimer answer is refused without a call). The state and the values are copied into
    /// the call and wiped when it returns.
    fn continue_authentication<'a>(
        &'a self,
        state: &'a Secret,
        answer: &'a StepAnswer,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<AuthOutcome, MapperError>> {
        Box::pin(async move {
            if self.version() == ContractVersion::V01 && *answer == StepAnswer::DisclaimerAccepted {
                return Err(crate::call::no_disclaimer_in_0_1());
            }
            self.auth(Request::Continue {
                state,
                answer,
                client,
            })
            .await
        })
    }

    fn list_desktops<'a>(
        &'a self,
        user: &'a Identity,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<Vec<Desktop>, MapperError>> {
        Box::pin(async move {
            match self.invoke(Request::ListDesktops { user, client }).await? {
                Reply::Desktops(desktops) => Ok(desktops),
                other => Err(mismatch(&other)),
            }
        })
    }

    fn allocate<'a>(
        &'a self,
        user: &'a Identity,
        desktop_id: &'a str,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<Allocation, MapperError>> {
        Box::pin(async move {
            let request = Request::Allocate {
                user,
                desktop_id,
                client,
            };
            match self.invoke(request).await? {
                Reply::Allocation(allocation) => Ok(allocation),
                other => Err(mismatch(&other)),
            }
        })
    }

    /// 0.2: the `operate` export. 0.1: `unsupported` without a call.
    fn operate<'a>(
        &'a self,
        user: &'a Identity,
        desktop_id: &'a str,
        op: Operation,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<OperationOutcome, MapperError>> {
        Box::pin(async move {
            if self.version() == ContractVersion::V01 {
                return Ok(OperationOutcome::Unsupported);
            }
            let request = Request::Operate {
                user,
                desktop_id,
                op,
                client,
            };
            match self.invoke(request).await? {
                Reply::Operation(outcome) => Ok(outcome),
                other => Err(mismatch(&other)),
            }
        })
    }

    /// 0.2: the `change-password` export (both passwords wiped after the call). 0.1:
    /// `unsupported` without a call.
    fn change_password<'a>(
        &'a self,
        change: &'a PasswordChange,
    ) -> BoxFuture<'a, Result<PasswordChangeOutcome, MapperError>> {
        Box::pin(async move {
            if self.version() == ContractVersion::V01 {
                return Ok(PasswordChangeOutcome::Unsupported);
            }
            match self.invoke(Request::ChangePassword(change)).await? {
                Reply::PasswordChange(outcome) => Ok(outcome),
                other => Err(mismatch(&other)),
            }
        })
    }
}
