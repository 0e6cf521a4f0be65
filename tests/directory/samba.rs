//! The Active Directory side against a real Samba AD domain controller, provisioned by the test
//! in a temporary folder and run in a private network namespace (`unshare -n`: its own loopback,
//! so the DC's fixed ports 389 and 636 clash with nothing on the machine). The test re-runs
//! itself inside the namespace; needs root (CI and the developers' machines are) and Debian's
//! `samba-ad-dc` and `samba-ad-provision` (`tests/setup-toolchains.sh` installs them).
//!
//! Covered: bind sub-codes as AD sends them (52e, 533, 773, 701, 775), groups through
//! `LDAP_MATCHING_RULE_IN_CHAIN`, and `unicodePwd` changes over LDAPS (as the user, and as the
//! service account for a must-change user), with a weak new password refused.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interstate_directory::LdapDirectory;
use interstate_protocol::capability::{Directory, DirectoryFailureKind as Kind};
use serde_json::json;
use sha2::Digest;

use super::secret;

const INSIDE: &str = "INTERSTATE_TEST_IN_NETNS";
const TEST: &str = "samba::active_directory_against_samba";
const ADMIN_PASSWORD: &str = "Admin-Pass-1!";
const BASE: &str = "dc=example,dc=test";

#[tokio::test]
async fn active_directory_against_samba() {
    if std::env::var_os(INSIDE).is_none() {
        for tool in ["samba", "samba-tool", "unshare", "ip"] {
            assert!(
                Command::new("which")
                    .arg(tool)
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success()),
                "{tool} is missing: run `bash tests/setup-toolchains.sh` (Debian: apt-get install samba-ad-dc samba-ad-provision)"
            );
        }
        let status = Command::new("unshare")
            .arg("-n")
            .arg("--")
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(INSIDE, "1")
            .status()
            .unwrap();
        assert!(
            status.success(),
            "the Samba AD test failed inside its network namespace (unshare -n needs root)"
        );
        return;
    }
    inside().await;
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The SHA-256 of the first certificate of a PEM file.
fn pem_sha256(path: &Path) -> String {
    let pem = std::fs::read_to_string(path).unwrap();
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = data_encoding::BASE64.decode(body.as_bytes()).unwrap();
    hex::encode(sha2::Sha256::digest(der))
}

struct Samba {
    child: std::process::Child,
}

impl Drop for Samba {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn inside() {
    run("ip", &["link", "set", "lo", "up"]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("dc");
    let target_arg = format!("--targetdir={}", target.display());
    let password_arg = format!("--adminpass={ADMIN_PASSWORD}");
    let started = Instant::now();
    run(
        "samba-tool",
        &[
            "domain",
            "provision",
            &target_arg,
            "--realm=EXAMPLE.TEST",
            "--domain=EXAMPLE",
            "--server-role=dc",
            "--dns-backend=NONE",
            &password_arg,
            "--host-name=dc1",
            "--option=interfaces=lo",
            "--option=bind interfaces only=yes",
            "--option=server services = ldap",
        ],
    );
    println!("samba provisioned in {:?}", started.elapsed());
    let conf = target.join("etc/smb.conf");
    let sam = target.join("private/sam.ldb");
    let sam = sam.to_str().unwrap();
    let tool = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["-H", sam]);
        run("samba-tool", &all);
    };
    tool(&["user", "create", "alice", "Alice-Pass-1!"]);
    tool(&["user", "create", "bob", "Bob-Pass-1!"]);
    tool(&["user", "create", "dis", "Dis-Pass-1!"]);
    tool(&["user", "disable", "dis"]);
    tool(&[
        "user",
        "create",
        "must",
        "Must-Pass-1!",
        "--must-change-at-next-login",
    ]);
    tool(&["user", "create", "exp", "Exp-Pass-1!"]);
    tool(&["user", "setexpiry", "exp", "--days=0"]);
    tool(&["user", "create", "locky", "Locky-Pass-1!"]);
    tool(&["group", "add", "artists"]);
    tool(&["group", "add", "staff"]);
    tool(&["group", "addmembers", "artists", "alice"]);
    tool(&["group", "addmembers", "staff", "artists"]);
    tool(&[
        "domain",
        "passwordsettings",
        "set",
        "--account-lockout-threshold=3",
        "--min-pwd-age=0",
    ]);

