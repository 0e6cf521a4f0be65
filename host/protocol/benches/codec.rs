//! Codec and state-machine costs: decoding every request fixture, encoding every reply shape,
//! the agent codec, and one session step.
//!
//! `cargo bench -p interstate-protocol -- --warm-up-time 1 --measurement-time 2`
#![allow(
    clippy::unwrap_used,
    missing_docs,
    reason = "a benchmark binary: fixtures are known good, and criterion's macros generate items"
)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use interstate_protocol::policy::{
    AuthOutcome, ClientContext, Desktop, DesktopState, DialogField, FieldKind, HealthState,
    Identity, LaunchTarget, Operation, Secret, SessionKind,
};
use interstate_protocol::{
    AllocResult, AllocateResp, AuthResult, AuthenticateResp, BrokerInfo, BrokerReply,
    ClientRequest, DialogParameters, ErrorId, GetResourceList, Hello, LaunchSession, ListResult,
    NextAuthentication, ResourceListResp, Root, Session, Step, decode_launch_session,
    decode_launch_session_resp, decode_request, encode_launch_session, encode_launch_session_resp,
    encode_reply, hello_reply,
};

fn testdata(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata")).join(relative);
    std::fs::read(path).unwrap()
}

fn requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_request");
    let mut names: Vec<_> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/requests"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
    names.sort();
    for name in names {
        let body = testdata(&format!("requests/{name}"));
        group.bench_function(name.trim_end_matches(".xml"), |b| {
            b.iter(|| decode_request(black_box(&body)).unwrap())
        });
    }
    let hostile = format!(
        "<pcoip-client version=\"2.1\"><hello>{}</hello></pcoip-client>",
        "<unknown/>".repeat(10_000)
    );
    group.bench_function("hostile-10k-elements", |b| {
        b.iter(|| decode_request(black_box(hostile.as_bytes())).unwrap_err())
    });
    group.finish();
}

fn desktop(i: usize) -> Desktop {
    Desktop {
        id: format!("ws-{i}"),
        name: format!("Workstation {i}"),
        hostname: format!("ws-{i}.example.com"),
        agent_port: None,
        session_kind: SessionKind::Vdi,
        state: DesktopState::Running,
        health: Some(HealthState::Healthy),
        operations: vec![Operation::Restart],
    }
}

fn replies(c: &mut Criterion) {
    let info = BrokerInfo {
        product_name: "Interstate".into(),
        product_version: "0.1.0".into(),
        platform: "linux".into(),
        locale: "en_US".into(),
        ip_address: "N/A".into(),
        hostname: "broker01".into(),
    };
    let replies = [
        (
            "hello-resp",
            hello_reply(&info, vec!["example.com".into(), "LAB".into()]),
        ),
        (
            "authenticate-resp",
            BrokerReply::Authenticate(AuthenticateResp {
                method: Some("password".into()),
                result_id: AuthResult::SuccessfulAndComplete,
                result_str: AuthResult::SuccessfulAndComplete.default_text().into(),
                next: None,
            }),
        ),
        (
            "authenticate-resp-dialog",
            BrokerReply::Authenticate(AuthenticateResp {
                method: Some("password".into()),
                result_id: AuthResult::SuccessfulAndIncomplete,
                result_str: AuthResult::SuccessfulAndIncomplete.default_text().into(),
                next: Some(NextAuthentication::Dialog(DialogParameters {
                    prompt: "Enter your code".into(),
                    error_text: String::new(),
                    fields: vec![DialogField {
                        id: "otp".into(),
                        label: "Code".into(),
                        kind: FieldKind::Secret,
                    }],
                    buttons: Vec::new(),
                })),
            }),
        ),
        (
            "get-resource-list-resp-10",
            BrokerReply::ResourceList(ResourceListResp {
                result_id: ListResult::Successful,
                result_str: ListResult::Successful.default_text().into(),
                resources: (0..10).map(desktop).collect(),
            }),
        ),
        (
            "allocate-resource-resp",
            BrokerReply::Allocate(AllocateResp {
                result_id: AllocResult::Successful,
                result_str: AllocResult::Successful.default_text().into(),
                target: Some(LaunchTarget {
                    ip_address: "10.64.60.147".into(),
                    hostname: "ws-7.example.com".into(),
                    sni: "SAL-W7P64-SA15".into(),
                    port: 4172,
                    session_id: "2305843009213693954".into(),
                    connect_tag: Secret::new("SCS1fw0Zbk+Eu7q2AA"),
                }),
                resource_id: "ws-7".into(),
                protocol: "PCOIP".into(),
            }),
        ),
        ("bye-resp", BrokerReply::Bye),
        (
            "error-resp",
            BrokerReply::error(ErrorId::InvalidMsgFormat, Some("truncated message".into())),
        ),
    ];
    let mut group = c.benchmark_group("encode_reply");
    for (name, reply) in &replies {
        group.bench_function(*name, |b| {
            b.iter(|| encode_reply(Root::PcoipClient, black_box(reply)))
        });
    }
    group.finish();
}

fn agent(c: &mut Criterion) {
    let launch = LaunchSession {
        session_type: "UNSPECIFIED".into(),
        ip_address: "172.16.43.3".into(),
        hostname: "ws-7.example.com".into(),
        username: "alice".into(),
        password: Secret::new("correct horse"),
        domain: "example.com".into(),
        client_mac: "28:b2:bd:ed:a4:7c".into(),
        client_ip: "10.27.0.5".into(),
        client_name: "ford".into(),
        license_path: None,
        session_log_id: "d9836980-34c4-1fed-9dea-000000000000".into(),
        time_zone_windows: None,
    };
    let encoded = encode_launch_session(&launch);
    let resp_body = testdata("agent/launch-session-resp-success.xml");
    let resp = decode_launch_session_resp(&resp_body).unwrap();
    let mut group = c.benchmark_group("agent");
    group.bench_function("encode_launch_session", |b| {
        b.iter(|| encode_launch_session(black_box(&launch)))
    });
    group.bench_function("decode_launch_session", |b| {
        b.iter(|| decode_launch_session(black_box(&encoded)).unwrap())
    });
    group.bench_function("encode_launch_session_resp", |b| {
        b.iter(|| encode_launch_session_resp(black_box(&resp)))
    });
    group.bench_function("decode_launch_session_resp", |b| {
        b.iter(|| decode_launch_session_resp(black_box(&resp_body)).unwrap())
    });
    group.finish();
}

fn session(c: &mut Criterion) {
    let mut session = Session::new(&Hello::default(), ClientContext::default(), 0);
    let Step::Authenticate(login) = session.on_request(
        ClientRequest::Authenticate(interstate_protocol::Authenticate::Password {
            username: "alice".into(),
            password: Secret::new("pw"),
            domain: String::new(),
        }),
        1,
    ) else {
        panic!("no authenticate step");
    };
    login.finish(
        &mut session,
        Ok(AuthOutcome::Accepted(Identity {
            username: "alice".into(),
            domain: String::new(),
            attributes: vec![],
        })),
        2,
    );
    let mut now = 3;
    c.bench_function("session/on_request_get_resource_list", |b| {
        b.iter(|| {
            now += 1;
            let step = session.on_request(
                ClientRequest::GetResourceList(GetResourceList::default()),
                black_box(now),
            );
            assert!(matches!(step, Step::ListDesktops(_)));
            step
        })
    });
}

criterion_group!(benches, requests, replies, agent, session);
criterion_main!(benches);
