//! Raw settings → validated settings, one function per section. Misspelt keys and values were
//! refused while parsing; these check ranges and keys that depend on each other, and the first
//! problem found is the one reported.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::defaults;
use crate::error::SettingsError;
use crate::fence::AgentFence;
use crate::origin::Origin;
use crate::raw::{
    RawAdmin, RawAgent, RawBeaker, RawMapper, RawMapperStore, RawRedis, RawSecurity, RawServer,
    RawSession, RawSettings,
};
use crate::sections::{
    AdminAccess, AgentConfig, AgentVerify, MIB, MapperConfig, MapperStoreConfig, PluginSource,
    RateLimits, RedisConfig, RedisTopology, ServerConfig, SessionConfig, StoreConfig,
};
use crate::settings::Settings;
use crate::values::{BeakerType, LogFormat, RawPlugin, SessionStore, VerifyMode};

/// Validates every section of `raw`, read from `path`.
pub(crate) fn settings(raw: RawSettings, path: &Path) -> Result<Settings, SettingsError> {
    let origin = Origin::new(path);
    let mapper = mapper(&raw.mapper, &origin)?;
    let session = session(&raw.session, &raw.beaker, &origin)?;
    let agent = agent(&raw.agent, &origin)?;
    let server = server(&raw.server, &origin)?;
    let rate_limits = security(&raw.security, &origin)?;
    let (admin_listen, admin_token) = admin(&raw.admin, &origin)?;
    let admin_max_connections = raw
        .admin
        .max_connections
        .unwrap_or(defaults::ADMIN_MAX_CONNECTIONS);
    origin.within(
        "admin.max_connections",
        admin_max_connections,
        1..=100_000,
        "expected 1 to 100000",
    )?;
    let node = match raw.admin.node.as_deref().map(str::trim) {
        None | Some("") => defaults::node_name(),
        Some(name)
            if name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            name.to_owned()
        }
        Some(_) => {
            return Err(origin.bad(
                "admin.node",
                "expected up to 64 letters, digits, '-', '_' or '.'",
            ));
        }
    };
    let admin_access = admin_access(&raw.admin, &origin)?;
    Ok(Settings {
        origin: path.to_owned(),
        log_level: raw.logging.level,
        log_json: raw.logging.format == LogFormat::Json,
        mapper,
        session,
        agent,
        server,
        admin_listen,
        admin_token,
        admin_max_connections,
        admin_tls: raw.admin.tls,
        node,
        admin_access,
        audit_file: raw
            .logging
            .audit_file
            .as_deref()
            .filter(|path| !path.is_empty())
            .map(|path| origin.resolve(path)),
        rate_limits,
    })
}

/// Parses a SHA-256 fingerprint written as hex, with or without colons.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex_only: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(hex_only).ok()?;
    bytes.try_into().ok()
}

fn mapper(raw: &RawMapper, origin: &Origin<'_>) -> Result<MapperConfig, SettingsError> {
    let plugin = match &raw.plugin {
        RawPlugin::SimpleMapper => PluginSource::Simple,
        RawPlugin::SimpleWebserviceMapper => PluginSource::Webservice,
        RawPlugin::Wasm(path) => PluginSource::File(origin.resolve(path)),
    };
    if !raw.settings.is_object() {
        return Err(origin.bad("mapper.settings", "expected a JSON object"));
    }
    let limits = &raw.limits;
    origin.within(
        "mapper.limits.timeout_ms",
        limits.timeout_ms,
        10..=600_000,
        "expected 10 to 600000 milliseconds",
    )?;
    origin.within(
        "mapper.limits.memory_mb",
        limits.memory_mb,
        1..=4096,
        "expected 1 to 4096 MiB",
    )?;
    origin.within(
        "mapper.limits.max_concurrent_calls",
        limits.max_concurrent_calls,
        1..=10_000,
        "expected 1 to 10000",
    )?;
    let allowed_hosts = match &raw.allowed_hosts {
        Some(list) => {
            for (i, host) in list.iter().enumerate() {
                if !allowed_host_shape(host) {
                    return Err(origin.bad(
                        format_args!("mapper.allowed_hosts[{i}]"),
                        format!(
                            "expected host or host:port (https), or http(s)://host:port, such as \"auth.example.com\" or \"http://10.0.0.5:8080\", got {host:?}"
                        ),
                    ));
                }
            }
            list.clone()
        }
        None => defaults::mapper_allowed_hosts(&raw.plugin, &raw.settings),
    };
    Ok(MapperConfig {
        plugin,
        settings_json: raw.settings.to_string(),
        timeout: Duration::from_millis(limits.timeout_ms),
        memory_limit_bytes: limits.memory_mb * MIB,
        max_concurrent_calls: limits.max_concurrent_calls,
        allowed_hosts,
        deny_private_addresses: raw.deny_private_addresses,
        cache_dir: match raw.cache_dir.as_deref() {
            Some("") => None,
            Some(dir) => Some(origin.resolve(dir)),
            None => defaults::mapper_cache_dir(),
        },
        store: mapper_store(&raw.store, origin)?,
    })
}

