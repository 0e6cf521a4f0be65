//! The session state machine: table-driven transitions with explicit time, expiry and the
//! password wipe.
#![allow(
    clippy::type_complexity,
    reason = "each table row is a tuple so that a case fits on one line"
)]

use interstate_protocol::policy::{
    Allocation, AuthOutcome, ClientContext, Desktop, DesktopState, Dialog, DialogField,
    FieldAnswer, FieldKind, Identity, Launch, LaunchTarget, MapperError, RefusalKind, Rejection,
    RejectionKind, Secret, SessionKind, StepAnswer,
};
use interstate_protocol::{
    AgentFailure, AllocStep, AllocateResource, Authenticate, BrokerInfo, BrokerReply,
    ClientRequest, GetResourceList, Hello, HelloClientInfo, LaunchSessionResp, Limits,
    NextAuthentication, PendingAllocation, PendingLaunch, Phase, Root, Session, SessionInfo, Step,
    encode_reply, hello_reply,
};

const PASSWORD: &str = "  s3cr3t <&> pässword ";
const T0: u64 = 1_700_000_000_000;

fn hello(dialog: bool) -> Hello {
    Hello {
        client_info: HelloClientInfo {
            product_name: "Teradici PCoIP Desktop Client".into(),
            product_version: "24.07.3".into(),
            hostname: "ford".into(),
            ..HelloClientInfo::default()
        },
        caps: if dialog {
            vec![
                "CAP_NO_AUTHENTICATION".into(),
                "CAP_DIALOG_AUTHENTICATION".into(),
            ]
        } else {
            vec!["CAP_NO_AUTHENTICATION".into()]
        },
        server_address: None,
    }
}

fn client() -> ClientContext {
    ClientContext {
        address: "10.27.0.5".into(),
        log_id: "d9836980-34c4-1fed-9dea-000000000000".into(),
        ..ClientContext::default()
    }
}

fn identity(domain: &str) -> Identity {
    Identity {
        username: "alice".into(),
        domain: domain.into(),
        attributes: vec![],
    }
}

fn desktop() -> Desktop {
    Desktop {
        id: "ws-7".into(),
        name: "Workstation 7".into(),
        hostname: "ws-7.example.com".into(),
        agent_port: Some(60444),
        session_kind: SessionKind::Vdi,
        state: DesktopState::Unknown,
        health: None,
        operations: vec![],
    }
}

fn password_request(domain: &str) -> ClientRequest {
    ClientRequest::Authenticate(Authenticate::Password {
        username: "alice".into(),
        password: Secret::new(PASSWORD),
        domain: domain.into(),
    })
}

fn dialog_request() -> ClientRequest {
    ClientRequest::Authenticate(Authenticate::Dialog {
        answers: vec![FieldAnswer {
            id: "otp".into(),
            value: Secret::new("123456"),
        }],
        button_id: None,
    })
}

fn list_request() -> ClientRequest {
    ClientRequest::GetResourceList(GetResourceList::default())
}

fn allocate_request(id: &str) -> ClientRequest {
    ClientRequest::AllocateResource(AllocateResource {
        resource_id: id.into(),
        protocol: "PCOIP".into(),
        client_ip: "192.168.114.8".into(),
        client_mac: "28:b2:bd:ed:a4:7c".into(),
        time_zone_windows: String::new(),
    })
}

fn challenge(error_text: &str) -> AuthOutcome {
    AuthOutcome::Challenge(Dialog {
        prompt: "Enter your code".into(),
        error_text: error_text.into(),
        fields: vec![DialogField {
            id: "otp".into(),
            label: "Code".into(),
            kind: FieldKind::Secret,
        }],
        buttons: Vec::new(),
        state: Secret::new("mapper-state-42"),
    })
}

fn created() -> Session {
    Session::new(&hello(true), client(), T0)
}

fn created_without_dialog() -> Session {
    Session::new(&hello(false), client(), T0)
}

/// The session after a password step the mapper answered with `outcome`.
fn logged_in(session: &mut Session, outcome: AuthOutcome) -> BrokerReply {
    let Step::Authenticate(pending) = session.on_request(password_request("TYPED"), T0 + 1) else {
        panic!("no authenticate step");
    };
    pending.finish(session, Ok(outcome), T0 + 2)
}

fn challenged() -> Session {
    let mut session = created();
    logged_in(&mut session, challenge(""));
    session
}

fn authenticated_with(domain: &str) -> Session {
    let mut session = created();
    logged_in(&mut session, AuthOutcome::Accepted(identity(domain)));
    assert_eq!(session.phase(), Phase::Authenticated);
    session
}

fn authenticated() -> Session {
    authenticated_with("")
}

fn list(session: &mut Session, desktops: Result<Vec<Desktop>, MapperError>) -> BrokerReply {
    let Step::ListDesktops(pending) = session.on_request(list_request(), T0 + 3) else {
        panic!("no list step");
    };
    pending.finish(session, desktops, T0 + 4)
}

fn listed_with(domain: &str) -> Session {
    let mut session = authenticated_with(domain);
    list(&mut session, Ok(vec![desktop()]));
    session
}

fn listed() -> Session {
    listed_with("")
}

fn allocating_with(domain: &str) -> (Session, PendingAllocation) {
    let mut session = listed_with(domain);
    let Step::Allocate(pending) = session.on_request(allocate_request("ws-7"), T0 + 5) else {
        panic!("no allocate step");
    };
    (session, pending)
}

fn allocating() -> (Session, PendingAllocation) {
    allocating_with("")
}

fn launching_with(domain: &str, launch: Launch) -> (Session, Box<PendingLaunch>) {
    let (mut session, pending) = allocating_with(domain);
    let AllocStep::Launch(launching) =
        pending.finish(&mut session, Ok(Allocation::Launch(launch)), T0 + 6)
    else {
        panic!("no launch");
    };
    (session, launching)
}

fn launching() -> (Session, Box<PendingLaunch>) {
    launching_with("", launch())
}

fn allocated() -> Session {
    let (mut session, launching) = launching();
    let reply = launching.finish(&mut session, Ok(agent_success("tag")), T0 + 7);
    assert_eq!(reply.result_id(), Some("ALLOC_SUCCESSFUL"));
    session
}

fn launch() -> Launch {
    Launch {
        hostname: String::new(),
        agent_port: None,
        username: None,
        domain: None,
    }
}

fn agent_success(tag: &str) -> LaunchSessionResp {
    LaunchSessionResp {
        result_id: "successful".into(),
        session_info: Some(SessionInfo {
            ip_address: "10.64.60.147".into(),
            sni: "SAL-W7P64-SA15".into(),
            port: 4172,
            session_id: "2305843009213693954".into(),
            session_tag: Secret::new(tag),
        }),
        fail_reason: None,
    }
}

fn agent_failure(id: &str, reason: Option<&str>) -> LaunchSessionResp {
    LaunchSessionResp {
        result_id: id.into(),
        session_info: None,
        fail_reason: reason.map(str::to_owned),
    }
}

