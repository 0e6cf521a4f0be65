//! Every default value of `settings.json`: the one home. The raw sections, the validated
//! sections and the mapper host all read them from here, and a test checks that
//! [`Settings::defaults`](crate::Settings::defaults) equals parsing `{}`.

use std::path::PathBuf;

use crate::values::{BeakerType, LogFormat, LogLevel, RawPlugin, SessionStore, VerifyMode};

/// `logging.level`: ILS's default.
pub const LOG_LEVEL: LogLevel = LogLevel::Info;
/// `logging.format`: lines for people; `json` is for log shippers.
pub const LOG_FORMAT: LogFormat = LogFormat::Text;

/// `beaker.type`: what ILS writes (ignored: sessions are never written to files).
pub const BEAKER_TYPE: BeakerType = BeakerType::File;
/// `beaker.data_dir`: what ILS writes (ignored).
pub const BEAKER_DATA_DIR: &str = "/tmp";

/// `mapper.plugin`: the embedded SimpleMapper, as in ILS.
pub const MAPPER_PLUGIN: RawPlugin = RawPlugin::SimpleMapper;
/// `mapper.settings`, serialised: an empty object.
pub const MAPPER_SETTINGS_JSON: &str = "{}";
/// `mapper.limits.timeout_ms`: the deadline of one mapper call, configure included. Long enough
/// for a mapper that asks a directory over HTTP, short enough that a client does not give up.
pub const MAPPER_TIMEOUT_MS: u64 = 5_000;
/// `mapper.limits.memory_mb`: the most the linear memories of one mapper instance may hold
/// together, in MiB. Python guests need about 40.
pub const MAPPER_MEMORY_MB: u64 = 64;
/// `mapper.limits.max_concurrent_calls`: mapper calls running at once. It also sizes the
/// pooling allocator, so it bounds the memory the mappers can take together.
pub const MAPPER_MAX_CONCURRENT_CALLS: usize = 256;
/// `mapper.deny_private_addresses`: off. The SimpleWebserviceMapper is ILS's drop-in, and the
/// web service it calls sits on the studio's LAN (a 10/8, 172.16/12 or 192.168/16 address) in
/// the common case, so refusing private addresses by default would break the drop-in. The
/// allow-list itself already names exact origins; turn this on when the services a mapper
/// calls are public, so that an allowed name pointed at 169.254.169.254 or loopback fails.
pub const MAPPER_DENY_PRIVATE_ADDRESSES: bool = false;
/// `mapper.store.max_keys`: live keys one mapper may keep in the key-value store.
pub const MAPPER_STORE_MAX_KEYS: u64 = 10_000;
/// `mapper.store.max_value_bytes`: the largest value one mapper may store (64 KiB).
pub const MAPPER_STORE_MAX_VALUE_BYTES: usize = 64 * 1024;
/// `mapper.store.max_ttl_ms`: how long a stored value may live at most (30 days); also the
/// TTL of a write that names none.
pub const MAPPER_STORE_MAX_TTL_MS: u64 = 30 * 24 * 3_600_000;
/// The longest key a mapper may store, in bytes (the contract's bound, not a setting).
pub const MAPPER_STORE_MAX_KEY_BYTES: usize = 256;
/// The keys of the SimpleWebserviceMapper's settings whose URLs it calls; their origins are
/// its default `mapper.allowed_hosts` (see [`mapper_allowed_hosts`]).
pub const WEBSERVICE_URL_KEYS: [&str; 2] = ["base_url", "cookie_auth_url"];
/// The folder under the user's cache folder where compiled components are kept
/// (`mapper.cache_dir` unset); see [`mapper_cache_dir`].
pub const MAPPER_CACHE_SUBDIR: &str = "interstate/components";

