//! Misbehaving mappers fail one call cleanly, and the runtime keeps serving.

use std::time::{Duration, Instant};

use interstate_mapper::LoadError;
use interstate_protocol::policy::{ClientContext, Identity, Mapper, MapperError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::support::{assert_still_serving, assert_within, hostile, login, runtime, runtime_with};

const SLACK: Duration = Duration::from_millis(250);

fn someone() -> Identity {
    Identity {
        username: "good".to_owned(),
        ..Identity::default()
    }
}

#[tokio::test]
async fn a_trap_a_panic_and_a_stack_overflow_are_traps() {
    let rt = runtime();
    let good = hostile(&rt, "ok", |_| {}).await;
    for mode in ["trap", "panic", "stack-overflow"] {
        let bad = hostile(&rt, mode, |_| {}).await;
        let err = bad.authenticate(&login("good", "pw")).await.unwrap_err();
        assert!(matches!(err, MapperError::Trap(_)), "{mode}: {err}");
        // The same mapper serves its next call in a fresh instance.
        let again = bad.authenticate(&login("good", "pw")).await.unwrap_err();
        assert!(matches!(again, MapperError::Trap(_)), "{mode}: {again}");
        assert_still_serving(&good).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_times_out_on_time() {
    let rt = runtime();
    let good = hostile(&rt, "ok", |_| {}).await;
    let timeout = Duration::from_millis(300);
    let spinner = hostile(&rt, "loop-authenticate", |s| s.timeout = timeout).await;
    let started = Instant::now();
    let err = spinner
        .authenticate(&login("good", "pw"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err, MapperError::Timeout(300));
    assert_within(elapsed, timeout + SLACK);
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert_still_serving(&good).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_does_not_starve_its_worker() {
    let rt = runtime();
    let spinner = hostile(&rt, "loop-authenticate", |s| {
        s.timeout = Duration::from_millis(400);
    })
    .await;
    // On a single-threaded runtime, the ticker task only runs if the guest yields.
    let ticker = tokio::spawn(async {
        let mut ticks = 0_u32;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(300) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ticks += 1;
        }
        ticks
    });
    let err = spinner
        .authenticate(&login("good", "pw"))
        .await
        .unwrap_err();
    assert!(matches!(err, MapperError::Timeout(_)), "{err}");
    let ticks = ticker.await.unwrap();
    assert!(ticks >= 10, "the executor was blocked: only {ticks} ticks");
}

#[tokio::test]
async fn a_configure_loop_fails_the_load_as_a_timeout() {
    let rt = runtime();
    let settings = crate::support::settings(serde_json::json!({"mode": "loop-configure"}));
    let settings = interstate_mapper::MapperSettings {
        timeout: Duration::from_millis(200),
        ..settings
    };
    let started = Instant::now();
    let err = rt
        .load(
            interstate_mapper::MapperSource::File(crate::support::guest(
                "interstate-hostile-mapper",
            )),
            settings,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Call {
                source: MapperError::Timeout(200),
                ..
            }
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let good = hostile(&rt, "ok", |_| {}).await;
    assert_still_serving(&good).await;
}

#[tokio::test]
async fn memory_growth_past_the_limit_is_out_of_memory() {
    let rt = runtime();
    let good = hostile(&rt, "ok", |_| {}).await;
    let hog = hostile(&rt, "grow-memory", |s| s.memory_limit_bytes = 16 << 20).await;
    let err = hog.authenticate(&login("good", "pw")).await.unwrap_err();
    assert_eq!(err, MapperError::OutOfMemory(16));
    assert_still_serving(&good).await;
}

#[tokio::test]
async fn oversized_answers_are_invalid_output() {
    let rt = runtime();
    let good = hostile(&rt, "ok", |_| {}).await;

    let huge = hostile(&rt, "huge-string", |_| {}).await;
    let err = huge.authenticate(&login("good", "pw")).await.unwrap_err();
    assert!(matches!(err, MapperError::InvalidOutput(_)), "{err}");
    assert!(err.to_string().contains("more than 4 MiB"), "{err}");
    assert_still_serving(&good).await;

    let flood = hostile(&rt, "million-desktops", |s| s.memory_limit_bytes = 1 << 30).await;
    let err = flood
        .list_desktops(&someone(), &ClientContext::default())
        .await
        .unwrap_err();
    assert!(matches!(err, MapperError::InvalidOutput(_)), "{err}");
    assert!(err.to_string().contains("more than 4 MiB"), "{err}");
    assert_still_serving(&good).await;
}

#[tokio::test]
async fn http_to_a_host_not_allowed_is_refused_without_a_connection() {
    let rt = runtime();
    let good = hostile(&rt, "ok", |_| {}).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/secret");
    // Another host; the right host and port under the other scheme; the right scheme and host
    // on another port.
    for entry in [
        "api.example.invalid".to_owned(),
        format!("https://{addr}"),
        format!("http://127.0.0.1:{}", addr.port() ^ 1),
        "http://127.0.0.1".to_owned(),
        // Entries without a scheme are https only.
        addr.to_string(),
        "127.0.0.1".to_owned(),
    ] {
        let mapper = hostile(&rt, "forbidden-http", |s| {
            s.settings_json = serde_json::json!({"mode": "forbidden-http", "url": url}).to_string();
            s.allowed_hosts = vec![entry.clone()];
        })
        .await;
        let err = mapper.authenticate(&login("good", "pw")).await.unwrap_err();
        assert!(
            matches!(&err, MapperError::Guest(message) if message.contains("HttpRequestDenied")),
            "{entry}: {err}"
        );
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "{entry}: the host connected anyway");
    }
    assert_still_serving(&good).await;
}

/// Answers every connection with `200 OK`, counting them.
async fn answering_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&connections);
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0_u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn a_bare_host_entry_allows_https_only() {
    let rt = runtime();
    let (addr, connections) = answering_server().await;
    let url = format!("http://{addr}/secret");
    for entry in [addr.to_string(), "127.0.0.1".to_owned()] {
        let mapper = hostile(&rt, "forbidden-http", |s| {
            s.settings_json = serde_json::json!({"mode": "forbidden-http", "url": url}).to_string();
            s.allowed_hosts = vec![entry.clone()];
        })
        .await;
        let err = mapper.authenticate(&login("good", "pw")).await.unwrap_err();
        assert!(
            matches!(&err, MapperError::Guest(m) if m.contains("HttpRequestDenied")),
            "{entry}: {err}"
        );
    }
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Written with its scheme, plain HTTP is reached.
    let mapper = hostile(&rt, "forbidden-http", |s| {
        s.settings_json = serde_json::json!({"mode": "forbidden-http", "url": url}).to_string();
        s.allowed_hosts = vec![format!("http://{addr}")];
    })
    .await;
    let err = mapper.authenticate(&login("good", "pw")).await.unwrap_err();
    assert!(
        matches!(&err, MapperError::Guest(m) if m.contains("status 200")),
        "{err}"
    );
}

#[tokio::test]
async fn deny_private_addresses_refuses_an_allowed_name_that_resolves_to_loopback() {
    let rt = runtime();
    let (addr, connections) = answering_server().await;
    let url = format!("http://localhost:{}/secret", addr.port());
    let call = |deny: bool| {
        let url = url.clone();
        let rt = &rt;
        async move {
            let mapper = hostile(rt, "forbidden-http", |s| {
                s.settings_json =
                    serde_json::json!({"mode": "forbidden-http", "url": url}).to_string();
                s.allowed_hosts = vec![format!("http://localhost:{}", addr.port())];
                s.deny_private_addresses = deny;
            })
            .await;
            mapper.authenticate(&login("good", "pw")).await.unwrap_err()
        }
    };
    let err = call(true).await;
    assert!(
        matches!(&err, MapperError::Guest(m) if m.contains("DestinationIpProhibited")),
        "{err}"
    );
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0);
    let err = call(false).await;
    assert!(
        matches!(&err, MapperError::Guest(m) if m.contains("status 200")),
        "{err}"
    );
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn deny_private_addresses_refuses_the_metadata_address_without_connecting() {
    let rt = runtime();
    let mapper = hostile(&rt, "forbidden-http", |s| {
        s.settings_json = serde_json::json!({
            "mode": "forbidden-http",
            "url": "http://169.254.169.254/latest/meta-data/"
        })
        .to_string();
        s.allowed_hosts = vec!["http://169.254.169.254".to_owned()];
        s.deny_private_addresses = true;
        s.timeout = Duration::from_secs(3);
    })
    .await;
    let started = Instant::now();
    let err = mapper.authenticate(&login("good", "pw")).await.unwrap_err();
    // Refused before any connection: a connection attempt would hang or fail otherwise.
    assert!(
        matches!(&err, MapperError::Guest(m) if m.contains("DestinationIpProhibited")),
        "{err}"
    );
    assert_within(started.elapsed(), SLACK);
}

#[tokio::test]
async fn slow_http_is_cut_at_the_deadline() {
    let rt = runtime();
    let good = hostile(&rt, "ok", |_| {}).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts, reads the request, never answers.
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0_u8; 1024];
        let read = socket.read(&mut buf).await.unwrap();
        let request = String::from_utf8_lossy(&buf[..read]).into_owned();
        tokio::time::sleep(Duration::from_secs(30)).await;
        request
    });
    let timeout = Duration::from_millis(500);
    let mapper = hostile(&rt, "slow-http", |s| {
        s.settings_json = serde_json::json!({
            "mode": "slow-http",
            "url": format!("http://{addr}/slow")
        })
        .to_string();
        s.allowed_hosts = vec![format!("http://{addr}")];
        s.timeout = timeout;
    })
    .await;
    let started = Instant::now();
    let err = mapper.authenticate(&login("good", "pw")).await.unwrap_err();
    assert_within(started.elapsed(), timeout + SLACK);
    assert!(
        matches!(&err, MapperError::Timeout(500))
            || matches!(&err, MapperError::Guest(m) if m.contains("Timeout")),
        "{err}"
    );
    server.abort();
    assert_still_serving(&good).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_concurrency_limit_are_unavailable() {
    let rt = runtime_with(1);
    let spinner = hostile(&rt, "loop-authenticate", |s| {
        s.timeout = Duration::from_secs(2);
    })
    .await;
    let good = hostile(&rt, "ok", |_| {}).await;
    let busy = {
        let spinner = spinner.clone();
        tokio::spawn(async move { spinner.authenticate(&login("good", "pw")).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = good.authenticate(&login("good", "pw")).await.unwrap_err();
    assert!(matches!(err, MapperError::Unavailable(_)), "{err}");
    assert!(matches!(busy.await.unwrap(), Err(MapperError::Timeout(_))));
    assert_still_serving(&good).await;
}
