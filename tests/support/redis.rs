//! Real Redis servers for the tests: `redis-server` (Debian's package; `tests/setup-toolchains.sh`
//! installs it) started on a free loopback port in a temporary folder, and a Redis Cluster of
//! such servers made with `redis-cli --cluster create`. Every server is killed when dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A key file for the Redis store (mode 0600), in `dir`: `keys` as lines, the sealing key first.
pub fn key_file(dir: &Path, keys: &[&str]) -> std::path::PathBuf {
    let path = dir.join("session.key");
    std::fs::write(&path, format!("# test keys\n{}\n", keys.join("\n"))).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// Two fixed test keys (64 hex digits each).
pub const KEY_A: &str = "6b1f2a9c0d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccdde";
/// The second test key, for rotation.
pub const KEY_B: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0";

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One `redis-server` process.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    /// The CA file, for a TLS-only server.
    tls: Option<std::path::PathBuf>,
}

impl RedisServer {
    /// A server on a free port, with no persistence.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server with extra `redis-server` arguments (`--cluster-enabled yes`, ...).
    pub async fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            tls: None,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let which = Command::new("redis-server").arg("--version").output();
        assert!(
            which.is_ok_and(|o| o.status.success()),
            "redis-server is not installed: run `bash tests/setup-toolchains.sh` (Debian: apt-get install redis-server redis-tools)"
        );
        let mut command = Command::new("redis-server");
        if self.extra.iter().any(|a| a == "--tls-port") {
            // The port is among the extra arguments; plain TCP is off.
        } else {
            command.args(["--port", &self.port.to_string()]);
        }
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(command.spawn().unwrap());
        self.wait_until_answering().await;
    }

    async fn wait_until_answering(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.cli(&["PING"]).is_some_and(|out| out.trim() == "PONG") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A sentinel: its config file comes first, then `--sentinel`; the port is in the file.
    async fn spawn_sentinel(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_until_answering().await;
    }

    /// `redis-cli -p PORT args...`'s output, if it ran.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(ca) = &self.tls {
            command.arg("--tls").arg("--cacert").arg(ca);
        }
        let out = command.args(args).stdin(Stdio::null()).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` for a TLS-only server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Kills the server (an outage). Its data is gone: there is no persistence.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    /// Every key and its raw value (strings and hash fields), as bytes: what someone who can
    /// read the Redis server sees.
    pub fn raw_dump(&self) -> Vec<(String, Vec<u8>)> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
        let mut out = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
            match kind.as_str() {
                "string" => {
                    let v: Vec<u8> = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
                    out.push((key, v));
                }
                "hash" => {
                    let fields: Vec<(Vec<u8>, Vec<u8>)> =
                        redis::cmd("HGETALL").arg(&key).query(&mut conn).unwrap();
                    for (f, v) in fields {
                        out.push((key.clone(), [f, b"=".to_vec(), v].concat()));
                    }
                }
                "zset" => {
                    let members: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .query(&mut conn)
                        .unwrap();
                    for m in members {
                        out.push((key.clone(), m));
                    }
                }
                _ => out.push((key, Vec::new())),
            }
        }
        out
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A sentinel watching `master` under the name `name` (quorum 1, a master is down after one
/// second without an answer).
pub async fn start_sentinel(master: &RedisServer, name: &str) -> RedisServer {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\nsentinel monitor {name} 127.0.0.1 {} 1\n\
             sentinel down-after-milliseconds {name} 1000\nsentinel failover-timeout {name} 5000\n",
            master.port()
        ),
    )
    .unwrap();
    let mut server = RedisServer {
        child: None,
        port,
        dir,
        extra: vec![conf.display().to_string(), "--sentinel".into()],
        tls: None,
    };
    server.spawn_sentinel().await;
    server
}

/// A TLS-only server (`rediss://`) with a certificate for 127.0.0.1 signed by a fresh CA;
/// returns it and the CA's PEM file.
pub async fn start_tls() -> (RedisServer, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "interstate test redis CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca_file = write("ca.pem", ca.pem());
    let cert_file = write("redis.pem", cert.pem());
    let key_file = write("redis.key", key.serialize_pem());
    let port = free_port();
    let mut server = RedisServer {
        child: None,
        port,
        dir,
        tls: None,
        extra: vec![
            "--tls-port".into(),
            port.to_string(),
            "--port".into(),
            "0".into(),
            "--tls-cert-file".into(),
            cert_file,
            "--tls-key-file".into(),
            key_file,
            "--tls-ca-cert-file".into(),
            ca_file.clone(),
            "--tls-auth-clients".into(),
            "no".into(),
        ],
    };
    server.tls = Some(ca_file.clone().into());
    server.spawn().await;
    (server, ca_file.into())
}

/// A Redis Cluster: `masters` masters, each with `replicas` replicas, made by
/// `redis-cli --cluster create` and waited for until every slot is served.
#[derive(Debug)]
pub struct RedisCluster {
    /// The servers, masters first as `--cluster create` was given them.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts and joins the servers.
    pub async fn start(masters: usize, replicas: usize) -> Self {
        let mut nodes = Vec::new();
        for _ in 0..masters * (1 + replicas) {
            nodes.push(
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                ])
                .await,
            );
        }
        let addrs: Vec<String> = nodes.iter().map(|n| n.addr().to_string()).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes };
        cluster.wait_until_ok().await;
        cluster
    }

    /// Waits until every live node says `cluster_state:ok` (every slot served) and every live
    /// replica has synced with its master (a replica that never synced does not fail over).
    pub async fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            loop {
                let info = node.cli(&["CLUSTER", "INFO"]).unwrap_or_default();
                let replication = node.cli(&["INFO", "replication"]).unwrap_or_default();
                let synced = !replication.contains("role:slave")
                    || replication.contains("master_link_status:up");
                if info.contains("cluster_state:ok") && synced {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the cluster did not become ok: {info}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Stops the master of `key` and waits until its replica serves the slot.
    pub async fn fail_over(&mut self, key: &str) -> usize {
        let victim = self.master_of(key);
        self.nodes[victim].stop();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if self.try_master_of(key).is_some_and(|m| m != victim) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no replica took over from node {victim}"
            );
        }
        self.wait_until_ok().await;
        victim
    }

    /// The seed URLs of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The node that is master for `key` now, as the first live node sees it.
    pub fn master_of(&self, key: &str) -> usize {
        self.try_master_of(key)
            .unwrap_or_else(|| panic!("no live master serves {key}"))
    }

    /// The node that is master for `key` now, if a live one is.
    pub fn try_master_of(&self, key: &str) -> Option<usize> {
        let asked = self.nodes.iter().find(|n| n.child.is_some()).unwrap();
        let slot: String = asked
            .cli(&["CLUSTER", "KEYSLOT", key])
            .unwrap()
            .trim()
            .to_owned();
        let slot: u16 = slot.parse().unwrap();
        // `CLUSTER NODES`: id addr@bus flags master ping pong epoch state slot-ranges...
        let nodes = asked.cli(&["CLUSTER", "NODES"]).unwrap();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let port: u16 = fields[1]
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            for range in &fields[8..] {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>())
                    && (lo..=hi).contains(&slot)
                {
                    return self.nodes.iter().position(|n| n.port == port);
                }
            }
        }
        None
    }
}
