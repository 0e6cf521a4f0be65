//! Parsing whole files: ILS files, errors, relative paths, the example file and the defaults.

use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Settings, SettingsError> {
    Settings::parse(text, Path::new("/etc/interstate/settings.json"))
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn ils_settings_load_unchanged() {
    let text = r#"{
        "logging": {"level": "DEBUG"},
        "beaker": {"type": "file", "data_dir": "/tmp"},
        "mapper": {"plugin": "SimpleMapper", "settings": {
            "username": "kolmogorov", "password_hash": "abc",
            "resources": [{"name": "James Dean", "hostname": "localhost"}],
            "domains": [""]}}
    }"#;
    let s = parse(text).unwrap();
    assert_eq!(s.log_level, LogLevel::Debug);
    assert_eq!(s.mapper.plugin, PluginSource::Simple);
    assert!(s.mapper.settings_json.contains("kolmogorov"));
    assert_eq!(s.server.port, 60443);
    assert_eq!(s.agent.verify, AgentVerify::Tofu);
}

#[test]
fn unknown_key_is_named_with_its_path() {
    let err = error(r#"{"session": {"idle_timeout": 5}}"#);
    assert!(
        err.starts_with("/etc/interstate/settings.json: session"),
        "{err}"
    );
    assert!(err.contains("idle_timeout"), "{err}");
}

#[test]
fn bad_values_name_file_key_and_expectation() {
    let err = error(r#"{"agent": {"tls": {"verify": "pinned", "fingerprints": ["zz"]}}}"#);
    assert!(
        err.contains("agent.tls.fingerprints[0]") && err.contains("64 hex digits"),
        "{err}"
    );
    let err = error(r#"{"session": {"idle_timeout_s": "ten"}}"#);
    assert!(err.contains("session.idle_timeout_s"), "{err}");
    let err = error(r#"{"mapper": {"plugin": "LdapMapper"}}"#);
    assert!(
        err.contains("mapper.plugin")
            && err.contains("\"SimpleWebserviceMapper\"")
            && err.contains(".wasm"),
        "{err}"
    );
    let err = error("{\n  \"logging\": \n}");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn misspelt_enum_values_name_the_key_and_the_spellings() {
    for (json, key, expected) in [
        (
            r#"{"logging": {"level": "LOUD"}}"#,
            "logging.level",
            "INFO, DEBUG",
        ),
        (
            r#"{"logging": {"format": "yaml"}}"#,
            "logging.format",
            "\"json\"",
        ),
        (r#"{"beaker": {"type": "ext:"}}"#, "beaker.type", "ext:NAME"),
        (
            r#"{"session": {"store": "disk"}}"#,
            "session.store",
            "\"memory\"",
        ),
        (
            r#"{"session": {"store": "redis"}}"#,
            "session.redis",
            ".sentinel",
        ),
        (
            r#"{"session": {"store": "redis", "redis": {"url": "redis://127.0.0.1:6379"}}}"#,
            "session.key_file",
            "interstate session-key new",
        ),
        (
            r#"{"session": {"store": "redis", "key_file": "k",
                "redis": {"url": "http://:pw@10.0.0.1:6379"}}}"#,
            "session.redis.url",
            "http://***@10.0.0.1",
        ),
        (
            r#"{"session": {"store": "redis", "key_file": "k",
                "redis": {"url": "redis://a:1", "cluster": ["redis://b:2"]}}}"#,
            "session.redis",
            "only one",
        ),
        (
            r#"{"beaker": {"type": "ext:redis"}, "session": {"key_file": "k"}}"#,
            "beaker.url",
            "redis://",
        ),
        (
            r#"{"agent": {"tls": {"verify": "on"}}}"#,
            "agent.tls.verify",
            "\"pinned\"",
        ),
        (
            r#"{"agent": {"tls": {"verify": {"off": null}}}}"#,
            "agent.tls.verify",
            "string",
        ),
        (r#"{"mapper": {"plugin": ""}}"#, "mapper.plugin", ".wasm"),
        (
            r#"{"mapper": {"store": {"namespace": "a{b}"}}}"#,
            "mapper.store.namespace",
            "letters, digits",
        ),
        (
            r#"{"mapper": {"store": {"namespace": ""}}}"#,
            "mapper.store.namespace",
            "1 to 128",
        ),
        (
            r#"{"mapper": {"store": {"max_keys": 0}}}"#,
            "mapper.store.max_keys",
            "1 to 1000000",
        ),
        (
            r#"{"mapper": {"store": {"max_value_bytes": 2000000}}}"#,
            "mapper.store.max_value_bytes",
            "1048576",
        ),
        (
            r#"{"mapper": {"store": {"max_ttl_ms": 10}}}"#,
            "mapper.store.max_ttl_ms",
            "one second",
        ),
        (
            r#"{"mapper": {"store": {"max_keys": -1}}}"#,
            "mapper.store.max_keys",
            "",
        ),
        (
            r#"{"mapper": {"store": {"size": 1}}}"#,
            "mapper.store.size",
            "max_ttl_ms",
        ),
    ] {
        let err = error(json);
        assert!(
            err.starts_with(&format!("/etc/interstate/settings.json: {key}: ")),
            "{err}"
        );
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn ils_spellings_are_accepted() {
    for (level, expected) in [
        ("info", LogLevel::Info),
        ("WARNING", LogLevel::Warn),
        ("warn", LogLevel::Warn),
        ("CRITICAL", LogLevel::Error),
        ("Trace", LogLevel::Trace),
    ] {
        let s = parse(&format!(r#"{{"logging": {{"level": "{level}"}}}}"#)).unwrap();
        assert_eq!(s.log_level, expected, "{level}");
    }
    for kind in ["file", "dbm", "memory", "cookie", "ext:redis"] {
        let json = format!(r#"{{"beaker": {{"type": "{kind}"}}}}"#);
        let raw = RawSettings::parse(&json, Path::new("x.json")).unwrap();
        assert_eq!(String::from(raw.beaker.kind), kind);
    }
}

/// The settings of ILS's `SimpleWebserviceMapper` plugin, as an ILS user has them (issue #15).
const ILS_WEBSERVICE: &str = r#"{"mapper": {"plugin": "SimpleWebserviceMapper", "settings": {
    "base_url": "https://hosts.example.com/api", "cookie_auth_url": "https://hosts.example.com/login",
    "cookie_name": "session", "auth_username_suffix": "@example.com", "domains": ["EXAMPLE"]}}}"#;

#[test]
fn ils_webservice_settings_load_with_the_service_allowed() {
    let s = parse(ILS_WEBSERVICE).unwrap();
    assert_eq!(s.mapper.plugin, PluginSource::Webservice);
    assert!(s.mapper.settings_json.contains("@example.com"));
    assert_eq!(s.mapper.allowed_hosts, ["https://hosts.example.com:443"]);
    // Re-serialising keeps `allowed_hosts` unset, so the default is derived again.
    let raw = RawSettings::parse(ILS_WEBSERVICE, Path::new("x.json")).unwrap();
    let printed = serde_json::to_string(&raw).unwrap();
    assert!(!printed.contains("allowed_hosts"), "{printed}");
    assert_eq!(parse(&printed).unwrap(), s);
}

#[test]
fn webservice_default_hosts_are_the_origins_of_both_urls() {
    let hosts = |settings: serde_json::Value| {
        let text = serde_json::json!({"mapper": {
            "plugin": "SimpleWebserviceMapper", "settings": settings}});
        parse(&text.to_string()).unwrap().mapper.allowed_hosts
    };
    assert_eq!(
        hosts(serde_json::json!({
            "base_url": "http://Hosts.Example.com/api/",
            "cookie_auth_url": "HTTPS://login.example.com:8443/login?next=x"})),
        [
            "http://hosts.example.com:80",
            "https://login.example.com:8443"
        ]
    );
    assert_eq!(
        hosts(serde_json::json!({
            "base_url": "http://[::1]:8080/api", "cookie_auth_url": "http://127.0.0.1:9/"})),
        ["http://[::1]:8080", "http://127.0.0.1:9"]
    );
    // URLs the mapper refuses allow nothing; its configure names the key.
    for bad in [
        "ftp://hosts.example.com/",
        "hosts.example.com/api",
        "https://user:pw@hosts.example.com/",
        "https:///api",
        "https://hosts.example.com:+443/",
        "https://hosts.example.com:99999/",
        "https://hosts.example.com:/",
    ] {
        assert_eq!(
            hosts(serde_json::json!({"base_url": bad, "cookie_auth_url": 7})),
            Vec::<String>::new(),
            "{bad}"
        );
    }
    // Only the webservice mapper gets a derived default.
    let simple = parse(
        r#"{"mapper": {"plugin": "SimpleMapper", "settings": {"base_url": "https://x.example/"}}}"#,
    )
    .unwrap();
    assert!(simple.mapper.allowed_hosts.is_empty());
}

#[test]
fn explicit_allowed_hosts_win_even_when_empty() {
    let with = |hosts: &str| {
        let text = ILS_WEBSERVICE.replacen(
            r#""plugin""#,
            &format!(r#""allowed_hosts": {hosts}, "plugin""#),
            1,
        );
        parse(&text).map(|s| s.mapper.allowed_hosts)
    };
    assert_eq!(with("[]").unwrap(), Vec::<String>::new());
    assert_eq!(
        with(r#"["proxy.example.com:3128", "https://hosts.example.com"]"#).unwrap(),
        ["proxy.example.com:3128", "https://hosts.example.com"]
    );
    for bad in [
        r#"["ftp://hosts.example.com"]"#,
        r#"["https://hosts.example.com/api"]"#,
        r#"["https://"]"#,
        r#"["hosts.example.com/"]"#,
    ] {
        let err = with(bad).unwrap_err().to_string();
        assert!(err.contains("mapper.allowed_hosts[0]"), "{bad}: {err}");
    }
}

#[test]
fn relative_plugin_paths_resolve_against_the_settings_file() {
    let s = parse(r#"{"mapper": {"plugin": "mappers/site.wasm"}}"#).unwrap();
    assert_eq!(
        s.mapper.plugin,
        PluginSource::File("/etc/interstate/mappers/site.wasm".into())
    );
}

#[test]
fn fingerprints_accept_colons() {
    let hex = "AB:".repeat(31) + "AB";
    assert_eq!(parse_fingerprint(&hex), Some([0xab; 32]));
    assert_eq!(parse_fingerprint("abc"), None);
}

#[test]
fn the_example_file_parses() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../settings.example.json"
    ));
    let s = Settings::load(path).unwrap();
    assert_eq!(s.mapper.plugin, PluginSource::Simple);
    assert!(s.mapper.settings_json.contains("kolmogorov"));
}

#[test]
fn defaults_equal_parsing_an_empty_object() {
    let parsed = Settings::parse("{}", Path::new("<defaults>")).unwrap();
    assert_eq!(Settings::defaults(), parsed);
    let raw = Settings::from_raw(RawSettings::default(), Path::new("<defaults>")).unwrap();
    assert_eq!(Settings::defaults(), raw);
}

#[test]
fn defaults_are_valid_and_print() {
    let s = Settings::defaults();
    assert_eq!(s.server.port, 60443);
    assert_eq!(s.server.body_limit_bytes, 65536);
    let printed = serde_json::to_string_pretty(&RawSettings::default()).unwrap();
    assert_eq!(
        Settings::parse(&printed, Path::new("<defaults>")).unwrap(),
        s
    );
}

#[test]
fn agent_allowed_hosts_are_blocks_and_names() {
    assert_eq!(parse("{}").unwrap().agent.allowed_hosts, None);
    let fence = parse(r#"{"agent": {"allowed_hosts": ["10.20.0.0/16", ".render.example.com"]}}"#)
        .unwrap()
        .agent
        .allowed_hosts
        .unwrap();
    assert!(fence.allows_ip("10.20.3.4".parse().unwrap()));
    assert!(!fence.allows_ip("10.21.3.4".parse().unwrap()));
    assert!(fence.allows_name("ws1.render.example.com"));
    let empty = parse(r#"{"agent": {"allowed_hosts": []}}"#).unwrap();
    assert_eq!(
        empty.agent.allowed_hosts,
        Some(crate::AgentFence::default()),
        "an empty list allows nowhere"
    );
    for bad in [r#"["10.0.0.0/40"]"#, r#"["bad host!"]"#, r#"[""]"#] {
        let err = parse(&format!(r#"{{"agent": {{"allowed_hosts": {bad}}}}}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("agent.allowed_hosts[0]"), "{bad}: {err}");
    }
}

#[test]
fn hash_workers_is_bounded() {
    let s = Settings::parse(r#"{"security": {"hash_workers": 4}}"#, Path::new("s.json")).unwrap();
    assert_eq!(s.rate_limits.hash_workers, 4);
    assert_eq!(
        Settings::defaults().rate_limits.hash_workers,
        0,
        "one per core"
    );
    let err = Settings::parse(
        r#"{"security": {"hash_workers": 257}}"#,
        Path::new("s.json"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("security.hash_workers"), "{err}");
}

#[test]
fn an_ils_beaker_redis_store_means_the_redis_store() {
    let settings = Settings::parse(
        r#"{"beaker": {"type": "ext:redis", "url": "redis://10.0.0.5:6379/2"},
            "session": {"key_file": "keys/session.key"}}"#,
        Path::new("/etc/ils/settings.json"),
    )
    .expect("valid");
    let crate::StoreConfig::Redis(redis) = settings.session.store else {
        panic!("expected the redis store");
    };
    assert_eq!(
        redis.topology,
        crate::RedisTopology::Single("redis://10.0.0.5:6379/2".into())
    );
    assert_eq!(redis.key_prefix, "interstate:");
    assert_eq!(redis.key_file, Path::new("/etc/ils/keys/session.key"));
}

#[test]
fn a_cluster_and_sentinels_are_named_by_their_nodes() {
    let settings = Settings::parse(
        r#"{"session": {"store": "redis", "key_file": "/k",
            "redis": {"sentinel": {"urls": ["redis://10.0.0.1:26379"], "master_name": "main"},
                      "key_prefix": "studio-a:", "timeout_ms": 500}}}"#,
        Path::new("s.json"),
    )
    .expect("valid");
    let crate::StoreConfig::Redis(redis) = &settings.session.store else {
        panic!("expected the redis store");
    };
    assert_eq!(
        redis.topology,
        crate::RedisTopology::Sentinel {
            urls: vec!["redis://10.0.0.1:26379".into()],
            master_name: "main".into()
        }
    );
    assert_eq!(redis.timeout, std::time::Duration::from_millis(500));
    let other = Settings::parse(
        r#"{"session": {"store": "redis", "key_file": "/k",
            "redis": {"cluster": ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]}}}"#,
        Path::new("s.json"),
    )
    .expect("valid");
    assert_eq!(settings.restart_required(&other), vec!["session.store"]);
}

#[test]
fn admin_access_keys_are_checked_and_named() {
    let parse = |text: &str| Settings::parse(text, std::path::Path::new("/etc/i.json"));
    let ok = parse(
        r#"{"admin": {"allow_posting_from": ["10.0.0.0/8", "::1"], "enforce_https": true,
            "allow_cors": ["https://App.example", "http://[::1]:8080"],
            "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "cookie_secret": "0123456789abcdef"}}"#,
    )
    .unwrap();
    let access = &ok.admin_access;
    assert_eq!(access.allow_posting_from.len(), 2);
    assert!(access.enforce_https);
    assert_eq!(
        access.allow_cors,
        ["https://app.example:443", "http://[::1]:8080"]
    );
    assert_eq!(access.user, "admin");
    assert_eq!(
        Settings::defaults().admin_access,
        parse("{}").unwrap().admin_access
    );
    for (text, key) in [
        (
            r#"{"admin": {"allow_posting_from": ["10.0.0.0/33"]}}"#,
            "admin.allow_posting_from[0]",
        ),
        (r#"{"admin": {"allow_cors": ["*"]}}"#, "admin.allow_cors[0]"),
        (
            r#"{"admin": {"allow_cors": ["https://a.example/path"]}}"#,
            "admin.allow_cors[0]",
        ),
        (
            r#"{"admin": {"password_hash": "hunter2", "cookie_secret": "0123456789abcdef"}}"#,
            "admin.password_hash",
        ),
        (
            r#"{"admin": {"password_hash": "$argon2id$v=19$x"}}"#,
            "admin.cookie_secret",
        ),
        (r#"{"admin": {"user": ""}}"#, "admin.user"),
    ] {
        let error = parse(text).unwrap_err().to_string();
        assert!(error.starts_with("/etc/i.json: "), "{error}");
        assert!(error.contains(&format!(": {key}: ")), "{text}: {error}");
    }
}

#[test]
fn mapper_store_defaults_and_values() {
    let s = parse("{}").unwrap();
    assert_eq!(s.mapper.store, MapperStoreConfig::default());
    assert_eq!(s.mapper.store.namespace, None);
    assert_eq!(s.mapper.store.max_keys, 10_000);
    assert_eq!(s.mapper.store.max_value_bytes, 65_536);
    assert_eq!(s.mapper.store.max_key_bytes, 256);
    assert_eq!(s.mapper.store.max_ttl_ms, 2_592_000_000);
    let s = parse(
        r#"{"mapper": {"store": {"namespace": "site-policy.v2", "max_keys": 50,
            "max_value_bytes": 1024, "max_ttl_ms": 60000}}}"#,
    )
    .unwrap();
    assert_eq!(
        s.mapper.store,
        MapperStoreConfig {
            namespace: Some("site-policy.v2".to_owned()),
            max_keys: 50,
            max_value_bytes: 1024,
            max_key_bytes: 256,
            max_ttl_ms: 60_000,
        }
    );
}
