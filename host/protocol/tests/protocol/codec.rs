//! Decoding every request fixture: the protocol page's examples, ILS captures, a dialog answer.

use interstate_protocol::{
    AllocateResource, Authenticate, ClientRequest, Hello, Root, decode_request,
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