    let child = Command::new("samba")
        .arg("-i")
        .arg("-s")
        .arg(&conf)
        .args(["-M", "single"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _samba = Samba { child };
    let deadline = Instant::now() + Duration::from_secs(60);
    let cert = target.join("private/tls/cert.pem");
    while std::net::TcpStream::connect("127.0.0.1:636").is_err() || !cert.exists() {
        assert!(
            Instant::now() < deadline,
            "samba did not listen on 636 in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let password_file = dir.path().join("admin.pw");
    std::fs::write(&password_file, ADMIN_PASSWORD).unwrap();
    let profile = |servers: serde_json::Value, tls: serde_json::Value| {
        json!({"directory": {"profiles": {"corp": {
            "kind": "ad",
            "servers": servers,
            "base_dn": BASE,
            "bind_dn": format!("cn=Administrator,cn=Users,{BASE}"),
            "password_file": password_file,
            "login_attributes": ["sAMAccountName", "userPrincipalName"],
            "attributes": ["mail"],
            "tls": tls,
            "timeout_ms": 5000,
        }}}})
        .to_string()
    };
    let build = |text: String| {
        let settings =
            interstate_config::Settings::parse(&text, &dir.path().join("s.json")).unwrap();
        LdapDirectory::from_settings(&settings.directory).unwrap()
    };
    let pin = pem_sha256(&cert);
    let ad = build(profile(
        json!(["ldaps://127.0.0.1:636"]),
        json!({"pinned_sha256": pin}),
    ));
    let auth = |user: &'static str, password: &'static str| {
        let ad = &ad;
        async move {
            ad.authenticate("corp", user, &secret(password))
                .await
                .map(|u| u.login)
                .map_err(|f| f.kind)
        }
    };

    assert_eq!(auth("alice", "Alice-Pass-1!").await.as_deref(), Ok("alice"));
    assert_eq!(
        auth("alice@example.test", "Alice-Pass-1!").await.as_deref(),
        Ok("alice")
    );
    assert_eq!(
        auth("alice", "Wrong-Pass-1!").await,
        Err(Kind::WrongPassword)
    );
    assert_eq!(auth("dis", "Dis-Pass-1!").await, Err(Kind::AccountDisabled));
    assert_eq!(
        auth("must", "Must-Pass-1!").await,
        Err(Kind::MustChangePassword)
    );
    assert_eq!(auth("exp", "Exp-Pass-1!").await, Err(Kind::AccountExpired));
    for _ in 0..3 {
        assert_eq!(
            auth("locky", "Wrong-Pass-1!").await,
            Err(Kind::WrongPassword)
        );
    }
    assert_eq!(auth("locky", "Locky-Pass-1!").await, Err(Kind::LockedOut));
    assert_eq!(
        auth("*)(sAMAccountName=*", "x-Pass-1!").await,
        Err(Kind::WrongPassword)
    );

    let mut groups: Vec<String> = ad
        .groups("corp", "alice")
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    groups.sort();
    assert_eq!(groups, ["artists", "staff"]);

    let change = |user: &'static str, old: &'static str, new: &'static str| {
        let ad = &ad;
        async move {
            ad.change_password("corp", user, &secret(old), &secret(new))
                .await
                .map_err(|f| f.kind)
        }
    };
    assert_eq!(
        change("bob", "Bob-Pass-1!", "short").await,
        Err(Kind::WeakPassword)
    );
    assert_eq!(
        change("bob", "Not-Bobs-1!", "Bob-New-Pass-2!").await,
        Err(Kind::WrongPassword)
    );
    change("bob", "Bob-Pass-1!", "Bob-New-Pass-2!")
        .await
        .unwrap();
    assert_eq!(auth("bob", "Bob-New-Pass-2!").await.as_deref(), Ok("bob"));
    // A must-change user cannot bind; the change goes through the service account's connection
    // and AD still checks the old password.
    assert_eq!(
        change("must", "Not-Musts-1!", "Must-New-Pass-2!").await,
        Err(Kind::WrongPassword)
    );
    change("must", "Must-Pass-1!", "Must-New-Pass-2!")
        .await
        .unwrap();
    assert_eq!(
        auth("must", "Must-New-Pass-2!").await.as_deref(),
        Ok("must")
    );

    // Plain LDAP is refused for AD password changes before anything is sent.
    let plain = build(profile(
        json!(["ldap://127.0.0.1:389"]),
        json!({"insecure_plaintext": true}),
    ));
    let err = plain
        .change_password(
            "corp",
            "alice",
            &secret("Alice-Pass-1!"),
            &secret("Alice-New-2!"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, Kind::Unreachable);
    assert!(err.detail.contains("LDAPS or StartTLS"), "{}", err.detail);
}