/// The longest `mapper.store.namespace`.
const MAX_NAMESPACE_BYTES: usize = 128;

fn mapper_store(
    raw: &RawMapperStore,
    origin: &Origin<'_>,
) -> Result<MapperStoreConfig, SettingsError> {
    if let Some(namespace) = &raw.namespace {
        let shape_ok = !namespace.is_empty()
            && namespace.len() <= MAX_NAMESPACE_BYTES
            && namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !shape_ok {
            return Err(origin.bad(
                "mapper.store.namespace",
                format!(
                    "expected 1 to {MAX_NAMESPACE_BYTES} letters, digits, '-', '_' or '.', got {namespace:?}"
                ),
            ));
        }
    }
    origin.within(
        "mapper.store.max_keys",
        raw.max_keys,
        1..=1_000_000,
        "expected 1 to 1000000 keys",
    )?;
    origin.within(
        "mapper.store.max_value_bytes",
        raw.max_value_bytes,
        1..=1024 * 1024,
        "expected 1 to 1048576 bytes",
    )?;
    origin.within(
        "mapper.store.max_ttl_ms",
        raw.max_ttl_ms,
        1_000..=365 * 24 * 3_600_000,
        "expected 1000 (one second) to 31536000000 (365 days) milliseconds",
    )?;
    Ok(MapperStoreConfig {
        namespace: raw.namespace.clone(),
        max_keys: raw.max_keys,
        max_value_bytes: raw.max_value_bytes,
        max_key_bytes: defaults::MAPPER_STORE_MAX_KEY_BYTES,
        max_ttl_ms: raw.max_ttl_ms,
    })
}

/// Whether a `mapper.allowed_hosts` entry is `host`, `host:port`, or `http(s)://` followed by
/// one of those: no path, no spaces, no other scheme.
fn allowed_host_shape(entry: &str) -> bool {
    let host = match entry.split_once("://") {
        Some((scheme, host))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            host
        }
        Some(_) => return false,
        None => entry,
    };
    !host.is_empty() && !host.contains('/') && !host.contains(char::is_whitespace)
}

fn session(
    raw: &RawSession,
    beaker: &RawBeaker,
    origin: &Origin<'_>,
) -> Result<SessionConfig, SettingsError> {
    let store = store(raw, beaker, origin)?;
    origin.within(
        "session.idle_timeout_s",
        raw.idle_timeout_s,
        1..=86_400,
        "expected 1 to 86400 seconds",
    )?;
    origin.within(
        "session.absolute_timeout_s",
        raw.absolute_timeout_s,
        raw.idle_timeout_s..=7 * 86_400,
        "expected at least session.idle_timeout_s and at most 604800 seconds",
    )?;
    origin.within(
        "session.max_sessions",
        raw.max_sessions,
        1..=usize::MAX,
        "expected at least 1",
    )?;
    origin.within(
        "session.unauthenticated_timeout_s",
        raw.unauthenticated_timeout_s,
        1..=86_400,
        "expected 1 to 86400 seconds",
    )?;
    origin.within(
        "session.max_unauthenticated_per_address",
        raw.max_unauthenticated_per_address,
        1..=usize::MAX,
        "expected at least 1",
    )?;
    Ok(SessionConfig {
        idle_timeout: Duration::from_secs(raw.idle_timeout_s),
        absolute_timeout: Duration::from_secs(raw.absolute_timeout_s),
        max_sessions: raw.max_sessions,
        // Never longer than the idle limit that applies to every session.
        unauthenticated_timeout: Duration::from_secs(
            raw.unauthenticated_timeout_s.min(raw.idle_timeout_s),
        ),
        max_unauthenticated_per_address: raw.max_unauthenticated_per_address,
        store,
    })
}