/// What a step should be.
#[derive(Debug)]
enum Expect {
    Reply(&'static str),
    Authenticate,
    Continue,
    List,
    Allocate,
    End,
}

fn check_step(name: &str, step: &Step, expect: &Expect) {
    match (step, expect) {
        (Step::Reply(reply), Expect::Reply(id)) => {
            assert_eq!(reply.result_id(), Some(*id), "{name}: {reply:?}");
        }
        (Step::Authenticate(pending), Expect::Authenticate) => {
            let login = pending.login();
            assert_eq!(login.username, "alice", "{name}");
            assert_eq!(login.password.expose(), PASSWORD, "{name}");
            assert_eq!(login.client.hostname, "ford", "{name}");
        }
        (Step::ContinueAuthentication(pending), Expect::Continue) => {
            assert_eq!(pending.state().expose(), "mapper-state-42", "{name}");
            let StepAnswer::Dialog { fields, button_id } = pending.answer() else {
                panic!("{name}: not a dialog answer");
            };
            assert_eq!((fields.len(), button_id.as_str()), (1, "ok"), "{name}");
        }
        (Step::ListDesktops(pending), Expect::List) => {
            assert_eq!(pending.user().username, "alice", "{name}");
        }
        (Step::Allocate(pending), Expect::Allocate) => {
            assert_eq!(
                (pending.user().username.as_str(), pending.desktop_id()),
                ("alice", "ws-7")
            );
        }
        (Step::End(BrokerReply::Bye), Expect::End) => {}
        _ => panic!("{name}: expected {expect:?}, got {step:?}"),
    }
}

#[test]
fn requests_in_every_phase() {
    type Start = fn() -> Session;
    let unsupported = || ClientRequest::Unsupported {
        name: "get-authentication-method".into(),
    };
    let disclaimer = || {
        ClientRequest::Authenticate(Authenticate::Other {
            method: "token".into(),
        })
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Start, ClientRequest, Expect, Phase, bool)> = vec![
        // name, start, request, expected step, phase after, password held after (by the
        // session or by the step, which takes what it needs out of the session)
        ("hello again", created, ClientRequest::Hello(hello(true)), Expect::Reply("ERR_UNSUPPORTED_REQUEST"), Phase::Created, false),
        ("hello when authenticated", authenticated, ClientRequest::Hello(hello(true)), Expect::Reply("ERR_UNSUPPORTED_REQUEST"), Phase::Authenticated, true),
        ("unsupported", created, unsupported(), Expect::Reply("ERR_UNSUPPORTED_REQUEST"), Phase::Created, false),
        ("unsupported when authenticated", authenticated, unsupported(), Expect::Reply("ERR_UNSUPPORTED_REQUEST"), Phase::Authenticated, true),
        ("bye created", created, ClientRequest::Bye, Expect::End, Phase::Created, false),
        ("bye authenticated", authenticated, ClientRequest::Bye, Expect::End, Phase::Created, false),
        ("bye allocated", allocated, ClientRequest::Bye, Expect::End, Phase::Created, false),
        ("password created", created, password_request(""), Expect::Authenticate, Phase::Created, true),
        ("password restarts authenticated", authenticated, password_request(""), Expect::Authenticate, Phase::Created, true),
        ("password restarts allocated", allocated, password_request(""), Expect::Authenticate, Phase::Created, true),
        ("password during a challenge", challenged, password_request(""), Expect::Authenticate, Phase::Created, true),
        ("dialog with a challenge", challenged, dialog_request(), Expect::Continue, Phase::Created, true),
        ("dialog without a challenge", created, dialog_request(), Expect::Reply("AUTH_FAILED_UNEXPECTED_METHOD"), Phase::Created, false),
        ("dialog when authenticated", authenticated, dialog_request(), Expect::Reply("AUTH_FAILED_UNEXPECTED_METHOD"), Phase::Authenticated, true),
        ("token", created, disclaimer(), Expect::Reply("AUTH_FAILED_UNEXPECTED_METHOD"), Phase::Created, false),
        ("list before login", created, list_request(), Expect::Reply("LIST_FAILED_NO_USER"), Phase::Created, false),
        ("list during a challenge", challenged, list_request(), Expect::Reply("LIST_FAILED_NO_USER"), Phase::Created, true),
        ("list after login", authenticated, list_request(), Expect::List, Phase::Authenticated, true),
        ("list after allocation", allocated, list_request(), Expect::List, Phase::Allocated, false),
        ("allocate before login", created, allocate_request("ws-7"), Expect::Reply("ALLOC_FAILED_NO_USER"), Phase::Created, false),
        ("allocate before listing", authenticated, allocate_request("ws-7"), Expect::Reply("ALLOC_FAILED_INVALID_PARAMETER"), Phase::Authenticated, true),
        ("allocate unknown id", listed, allocate_request("ws-8"), Expect::Reply("ALLOC_FAILED_INVALID_PARAMETER"), Phase::Authenticated, true),
        ("allocate listed id", listed, allocate_request("ws-7"), Expect::Allocate, Phase::Created, true),
        ("allocate again after allocation", allocated, allocate_request("ws-7"), Expect::Reply("ALLOC_FAILED_NO_USER"), Phase::Allocated, false),
    ];
    for (name, start, request, expect, phase, holds) in cases {
        let mut session = start();
        let now = T0 + 100;
        let step = session.on_request(request, now);
        check_step(name, &step, &expect);
        assert_eq!(session.phase(), phase, "{name}");
        assert_eq!(
            session.holds_password() || step.holds_password(),
            holds,
            "{name}"
        );
        assert_eq!(session.last_seen(), now, "{name}");
        if let Step::Reply(reply) | Step::End(reply) = &step {
            assert!(!encode_reply(Root::PcoipClient, reply).is_empty());
        }
    }
}

#[test]
fn allocate_again_asks_to_log_in_again() {
    let mut session = allocated();
    let Step::Reply(BrokerReply::Allocate(resp)) =
        session.on_request(allocate_request("ws-7"), T0 + 10)
    else {
        panic!("not an allocate reply");
    };
    assert!(
        resp.result_str.contains("log in again"),
        "{}",
        resp.result_str
    );
}

#[test]
fn authentication_outcomes() {
    type Start = fn() -> (Session, ClientRequest);
    let rejected = |kind| {
        Ok(AuthOutcome::Rejected(Rejection {
            kind,
            reason: "LDAP said: user alice is locked (secret detail)".into(),
        }))
    };
    let started = || (created(), password_request("TYPED"));
    let continued = || (challenged(), dialog_request());
    let started_without_dialog = || (created_without_dialog(), password_request("TYPED"));
    #[rustfmt::skip]
    let cases: Vec<(&str, Start, Result<AuthOutcome, MapperError>, &str, Option<&str>, Phase, bool)> = vec![
        // name, start, outcome, result id, method attribute, phase after, holds password
        ("accepted", started, Ok(AuthOutcome::Accepted(identity(""))), "AUTH_SUCCESSFUL_AND_COMPLETE", Some("password"), Phase::Authenticated, true),
        ("bad credentials", started, rejected(RejectionKind::BadCredentials), "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD", Some("password"), Phase::Created, false),
        ("expired", started, rejected(RejectionKind::ExpiredPassword), "AUTH_FAILED_EXPIRED_PASSWORD", Some("password"), Phase::Created, false),
        ("access denied", started, rejected(RejectionKind::AccessDenied), "AUTH_FAILED_ACCESS_DENIED", Some("password"), Phase::Created, false),
        ("no resources", started, rejected(RejectionKind::NoResources), "AUTH_FAILED_USER_HAS_NO_RESOURCE", Some("password"), Phase::Created, false),
        ("challenge", started, Ok(challenge("")), "AUTH_SUCCESSFUL_AND_INCOMPLETE", Some("password"), Phase::Created, true),
        ("challenge, client without dialogs", started_without_dialog, Ok(challenge("")), "AUTH_FAILED_ACCESS_DENIED", Some("password"), Phase::Created, false),
        ("mapper error", started, Err(MapperError::Timeout(5000)), "ERR_BROKER_SYS_FAILED", None, Phase::Created, false),
        ("dialog accepted", continued, Ok(AuthOutcome::Accepted(identity(""))), "AUTH_SUCCESSFUL_AND_COMPLETE", None, Phase::Authenticated, true),
        ("dialog answered wrong", continued, Ok(challenge("Wrong code, try again")), "AUTH_SUCCESSFUL_AND_INCOMPLETE", None, Phase::Created, true),
        // A wrong code keeps the dialog open (the failure limits end the attempts).
        ("dialog rejected", continued, rejected(RejectionKind::BadCredentials), "AUTH_FAILED_DIALOG_INVALID_USER_ENTRY", None, Phase::Created, true),
        ("dialog access denied", continued, rejected(RejectionKind::AccessDenied), "AUTH_FAILED_ACCESS_DENIED", None, Phase::Created, false),
        ("dialog mapper error", continued, Err(MapperError::Trap("unreachable".into())), "ERR_BROKER_SYS_FAILED", None, Phase::Created, true),
    ];
    for (name, start, outcome, id, method, phase, holds) in cases {
        let (mut session, request) = start();
        let reply = match session.on_request(request, T0 + 40) {
            Step::Authenticate(pending) => pending.finish(&mut session, outcome, T0 + 50),
            Step::ContinueAuthentication(pending) => pending.finish(&mut session, outcome, T0 + 50),
            step => panic!("{name}: {step:?}"),
        };
        assert_eq!(reply.result_id(), Some(id), "{name}");
        assert_eq!(session.phase(), phase, "{name}");
        assert_eq!(session.holds_password(), holds, "{name}");
        let encoded = String::from_utf8(encode_reply(Root::PcoipClient, &reply)).unwrap();
        assert!(
            !encoded.contains("secret detail"),
            "{name}: mapper reason leaked"
        );
        assert!(
            !encoded.contains("mapper-state-42"),
            "{name}: dialog state leaked"
        );
        assert!(!encoded.contains("s3cr3t"), "{name}: password leaked");
        if let BrokerReply::Authenticate(resp) = &reply {
            assert_eq!(resp.method.as_deref(), method, "{name}");
            assert_eq!(
                resp.next.is_some(),
                id == "AUTH_SUCCESSFUL_AND_INCOMPLETE",
                "{name}"
            );
        }
        if name == "dialog answered wrong" {
            let BrokerReply::Authenticate(resp) = &reply else {
                unreachable!()
            };
            let Some(NextAuthentication::Dialog(dialog)) = &resp.next else {
                panic!("{name}: no dialog");
            };
            assert_eq!(dialog.error_text, "Wrong code, try again");
            // and the next answer continues with the new state
            let step = session.on_request(dialog_request(), T0 + 60);
            check_step(name, &step, &Expect::Continue);
        }
        if name == "challenge, client without dialogs" {
            let BrokerReply::Authenticate(resp) = &reply else {
                unreachable!()
            };
            assert!(resp.result_str.contains("second"), "{}", resp.result_str);
        }
    }
}

#[test]
fn a_rejected_user_may_retry() {
    let mut session = created();
    logged_in(
        &mut session,
        AuthOutcome::Rejected(Rejection {
            kind: RejectionKind::BadCredentials,
            reason: String::new(),
        }),
    );
    let step = session.on_request(password_request(""), T0 + 3);
    check_step("retry", &step, &Expect::Authenticate);
    let Step::Authenticate(pending) = step else {
        unreachable!()
    };
    let reply = pending.finish(
        &mut session,
        Ok(AuthOutcome::Accepted(identity(""))),
        T0 + 4,
    );
    assert_eq!(reply.result_id(), Some("AUTH_SUCCESSFUL_AND_COMPLETE"));
    assert_eq!(session.identity().unwrap().username, "alice");
}

#[test]
fn desktop_listings() {
    let cases: Vec<(&str, Result<Vec<Desktop>, MapperError>, &str)> = vec![
        ("listed", Ok(vec![desktop()]), "LIST_SUCCESSFUL"),
        ("empty", Ok(vec![]), "LIST_FAILED_NO_ENTITLEMENT"),
        (
            "error",
            Err(MapperError::Guest("down".into())),
            "ERR_BROKER_SYS_FAILED",
        ),
    ];
    for (name, desktops, id) in cases {
        let mut session = authenticated();
        let reply = list(&mut session, desktops);
        assert_eq!(reply.result_id(), Some(id), "{name}");
        assert_eq!(session.phase(), Phase::Authenticated, "{name}");
        // Only a successful listing makes its ids allocatable.
        let step = session.on_request(allocate_request("ws-7"), T0 + 5);
        let allocatable = matches!(step, Step::Allocate { .. });
        assert_eq!(allocatable, id == "LIST_SUCCESSFUL", "{name}");
    }
}

#[test]
fn allocation_decisions() {
    let direct = |tag: &str| {
        Ok(Allocation::Direct(LaunchTarget {
            ip_address: "10.1.1.1".into(),
            hostname: "ws-7.example.com".into(),
            sni: "ws-7".into(),
            port: 4172,
            session_id: "1".into(),
            connect_tag: Secret::new(tag),
        }))
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Result<Allocation, MapperError>, Option<&str>, Phase, bool)> = vec![
        // name, allocation, reply id (None = launch), phase after, session holds the password
        ("direct", direct("tag"), Some("ALLOC_SUCCESSFUL"), Phase::Allocated, false),
        ("direct without a tag", direct(""), Some("ALLOC_FAILED_TO_ALLOCATE_AGENT"), Phase::Authenticated, true),
        ("try again", Ok(Allocation::TryAgain("powering on".into())), Some("ALLOC_PENDING_TRY_AGAIN"), Phase::Authenticated, true),
        ("refused unknown", Ok(Allocation::Refused(RefusalKind::UnknownDesktop, "x".into())), Some("ALLOC_FAILED_INVALID_PARAMETER"), Phase::Authenticated, true),
        ("refused licence", Ok(Allocation::Refused(RefusalKind::NoLicense, "x".into())), Some("ALLOC_FAILED_NO_LICENSE"), Phase::Authenticated, true),
        ("refused unavailable", Ok(Allocation::Refused(RefusalKind::Unavailable, "x".into())), Some("ALLOC_FAILED_TO_ALLOCATE_AGENT"), Phase::Authenticated, true),
        ("mapper error", Err(MapperError::OutOfMemory(64)), Some("ALLOC_FAILED_TO_ALLOCATE_BROKER"), Phase::Authenticated, true),
        // The launch takes the password to the agent; it comes back unless the launch succeeds.
        ("launch", Ok(Allocation::Launch(launch())), None, Phase::Created, false),
    ];
    for (name, allocation, id, phase, holds) in cases {
        let (mut session, pending) = allocating();
        match (pending.finish(&mut session, allocation, T0 + 6), id) {
            (AllocStep::Reply(reply), Some(id)) => {
                assert_eq!(reply.result_id(), Some(id), "{name}");
                let BrokerReply::Allocate(resp) = &reply else {
                    panic!("{name}: {reply:?}");
                };
                assert_eq!(resp.target.is_some(), id == "ALLOC_SUCCESSFUL", "{name}");
                assert_eq!(resp.resource_id, "ws-7", "{name}");
                assert_eq!(resp.protocol, "PCOIP", "{name}");
            }
            (AllocStep::Launch(launch), None) => {
                assert_eq!(
                    launch.request().launch.password.expose(),
                    PASSWORD,
                    "{name}"
                );
            }
            (step, _) => panic!("{name}: {step:?}"),
        }
        assert_eq!(session.phase(), phase, "{name}");
        assert_eq!(session.holds_password(), holds, "{name}");
    }
}

#[test]
fn launch_requests_combine_mapper_identity_and_typed_values() {
    struct Case {
        name: &'static str,
        identity_domain: &'static str,
        launch: Launch,
        host: &'static str,
        port: Option<u16>,
        username: &'static str,
        domain: &'static str,
    }
    let cases = [
        Case {
            name: "defaults: desktop host and port, identity user, typed domain",
            identity_domain: "",
            launch: launch(),
            host: "ws-7.example.com",
            port: Some(60444),
            username: "alice",
            domain: "TYPED",
        },
        Case {
            name: "identity domain beats the typed one",
            identity_domain: "CORP",
            launch: launch(),
            host: "ws-7.example.com",
            port: Some(60444),
            username: "alice",
            domain: "CORP",
        },
        Case {
            name: "the launch overrides everything",
            identity_domain: "CORP",
            launch: Launch {
                hostname: "10.9.9.9".into(),
                agent_port: Some(60443),
                username: Some("svc-alice".into()),
                domain: Some(String::new()),
            },
            host: "10.9.9.9",
            port: Some(60443),
            username: "svc-alice",
            domain: "",
        },
    ];
    for case in cases {
        let (_session, launching) = launching_with(case.identity_domain, case.launch);
        let request = launching.request();
        let name = case.name;
        assert_eq!(request.agent_host, case.host, "{name}");
        assert_eq!(request.agent_port, case.port, "{name}");
        let launch = &request.launch;
        assert_eq!(launch.session_type, "UNSPECIFIED", "{name}");
        assert_eq!(launch.ip_address, case.host, "{name}");
        assert_eq!(launch.hostname, "ws-7.example.com", "{name}");
        assert_eq!(launch.username, case.username, "{name}");
        assert_eq!(launch.password.expose(), PASSWORD, "{name}");
        assert_eq!(launch.domain, case.domain, "{name}");
        assert_eq!(launch.client_ip, "192.168.114.8", "{name}");
        assert_eq!(launch.client_mac, "28:b2:bd:ed:a4:7c", "{name}");
        assert_eq!(launch.client_name, "ford", "{name}");
        assert_eq!(launch.session_log_id, client().log_id, "{name}");
        assert_eq!(launch.license_path, None, "{name}");
    }
}

#[test]
fn password_after_a_dialog_is_the_first_steps() {
    let mut session = challenged();
    let Step::ContinueAuthentication(pending) = session.on_request(dialog_request(), T0 + 3) else {
        panic!("no dialog step");
    };
    pending.finish(
        &mut session,
        Ok(AuthOutcome::Accepted(identity(""))),
        T0 + 4,
    );
    list(&mut session, Ok(vec![desktop()]));
    let Step::Allocate(pending) = session.on_request(allocate_request("ws-7"), T0 + 7) else {
        panic!("no allocate step");
    };
    let AllocStep::Launch(launching) =
        pending.finish(&mut session, Ok(Allocation::Launch(launch())), T0 + 8)
    else {
        panic!("no launch");
    };
    assert_eq!(launching.request().launch.password.expose(), PASSWORD);
}

#[test]
fn agent_answers() {
    #[rustfmt::skip]
    let cases: Vec<(&str, Result<LaunchSessionResp, AgentFailure>, &str, &str, Phase)> = vec![
        // name, agent answer, result id, text fragment, phase after
        ("success", Ok(agent_success("SCS1fw0Zbk")), "ALLOC_SUCCESSFUL", "", Phase::Allocated),
        ("success, upper case", Ok(LaunchSessionResp { result_id: " SUCCESSFUL ".into(), ..agent_success("t") }), "ALLOC_SUCCESSFUL", "", Phase::Allocated),
        ("success without a tag", Ok(agent_success("")), "ALLOC_FAILED_TO_ALLOCATE_AGENT", "no session", Phase::Authenticated),
        ("success without session-info", Ok(agent_failure("SUCCESSFUL", None)), "ALLOC_FAILED_TO_ALLOCATE_AGENT", "no session", Phase::Authenticated),
        ("user auth", Ok(agent_failure("FAILED_USER_AUTH", Some("bad password"))), "ALLOC_FAILED_UNKNOWN_USERNAME_OR_PASSWORD", "", Phase::Authenticated),
        ("user auth, lower case", Ok(agent_failure("failed_user_auth", None)), "ALLOC_FAILED_UNKNOWN_USERNAME_OR_PASSWORD", "", Phase::Authenticated),
        ("another session", Ok(agent_failure("FAILED_ANOTHER_SESSION_STARTED", None)), "ALLOC_FAILED_TO_ALLOCATE_AGENT", "another user is already logged in", Phase::Authenticated),
        ("licence", Ok(agent_failure("FAILED", Some("Could not launch a remote session because there are no configured license servers"))), "ALLOC_FAILED_NO_LICENSE", "", Phase::Authenticated),
        ("licence, British", Ok(agent_failure("FAILED_LAUNCH", Some("No Licence available"))), "ALLOC_FAILED_NO_LICENSE", "", Phase::Authenticated),
        ("other id", Ok(agent_failure("FAILED_SOMETHING_NEW", Some("?"))), "ALLOC_FAILED_TO_ALLOCATE_AGENT", "FAILED_SOMETHING_NEW", Phase::Authenticated),
        ("timeout", Err(AgentFailure::Timeout { after_ms: 10_000 }), "ALLOC_FAILED_TO_ALLOCATE_AGENT", "did not answer within 10 s", Phase::Authenticated),
        ("unreachable", Err(AgentFailure::Unreachable("connection refused".into())), "ALLOC_FAILED_TO_ALLOCATE_AGENT", "could not reach", Phase::Authenticated),
        ("bad response", Err(AgentFailure::BadResponse("not XML".into())), "ALLOC_FAILED_TO_ALLOCATE_AGENT", "could not read", Phase::Authenticated),
        ("refused", Err(AgentFailure::Refused("outside agent.allowed_hosts".into())), "ALLOC_FAILED_TO_ALLOCATE_AGENT", "does not start sessions", Phase::Authenticated),
        ("certificate changed", Err(AgentFailure::CertificateChanged("pin mismatch".into())), "ALLOC_FAILED_TO_ALLOCATE_AGENT", "did not send your password", Phase::Authenticated),
    ];
    for (name, answer, id, fragment, phase) in cases {
        let (mut session, launching) = launching();
        let reply = launching.finish(&mut session, answer, T0 + 7);
        let BrokerReply::Allocate(resp) = &reply else {
            panic!("{name}: {reply:?}");
        };
        assert_eq!(resp.result_id.as_str(), id, "{name}");
        assert!(
            resp.result_str
                .to_lowercase()
                .contains(&fragment.to_lowercase()),
            "{name}: {}",
            resp.result_str
        );
        assert_eq!(session.phase(), phase, "{name}");
        assert_eq!(
            session.holds_password(),
            phase != Phase::Allocated,
            "{name}"
        );
        let encoded = String::from_utf8(encode_reply(Root::PcoipClient, &reply)).unwrap();
        for agent_id in ["<result-id>SUCCESSFUL", "<result-id>FAILED_"] {
            assert!(
                !encoded.contains(agent_id),
                "{name}: agent id sent as a result id"
            );
        }
        if id == "ALLOC_SUCCESSFUL" {
            let target = resp.target.as_ref().unwrap();
            assert_eq!(target.ip_address, "10.64.60.147");
            assert_eq!(target.hostname, "ws-7.example.com");
            assert_eq!(target.sni, "SAL-W7P64-SA15");
            assert_eq!(target.port, 4172);
            assert!(!target.connect_tag.is_empty());
        }
    }
}

#[test]
fn success_without_an_agent_address_targets_the_agent_host() {
    let (mut session, launching) = launching();
    let mut resp = agent_success("tag");
    if let Some(info) = resp.session_info.as_mut() {
        info.ip_address.clear();
    }
    let BrokerReply::Allocate(reply) = launching.finish(&mut session, Ok(resp), T0 + 7) else {
        panic!("not an allocate reply");
    };
    assert_eq!(reply.target.unwrap().ip_address, "ws-7.example.com");
}

#[test]
fn expiry() {
    let limits = Limits::default();
    assert_eq!(limits.idle_ms, 600_000);
    assert_eq!(limits.unauthenticated_ms, 120_000);
    assert_eq!(limits.absolute_ms, 3_600_000);
    // Nobody logged in: the short idle limit.
    let anonymous = created();
    assert!(anonymous.is_unauthenticated());
    assert!(!anonymous.is_expired(T0 + 119_999, &limits));
    assert!(anonymous.is_expired(T0 + 120_000, &limits));
    assert_eq!(anonymous.expires_at(&limits), T0 + 120_000);
    // Logged in: the idle and absolute limits.
    let mut session = authenticated();
    assert!(!session.is_unauthenticated());
    session.on_request(list_request(), T0);
    #[rustfmt::skip]
    let cases: Vec<(&str, u64, Option<u64>, bool)> = vec![
        // name, touched at (relative), checked at (relative), expired
        ("fresh", 0, Some(0), false),
        ("idle just under", 0, Some(599_999), false),
        ("idle reached", 0, Some(600_000), true),
        ("kept alive by a request", 500_000, Some(1_000_000), false),
        ("idle again", 500_000, Some(1_100_000), true),
        ("busy but absolute reached", 3_599_000, Some(3_600_000), true),
        ("busy just under absolute", 3_599_000, Some(3_599_999), false),
        ("clock going backwards", 0, None, false),
    ];
    for (name, touched, checked, expired) in cases {
        if touched > 0 {
            session.on_request(list_request(), T0 + touched);
        }
        let now = match checked {
            Some(at) => T0 + at,
            None => T0 - 5_000,
        };
        assert_eq!(session.is_expired(now, &limits), expired, "{name}");
    }
    let short = Limits {
        idle_ms: 10,
        unauthenticated_ms: 10,
        absolute_ms: 20,
    };
    let fresh = created();
    assert!(!fresh.is_expired(T0 + 9, &short));
    assert!(fresh.is_expired(T0 + 10, &short));
    assert_eq!(fresh.created_at(), T0);
}

#[test]
fn the_password_is_wiped_and_never_printed() {
    let mut session = listed();
    assert!(session.holds_password());
    let Step::Allocate(pending) = session.on_request(allocate_request("ws-7"), T0 + 5) else {
        panic!("no allocate step");
    };
    let pending_debug = format!("{pending:?}");
    let AllocStep::Launch(launching) =
        pending.finish(&mut session, Ok(Allocation::Launch(launch())), T0 + 6)
    else {
        panic!("no launch");
    };
    for debug in [
        format!("{session:?}"),
        pending_debug,
        format!("{launching:?}"),
        format!("{:?}", created().on_request(password_request(""), T0)),
        format!("{:?}", challenged()),
        format!("{:?}", challenged().on_request(dialog_request(), T0)),
    ] {
        assert!(!debug.contains("s3cr3t"), "password in {debug}");
        assert!(
            !debug.contains("mapper-state-42"),
            "dialog state in {debug}"
        );
    }
    let reply = launching.finish(&mut session, Ok(agent_success("the-connect-tag")), T0 + 7);
    assert!(!session.holds_password());
    assert_eq!(session.phase(), Phase::Allocated);
    assert!(!format!("{reply:?}").contains("the-connect-tag"));
    assert!(!format!("{session:?}").contains("s3cr3t"));

    // A failed password step drops it as well; a mapper error at a dialog keeps it, so the
    // user may answer the dialog again; a bye drops it.
    let mut session = created();
    let Step::Authenticate(pending) = session.on_request(password_request(""), T0) else {
        panic!("no authenticate step");
    };
    pending.finish(
        &mut session,
        Err(MapperError::Unavailable("busy".into())),
        T0 + 1,
    );
    assert!(!session.holds_password());
    let mut session = challenged();
    let Step::ContinueAuthentication(pending) = session.on_request(dialog_request(), T0) else {
        panic!("no dialog step");
    };
    pending.finish(
        &mut session,
        Err(MapperError::Unavailable("busy".into())),
        T0 + 1,
    );
    assert!(session.holds_password());
    session.on_request(ClientRequest::Bye, T0 + 2);
    assert!(!session.holds_password());
}

#[test]
fn client_context_is_filled_from_hello() {
    let session = Session::new(
        &hello(true),
        ClientContext {
            hostname: "from-caller".into(),
            ..client()
        },
        T0,
    );
    let client = session.client();
    assert_eq!(client.hostname, "from-caller");
    assert_eq!(client.product_name, "Teradici PCoIP Desktop Client");
    assert_eq!(client.product_version, "24.07.3");
    assert_eq!(client.address, "10.27.0.5");
    assert_eq!(session.phase(), Phase::Created);
    assert!(session.identity().is_none());
}

#[test]
fn hello_reply_carries_the_domains() {
    let info = BrokerInfo {
        product_name: "Interstate".into(),
        ..BrokerInfo::default()
    };
    let BrokerReply::Hello(resp) = hello_reply(&info, vec!["LAB".into()]) else {
        panic!("not a hello-resp");
    };
    assert_eq!(resp.broker_info, info);
    assert_eq!(resp.domains, ["LAB"]);
}

/// The 0.2 conversation: disclaimers, dialog buttons, password changes and operations.
mod v02 {
    use super::*;
    use interstate_protocol::policy::{
        Capabilities, DialogButton, Disclaimer, Operation, OperationOutcome, PasswordChange,
        PasswordChangeOutcome, PasswordRejection, PasswordRejectionKind,
    };
    use interstate_protocol::{
        OPERATION_TRY_AGAIN_TEXT, PerformOperation, RequestedOperation, UpdatePassword,
    };

