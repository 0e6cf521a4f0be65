//! Load-time checks and the compile cache.

use std::os::unix::fs::PermissionsExt;

use interstate_mapper::{LoadError, MapperRuntime, MapperSource, RuntimeConfig};
use interstate_protocol::policy::{AuthOutcome, Mapper};
use serde_json::json;

use crate::support::{ILS_HASH, PASSWORD, guest, login, runtime, settings};

fn simple_settings() -> interstate_mapper::MapperSettings {
    settings(json!({
        "username": "alice",
        "password_hash": ILS_HASH,
        "resources": [{"name": "ws", "hostname": "ws.example.com"}]
    }))
}

/// The runtime that refused a component still loads and serves a good one.
async fn assert_still_loads(rt: &MapperRuntime) {
    let mapper = rt
        .load(MapperSource::Simple, simple_settings())
        .await
        .unwrap();
    let outcome = mapper
        .authenticate(&login("alice", PASSWORD))
        .await
        .unwrap();
    assert!(matches!(outcome, AuthOutcome::Accepted(_)), "{outcome:?}");
}

#[tokio::test]
async fn embeds_the_webservice_mapper_built_from_its_sources() {
    let rt = runtime();
    let ils = json!({
        "base_url": "https://hosts.example.com/api",
        "cookie_auth_url": "https://hosts.example.com/login",
        "cookie_name": "session",
        "auth_username_suffix": "@example.com",
        "domains": ["EXAMPLE"]
    });
    let embedded = rt
        .load(MapperSource::Webservice, settings(ils.clone()))
        .await
        .unwrap();
    assert_eq!(embedded.info().name, "SimpleWebserviceMapper");
    assert_eq!(embedded.domains(), vec!["EXAMPLE"]);
    let path = interstate_mapper::testing::webservice_mapper_path();
    let from_file = rt
        .load(MapperSource::File(path), settings(ils))
        .await
        .unwrap();
    assert_eq!(from_file.info().sha256, embedded.info().sha256);

    let err = rt
        .load(
            MapperSource::Webservice,
            settings(
                json!({"base_url": "ftp://x", "cookie_auth_url": "https://x", "cookie_name": "s"}),
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::Configure { .. }), "{err}");
    assert!(err.to_string().contains("base_url"), "{err}");
    assert_still_loads(&rt).await;
}

#[tokio::test]
async fn refuses_what_is_not_a_component() {
    let rt = runtime();
    for (wasm, expected) in [
        (b"hello, world".to_vec(), "magic bytes"),
        (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
    ] {
        let err = rt
            .load(
                MapperSource::Bytes {
                    name: "junk".to_owned(),
                    wasm,
                },
                simple_settings(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, LoadError::NotAComponent { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    let err = rt
        .load(
            MapperSource::File("/nonexistent/mapper.wasm".into()),
            simple_settings(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::FileUnreadable { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/mapper.wasm"),
        "{err}"
    );
}

#[tokio::test]
async fn refuses_an_unknown_contract_version_naming_the_exports() {
    let rt = runtime();
    let err = rt
        .load(
            MapperSource::File(guest("interstate-future-mapper")),
            simple_settings(),
        )
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LoadError::Incompatible { .. }), "{message}");
    assert!(
        message.contains("interstate:mapper/policy@0.3.0"),
        "{message}"
    );
    assert!(
        message.contains("interstate:mapper/policy@0.1.x")
            && message.contains("interstate:mapper/policy@0.2.x"),
        "{message}"
    );
}

#[tokio::test]
async fn refuses_forbidden_imports_listing_them() {
    let rt = runtime();
    let err = rt
        .load(
            MapperSource::File(guest("interstate-smuggler-mapper")),
            simple_settings(),
        )
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, LoadError::ForbiddenImports { .. }),
        "{message}"
    );
    assert!(message.contains("evil:net/raw@1.0.0"), "{message}");
    assert_still_loads(&rt).await;
}

#[tokio::test]
async fn the_second_load_comes_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let config = RuntimeConfig {
        cache_dir: Some(cache_dir.clone()),
        max_concurrent_calls: 4,
        ..RuntimeConfig::default()
    };

    let cold = MapperRuntime::new(config.clone()).unwrap();
    let first = cold
        .load(MapperSource::Simple, simple_settings())
        .await
        .unwrap();
    assert!(!first.info().from_cache);
    let mode = std::fs::metadata(&cache_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let entries: Vec<_> = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = entries[0].clone();
    let file_name = entry.file_name().unwrap().to_string_lossy().into_owned();
    assert!(file_name.starts_with(&first.info().sha256), "{file_name}");
    assert!(file_name.ends_with(".cwasm"), "{file_name}");

    // A new runtime (a restarted broker) reads the cache instead of compiling.
    let warm = MapperRuntime::new(config.clone()).unwrap();
    let second = warm
        .load(MapperSource::Simple, simple_settings())
        .await
        .unwrap();
    assert!(second.info().from_cache);
    let outcome = second
        .authenticate(&login("alice", PASSWORD))
        .await
        .unwrap();
    assert!(matches!(outcome, AuthOutcome::Accepted(_)));

    // A corrupt entry is ignored and replaced.
    std::fs::write(&entry, b"not a compiled component").unwrap();
    let repaired = MapperRuntime::new(config.clone()).unwrap();
    let third = repaired
        .load(MapperSource::Simple, simple_settings())
        .await
        .unwrap();
    assert!(!third.info().from_cache);
    let outcome = third.authenticate(&login("alice", PASSWORD)).await.unwrap();
    assert!(matches!(outcome, AuthOutcome::Accepted(_)));
    let fourth = MapperRuntime::new(config)
        .unwrap()
        .load(MapperSource::Simple, simple_settings())
        .await
        .unwrap();
    assert!(fourth.info().from_cache);
}

/// Issue #13 item 5: a cache directory someone else could write is a code-injection path (its
/// entries are loaded as native code), so it is refused, and so is a symlink to one.
#[tokio::test]
async fn a_cache_directory_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let config = |cache: &std::path::Path| RuntimeConfig {
        cache_dir: Some(cache.to_owned()),
        max_concurrent_calls: 4,
        ..RuntimeConfig::default()
    };
    let err = MapperRuntime::new(config(&open)).unwrap_err().to_string();
    assert!(err.contains("writable by group or others"), "{err}");

    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    let err = MapperRuntime::new(config(&link)).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");

    // A private directory is used; an entry someone else may write is never loaded.
    let rt = MapperRuntime::new(config(&private)).unwrap();
    let first = rt
        .load(MapperSource::Simple, simple_settings())
        .await
        .unwrap();
    assert!(!first.info().from_cache);
    for entry in std::fs::read_dir(&private).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let again = MapperRuntime::new(config(&private)).unwrap();
    let second = again
        .load(MapperSource::Simple, simple_settings())
        .await
        .unwrap();
    assert!(
        !second.info().from_cache,
        "a group/other-writable entry was loaded"
    );
}