/// `session.store`, `session.redis` and `session.key_file`; an ILS `beaker` of type `ext:redis`
/// with a `url` means the same as `session.redis.url`.
fn store(
    raw: &RawSession,
    beaker: &RawBeaker,
    origin: &Origin<'_>,
) -> Result<StoreConfig, SettingsError> {
    let ils_redis = beaker.kind == BeakerType::Ext("redis".into());
    if raw.store == SessionStore::Memory && !ils_redis {
        return Ok(StoreConfig::Memory);
    }
    let mut redis = raw.redis.clone();
    if ils_redis && redis.url.is_none() && redis.cluster.is_empty() && redis.sentinel.is_none() {
        redis.url = Some(beaker.url.clone().ok_or_else(|| {
            origin.bad(
                "beaker.url",
                "an ext:redis session store needs the Redis URL (redis://host:6379/0)",
            )
        })?);
    }
    let topology = redis_topology(&redis, origin)?;
    let key_file = raw
        .key_file
        .as_deref()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| {
            origin.bad(
                "session.key_file",
                "the redis store seals what it keeps with keys every node shares: create a key \
             file with `interstate session-key new FILE`, copy it to every node and name it here",
            )
        })?;
    let timeout_ms = redis.timeout_ms.unwrap_or(defaults::REDIS_TIMEOUT_MS);
    origin.within(
        "session.redis.timeout_ms",
        timeout_ms,
        10..=60_000,
        "expected 10 to 60000 milliseconds",
    )?;
    let key_prefix = redis
        .key_prefix
        .clone()
        .unwrap_or_else(|| defaults::REDIS_KEY_PREFIX.to_owned());
    if key_prefix.len() > 64
        || key_prefix.contains(['{', '}'])
        || key_prefix.contains(char::is_whitespace)
    {
        return Err(origin.bad(
            "session.redis.key_prefix",
            "expected at most 64 characters, without braces or spaces",
        ));
    }
    Ok(StoreConfig::Redis(RedisConfig {
        topology,
        key_prefix,
        timeout: Duration::from_millis(timeout_ms),
        ca_file: redis.ca_file.as_deref().map(|f| origin.resolve(f)),
        key_file: origin.resolve(key_file),
    }))
}

/// Exactly one of `session.redis.url`, `.cluster` and `.sentinel`, with URLs the client can use.
fn redis_topology(raw: &RawRedis, origin: &Origin<'_>) -> Result<RedisTopology, SettingsError> {
    let check = |key: &str, url: &str| {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(())
        } else {
            Err(origin.bad(
                key,
                format!(
                    "expected a redis:// or rediss:// URL, got {:?}",
                    redact_url(url)
                ),
            ))
        }
    };
    match (&raw.url, raw.cluster.is_empty(), &raw.sentinel) {
        (Some(url), true, None) => {
            check("session.redis.url", url)?;
            Ok(RedisTopology::Single(url.clone()))
        }
        (None, false, None) => {
            for url in &raw.cluster {
                check("session.redis.cluster", url)?;
            }
            Ok(RedisTopology::Cluster(raw.cluster.clone()))
        }
        (None, true, Some(sentinel)) => {
            if sentinel.urls.is_empty() {
                return Err(origin.bad(
                    "session.redis.sentinel.urls",
                    "expected at least one sentinel",
                ));
            }
            for url in &sentinel.urls {
                check("session.redis.sentinel.urls", url)?;
            }
            if sentinel.master_name.is_empty() {
                return Err(origin.bad(
                    "session.redis.sentinel.master_name",
                    "expected the name the sentinels monitor",
                ));
            }
            Ok(RedisTopology::Sentinel {
                urls: sentinel.urls.clone(),
                master_name: sentinel.master_name.clone(),
            })
        }
        (None, true, None) => Err(origin.bad(
            "session.redis",
            "the redis store needs session.redis.url (one server), .cluster (seed nodes) or \
             .sentinel ({\"urls\": [...], \"master_name\": ...})",
        )),
        _ => Err(origin.bad(
            "session.redis",
            "give only one of session.redis.url, .cluster and .sentinel",
        )),
    }
}

