//! One request through `interstate::service::handle`, without a socket, with the real embedded
//! SimpleMapper: the probe hello, a hello that starts a session, and an authenticated
//! get-resource-list (one mapper call in a fresh wasm instance).
//!
//! `cargo bench -p interstate --bench service`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark fails loudly"
)]
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented functions"
)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::{BodyExt, Full};
use interstate::clock::Clock;
use interstate::service::store_limits;
use interstate::service::{BROKER_PATH, Broker, handle};
use interstate::settings::Settings;
use interstate::store::MemoryStore;
use interstate_protocol::Root;
use interstate_tools::messages::{self, TOOL_CLIENT};

/// `PASSWORD`'s ILS hash (PBKDF2-SHA256, salt `IGNORED`, 100,000 rounds).
const PASSWORD: &str = "goodluck<&>";
const PASSWORD_ILS_HASH: &str = "23d405aab7add23c5b7b7bc74e7c7299a0e45ab47e3d8e2e34f6055a04d72cce";

fn broker(tokio: &tokio::runtime::Runtime) -> Arc<Broker> {
    let settings = serde_json::json!({
        "logging": {"level": "WARN"},
        "mapper": {
            "plugin": "SimpleMapper",
            "settings": {
                "username": "kolmogorov",
                "password_hash": PASSWORD_ILS_HASH,
                "resources": [
                    {"name": "Elisabeth Taylor", "hostname": "127.0.0.2"},
                    {"name": "James Dean", "hostname": "127.0.0.2"}
                ],
                "domains": ["EXAMPLE"]
            }
        }
    });
    let settings =
        Settings::parse(&settings.to_string(), Path::new("bench-settings.json")).unwrap();
    let runtime =
        interstate_mapper::MapperRuntime::new(interstate::app::runtime_config(&settings)).unwrap();
    let store = Arc::new(MemoryStore::new(store_limits(&settings)));
    let generation = tokio
        .block_on(interstate::app::build_generation(
            &runtime,
            settings,
            store.clone(),
        ))
        .unwrap();
    Arc::new(Broker::new(generation, store, Clock::new()))
}

/// Posts `message` with the cookie, returns the body and the cookie set, if any.
async fn post(
    broker: &Arc<Broker>,
    message: &str,
    cookie: Option<&str>,
) -> (Bytes, Option<String>) {
    let peer: SocketAddr = "127.0.0.1:50000".parse().unwrap();
    let mut request = Request::post(BROKER_PATH)
        .header("Content-Type", "text/xml; charset=UTF-8")
        .header("Client-Log-Id", "ddff1100-72e7-1039-8825-0123456789ab");
    if let Some(id) = cookie {
        request = request.header("Cookie", format!("JSESSIONID={id}"));
    }
    let request = request
        .body(Full::new(Bytes::from(messages::wrap(
            Root::PcoipClient,
            message,
        ))))
        .unwrap();
    let response = handle(broker.clone(), peer, request).await.unwrap();
    let set = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("JSESSIONID="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (body, set)
}

fn service(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let broker = broker(&tokio);

    c.bench_function("service: probe hello (no session)", |b| {
        b.iter(|| {
            tokio.block_on(async {
                black_box(post(&broker, &messages::probe_hello(&TOOL_CLIENT), None).await)
            })
        });
    });

    let mut cookie: Option<String> = None;
    c.bench_function("service: hello (replaces the session)", |b| {
        b.iter(|| {
            let (body, set) = tokio.block_on(post(
                &broker,
                &messages::hello(&TOOL_CLIENT),
                cookie.as_deref(),
            ));
            cookie = set;
            black_box(body)
        });
    });

    let (_, cookie) = tokio.block_on(post(
        &broker,
        &messages::hello(&TOOL_CLIENT),
        cookie.as_deref(),
    ));
    let cookie = cookie.expect("hello sets a cookie");
    let (auth, _) = tokio.block_on(post(
        &broker,
        &messages::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")),
        Some(&cookie),
    ));
    assert!(String::from_utf8_lossy(&auth).contains("AUTH_SUCCESSFUL_AND_COMPLETE"));
    for _ in 0..2 {
        let (list, _) = tokio.block_on(post(&broker, &messages::list(), Some(&cookie)));
        assert!(
            String::from_utf8_lossy(&list).contains("LIST_SUCCESSFUL"),
            "the list can be asked for again: {}",
            String::from_utf8_lossy(&list)
        );
    }
    c.bench_function(
        "service: get-resource-list (authenticated, SimpleMapper call)",
        |b| {
            b.iter(|| {
                tokio.block_on(async {
                    black_box(post(&broker, &messages::list(), Some(&cookie)).await)
                })
            });
        },
    );
}

criterion_group!(benches, service);
criterion_main!(benches);
