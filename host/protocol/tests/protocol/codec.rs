//! Decoding every request fixture: the protocol page's examples, ILS captures, a dialog answer.

use interstate_protocol::policy::Operation;
use interstate_protocol::{
    AllocateResource, Authenticate, ClientRequest, Hello, PerformOperation, RequestedOperation,
    Root, decode_request,
};

use crate::fixtures::read;

fn decode(name: &str) -> (Root, ClientRequest) {
    let request = decode_request(&read(&format!("requests/{name}")))
        .unwrap_or_else(|e| panic!("{name}: {e} ({:?})", e.result_id));
    (request.root, request.message)
}

fn hello_of(name: &str) -> Hello {
    match decode(name).1 {
        ClientRequest::Hello(hello) => hello,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn seed_hello_with_pcm_info() {
    let (root, _) = decode("seed-hello.xml");
    assert_eq!(root, Root::PcoipBroker);
    let hello = hello_of("seed-hello.xml");
    assert_eq!(
        hello.client_info.product_name,
        "Teradici Windows Soft Client"
    );
    assert_eq!(hello.client_info.product_version, "3.1.5");
    assert_eq!(hello.client_info.platform, "Windows 7 64-bit");
    assert_eq!(hello.client_info.locale, "en_US");
    assert_eq!(hello.client_info.hostname, "my-client.teradici.local");
    assert_eq!(hello.client_info.serial_number, "123456");
    assert_eq!(hello.client_info.device_name, "some-name");
    assert_eq!(hello.client_info.pcoip_unique_id, "");
    assert!(hello.caps.is_empty());
    assert_eq!(hello.server_address, None);
    assert!(!hello.is_probe());
}

#[test]
fn seed_authenticate_get_resource_list_allocate_and_bye() {
    let (root, message) = decode("seed-authenticate.xml");
    assert_eq!(root, Root::PcoipBroker);
    let ClientRequest::Authenticate(Authenticate::Password {
        username,
        password,
        domain,
    }) = message
    else {
        panic!("{message:?}");
    };
    assert_eq!(username, "username");
    assert_eq!(password.expose(), "password");
    assert_eq!(domain, "domain");

    let (_, message) = decode("seed-get-resource-list.xml");
    let ClientRequest::GetResourceList(list) = message else {
        panic!("{message:?}");
    };
    assert!(list.protocols.is_empty() && list.resource_types.is_empty());

    let (_, message) = decode("seed-allocate-resource.xml");
    assert_eq!(
        message,
        ClientRequest::AllocateResource(AllocateResource {
            resource_id: "abcdef0123456789".into(),
            protocol: "PCOIP".into(),
            client_ip: "192.168.0.57".into(),
            client_mac: "00:67:a8:2d:84:7e".into(),
            time_zone_windows: "Pacific Standard Time".into(),
        })
    );

    assert_eq!(decode("seed-bye.xml").1, ClientRequest::Bye);
}

#[test]
fn ils_captures() {
    let (root, _) = decode("ils-hello.xml");
    assert_eq!(root, Root::PcoipClient);
    let hello = hello_of("ils-hello.xml");
    assert_eq!(
        hello.client_info.product_name,
        "Teradici PCoIP Desktop Client"
    );
    assert_eq!(hello.client_info.product_version, "19.11.0");
    assert_eq!(hello.client_info.pcoip_unique_id, "00:00:00:00:00:00");
    assert_eq!(
        hello.caps,
        [
            "CAP_DISCLAIMER_AUTHENTICATION",
            "CAP_NO_AUTHENTICATION",
            "CAP_DIALOG_AUTHENTICATION",
            "CAP_ALTERNATE_PROVISIONING"
        ]
    );
    assert!(hello.has_cap("CAP_DIALOG_AUTHENTICATION"));
    let address = hello.server_address.clone().unwrap();
    assert_eq!(address.ip_address, "::1");
    assert_eq!(address.hostname, "broker.example.com");
    assert!(!hello.is_probe());

    let probe = hello_of("ils-hello-probe.xml");
    assert!(probe.is_probe());
    assert!(probe.caps.is_empty());
    assert_eq!(probe.client_info.platform, "PCoIP");

    let ClientRequest::Authenticate(Authenticate::Password {
        username,
        password,
        domain,
    }) = decode("ils-authenticate.xml").1
    else {
        panic!("not a password login");
    };
    assert_eq!(
        (username.as_str(), password.expose(), domain.as_str()),
        ("alice", "correct horse", "")
    );

    let ClientRequest::GetResourceList(list) = decode("ils-get-resource-list.xml").1 else {
        panic!("not a list");
    };
    assert_eq!(list.protocols, ["PCOIP"]);
    assert_eq!(list.resource_types, ["DESKTOP"]);

    let ClientRequest::AllocateResource(allocate) = decode("ils-allocate-resource.xml").1 else {
        panic!("not an allocation");
    };
    assert_eq!(allocate.resource_id, "ws-7");
    assert_eq!(allocate.client_ip, "192.168.114.8");
    assert_eq!(allocate.client_mac, "00:00:00:00:00:00");
    assert_eq!(allocate.time_zone_windows, "");

    assert_eq!(
        decode("ils-bye.xml"),
        (Root::PcoipClient, ClientRequest::Bye)
    );
}

#[test]
fn dialog_answer() {
    let ClientRequest::Authenticate(Authenticate::Dialog { answers, button_id }) =
        decode("dialog-answer.xml").1
    else {
        panic!("not a dialog answer");
    };
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].id, "passcode");
    assert_eq!(answers[0].value.expose(), "123456");
    assert_eq!(button_id.as_deref(), Some("ok"));
}