/// A Redis URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn agent(raw: &RawAgent, origin: &Origin<'_>) -> Result<AgentConfig, SettingsError> {
    origin.within(
        "agent.port",
        raw.port,
        1..=u16::MAX,
        "expected a port from 1 to 65535",
    )?;
    origin.within(
        "agent.timeout_ms",
        raw.timeout_ms,
        100..=120_000,
        "expected 100 to 120000 milliseconds",
    )?;
    let tls = &raw.tls;
    let verify = match tls.verify {
        VerifyMode::Tofu => AgentVerify::Tofu,
        VerifyMode::Off => AgentVerify::Off,
        VerifyMode::Ca => match tls.ca_file.as_deref() {
            Some(file) if !file.is_empty() => AgentVerify::Ca(origin.resolve(file)),
            _ => {
                return Err(origin.bad(
                    "agent.tls.ca_file",
                    "expected a PEM file when agent.tls.verify is \"ca\"",
                ));
            }
        },
        VerifyMode::Pinned => AgentVerify::Pinned(pins(&tls.fingerprints, origin)?),
    };
    let allowed_hosts = match &raw.allowed_hosts {
        Some(list) => {
            let mut fence = AgentFence::default();
            for (i, entry) in list.iter().enumerate() {
                if !fence.add(entry.trim()) {
                    return Err(origin.bad(
                        format_args!("agent.allowed_hosts[{i}]"),
                        format!(
                            "expected an address block such as \"10.20.0.0/16\", an address, a host name, or \".suffix\" such as \".render.example.com\", got {entry:?}"
                        ),
                    ));
                }
            }
            Some(fence)
        }
        None => None,
    };
    Ok(AgentConfig {
        allowed_hosts,
        port: raw.port,
        timeout: Duration::from_millis(raw.timeout_ms),
        verify,
        license_path: raw.license_path.clone().filter(|s| !s.is_empty()),
    })
}

/// `agent.tls.fingerprints` when `agent.tls.verify` is `pinned`.
fn pins(fingerprints: &[String], origin: &Origin<'_>) -> Result<Vec<[u8; 32]>, SettingsError> {
    if fingerprints.is_empty() {
        return Err(origin.bad(
            "agent.tls.fingerprints",
            "expected at least one SHA-256 fingerprint when agent.tls.verify is \"pinned\"",
        ));
    }
    fingerprints
        .iter()
        .enumerate()
        .map(|(i, text)| {
            parse_fingerprint(text).ok_or_else(|| {
                origin.bad(
                    format_args!("agent.tls.fingerprints[{i}]"),
                    format!("expected 64 hex digits (colons allowed), got {text:?}"),
                )
            })
        })
        .collect()
}

fn server(raw: &RawServer, origin: &Origin<'_>) -> Result<ServerConfig, SettingsError> {
    if raw.host.is_empty() {
        return Err(origin.bad("server.host", "expected a host name or address"));
    }
    if raw.cert.is_some() != raw.key.is_some() {
        return Err(origin.bad(
            "server.cert",
            "expected both server.cert and server.key, or neither",
        ));
    }
    origin.within(
        "server.max_connections",
        raw.max_connections,
        1..=usize::MAX,
        "expected at least 1",
    )?;
    origin.within(
        "server.max_connections_per_address",
        raw.max_connections_per_address,
        1..=usize::MAX,
        "expected at least 1",
    )?;
    for (key, value) in [
        ("server.handshake_timeout_ms", raw.handshake_timeout_ms),
        ("server.header_timeout_ms", raw.header_timeout_ms),
        ("server.shutdown_grace_ms", raw.shutdown_grace_ms),
    ] {
        origin.within(
            key,
            value,
            1..=3_600_000,
            "expected 1 to 3600000 milliseconds",
        )?;
    }
    origin.within(
        "server.body_limit_bytes",
        raw.body_limit_bytes,
        1024..=16 * 1024 * 1024,
        "expected 1024 to 16777216 bytes",
    )?;
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<IpAddr>().map_err(|_| {
                origin.bad(
                    format_args!("server.trusted_proxies[{i}]"),
                    format!("expected an IP address, got {text:?}"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ServerConfig {
        host: raw.host.clone(),
        port: raw.port,
        cert: raw.cert.as_deref().map(|p| origin.resolve(p)),
        key: raw.key.as_deref().map(|p| origin.resolve(p)),
        generated_cert_dir: match raw.generated_cert_dir.as_deref() {
            Some("") => None,
            Some(dir) => Some(origin.resolve(dir)),
            None => defaults::generated_cert_dir(),
        },
        fallback_sessions: raw.fallback_sessions,
        max_connections: raw.max_connections,
        max_connections_per_address: raw.max_connections_per_address,
        handshake_timeout: Duration::from_millis(raw.handshake_timeout_ms),
        header_timeout: Duration::from_millis(raw.header_timeout_ms),
        body_limit_bytes: raw.body_limit_bytes,
        trusted_proxies,
        broker_name: raw.broker_name.clone(),
        hostname: raw.hostname.clone(),
        shutdown_grace: Duration::from_millis(raw.shutdown_grace_ms),
    })
}

fn security(raw: &RawSecurity, origin: &Origin<'_>) -> Result<RateLimits, SettingsError> {
    let at_least_one = "expected at least 1";
    origin.within(
        "security.auth_failures_per_user",
        raw.auth_failures_per_user,
        1..=u32::MAX,
        at_least_one,
    )?;
    origin.within(
        "security.auth_failures_per_address",
        raw.auth_failures_per_address,
        1..=u32::MAX,
        at_least_one,
    )?;
    origin.within(
        "security.auth_window_s",
        raw.auth_window_s,
        1..=86_400,
        "expected 1 to 86400 seconds",
    )?;
    origin.within(
        "security.hash_workers",
        raw.hash_workers,
        0..=crate::defaults::MAX_HASH_WORKERS,
        "expected 0 (one per core) to 256",
    )?;
    Ok(RateLimits {
        per_user: raw.auth_failures_per_user,
        per_address: raw.auth_failures_per_address,
        window_ms: raw.auth_window_s * 1000,
        hash_workers: raw.hash_workers,
        ..RateLimits::default()
    })
}

/// The admin listener and its token.
fn admin(
    raw: &RawAdmin,
    origin: &Origin<'_>,
) -> Result<(Option<SocketAddr>, Option<String>), SettingsError> {
    let listen = match raw.listen.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
            origin.bad(
                "admin.listen",
                format!("expected an address and port such as \"127.0.0.1:9443\", got {text:?}"),
            )
        })?),
    };
    let token = raw.token.clone().filter(|t| !t.is_empty());
    if listen.is_some_and(|a| !a.ip().is_loopback()) && token.is_none() {
        return Err(origin.bad(
            "admin.token",
            "expected a token when admin.listen is not a loopback address",
        ));
    }
    Ok((listen, token))
}