    const ALL: Capabilities = Capabilities {
        operate: true,
        change_password: true,
    };
    const NONE: Capabilities = Capabilities {
        operate: false,
        change_password: false,
    };
    const NEW_PASSWORD: &str = " n3w <pässword> ";

    /// The reply encoded, without the indentation between elements.
    fn compact(reply: &BrokerReply) -> String {
        String::from_utf8(encode_reply(Root::PcoipClient, reply))
            .unwrap()
            .lines()
            .map(str::trim)
            .collect()
    }

    /// A 24.07 client's hello: dialogs and disclaimers.
    fn created_v02() -> Session {
        let mut hello = hello(true);
        hello.caps.push("CAP_DISCLAIMER_AUTHENTICATION".into());
        Session::new(&hello, client(), T0)
    }

    fn disclaimer_outcome() -> AuthOutcome {
        AuthOutcome::Disclaimer(Disclaimer {
            text: "Sessions may be monitored.".into(),
            state: Secret::new("disclaimer-state-7"),
        })
    }

    fn challenge_with_buttons() -> AuthOutcome {
        let AuthOutcome::Challenge(mut dialog) = challenge("") else {
            unreachable!()
        };
        dialog.buttons = vec![
            DialogButton {
                id: "ok".into(),
                label: "Verify".into(),
                is_default: true,
            },
            DialogButton {
                id: "cancel".into(),
                label: "Cancel".into(),
                is_default: false,
            },
        ];
        AuthOutcome::Challenge(dialog)
    }

