//! A loaded mapper: [`WasmMapper`] implements the broker's [`Mapper`] seam.

use std::sync::Arc;
use std::time::Duration;

use interstate_protocol::policy::{
    Allocation, AuthOutcome, BoxFuture, Capabilities, ClientContext, Desktop, FieldAnswer,
    Identity, Mapper, MapperError, Operation, OperationOutcome, PasswordChange,
    PasswordChangeOutcome, PasswordLogin, Secret, StepAnswer,
};
use zeroize::Zeroize;

use crate::call::{CallError, Callable, Reply, Request};
use crate::convert;

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

    async fn invoke(&self, request: &Request) -> Result<Reply, MapperError> {
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

    async fn auth(&self, request: &Request) -> Result<AuthOutcome, MapperError> {
        match self.invoke(request).await? {
            Reply::Auth(Ok(outcome)) => convert::auth_outcome(outcome),
            Reply::Auth(Err(message)) => Err(guest(message)),
            other => Err(mismatch(&other)),
        }
    }
}

fn guest(message: String) -> MapperError {
    MapperError::Guest(convert::guest_message(message))
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

    fn authenticate<'a>(
        &'a self,
        login: &'a PasswordLogin,
    ) -> BoxFuture<'a, Result<AuthOutcome, MapperError>> {
        Box::pin(async move {
            let mut request = Request::Authenticate(convert::login_to_wit(login));
            let outcome = self.auth(&request).await;
            if let Request::Authenticate(login) = &mut request {
                login.password.zeroize();
            }
            outcome
        })
    }

    fn capabilities(&self) -> Capabilities {
        // 0.1.x: nothing beyond the 0.1 contract (until the 0.2 bindings land).
        Capabilities::default()
    }

    fn continue_authentication<'a>(
        &'a self,
        state: &'a Secret,
        answer: &'a StepAnswer,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<AuthOutcome, MapperError>> {
        Box::pin(async move {
            let answers: &[FieldAnswer] = match answer {
                StepAnswer::Dialog { fields, .. } => fields,
                StepAnswer::DisclaimerAccepted => &[],
            };
            let mut request = Request::Continue {
                state: state.expose().to_owned(),
                answers: convert::answers_to_wit(answers),
                client: convert::client_to_wit(client),
            };
            let outcome = self.auth(&request).await;
            if let Request::Continue { state, answers, .. } = &mut request {
                state.zeroize();
                for answer in answers {
                    answer.value.zeroize();
                }
            }
            outcome
        })
    }

    fn list_desktops<'a>(
        &'a self,
        user: &'a Identity,
        client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<Vec<Desktop>, MapperError>> {
        Box::pin(async move {
            let request = Request::ListDesktops {
                user: convert::identity_to_wit(user),
                client: convert::client_to_wit(client),
            };
            match self.invoke(&request).await? {
                Reply::Desktops(Ok(desktops)) => convert::desktops(desktops),
                Reply::Desktops(Err(message)) => Err(guest(message)),
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
                user: convert::identity_to_wit(user),
                desktop_id: desktop_id.to_owned(),
                client: convert::client_to_wit(client),
            };
            match self.invoke(&request).await? {
                Reply::Allocation(Ok(allocation)) => convert::allocation(allocation),
                Reply::Allocation(Err(message)) => Err(guest(message)),
                other => Err(mismatch(&other)),
            }
        })
    }

    fn operate<'a>(
        &'a self,
        _user: &'a Identity,
        _desktop_id: &'a str,
        _op: Operation,
        _client: &'a ClientContext,
    ) -> BoxFuture<'a, Result<OperationOutcome, MapperError>> {
        Box::pin(async { Ok(OperationOutcome::Unsupported) })
    }

    fn change_password<'a>(
        &'a self,
        _change: &'a PasswordChange,
    ) -> BoxFuture<'a, Result<PasswordChangeOutcome, MapperError>> {
        Box::pin(async { Ok(PasswordChangeOutcome::Unsupported) })
    }
}