/// The admin listener's channelstream-compatible access rules.
fn admin_access(raw: &RawAdmin, origin: &Origin<'_>) -> Result<AdminAccess, SettingsError> {
    let mut allow_posting_from = Vec::with_capacity(raw.allow_posting_from.len());
    for (index, entry) in raw.allow_posting_from.iter().enumerate() {
        let block = crate::fence::Cidr::parse(entry.trim()).ok_or_else(|| {
            origin.bad(
                format!("admin.allow_posting_from[{index}]"),
                format!(
                    "expected an address or address block such as \"10.0.0.0/8\", got {entry:?}"
                ),
            )
        })?;
        allow_posting_from.push(block);
    }
    let mut allow_cors = Vec::with_capacity(raw.allow_cors.len());
    for (index, entry) in raw.allow_cors.iter().enumerate() {
        let parsed = cors_origin(entry).ok_or_else(|| {
            origin.bad(
                format!("admin.allow_cors[{index}]"),
                format!("expected an origin such as \"https://app.example:8443\" (scheme, host, optional port; no path), got {entry:?}"),
            )
        })?;
        allow_cors.push(parsed);
    }
    let user = match raw.user.as_deref() {
        None => defaults::ADMIN_USER.to_owned(),
        Some(user)
            if !user.is_empty() && user.len() <= 256 && !user.chars().any(char::is_control) =>
        {
            user.to_owned()
        }
        Some(_) => {
            return Err(origin.bad(
                "admin.user",
                "expected 1 to 256 characters without control characters",
            ));
        }
    };
    let password_hash = raw.password_hash.clone().filter(|h| !h.is_empty());
    if let Some(hash) = &password_hash {
        let ils = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        let phc = hash.starts_with("$argon2id$") || hash.starts_with("$pbkdf2-sha256$");
        if !ils && !phc {
            return Err(origin.bad(
                "admin.password_hash",
                "expected a password hash made by `interstate hash-password` ($argon2id$…, $pbkdf2-sha256$… or ILS's 64 hex digits), never the password itself",
            ));
        }
    }
    let cookie_secret = raw.cookie_secret.clone().filter(|s| !s.is_empty());
    if password_hash.is_some() && cookie_secret.as_ref().is_none_or(|s| s.len() < 16) {
        return Err(origin.bad(
            "admin.cookie_secret",
            "expected a secret of at least 16 characters when admin.password_hash is set (it signs the sign-in cookie)",
        ));
    }
    Ok(AdminAccess {
        allow_posting_from,
        enforce_https: raw.enforce_https,
        allow_cors,
        user,
        password_hash,
        cookie_secret,
    })
}

/// `scheme://host[:port]` with the port made explicit, lower case; `None` for anything else.
fn cors_origin(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let (host, port) = if rest.starts_with('[') {
        let (host, after) = rest.split_at(rest.find(']')? + 1);
        match after.strip_prefix(':') {
            Some(port) => (host, port.parse::<u16>().ok()?),
            None if after.is_empty() => (host, default_port),
            None => return None,
        }
    } else {
        match rest.split_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().ok()?),
            None => (rest, default_port),
        }
    };
    if host.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{host}:{port}"))
}