    fn disclaimed() -> Session {
        let mut session = created_v02();
        let reply = logged_in(&mut session, disclaimer_outcome());
        assert_eq!(reply.result_id(), Some("AUTH_SUCCESSFUL_AND_INCOMPLETE"));
        session
    }

    fn challenged_with_buttons() -> Session {
        let mut session = created_v02();
        logged_in(&mut session, challenge_with_buttons());
        session
    }

    fn disclaimer_answer(accepted: bool) -> ClientRequest {
        ClientRequest::Authenticate(Authenticate::Disclaimer { accepted })
    }

    fn dialog_answer(fields: &[(&str, &str)], button: Option<&str>) -> ClientRequest {
        ClientRequest::Authenticate(Authenticate::Dialog {
            answers: fields
                .iter()
                .map(|(id, value)| FieldAnswer {
                    id: (*id).into(),
                    value: Secret::new(*value),
                })
                .collect(),
            button_id: button.map(str::to_owned),
        })
    }

    fn update_password(username: &str) -> ClientRequest {
        ClientRequest::UpdatePassword(UpdatePassword {
            username: username.into(),
            old_password: Secret::new(PASSWORD),
            new_password: Secret::new(NEW_PASSWORD),
            domain: "EXAMPLE".into(),
        })
    }

    fn operation(id: &str, token: &str) -> ClientRequest {
        ClientRequest::PerformOperation(PerformOperation {
            resource_id: id.into(),
            operation: RequestedOperation::from_token(token),
        })
    }

