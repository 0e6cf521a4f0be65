//! The Go example mapper (`guest-mappers/go`, `build.sh`) on a bare `interstate:mapper@0.2.0`
//! host: the same sync wasmtime host as the GC test, plus `wasi:http`, an in-memory `store`, a
//! real RFC 6238 `verify-totp` with replay refusal, and the broker's own password hashing
//! (`interstate_mapper::password`, without the hash pool). It checks
//! what the Go SDK carries across the boundary at 0.2 (step answers, disclaimers, dialog
//! buttons, the store, `operate` over `wasi:http` to a power API on 127.0.0.1, `change-password`
//! with `hash-password`) without the broker; the broker's own conformance test plays the same
//! policy through TLS. Each call runs in a fresh instance after `configure`, as in the broker.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use interstate_mapper::password;
use interstate_tests::guests::{self, Guest};
use interstate_tests::totp;
use serde_json::{Value, json};
use wasmtime::component::{Component, HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::wit::Mapper;
use crate::wit::interstate::mapper::directory::{Failure, FailureKind, Group, User};
use crate::wit::interstate::mapper::host::{Level, TotpVerdict};
use crate::wit::interstate::mapper::store::Error as StoreError;
use crate::wit::interstate::mapper::types::{
    Allocation, AuthOutcome, ClientInfo, DialogAnswer, FieldAnswer, FieldKind, Identity, Operation,
    OperationOutcome, PasswordChange, PasswordChangeOutcome, PasswordLogin, PasswordRejectionKind,
    RejectionKind, StepAnswer,
};

const ALICE_SECRET: &str = "JBSWY3DPEHPK3PXP";
const DISCLAIMER: &str =
    "This workstation is for authorised studio work only. Sessions may be monitored.";
/// The render node's host name: an IPv6 spelling, so that the power API path shows the
/// percent-encoding.
const RENDER_HOST: &str = "::ffff:127.0.0.2";
const RENDER_ID: &str = "--ffff-127-0-0-2";

/// The host side of the store: the data of every call's `Store`.
struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    /// key -> (value, ttl in ms)
    store: HashMap<String, (Vec<u8>, Option<u64>)>,
    /// (secret, code) pairs accepted once already.
    spent_codes: HashSet<(String, String)>,
    logs: Vec<String>,
}

impl HostState {
    fn new() -> Self {
        Self {
            wasi: WasiCtx::builder().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            store: HashMap::new(),
            spent_codes: HashSet::new(),
            logs: Vec::new(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

impl crate::wit::interstate::mapper::types::Host for HostState {}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl crate::wit::interstate::mapper::host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        self.logs.push(format!("{level:?} {message}"));
    }

    fn verify_password(&mut self, password: String, hash: String) -> bool {
        password::verify(&password, &hash)
    }

    fn hash_password(&mut self, password: String) -> String {
        password::hash_argon2id(&password)
    }

    fn verify_totp(&mut self, secret: String, code: String) -> TotpVerdict {
        let Some(key) = totp::base32_decode(&secret) else {
            return TotpVerdict::Rejected;
        };
        let now = unix_now();
        if !(-1..=1).any(|step| totp::totp(&key, now + 30 * step) == code) {
            return TotpVerdict::Rejected;
        }
        if self.spent_codes.insert((secret, code)) {
            TotpVerdict::Accepted
        } else {
            TotpVerdict::Replayed
        }
    }
}

impl crate::wit::interstate::mapper::store::Host for HostState {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.store.get(&key).map(|(value, _)| value.clone()))
    }

    fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), StoreError> {
        self.store.insert(key, (value, ttl_ms));
        Ok(())
    }

    fn delete(&mut self, key: String) -> Result<bool, StoreError> {
        Ok(self.store.remove(&key).is_some())
    }

    fn compare_and_swap(
        &mut self,
        key: String,
        expected: Option<Vec<u8>>,
        new: Option<Vec<u8>>,
        ttl_ms: Option<u64>,
    ) -> Result<bool, StoreError> {
        if self.store.get(&key).map(|(value, _)| value) != expected.as_ref() {
            return Ok(false);
        }
        match new {
            Some(value) => self.store.insert(key, (value, ttl_ms)),
            None => self.store.remove(&key),
        };
        Ok(true)
    }
}

