//! A real OpenLDAP server for the directory tests: Debian's `slapd` (`tests/setup-toolchains.sh`
//! installs it) with an mdb database in a temporary folder, the `ppolicy` and `memberof`
//! overlays, a test CA and a certificate for 127.0.0.1, listening on free loopback ports for
//! `ldap://` (StartTLS offered) and `ldaps://`. Killed when dropped.
//!
//! The tree (`dc=example,dc=org`):
//! - `cn=interstate,ou=services`: the service account ([`SERVICE_DN`], [`SERVICE_PASSWORD`]);
//! - people: `alice` (in `artists`, which is in `staff`), `bob` (in `staff`, and in the cycle
//!   `loop-a` ∈ `loop-b` ∈ `loop-a`), `carol` (for password changes), `eve` (password expired,
//!   no grace login), `grace` (expired with 3 grace logins), `lock` (locked by
//!   `pwdAccountLockedTime`), `reset` (must change: `pwdReset`), and `pat(1)*`, whose name is
//!   made of filter metacharacters; every password is `<uid>-pw-1` (see [`password_of`]);
//! - `ou=policies`: the default password policy (`pwdMinLength` 8 with quality checks,
//!   `pwdMustChange`, lockout) and `grace` (the same with `pwdGraceAuthNLimit` 3).
//!
//! Groups are added online after the start so that `memberof` fills in `memberOf`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::redis::free_port;

/// The suffix of the test tree.
pub const BASE_DN: &str = "dc=example,dc=org";
/// Where people are.
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
/// Where groups are.
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=org";
/// The root DN (database administrator).
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
/// The root DN's password.
pub const ADMIN_PASSWORD: &str = "admin-secret-1";
/// The service account the broker searches with.
pub const SERVICE_DN: &str = "cn=interstate,ou=services,dc=example,dc=org";
/// Its password.
pub const SERVICE_PASSWORD: &str = "service-secret-1";

/// The password a test user starts with.
pub fn password_of(uid: &str) -> String {
    format!("{uid}-pw-1")
}

/// The DN of the test user `uid` (RFC 4514-escaped).
pub fn user_dn(uid: &str) -> String {
    let escaped: String = uid
        .chars()
        .flat_map(|c| {
            let escape = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=');
            escape.then_some('\\').into_iter().chain([c])
        })
        .collect();
    format!("uid={escaped},{PEOPLE_DN}")
}

/// A test CA and a server certificate for 127.0.0.1 and localhost, as PEM files in `dir`;
/// returns (CA file, certificate file, key file, the certificate's SHA-256).
pub fn make_certificates(dir: &Path, ca_name: &str) -> (PathBuf, PathBuf, PathBuf, [u8; 32]) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let sha: [u8; 32] = sha2::Sha256::digest(cert.der()).into();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    (
        write(&format!("{ca_name}-ca.pem"), ca.pem()),
        write(&format!("{ca_name}-server.pem"), cert.pem()),
        write(&format!("{ca_name}-server.key"), key.serialize_pem()),
        sha,
    )
}

/// One `slapd` process with the test tree.
#[derive(Debug)]
pub struct Slapd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The `ldap://` port (StartTLS offered).
    pub ldap_port: u16,
    /// The `ldaps://` port.
    pub ldaps_port: u16,
    /// The PEM file of the CA that signed the server's certificate.
    pub ca_file: PathBuf,
    /// The SHA-256 of the server's certificate (DER).
    pub cert_sha256: [u8; 32],
}

impl Slapd {
    /// Loads the tree with `slapadd`, starts `slapd` and adds the groups.
    pub async fn start() -> Self {
        let which = Command::new("slapd").arg("-VV").output();
        assert!(
            which.is_ok(),
            "slapd is not installed: run `bash tests/setup-toolchains.sh` (Debian: apt-get install slapd ldap-utils)"
        );
        assert!(
            Path::new("/usr/lib/ldap/ppolicy.so").exists(),
            "Debian's slapd ships /usr/lib/ldap/ppolicy.so; it is missing"
        );
        let dir = tempfile::tempdir().unwrap();
        let (ca_file, cert_file, key_file, cert_sha256) = make_certificates(dir.path(), "slapd");
        std::fs::create_dir(dir.path().join("db")).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(&conf, config(dir.path(), &ca_file, &cert_file, &key_file)).unwrap();
        let ldif = dir.path().join("tree.ldif");
        std::fs::write(&ldif, tree()).unwrap();
        let out = Command::new("slapadd")
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut server = Self {
            child: None,
            dir,
            ldap_port: free_port(),
            ldaps_port: free_port(),
            ca_file,
            cert_sha256,
        };
        server.spawn().await;
        server.ldapadd(&groups());
        server
    }