    fn operable_desktop() -> Desktop {
        Desktop {
            operations: vec![Operation::Restart, Operation::PowerUp],
            ..desktop()
        }
    }

    /// Logged in and listed by a mapper that can operate.
    fn operable() -> Session {
        let mut session = created_v02();
        logged_in(&mut session, AuthOutcome::Accepted(identity("")));
        let Step::ListDesktops(pending) = session.on_request_with(list_request(), ALL, T0 + 3)
        else {
            panic!("no list step");
        };
        pending.finish(&mut session, Ok(vec![operable_desktop()]), T0 + 4);
        session
    }

    fn operable_allocated() -> Session {
        let mut session = operable();
        let Step::Allocate(pending) = session.on_request(allocate_request("ws-7"), T0 + 5) else {
            panic!("no allocate step");
        };
        let AllocStep::Launch(launching) =
            pending.finish(&mut session, Ok(Allocation::Launch(launch())), T0 + 6)
        else {
            panic!("no launch");
        };
        launching.finish(&mut session, Ok(agent_success("tag")), T0 + 7);
        assert_eq!(session.phase(), Phase::Allocated);
        session
    }

    /// What a 0.2 step should be.
    #[derive(Debug)]
    enum Want {
        Reply(&'static str),
        Continue(&'static str, StepAnswer),
        ChangePassword,
        Operate(Operation),
        Authenticate,
    }

    fn check(name: &str, step: &Step, want: &Want) {
        match (step, want) {
            (Step::Reply(reply), Want::Reply(id)) => {
                assert_eq!(reply.result_id(), Some(*id), "{name}: {reply:?}");
            }
            (Step::ContinueAuthentication(pending), Want::Continue(state, answer)) => {
                assert_eq!(pending.state().expose(), *state, "{name}");
                assert_eq!(pending.answer(), answer, "{name}");
                assert_eq!(pending.username(), "alice", "{name}");
            }
            (Step::ChangePassword(pending), Want::ChangePassword) => {
                let change = pending.change();
                assert_eq!(change.username, "alice", "{name}");
                assert_eq!(change.domain, "EXAMPLE", "{name}");
                assert_eq!(change.old_password.expose(), PASSWORD, "{name}");
                assert_eq!(change.new_password.expose(), NEW_PASSWORD, "{name}");
                assert_eq!(change.client.address, "10.27.0.5", "{name}");
            }
            (Step::Operate(pending), Want::Operate(op)) => {
                assert_eq!(pending.user().username, "alice", "{name}");
                assert_eq!(pending.desktop_id(), "ws-7", "{name}");
                assert_eq!(pending.operation(), *op, "{name}");
            }
            (Step::Authenticate(_), Want::Authenticate) => {}
            _ => panic!("{name}: expected {want:?}, got {step:?}"),
        }
    }

    fn code(value: &str) -> StepAnswer {
        StepAnswer::Dialog {
            fields: vec![FieldAnswer {
                id: "otp".into(),
                value: Secret::new(value),
            }],
            button_id: "ok".into(),
        }
    }

    #[test]
    fn requests_in_every_phase() {
        type Start = fn() -> Session;
        #[rustfmt::skip]
        let cases: Vec<(&str, Start, ClientRequest, Capabilities, Want, Phase, bool)> = vec![
            // name, start, request, mapper capabilities, expected step, phase after, password
            // held after (by the session or the step)
            // Disclaimers.
            ("accept", disclaimed, disclaimer_answer(true), ALL, Want::Continue("disclaimer-state-7", StepAnswer::DisclaimerAccepted), Phase::Created, true),
            ("decline", disclaimed, disclaimer_answer(false), ALL, Want::Reply("AUTH_FAILED_DISCLAIMER_REJECTED"), Phase::Created, false),
            ("dialog answer to a disclaimer", disclaimed, dialog_request(), ALL, Want::Reply("AUTH_FAILED_UNEXPECTED_METHOD"), Phase::Created, true),
            ("disclaimer answer to a dialog", challenged, disclaimer_answer(true), ALL, Want::Reply("AUTH_FAILED_UNEXPECTED_METHOD"), Phase::Created, true),
            ("disclaimer answer, none shown", created, disclaimer_answer(true), ALL, Want::Reply("AUTH_FAILED_UNEXPECTED_METHOD"), Phase::Created, false),
            ("disclaimer answer when in", authenticated, disclaimer_answer(false), ALL, Want::Reply("AUTH_FAILED_UNEXPECTED_METHOD"), Phase::Authenticated, true),
            ("password during a disclaimer", disclaimed, password_request(""), ALL, Want::Authenticate, Phase::Created, true),
            // Dialog buttons and fields.
            ("the default button", challenged, dialog_answer(&[("otp", "1")], Some("ok")), ALL, Want::Continue("mapper-state-42", code("1")), Phase::Created, true),
            ("no button is the default", challenged, dialog_answer(&[("otp", "1")], None), ALL, Want::Continue("mapper-state-42", code("1")), Phase::Created, true),
            ("a button not shown", challenged, dialog_answer(&[("otp", "1")], Some("cancel")), ALL, Want::Reply("AUTH_FAILED_INVALID_FIELD_BUTTON_ID"), Phase::Created, true),
            ("a listed button", challenged_with_buttons, dialog_answer(&[("otp", "1")], Some("cancel")), ALL, Want::Continue("mapper-state-42", StepAnswer::Dialog { fields: vec![FieldAnswer { id: "otp".into(), value: Secret::new("1") }], button_id: "cancel".into() }), Phase::Created, true),
            ("an unlisted button", challenged_with_buttons, dialog_answer(&[("otp", "1")], Some("retry")), ALL, Want::Reply("AUTH_FAILED_INVALID_FIELD_BUTTON_ID"), Phase::Created, true),
            ("fields not shown are dropped", challenged, dialog_answer(&[("user", "root"), ("otp", "2"), ("otp2", "3")], Some("ok")), ALL, Want::Continue("mapper-state-42", code("2")), Phase::Created, true),
            // update-password.
            ("change before login", created, update_password("alice"), ALL, Want::ChangePassword, Phase::Created, true),
            ("change during a dialog", challenged, update_password(""), ALL, Want::ChangePassword, Phase::Created, true),
            ("change during a disclaimer", disclaimed, update_password("alice"), ALL, Want::ChangePassword, Phase::Created, true),
            ("change when in", authenticated, update_password("alice"), ALL, Want::Reply("PSWD_UPDATE_FAILED_ALREADY_AUTHENTICATED"), Phase::Authenticated, true),
            ("change after allocation", allocated, update_password("alice"), ALL, Want::Reply("PSWD_UPDATE_FAILED_ALREADY_AUTHENTICATED"), Phase::Allocated, false),
            ("change, mapper cannot", created, update_password("alice"), NONE, Want::Reply("PSWD_UPDATE_FAILED_NOT_SUPPORTED"), Phase::Created, false),
            ("change, mapper cannot, dialog kept", challenged, update_password("alice"), NONE, Want::Reply("PSWD_UPDATE_FAILED_NOT_SUPPORTED"), Phase::Created, true),
            // perform-operation.
            ("operate before login", created, operation("ws-7", "CMD_OS_RESTART"), ALL, Want::Reply("OP_FAILED_NO_USER"), Phase::Created, false),
            ("operate during a dialog", challenged, operation("ws-7", "CMD_OS_RESTART"), ALL, Want::Reply("OP_FAILED_NO_USER"), Phase::Created, true),
            ("operate before listing", authenticated, operation("ws-7", "CMD_OS_RESTART"), ALL, Want::Reply("OP_FAILED_INVALID_PARAMETER"), Phase::Authenticated, true),
            ("operate unknown id", operable, operation("ws-8", "CMD_OS_RESTART"), ALL, Want::Reply("OP_FAILED_INVALID_PARAMETER"), Phase::Authenticated, true),
            ("restart", operable, operation("ws-7", "CMD_OS_RESTART"), ALL, Want::Operate(Operation::Restart), Phase::Authenticated, true),
            ("power up", operable, operation("ws-7", "CMD_PWR_UP"), ALL, Want::Operate(Operation::PowerUp), Phase::Authenticated, true),
            ("power down, not offered", operable, operation("ws-7", "CMD_PWR_DOWN"), ALL, Want::Reply("OP_FAILED_OPERATION_NOT_SUPPORTED"), Phase::Authenticated, true),
            ("sleep", operable, operation("ws-7", "CMD_PWR_SLEEP"), ALL, Want::Reply("OP_FAILED_OPERATION_NOT_SUPPORTED"), Phase::Authenticated, true),
            ("resume", operable, operation("ws-7", "CMD_PWR_RESUME"), ALL, Want::Reply("OP_FAILED_OPERATION_NOT_SUPPORTED"), Phase::Authenticated, true),
            ("mapper cannot operate", operable, operation("ws-7", "CMD_OS_RESTART"), NONE, Want::Reply("OP_FAILED_OPERATION_NOT_SUPPORTED"), Phase::Authenticated, true),
            ("restart after allocation", operable_allocated, operation("ws-7", "CMD_OS_RESTART"), ALL, Want::Operate(Operation::Restart), Phase::Allocated, false),
        ];
        for (name, start, request, capabilities, want, phase, holds) in cases {
            let mut session = start();
            let now = T0 + 100;
            let step = session.on_request_with(request, capabilities, now);
            check(name, &step, &want);
            assert_eq!(session.phase(), phase, "{name}");
            assert_eq!(
                session.holds_password() || step.holds_password(),
                holds,
                "{name}"
            );
            assert_eq!(session.last_seen(), now, "{name}");
            if let Step::Reply(reply) = &step {
                let encoded = String::from_utf8(encode_reply(Root::PcoipClient, reply)).unwrap();
                assert!(!encoded.contains("s3cr3t") && !encoded.contains("mapper-state"));
            }
        }
    }

    #[test]
    fn a_refused_button_keeps_the_dialog_open() {
        let mut session = challenged_with_buttons();
        let step = session.on_request(dialog_answer(&[("otp", "1")], Some("nope")), T0 + 10);
        check(
            "refused",
            &step,
            &Want::Reply("AUTH_FAILED_INVALID_FIELD_BUTTON_ID"),
        );
        let Step::Reply(BrokerReply::Authenticate(resp)) = &step else {
            unreachable!()
        };
        assert_eq!(resp.method, None);
        let step = session.on_request(dialog_answer(&[("otp", "1")], Some("ok")), T0 + 11);
        check("then", &step, &Want::Continue("mapper-state-42", code("1")));
    }

    #[test]
    fn disclaimers() {
        // Shown only to a client that advertised it.
        let mut session = created_v02();
        let reply = logged_in(&mut session, disclaimer_outcome());
        let BrokerReply::Authenticate(resp) = &reply else {
            panic!("{reply:?}")
        };
        assert_eq!(resp.method.as_deref(), Some("password"));
        assert_eq!(
            resp.next,
            Some(NextAuthentication::Disclaimer(
                "Sessions may be monitored.".into()
            ))
        );
        assert_eq!(session.typed_username(), Some("alice"));
        let encoded = String::from_utf8(encode_reply(Root::PcoipClient, &reply)).unwrap();
        assert!(!encoded.contains("disclaimer-state-7"), "{encoded}");

        let mut old_client = created();
        let reply = logged_in(&mut old_client, disclaimer_outcome());
        let BrokerReply::Authenticate(resp) = &reply else {
            panic!("{reply:?}")
        };
        assert_eq!(resp.result_id.as_str(), "AUTH_FAILED_ACCESS_DENIED");
        assert!(
            resp.result_str.contains("cannot show"),
            "{}",
            resp.result_str
        );
        assert!(!old_client.holds_password());

        // Accepting continues with the mapper; what it answers moves the session on, and the
        // reply carries no method.
        #[rustfmt::skip]
        let cases: Vec<(&str, Result<AuthOutcome, MapperError>, &str, Phase, bool)> = vec![
            ("accepted", Ok(AuthOutcome::Accepted(identity("EXAMPLE"))), "AUTH_SUCCESSFUL_AND_COMPLETE", Phase::Authenticated, true),
            ("then a dialog", Ok(challenge("")), "AUTH_SUCCESSFUL_AND_INCOMPLETE", Phase::Created, true),
            ("then refused", Ok(AuthOutcome::Rejected(Rejection { kind: RejectionKind::BadCredentials, reason: String::new() })), "AUTH_FAILED_UNKNOWN_USERNAME_OR_PASSWORD", Phase::Created, false),
            ("mapper error keeps it", Err(MapperError::Timeout(5000)), "ERR_BROKER_SYS_FAILED", Phase::Created, true),
        ];
        for (name, outcome, id, phase, holds) in cases {
            let mut session = disclaimed();
            let Step::ContinueAuthentication(pending) =
                session.on_request(disclaimer_answer(true), T0 + 10)
            else {
                panic!("{name}: no step");
            };
            assert!(!pending.is_dialog_answer(), "{name}");
            let reply = pending.finish(&mut session, outcome, T0 + 11);
            assert_eq!(reply.result_id(), Some(id), "{name}");
            if let BrokerReply::Authenticate(resp) = &reply {
                assert_eq!(resp.method, None, "{name}");
            }
            assert_eq!(session.phase(), phase, "{name}");
            assert_eq!(session.holds_password(), holds, "{name}");
            if name == "mapper error keeps it" {
                let step = session.on_request(disclaimer_answer(true), T0 + 12);
                check(
                    name,
                    &step,
                    &Want::Continue("disclaimer-state-7", StepAnswer::DisclaimerAccepted),
                );
            }
        }
    }

    #[test]
    fn a_wrong_code_keeps_the_dialog_and_its_state() {
        let mut session = challenged();
        assert_eq!(session.typed_username(), Some("alice"));
        let Step::ContinueAuthentication(pending) = session.on_request(dialog_request(), T0 + 3)
        else {
            panic!("no dialog step");
        };
        assert!(pending.is_dialog_answer());
        let reply = pending.finish(
            &mut session,
            Ok(AuthOutcome::Rejected(Rejection {
                kind: RejectionKind::BadCredentials,
                reason: "wrong code".into(),
            })),
            T0 + 4,
        );
        assert_eq!(
            reply.result_id(),
            Some("AUTH_FAILED_DIALOG_INVALID_USER_ENTRY")
        );
        assert!(session.holds_password());
        let step = session.on_request(dialog_request(), T0 + 5);
        check_step("again", &step, &Expect::Continue);

        // The failure limits refuse an answer: the attempt ends, told like a wrong code.
        let Step::ContinueAuthentication(pending) = step else {
            unreachable!()
        };
        let reply = pending.refuse(&mut session, T0 + 6);
        assert_eq!(
            reply.result_id(),
            Some("AUTH_FAILED_DIALOG_INVALID_USER_ENTRY")
        );
        assert!(!session.holds_password());
        assert_eq!(session.typed_username(), None);
        let step = session.on_request(dialog_request(), T0 + 7);
        check_step(
            "after",
            &step,
            &Expect::Reply("AUTH_FAILED_UNEXPECTED_METHOD"),
        );
    }

    fn change_outcome(
        outcome: Result<PasswordChangeOutcome, MapperError>,
    ) -> (Session, BrokerReply) {
        let mut session = created_v02();
        let Step::ChangePassword(pending) =
            session.on_request_with(update_password("alice"), ALL, T0 + 10)
        else {
            panic!("no change step");
        };
        let reply = pending.finish(&mut session, outcome, T0 + 11);
        (session, reply)
    }

    #[test]
    fn password_changes() {
        let rejected = |kind| {
            Ok(PasswordChangeOutcome::Rejected(PasswordRejection {
                kind,
                reason: "the directory said (secret detail)".into(),
            }))
        };
        let changed = |outcome| Ok(PasswordChangeOutcome::Changed(outcome));
        #[rustfmt::skip]
        let cases: Vec<(&str, Result<PasswordChangeOutcome, MapperError>, &str, Option<&str>, Phase, bool)> = vec![
            // name, outcome, result id, next method, phase after, holds a password
            ("changed, in", changed(AuthOutcome::Accepted(identity("EXAMPLE"))), "PSWD_UPDATE_SUCCESSFUL_AUTH_COMPLETE", None, Phase::Authenticated, true),
            ("changed, a dialog", changed(challenge("")), "PSWD_UPDATE_SUCCESSFUL_AUTH_INCOMPLETE", Some("AUTHENTICATE_VIA_DIALOG"), Phase::Created, true),
            ("changed, a disclaimer", changed(disclaimer_outcome()), "PSWD_UPDATE_SUCCESSFUL_AUTH_INCOMPLETE", Some("AUTHENTICATE_VIA_DISCLAIMER"), Phase::Created, true),
            ("changed, log in again", changed(AuthOutcome::Rejected(Rejection { kind: RejectionKind::AccessDenied, reason: String::new() })), "PSWD_UPDATE_SUCCESSFUL_AUTH_INCOMPLETE", Some("AUTHENTICATE_VIA_PASSWORD"), Phase::Created, false),
            ("wrong password", rejected(PasswordRejectionKind::WrongPassword), "PSWD_UPDATE_FAILED_UNKNOWN_USERNAME_OR_PASSWORD", None, Phase::Created, false),
            ("weak", rejected(PasswordRejectionKind::WeakPassword), "PSWD_UPDATE_FAILED_WEAK_PASSWORD", None, Phase::Created, false),
            ("too many", rejected(PasswordRejectionKind::TooManyAttempts), "PSWD_UPDATE_FAILED_MAX_RETRIES_EXCEEDED", None, Phase::Created, false),
            ("directory", rejected(PasswordRejectionKind::DirectoryError), "PSWD_UPDATE_FAILED_DC_ERROR", None, Phase::Created, false),
            ("unsupported", Ok(PasswordChangeOutcome::Unsupported), "PSWD_UPDATE_FAILED_NOT_SUPPORTED", None, Phase::Created, false),
            ("mapper error", Err(MapperError::Trap("unreachable".into())), "PSWD_UPDATE_FAILED_DC_ERROR", None, Phase::Created, false),
        ];
        for (name, outcome, id, next, phase, holds) in cases {
            let (session, reply) = change_outcome(outcome);
            assert_eq!(reply.result_id(), Some(id), "{name}");
            assert_eq!(session.phase(), phase, "{name}");
            assert_eq!(session.holds_password(), holds, "{name}");
            let encoded = compact(&reply);
            assert!(
                encoded.contains("<update-password-resp><result>"),
                "{encoded}"
            );
            for leak in [
                "s3cr3t",
                "n3w",
                "secret detail",
                "mapper-state",
                "disclaimer-state",
            ] {
                assert!(!encoded.contains(leak), "{name}: {leak} in {encoded}");
            }
            match next {
                Some(method) => {
                    assert!(
                        encoded.contains(&format!("<method>{method}</method>")),
                        "{name}: {encoded}"
                    );
                }
                None => assert!(!encoded.contains("next-authentication"), "{name}"),
            }
            if next == Some("AUTHENTICATE_VIA_PASSWORD") {
                assert!(
                    encoded.contains("<domains><domain>EXAMPLE</domain></domains>"),
                    "{encoded}"
                );
            }
            if holds {
                assert_eq!(session.typed_username(), Some("alice"), "{name}");
            }
        }
    }

    #[test]
    fn the_new_password_is_the_one_replayed() {
        let (mut session, reply) = change_outcome(Ok(PasswordChangeOutcome::Changed(
            AuthOutcome::Accepted(identity("")),
        )));
        assert_eq!(
            reply.result_id(),
            Some("PSWD_UPDATE_SUCCESSFUL_AUTH_COMPLETE")
        );
        list(&mut session, Ok(vec![desktop()]));
        let Step::Allocate(pending) = session.on_request(allocate_request("ws-7"), T0 + 20) else {
            panic!("no allocate step");
        };
        let AllocStep::Launch(launching) =
            pending.finish(&mut session, Ok(Allocation::Launch(launch())), T0 + 21)
        else {
            panic!("no launch");
        };
        let sent = &launching.request().launch;
        assert_eq!(sent.password.expose(), NEW_PASSWORD);
        assert_eq!(sent.domain, "EXAMPLE", "the domain sent with the change");

        // and through a dialog after the change too
        let (mut session, _) = change_outcome(Ok(PasswordChangeOutcome::Changed(challenge(""))));
        let Step::ContinueAuthentication(pending) = session.on_request(dialog_request(), T0 + 30)
        else {
            panic!("no dialog step");
        };
        pending.finish(
            &mut session,
            Ok(AuthOutcome::Accepted(identity(""))),
            T0 + 31,
        );
        list(&mut session, Ok(vec![desktop()]));
        let Step::Allocate(pending) = session.on_request(allocate_request("ws-7"), T0 + 32) else {
            panic!("no allocate step");
        };
        let AllocStep::Launch(launching) =
            pending.finish(&mut session, Ok(Allocation::Launch(launch())), T0 + 33)
        else {
            panic!("no launch");
        };
        assert_eq!(launching.request().launch.password.expose(), NEW_PASSWORD);
    }

    #[test]
    fn a_change_after_an_expired_password() {
        let mut session = created_v02();
        let reply = logged_in(
            &mut session,
            AuthOutcome::Rejected(Rejection {
                kind: RejectionKind::ExpiredPassword,
                reason: String::new(),
            }),
        );
        assert_eq!(reply.result_id(), Some("AUTH_FAILED_EXPIRED_PASSWORD"));
        let step = session.on_request_with(update_password("alice"), ALL, T0 + 5);
        check("change", &step, &Want::ChangePassword);
        // A change that names no user is the dialog's user's.
        let mut session = challenged();
        let step = session.on_request_with(update_password(""), ALL, T0 + 5);
        let Step::ChangePassword(pending) = step else {
            panic!("{step:?}")
        };
        let PasswordChange { username, .. } = pending.change();
        assert_eq!(username, "alice");
        assert!(!format!("{pending:?}").contains("n3w"));
        assert!(!format!("{pending:?}").contains("s3cr3t"));
    }

    #[test]
    fn operations() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Result<OperationOutcome, MapperError>, &str, Option<&str>)> = vec![
            ("done", Ok(OperationOutcome::Done("running".into())), "OP_SUCCESSFUL", None),
            ("try again", Ok(OperationOutcome::TryAgain("starting".into())), "OP_FAILED_TO_EXECUTE", Some(OPERATION_TRY_AGAIN_TEXT)),
            ("refused", Ok(OperationOutcome::Refused("power API: 500 (secret detail)".into())), "OP_FAILED_TO_EXECUTE", None),
            ("unsupported", Ok(OperationOutcome::Unsupported), "OP_FAILED_OPERATION_NOT_SUPPORTED", None),
            ("mapper error", Err(MapperError::Guest("boom".into())), "OP_FAILED_TO_EXECUTE", None),
        ];
        for (name, outcome, id, text) in cases {
            for start in [operable as fn() -> Session, operable_allocated] {
                let mut session = start();
                let phase = session.phase();
                let holds = session.holds_password();
                let Step::Operate(pending) =
                    session.on_request_with(operation("ws-7", "CMD_OS_RESTART"), ALL, T0 + 10)
                else {
                    panic!("{name}: no operate step");
                };
                let reply = pending.finish(&mut session, outcome.clone(), T0 + 11);
                assert_eq!(reply.result_id(), Some(id), "{name}");
                assert_eq!(session.phase(), phase, "{name}: the session stays");
                assert_eq!(session.holds_password(), holds, "{name}");
                assert_eq!(session.last_seen(), T0 + 11, "{name}");
                let BrokerReply::Operation(resp) = &reply else {
                    panic!("{name}: {reply:?}")
                };
                assert_eq!(
                    resp.result_str,
                    text.unwrap_or(resp.result_id.default_text()),
                    "{name}"
                );
                let encoded = String::from_utf8(encode_reply(Root::PcoipClient, &reply)).unwrap();
                assert!(!encoded.contains("secret detail"), "{encoded}");
            }
        }
        assert_eq!(
            OPERATION_TRY_AGAIN_TEXT,
            "The desktop is not ready yet. Please try again in a moment."
        );
        // Allocation still works after an operation, with the typed password.
        let mut session = operable();
        let Step::Operate(pending) =
            session.on_request_with(operation("ws-7", "CMD_PWR_UP"), ALL, T0 + 10)
        else {
            panic!("no operate step");
        };
        pending.finish(
            &mut session,
            Ok(OperationOutcome::Done(String::new())),
            T0 + 11,
        );
        let Step::Allocate(pending) = session.on_request(allocate_request("ws-7"), T0 + 12) else {
            panic!("no allocate step");
        };
        let AllocStep::Launch(launching) =
            pending.finish(&mut session, Ok(Allocation::Launch(launch())), T0 + 13)
        else {
            panic!("no launch");
        };
        assert_eq!(launching.request().launch.password.expose(), PASSWORD);
    }

    #[test]
    fn listings_keep_operations_only_for_a_mapper_that_operates() {
        for (capabilities, kept) in [(ALL, true), (NONE, false)] {
            let mut session = authenticated();
            let Step::ListDesktops(pending) =
                session.on_request_with(list_request(), capabilities, T0 + 3)
            else {
                panic!("no list step");
            };
            let reply = pending.finish(&mut session, Ok(vec![operable_desktop()]), T0 + 4);
            let encoded = compact(&reply);
            assert_eq!(
                encoded.contains(
                    "<supported-operations><supported-operation>CMD_OS_RESTART</supported-operation>\
                     <supported-operation>CMD_PWR_UP</supported-operation></supported-operations>"
                ),
                kept,
                "{encoded}"
            );
            let step = session.on_request_with(operation("ws-7", "CMD_OS_RESTART"), ALL, T0 + 5);
            assert_eq!(matches!(step, Step::Operate(_)), kept);
        }
    }
}