impl crate::wit::interstate::mapper::directory::Host for HostState {
    fn authenticate(&mut self, _: String, _: String, _: String) -> Result<User, Failure> {
        Err(no_directory())
    }

    fn lookup(&mut self, _: String, _: String, _: Vec<String>) -> Result<Option<User>, Failure> {
        Err(no_directory())
    }

    fn groups(&mut self, _: String, _: String) -> Result<Vec<Group>, Failure> {
        Err(no_directory())
    }

    fn change_password(
        &mut self,
        _: String,
        _: String,
        _: String,
        _: String,
    ) -> Result<(), Failure> {
        Err(no_directory())
    }
}

fn no_directory() -> Failure {
    Failure {
        kind: FailureKind::Unreachable,
        detail: "no directory in this harness".into(),
    }
}

/// A power API on 127.0.0.1 (plain HTTP/1.1, one request per connection): `GET
/// /machines/{m}` answers the machine's state (`stopped` at first), `POST
/// /machines/{m}/power-up` makes it `starting`, which a `GET` reports once before `running`.
struct PowerApi {
    addr: SocketAddr,
    /// Every request line received, `METHOD /path`.
    calls: Arc<Mutex<Vec<String>>>,
}

impl PowerApi {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        std::thread::spawn(move || {
            let mut states: HashMap<String, &str> = HashMap::new();
            for connection in listener.incoming() {
                let Ok(mut tcp) = connection else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && tcp.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let line: Vec<&str> = head.lines().next().unwrap_or("").split(' ').collect();
                let (method, path) = (line[0].to_owned(), line.get(1).copied().unwrap_or(""));
                recorded.lock().unwrap().push(format!("{method} {path}"));
                let rest = path.strip_prefix("/machines/").unwrap_or("");
                let (machine, action) = rest.split_once('/').unwrap_or((rest, ""));
                let state = states.get(machine).copied().unwrap_or("stopped");
                let (status, body) = match (method.as_str(), action) {
                    ("GET", "") => {
                        if state == "starting" {
                            states.insert(machine.to_owned(), "running");
                        }
                        ("200 OK", format!("{{\"state\":\"{state}\"}}"))
                    }
                    ("POST", "power-up") => {
                        states.insert(machine.to_owned(), "starting");
                        ("202 Accepted", "{}".to_owned())
                    }
                    ("POST", "restart" | "power-down") => ("202 Accepted", "{}".to_owned()),
                    _ => ("404 Not Found", "{}".to_owned()),
                };
                let _ = write!(
                    tcp,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { addr, calls }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// The example mapper: every call gets a fresh store and instance (the host's state moves from
/// one store to the next), then `configure`, as in the broker.
struct Harness {
    engine: Engine,
    pre: InstancePre<HostState>,
    state: Option<HostState>,
    settings: String,
}

impl Harness {
    fn new(settings: &Value) -> Self {
        let built = guests::build(Guest::Go);
        let engine = Engine::new(&Config::new()).unwrap();
        let component = Component::from_file(&engine, &built.path).unwrap();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).unwrap();
        Mapper::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state).unwrap();
        let pre = linker.instantiate_pre(&component).unwrap();
        Self {
            engine,
            pre,
            state: Some(HostState::new()),
            settings: settings.to_string(),
        }
    }

    fn host(&self) -> &HostState {
        self.state.as_ref().unwrap()
    }

    /// Runs `f` on a fresh, configured instance.
    fn call<R>(&mut self, f: impl FnOnce(&Mapper, &mut Store<HostState>) -> R) -> R {
        let mut store = Store::new(&self.engine, self.state.take().unwrap());
        let instance = self.pre.instantiate(&mut store).unwrap();
        let mapper = Mapper::new(&mut store, &instance).unwrap();
        mapper
            .interstate_mapper_policy()
            .call_configure(&mut store, &self.settings)
            .unwrap()
            .unwrap();
        let result = f(&mapper, &mut store);
        self.state = Some(store.into_data());
        result
    }

    fn authenticate(&mut self, username: &str, password: &str) -> AuthOutcome {
        let login = PasswordLogin {
            username: username.into(),
            password: password.into(),
            domain: "EXAMPLE".into(),
            client: client(),
        };
        self.call(|mapper, store| {
            mapper
                .interstate_mapper_policy()
                .call_authenticate(store, &login)
                .unwrap()
                .unwrap()
        })
    }

    fn answer(&mut self, state: &str, answer: &StepAnswer) -> Result<AuthOutcome, String> {
        self.call(|mapper, store| {
            mapper
                .interstate_mapper_policy()
                .call_continue_authentication(store, state, answer, &client())
                .unwrap()
        })
    }

    fn list(&mut self, username: &str) -> Vec<(String, Vec<Operation>)> {
        self.call(|mapper, store| {
            mapper
                .interstate_mapper_policy()
                .call_list_desktops(store, &identity(username), &client())
                .unwrap()
                .unwrap()
                .into_iter()
                .map(|desktop| (desktop.id, desktop.operations))
                .collect()
        })
    }

    fn allocate(&mut self, username: &str, desktop: &str) -> Allocation {
        self.call(|mapper, store| {
            mapper
                .interstate_mapper_policy()
                .call_allocate(store, &identity(username), desktop, &client())
                .unwrap()
                .unwrap()
        })
    }

    fn operate(&mut self, username: &str, desktop: &str, op: Operation) -> OperationOutcome {
        self.call(|mapper, store| {
            mapper
                .interstate_mapper_policy()
                .call_operate(store, &identity(username), desktop, op, &client())
                .unwrap()
                .unwrap()
        })
    }

    fn change(&mut self, username: &str, old: &str, new: &str) -> PasswordChangeOutcome {
        let change = PasswordChange {
            username: username.into(),
            domain: "EXAMPLE".into(),
            old_password: old.into(),
            new_password: new.into(),
            client: client(),
        };
        self.call(|mapper, store| {
            mapper
                .interstate_mapper_policy()
                .call_change_password(store, &change)
                .unwrap()
                .unwrap()
        })
    }
}

/// An operation outcome as `tag(detail)`.
fn describe(outcome: &OperationOutcome) -> String {
    match outcome {
        OperationOutcome::Done(detail) => format!("done({detail})"),
        OperationOutcome::TryAgain(detail) => format!("try-again({detail})"),
        OperationOutcome::Refused(detail) => format!("refused({detail})"),
        OperationOutcome::Unsupported => "unsupported".to_owned(),
    }
}

fn client() -> ClientInfo {
    ClientInfo {
        address: "127.0.0.1".into(),
        hostname: String::new(),
        product_name: String::new(),
        product_version: String::new(),
        platform: String::new(),
        locale: String::new(),
        log_id: String::new(),
    }
}

fn identity(username: &str) -> Identity {
    Identity {
        username: username.into(),
        domain: "EXAMPLE".into(),
        attributes: Vec::new(),
    }
}

fn code_answer(code: &str, button: &str) -> StepAnswer {
    StepAnswer::Dialog(DialogAnswer {
        fields: vec![FieldAnswer {
            id: "code".into(),
            value: code.into(),
        }],
        button_id: button.into(),
    })
}

/// The disclaimer's state, after checking its text.
fn disclaimer_state(outcome: AuthOutcome) -> String {
    match outcome {
        AuthOutcome::Disclaimer(disclaimer) => {
            assert_eq!(disclaimer.text, DISCLAIMER);
            disclaimer.state
        }
        other => panic!("expected the disclaimer, got {other:?}"),
    }
}

/// The code dialog's state, after checking its texts.
fn code_dialog_state(outcome: AuthOutcome, error_text: &str) -> String {
    match outcome {
        AuthOutcome::Challenge(dialog) => {
            assert_eq!(
                dialog.prompt,
                "Enter the 6-digit code from your authenticator app"
            );
            assert_eq!(dialog.error_text, error_text);
            let fields: Vec<_> = dialog
                .fields
                .iter()
                .map(|f| (f.id.as_str(), f.label.as_str(), f.kind))
                .collect();
            assert_eq!(fields, [("code", "Code", FieldKind::Secret)]);
            let buttons: Vec<_> = dialog
                .buttons
                .iter()
                .map(|b| (b.id.as_str(), b.label.as_str(), b.is_default))
                .collect();
            assert_eq!(
                buttons,
                [("ok", "Verify", true), ("cancel", "Cancel", false)]
            );
            dialog.state
        }
        other => panic!("expected the code dialog, got {other:?}"),
    }
}

fn rejected(outcome: &AuthOutcome) -> (RejectionKind, &str) {
    match outcome {
        AuthOutcome::Rejected(rejection) => (rejection.kind, rejection.reason.as_str()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn accepted_user(outcome: &AuthOutcome) -> &str {
    match outcome {
        AuthOutcome::Accepted(identity) => identity.username.as_str(),
        other => panic!("expected acceptance, got {other:?}"),
    }
}

fn example_settings(power_api: &str) -> Value {
    let path = guests::repo_root().join("guest-mappers/go/example.settings.json");
    let mut settings: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    settings["groups"]["render"][0]["hostname"] = json!(RENDER_HOST);
    settings["power_api"] = json!(power_api);
    settings
}

#[test]
fn go_example_policy_on_a_bare_0_2_host() {
    let power = PowerApi::start();
    let mut harness = Harness::new(&example_settings(&format!("http://{}", power.addr)));

    // bob: the disclaimer, then in.
    let state = disclaimer_state(harness.authenticate("bob", "bob-pw"));
    let outcome = harness
        .answer(&state, &StepAnswer::DisclaimerAccepted)
        .unwrap();
    assert_eq!(accepted_user(&outcome), "bob");
    assert_eq!(
        rejected(&harness.authenticate("bob", "nope")),
        (RejectionKind::BadCredentials, "wrong password")
    );
    assert_eq!(
        rejected(&harness.authenticate("carol", "carol-pw")),
        (RejectionKind::AccessDenied, "account disabled")
    );

    // alice: the disclaimer, the code dialog, a wrong code, the right one; the same code again
    // is a replay; a disclaimer answer to the code step is an error; Cancel ends it.
    let key = totp::base32_decode(ALICE_SECRET).unwrap();
    let state = disclaimer_state(harness.authenticate("alice", "alice-pw"));
    let outcome = harness
        .answer(&state, &StepAnswer::DisclaimerAccepted)
        .unwrap();
    let state = code_dialog_state(outcome, "");
    let outcome = harness
        .answer(&state, &code_answer("abcdef", "ok"))
        .unwrap();
    let state = code_dialog_state(outcome, "Wrong code, try again");
    let code = totp::totp(&key, unix_now());
    let outcome = harness.answer(&state, &code_answer(&code, "ok")).unwrap();
    assert_eq!(accepted_user(&outcome), "alice");
    let state = disclaimer_state(harness.authenticate("alice", "alice-pw"));
    let state = code_dialog_state(
        harness
            .answer(&state, &StepAnswer::DisclaimerAccepted)
            .unwrap(),
        "",
    );
    let outcome = harness.answer(&state, &code_answer(&code, "ok")).unwrap();
    let state = code_dialog_state(outcome, "That code was already used, wait for the next one");
    assert_eq!(
        harness
            .answer(&state, &StepAnswer::DisclaimerAccepted)
            .unwrap_err(),
        "step answer does not match the pending step"
    );
    let outcome = harness.answer(&state, &code_answer("", "cancel")).unwrap();
    assert_eq!(
        rejected(&outcome),
        (RejectionKind::AccessDenied, "code dialog cancelled")
    );

    // Listing with the three operations; a launch is remembered for 30 days and listed first.
    let all = vec![Operation::Restart, Operation::PowerDown, Operation::PowerUp];
    let ws = "ws-art-1-example-com".to_owned();
    assert_eq!(
        harness.list("bob"),
        [
            (ws.clone(), all.clone()),
            (RENDER_ID.to_owned(), all.clone())
        ]
    );
    match harness.allocate("bob", RENDER_ID) {
        Allocation::Launch(launch) => assert_eq!(launch.hostname, RENDER_HOST),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        harness.host().store.get("last-desktop:bob"),
        Some(&(RENDER_ID.as_bytes().to_vec(), Some(30 * 24 * 3600 * 1000)))
    );
    assert_eq!(
        harness.list("bob"),
        [(RENDER_ID.to_owned(), all.clone()), (ws, all)]
    );

    // Power up over wasi:http: stopped -> power-up -> starting -> running; restart.
    let started = Instant::now();
    let outcomes: Vec<String> = (0..3)
        .map(|_| describe(&harness.operate("bob", RENDER_ID, Operation::PowerUp)))
        .collect();
    let three_power_ups = started.elapsed();
    assert_eq!(
        outcomes,
        [
            "try-again(powering on)",
            "try-again(starting)",
            "done(running)"
        ]
    );
    assert_eq!(
        describe(&harness.operate("bob", RENDER_ID, Operation::Restart)),
        "done(requested)"
    );
    let machine = "/machines/%3A%3Affff%3A127.0.0.2";
    assert_eq!(
        power.calls(),
        [
            format!("GET {machine}"),
            format!("POST {machine}/power-up"),
            format!("GET {machine}"),
            format!("GET {machine}"),
            format!("POST {machine}/restart"),
        ]
    );
    assert_eq!(
        describe(&harness.operate("alice", RENDER_ID, Operation::Restart)),
        "refused(unknown desktop)"
    );

    // A power API that does not answer is a refusal, never an error.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    harness.settings = example_settings(&format!("http://{closed}")).to_string();
    let down = describe(&harness.operate("bob", RENDER_ID, Operation::PowerDown));
    assert!(down.starts_with("refused(power API: "), "{down}");

    // dave: expired; a wrong old password, a weak new one, then a change that goes on with the
    // disclaimer; the store keeps the host's hash, never the password.
    assert_eq!(
        rejected(&harness.authenticate("dave", "dave-pw")),
        (RejectionKind::ExpiredPassword, "password expired")
    );
    let new_password = "a-much-longer-passphrase-2026";
    for (old, new, kind) in [
        (
            "not-daves",
            new_password,
            PasswordRejectionKind::WrongPassword,
        ),
        ("dave-pw", "short-1", PasswordRejectionKind::WeakPassword),
        ("dave-pw", "dave-pw", PasswordRejectionKind::WeakPassword),
    ] {
        match harness.change("dave", old, new) {
            PasswordChangeOutcome::Rejected(rejection) => assert_eq!(rejection.kind, kind),
            other => panic!("{old} -> {new}: {other:?}"),
        }
    }
    match harness.change("dave", "dave-pw", new_password) {
        PasswordChangeOutcome::Changed(next) => {
            disclaimer_state(next);
        }
        other => panic!("{other:?}"),
    }
    let (stored, ttl) = harness.host().store.get("password-hash:dave").unwrap();
    let stored = String::from_utf8(stored.clone()).unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(password::verify(new_password, &stored));
    assert_eq!(*ttl, None, "kept for the store's maximum");
    disclaimer_state(harness.authenticate("dave", new_password));

    // One line per decision, and never a password or a code.
    let logs = harness.host().logs.join("\n");
    for secret in [
        "bob-pw",
        "alice-pw",
        "dave-pw",
        new_password,
        "short-1",
        &code,
    ] {
        assert!(
            !logs.contains(secret),
            "a log line holds {secret:?}:\n{logs}"
        );
    }
    println!(
        "go example on a bare 0.2 host: three power-ups over wasi:http (4 requests, each call in a \
         fresh instance) in {three_power_ups:.1?}"
    );
}