/// The shapes the HP Anyware 24.07.3 client library sends (reference §11, §11.1 [R]).
#[test]
fn real_client_shapes() {
    let ClientRequest::Authenticate(Authenticate::Dialog { answers, button_id }) =
        decode("real-client-dialog-answer.xml").1
    else {
        panic!("not a dialog answer");
    };
    assert_eq!(answers.len(), 1);
    assert_eq!(
        (answers[0].id.as_str(), answers[0].value.expose()),
        ("otp", "123456")
    );
    assert_eq!(button_id.as_deref(), Some("ok"));

    assert_eq!(
        decode("real-client-disclaimer-accepted.xml").1,
        ClientRequest::Authenticate(Authenticate::Disclaimer { accepted: true })
    );
    assert_eq!(
        decode("real-client-disclaimer-rejected.xml").1,
        ClientRequest::Authenticate(Authenticate::Disclaimer { accepted: false })
    );

    assert_eq!(
        decode("real-client-perform-operation.xml"),
        (
            Root::PcoipClient,
            ClientRequest::PerformOperation(PerformOperation {
                resource_id: "ws-7".into(),
                operation: RequestedOperation::Known(Operation::Restart),
            })
        )
    );
    assert_eq!(
        decode("real-client-perform-operation-sleep.xml").1,
        ClientRequest::PerformOperation(PerformOperation {
            resource_id: "ws-7".into(),
            operation: RequestedOperation::Unknown("CMD_PWR_SLEEP".into()),
        })
    );
    for (token, operation) in [
        (
            "CMD_OS_RESTART",
            RequestedOperation::Known(Operation::Restart),
        ),
        (
            "CMD_PWR_DOWN",
            RequestedOperation::Known(Operation::PowerDown),
        ),
        ("CMD_PWR_UP", RequestedOperation::Known(Operation::PowerUp)),
        (
            "CMD_PWR_RESUME",
            RequestedOperation::Unknown("CMD_PWR_RESUME".into()),
        ),
        (
            "cmd_os_restart",
            RequestedOperation::Unknown("cmd_os_restart".into()),
        ),
    ] {
        assert_eq!(RequestedOperation::from_token(token), operation, "{token}");
    }

    let ClientRequest::UpdatePassword(change) = decode("real-client-update-password.xml").1 else {
        panic!("not update-password");
    };
    assert_eq!(change.username, "dave");
    assert_eq!(change.domain, "EXAMPLE");
    assert_eq!(change.old_password.expose(), " dave-pw ", "verbatim");
    assert_eq!(change.new_password.expose(), "n3w <pässword> ", "verbatim");
    let debug = format!("{change:?}");
    assert!(
        !debug.contains("dave-pw") && !debug.contains("n3w"),
        "{debug}"
    );
}

#[test]
fn incomplete_0_2_requests_are_invalid_content() {
    for (body, missing) in [
        (
            "<perform-operation><operation>CMD_PWR_UP</operation></perform-operation>",
            "resource-id",
        ),
        (
            "<perform-operation><resource-id>ws-7</resource-id></perform-operation>",
            "operation",
        ),
        (
            "<update-password><username>u</username><new-password>n</new-password></update-password>",
            "old-password",
        ),
        (
            "<update-password><old-password>o</old-password></update-password>",
            "new-password",
        ),
        (
            "<authenticate method=\"disclaimer\"></authenticate>",
            "accept",
        ),
    ] {
        let wrapped = format!("<pcoip-client version=\"2.1\">{body}</pcoip-client>");
        let error = decode_request(wrapped.as_bytes()).unwrap_err();
        assert_eq!(
            error.result_id.as_str(),
            "ERR_INVALID_INVALID_MSG_CONTENT",
            "{body}"
        );
        assert!(error.detail.contains(missing), "{body}: {}", error.detail);
    }
    // A change without a user name or domain is read: the session's login names the user.
    let wrapped = "<pcoip-client version=\"2.1\"><update-password><old-password>o</old-password><new-password>n</new-password></update-password></pcoip-client>";
    let Ok(request) = decode_request(wrapped.as_bytes()) else {
        panic!("refused");
    };
    let ClientRequest::UpdatePassword(change) = request.message else {
        panic!("not update-password");
    };
    assert!(change.username.is_empty() && change.domain.is_empty());
}
