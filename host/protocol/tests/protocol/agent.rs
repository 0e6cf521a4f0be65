//! The broker → agent `launch-session` codec, against its fixtures.

use interstate_protocol::policy::Secret;
use interstate_protocol::{
    ErrorId, LaunchSession, LaunchSessionResp, SessionInfo, decode_launch_session,
    decode_launch_session_resp, encode_launch_session, encode_launch_session_resp,
};

use crate::fixtures::{assert_golden, read};

fn launch_session() -> LaunchSession {
    LaunchSession {
        session_type: "UNSPECIFIED".into(),
        ip_address: "172.16.43.3".into(),
        hostname: "ws-7.example.com".into(),
        username: "alice".into(),
        password: Secret::new("correct horse"),
        domain: "example.com".into(),
        client_mac: "28:b2:bd:ed:a4:7c".into(),
        client_ip: "10.27.0.5".into(),
        client_name: "ford".into(),
        license_path: Some("2589@license-server".into()),
        session_log_id: "d9836980-34c4-1fed-9dea-000000000000".into(),
        time_zone_windows: None,
    }
}

#[test]
fn agent_launch_session() {
    let launch = launch_session();
    let encoded = encode_launch_session(&launch);
    assert_golden("agent-launch-session.xml", &encoded);
    assert_eq!(decode_launch_session(&encoded).unwrap(), launch);

    // The reference capture carries the Connection Manager's time-zone-windows too.
    let reference = decode_launch_session(&read("agent/launch-session-reference.xml")).unwrap();
    assert!(reference.time_zone_windows.is_some());
    assert_eq!(
        LaunchSession {
            time_zone_windows: None,
            ..reference
        },
        launch
    );

    let without_licence = LaunchSession {
        license_path: None,
        domain: String::new(),
        ..launch
    };
    let encoded = encode_launch_session(&without_licence);
    assert!(!String::from_utf8_lossy(&encoded).contains("license-path"));
    assert_eq!(decode_launch_session(&encoded).unwrap(), without_licence);
}

#[test]
fn agent_launch_session_resp() {
    let success =
        decode_launch_session_resp(&read("agent/launch-session-resp-success.xml")).unwrap();
    assert_eq!(
        success,
        LaunchSessionResp {
            result_id: "SUCCESSFUL".into(),
            session_info: Some(SessionInfo {
                ip_address: "10.64.60.147".into(),
                sni: "SAL-W7P64-SA15".into(),
                port: 4172,
                session_id: "2305843009213693954".into(),
                session_tag: Secret::new("SCS1fw0Zbk+Eu7q2AA"),
            }),
            fail_reason: None,
        }
    );
    let user_auth =
        decode_launch_session_resp(&read("agent/launch-session-resp-user-auth.xml")).unwrap();
    assert_eq!(user_auth.result_id, "FAILED_USER_AUTH");
    assert_eq!(user_auth.session_info, None);
    assert!(
        user_auth
            .fail_reason
            .unwrap()
            .contains("user authentication")
    );
    let another =
        decode_launch_session_resp(&read("agent/launch-session-resp-another-session.xml")).unwrap();
    assert_eq!(another.result_id, "FAILED_ANOTHER_SESSION_STARTED");

    for (name, resp) in [
        ("agent-launch-session-resp-success.xml", success),
        ("agent-launch-session-resp-another-session.xml", another),
    ] {
        let encoded = encode_launch_session_resp(&resp);
        assert_golden(name, &encoded);
        assert_eq!(decode_launch_session_resp(&encoded).unwrap(), resp);
    }
}

#[test]
fn agent_decoding_errors() {
    let cases: &[(&str, ErrorId)] = &[
        (
            "<pcoip-client version='2.1'><bye/></pcoip-client>",
            ErrorId::InvalidMsgEnvelope,
        ),
        (
            "<pcoip-agent version='1.0'/>",
            ErrorId::InvalidMissingMsgContent,
        ),
        (
            "<pcoip-agent version='1.0'><launch-session/></pcoip-agent>",
            ErrorId::UnsupportedRequest,
        ),
        (
            "<pcoip-agent version='1.0'><launch-session-resp/></pcoip-agent>",
            ErrorId::InvalidInvalidMsgContent,
        ),
        (
            "<pcoip-agent version='1.0'><launch-session-resp><result-id>SUCCESSFUL</result-id><session-info><port>70000</port></session-info></launch-session-resp></pcoip-agent>",
            ErrorId::InvalidInvalidMsgContent,
        ),
        (
            "<!DOCTYPE x [<!ENTITY a 'b'>]><pcoip-agent version='1.0'/>",
            ErrorId::InvalidMsgFormat,
        ),
    ];
    for (body, id) in cases {
        let error = decode_launch_session_resp(body.as_bytes()).unwrap_err();
        assert_eq!(error.result_id, *id, "{body}: {error}");
        assert_eq!(error.root, None);
    }
    let error = decode_launch_session(
        b"<pcoip-agent version='1.0'><launch-session><logon><username>a</username></logon></launch-session></pcoip-agent>",
    )
    .unwrap_err();
    assert_eq!(error.result_id, ErrorId::InvalidInvalidMsgContent);
}
