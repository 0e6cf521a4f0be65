//! One mapper call in a fresh store (the Rust SimpleMapper and the JavaScript example built with
//! jco/QuickJS), and loading with a warm or cold compile cache.
//!
//! `cargo bench -p interstate-mapper --bench mapper_call` (the JavaScript case needs the guest
//! toolchain: `bash tests/setup-toolchains.sh`).

#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented items"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use interstate_mapper::{MapperRuntime, MapperSettings, MapperSource, RuntimeConfig};
use interstate_protocol::policy::{ClientContext, Identity, Mapper};

fn simple_settings() -> MapperSettings {
    MapperSettings {
        settings_json: serde_json::json!({
            "username": "alice",
            "password_hash": "660738cb8ad3c9ba4a7fc7337e868e3022de55272d487b269e45ff81b4561021",
            "resources": [
                {"name": "Workstation", "hostname": "ws-alice.example.com"},
                {"name": "Build box", "hostname": "10.0.4.20"}
            ],
            "domains": ["EXAMPLE"]
        })
        .to_string(),
        ..MapperSettings::default()
    }
}

fn runtime(cache_dir: Option<std::path::PathBuf>) -> MapperRuntime {
    MapperRuntime::new(RuntimeConfig {
        cache_dir,
        max_concurrent_calls: 16,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn call(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let rt = runtime(None);
    let mapper = tokio
        .block_on(rt.load(MapperSource::Simple, simple_settings()))
        .expect("load");
    let user = Identity {
        username: "alice".to_owned(),
        ..Identity::default()
    };
    let client = ClientContext::default();
    c.bench_function("simple: fresh store + configure + list-desktops", |b| {
        b.to_async(&tokio).iter(|| async {
            let desktops = mapper.list_desktops(&user, &client).await.expect("list");
            black_box(desktops)
        });
    });
}

/// Builds `guest-mappers/js` with its own build script into the target directory.
fn js_component() -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-mappers/js");
    let out = std::env::temp_dir().join("interstate-bench-mapper-js.wasm");
    let status = std::process::Command::new("bash")
        .arg(root.join("build.sh"))
        .arg(&out)
        .current_dir(&root)
        .status()
        .expect("run guest-mappers/js/build.sh");
    assert!(
        status.success(),
        "building the JS mapper failed; install its toolchain with `bash tests/setup-toolchains.sh`"
    );
    std::fs::read(&out).expect("the built JS mapper")
}

fn call_js(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let rt = runtime(None);
    let settings_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../guest-mappers/js/example.settings.json");
    let settings = MapperSettings {
        settings_json: std::fs::read_to_string(settings_path).expect("example settings"),
        ..MapperSettings::default()
    };
    let source = MapperSource::Bytes {
        name: "example-js".to_owned(),
        wasm: js_component(),
    };
    let mapper = tokio.block_on(rt.load(source, settings)).expect("load");
    let user = Identity {
        username: "bob".to_owned(),
        ..Identity::default()
    };
    let client = ClientContext::default();
    c.bench_function(
        "js (QuickJS): fresh store + configure + list-desktops",
        |b| {
            b.to_async(&tokio).iter(|| async {
                let desktops = mapper.list_desktops(&user, &client).await.expect("list");
                black_box(desktops)
            });
        },
    );
}

fn load(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let dir = tempfile::tempdir().expect("tempdir");
    let warm = runtime(Some(dir.path().to_path_buf()));
    tokio
        .block_on(warm.load(MapperSource::Simple, simple_settings()))
        .expect("prime the cache");
    let cold = runtime(None);

    let mut group = c.benchmark_group("simple: load");
    group.sample_size(20);
    group.bench_function("warm cache", |b| {
        b.to_async(&tokio).iter(|| async {
            let mapper = warm
                .load(MapperSource::Simple, simple_settings())
                .await
                .expect("load");
            assert!(mapper.info().from_cache);
            black_box(mapper)
        });
    });
    group.bench_function("cold (compile)", |b| {
        b.to_async(&tokio).iter(|| async {
            let mapper = cold
                .load(MapperSource::Simple, simple_settings())
                .await
                .expect("load");
            black_box(mapper)
        });
    });
    group.finish();
}

criterion_group!(benches, call, call_js, load);
criterion_main!(benches);