/// `session.store`: in memory, nothing to install.
pub const SESSION_STORE: SessionStore = SessionStore::Memory;
/// `session.redis.key_prefix`: the start of every key the broker writes to Redis.
pub const REDIS_KEY_PREFIX: &str = "interstate:";
/// `session.redis.timeout_ms`: the deadline of one store call; past it, the request answers
/// `ERR_BROKER_SYS_FAILED` rather than hang on a Redis that is gone.
pub const REDIS_TIMEOUT_MS: u64 = 2_000;
/// `session.idle_timeout_s`: a broker session unused this long ends.
pub const SESSION_IDLE_TIMEOUT_S: u64 = 600;
/// `session.absolute_timeout_s`: a broker session ends this long after its hello.
pub const SESSION_ABSOLUTE_TIMEOUT_S: u64 = 3_600;
/// `session.max_sessions`: live sessions at most, which bounds the store's memory.
pub const SESSION_MAX_SESSIONS: usize = 200_000;
/// `session.unauthenticated_timeout_s`: a session nobody has logged in to ends after this long
/// unused (a client logs in within seconds of its hello; a flood of hellos must not linger).
pub const SESSION_UNAUTHENTICATED_TIMEOUT_S: u64 = 120;
/// `session.max_unauthenticated_per_address`: sessions nobody has logged in to, per client
/// address; past it, that address's oldest one gives way.
pub const SESSION_MAX_UNAUTHENTICATED_PER_ADDRESS: usize = 256;

/// `agent.port`: the PCoIP agent's port when a desktop names none.
pub const AGENT_PORT: u16 = 60443;
/// `agent.timeout_ms`: the deadline of one `launch-session` call.
pub const AGENT_TIMEOUT_MS: u64 = 10_000;
/// `agent.tls.verify`: trust on first use. Agents ship self-signed certificates, so no CA can
/// vouch for them, but a certificate that changes is refused before the password is sent.
pub const AGENT_TLS_VERIFY: VerifyMode = VerifyMode::Tofu;

/// `server.host`: every IPv4 address, as ILS.
pub const SERVER_HOST: &str = "0.0.0.0";
/// `server.port`: ILS's port, which PCoIP clients assume.
pub const SERVER_PORT: u16 = 60443;
/// `server.fallback_sessions`: off, as ILS's `--fallback_sessions`.
pub const SERVER_FALLBACK_SESSIONS: bool = false;
/// `server.max_connections`: open client connections at most.
pub const SERVER_MAX_CONNECTIONS: usize = 10_000;
/// `server.max_connections_per_address`: open connections from one client address at most, so
/// that one host cannot hold every slot of `server.max_connections`. A PCoIP client opens one
/// connection at a time; an office behind one NAT address needs one per user logging in at once.
pub const SERVER_MAX_CONNECTIONS_PER_ADDRESS: usize = 100;
/// `server.handshake_timeout_ms`: the deadline of a TLS handshake. A real handshake takes a few
/// round trips; a long deadline only helps a client that holds a slot without finishing.
pub const SERVER_HANDSHAKE_TIMEOUT_MS: u64 = 3_000;
/// `server.header_timeout_ms`: the deadline of a request's headers, then of its body; an idle
/// kept-alive connection is closed after it too.
pub const SERVER_HEADER_TIMEOUT_MS: u64 = 10_000;
/// `server.body_limit_bytes`: the largest request body; real requests are a few KiB.
pub const SERVER_BODY_LIMIT_BYTES: usize = 64 * 1024;
/// `server.broker_name`: `broker-info/product-name` in `hello-resp`.
pub const SERVER_BROKER_NAME: &str = "Interstate";
/// `server.hostname`: empty, meaning `server.broker_name`: the unauthenticated hello never
/// discloses the machine's host name.
pub const SERVER_HOSTNAME: &str = "";
/// `server.shutdown_grace_ms`: how long shutdown waits for requests in flight.
pub const SERVER_SHUTDOWN_GRACE_MS: u64 = 10_000;