    fn spawn_command(&self) -> Command {
        let mut command = Command::new("slapd");
        command
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
                self.ldap_port, self.ldaps_port
            ))
            // Debug level 0: stay in the foreground (so the child is slapd itself), log nothing.
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    async fn spawn(&mut self) {
        self.child = Some(self.spawn_command().spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = [self.ldap_port, self.ldaps_port]
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok());
            if up && self.whoami(ADMIN_DN, ADMIN_PASSWORD) {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("slapd exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "slapd did not answer in 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server (its ports refuse connections until [`Slapd::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports with the same data.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    /// `ldap://127.0.0.1:PORT`.
    pub fn ldap_url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.ldap_port)
    }

    /// `ldaps://127.0.0.1:PORT`.
    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.ldaps_port)
    }

    /// The temporary folder (for password files and other CAs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// True when `dn` can bind with `password` (`ldapwhoami`).
    pub fn whoami(&self, dn: &str, password: &str) -> bool {
        Command::new("ldapwhoami")
            .args(["-x", "-H", &self.ldap_url(), "-D", dn, "-w", password])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Adds LDIF as the root DN.
    pub fn ldapadd(&self, ldif: &str) {
        self.ldap_tool("ldapadd", ldif);
    }

    /// Applies an LDIF change as the root DN (`ldapmodify`).
    pub fn ldapmodify(&self, ldif: &str) {
        self.ldap_tool("ldapmodify", ldif);
    }

    fn ldap_tool(&self, tool: &str, ldif: &str) {
        let path = self.dir.path().join("change.ldif");
        std::fs::write(&path, ldif).unwrap();
        let out = Command::new(tool)
            .args([
                "-x",
                "-H",
                &self.ldap_url(),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
                "-f",
            ])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(dir: &Path, ca: &Path, cert: &Path, key: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
moduleload memberof
pidfile {dir}/slapd.pid
TLSCACertificateFile {ca}
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 67108864
suffix "{BASE_DN}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {dir}/db
overlay memberof
overlay ppolicy
ppolicy_default "cn=default,ou=policies,{BASE_DN}"
ppolicy_use_lockout
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"#,
        ca = ca.display(),
        cert = cert.display(),
        key = key.display(),
    )
}

fn person(uid: &str, extra: &str) -> String {
    format!(
        "dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {uid}@example.org\nuserPassword: {password}\n{extra}\n",
        dn = user_dn(uid),
        password = password_of(uid),
    )
}

fn tree() -> String {
    let policy = |name: &str, grace: u32| {
        format!(
            "dn: cn={name},ou=policies,{BASE_DN}\nobjectClass: applicationProcess\nobjectClass: pwdPolicy\ncn: {name}\npwdAttribute: userPassword\npwdMaxAge: 315360000\npwdMinLength: 8\npwdCheckQuality: 2\npwdMustChange: TRUE\npwdAllowUserChange: TRUE\npwdLockout: TRUE\npwdMaxFailure: 1000\npwdGraceAuthNLimit: {grace}\n\n"
        )
    };
    let mut ldif = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=services,{BASE_DN}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: ou=policies,{BASE_DN}\nobjectClass: organizationalUnit\nou: policies\n\n\
         dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: interstate\nuserPassword: {SERVICE_PASSWORD}\n\n"
    );
    ldif.push_str(&policy("default", 0));
    ldif.push_str(&policy("grace", 3));
    ldif.push_str(&person("alice", "displayName: Alice Liddell\n"));
    ldif.push_str(&person("bob", ""));
    ldif.push_str(&person("carol", ""));
    ldif.push_str(&person("eve", "pwdChangedTime: 20000101000000Z\n"));
    ldif.push_str(&person(
        "grace",
        &format!(
            "pwdChangedTime: 20000101000000Z\npwdPolicySubentry: cn=grace,ou=policies,{BASE_DN}\n"
        ),
    ));
    ldif.push_str(&person("lock", "pwdAccountLockedTime: 000001010000Z\n"));
    ldif.push_str(&person("reset", "pwdReset: TRUE\n"));
    ldif.push_str(&person("pat(1)*", ""));
    ldif
}

fn groups() -> String {
    let group = |cn: &str, members: &[String]| {
        let members: String = members.iter().map(|m| format!("member: {m}\n")).collect();
        format!("dn: cn={cn},{GROUPS_DN}\nobjectClass: groupOfNames\ncn: {cn}\n{members}\n")
    };
    let g = |cn: &str| format!("cn={cn},{GROUPS_DN}");
    let mut ldif = format!("dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n\n");
    ldif.push_str(&group("artists", &[user_dn("alice")]));
    ldif.push_str(&group("staff", &[g("artists"), user_dn("bob")]));
    ldif.push_str(&group("loop-a", &[user_dn("bob")]));
    ldif.push_str(&group("loop-b", &[g("loop-a")]));
    // Closes the cycle: loop-a ∈ loop-b ∈ loop-a.
    ldif.push_str(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n\n",
        g("loop-a"),
        g("loop-b")
    ));
    ldif
}