/// `security.auth_failures_per_user`: failed logins per user name per window.
pub const AUTH_FAILURES_PER_USER: u32 = 5;
/// `security.auth_failures_per_address`: failed logins per client address per window, higher
/// than per user because many users may share a NAT address.
pub const AUTH_FAILURES_PER_ADDRESS: u32 = 30;
/// `security.auth_window_s`: the window failures are counted in.
pub const AUTH_WINDOW_S: u64 = 300;
/// `security.hash_workers`: threads that hash passwords at once; 0 means one per core
/// (`std::thread::available_parallelism`).
pub const HASH_WORKERS: usize = 0;
/// The most `security.hash_workers` may be.
pub const MAX_HASH_WORKERS: usize = 256;
/// Entries each failure table keeps at most (not a settings key): bounds the limiter's memory
/// under a spray of distinct names.
pub const AUTH_MAX_ENTRIES: usize = 100_000;

/// The folder under the user's state folder where a generated certificate and its key are kept
/// (`server.generated_cert_dir` unset); see [`generated_cert_dir`].
pub const GENERATED_CERT_SUBDIR: &str = "interstate/tls";
/// How long a generated certificate is valid, in days: at most a year, so that a copied key
/// stops being useful, and it is generated again when it expires.
pub const GENERATED_CERT_DAYS: u64 = 365;

/// Where a generated certificate persists when `server.generated_cert_dir` is unset:
/// `$XDG_STATE_HOME/interstate/tls`, else `~/.local/state/interstate/tls`; `None` when neither
/// variable is set (a new certificate at every start).
pub fn generated_cert_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        })?;
    Some(base.join(GENERATED_CERT_SUBDIR))
}

/// The compiled-component cache when `mapper.cache_dir` is unset:
/// `$XDG_CACHE_HOME/interstate/components`, else `~/.cache/interstate/components`; `None` when
/// neither variable is set (no disk cache). The one default read from the environment.
pub fn mapper_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join(MAPPER_CACHE_SUBDIR))
}

/// `mapper.allowed_hosts` when the file does not set it. Empty (no outgoing HTTP), except for
/// the embedded SimpleWebserviceMapper: the origins (`scheme://host:port`, the port written
/// out) of the URLs in its [`WEBSERVICE_URL_KEYS`] settings, so that an ILS file needs no new
/// key and the mapper reaches exactly the service it names. A URL that does not parse adds
/// nothing (the mapper's `configure` refuses it with the key's name).
pub fn mapper_allowed_hosts(plugin: &RawPlugin, settings: &serde_json::Value) -> Vec<String> {
    if *plugin != RawPlugin::SimpleWebserviceMapper {
        return Vec::new();
    }
    let mut origins: Vec<String> = Vec::new();
    for key in WEBSERVICE_URL_KEYS {
        let origin = settings
            .get(key)
            .and_then(serde_json::Value::as_str)
            .and_then(url_origin);
        if let Some(origin) = origin
            && !origins.contains(&origin)
        {
            origins.push(origin);
        }
    }
    origins
}

/// `scheme://host:port` of an `http` or `https` URL, the host in lower case and the port
/// written out; `None` for anything else, or a URL with user info.
fn url_origin(url: &str) -> Option<String> {
    let (scheme, default_port) = match url.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => ("http", 80),
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => ("https", 443),
        _ => return None,
    };
    let rest = &url[scheme.len() + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.is_empty()
        || authority.contains('@')
        || authority.contains(|c: char| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        match &authority[end + 1..] {
            "" => (&authority[..=end], None),
            tail => (&authority[..=end], Some(tail.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) if port.bytes().all(|b| b.is_ascii_digit()) => port.parse::<u16>().ok()?,
        Some(_) => return None,
        None => default_port,
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    Some(format!("{scheme}://{}:{port}", host.to_ascii_lowercase()))
}

/// `admin.max_connections`: room for an operations team's dashboards and a thousand feed
/// subscribers, with a margin for scripts.
pub const ADMIN_MAX_CONNECTIONS: usize = 2_048;

/// `admin.user`: channelstream's default admin user name.
pub const ADMIN_USER: &str = "admin";

/// `admin.node`: the machine's host name (the kernel's), else `interstate`. Names that would not
/// pass `admin.node`'s check fall back too, so the default is always valid.
pub fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .unwrap_or_else(|| "interstate".to_owned())
}
