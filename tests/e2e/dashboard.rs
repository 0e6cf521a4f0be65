//! The dashboard in a real headless browser: Debian's chromium driven by playwright-core
//! (`tests/dashboard/dashboard.mjs`). The page signs in with the admin token, sees two PCoIP
//! sessions appear, sees one disappear within a second of its `bye`, ends the other with its
//! button (the broker session really ends), and saves a screenshot under the target directory.
//!
//! A missing chromium or a missing `npm ci` fails the test: tests/setup-toolchains.sh and
//! .ci/run install both.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use interstate::events::session_ref;
use interstate_tests::pcoip::result_id;
use interstate_tests::{AgentBehaviour, FakeAgent, PASSWORD, TestBroker, TestClient, msg};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

use crate::operator::{Admin, TOKEN, operator_settings};

const CHROMIUM: &str = "/usr/bin/chromium";

fn script_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboard")
}

/// The next line of the script, which must start with `prefix`; its remaining words.
async fn expect(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> Vec<String> {
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("the dashboard script never said {prefix:?}"))
        .expect("the script's stdout")
        .unwrap_or_else(|| {
            panic!("the dashboard script ended before {prefix:?} (see its stderr above)")
        });
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix:?} from the script, got {line:?}"));
    rest.split_whitespace().map(str::to_owned).collect()
}

async fn logged_in(broker: &TestBroker) -> TestClient {
    let mut client = TestClient::connect(broker.addr).await;
    client.send(&msg::hello()).await;
    let auth = client
        .send(&msg::authenticate("kolmogorov", PASSWORD, Some("EXAMPLE")))
        .await;
    assert_eq!(result_id(&auth), "AUTH_SUCCESSFUL_AND_COMPLETE");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_sessions_live_and_ends_one_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `apt-get install -y chromium` (tests/setup-toolchains.sh does)"
    );
    assert!(
        script_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: `npm ci` in tests/dashboard (tests/setup-toolchains.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let agent = FakeAgent::start(AgentBehaviour::Succeed).await;
    let broker = TestBroker::start(operator_settings(
        agent.addr,
        &dir.path().join("audit.jsonl"),
        false,
    ))
    .await;
    let admin = Admin::start(&broker, Some(TOKEN)).await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);

    let mut child = Command::new("node")
        .arg(script_dir().join("dashboard.mjs"))
        .current_dir(script_dir())
        .env("DASHBOARD_URL", format!("http://{}/dashboard", admin.addr))
        .env("ADMIN_TOKEN", TOKEN)
        .env("SCREENSHOT", &screenshot)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (tests/setup-toolchains.sh installs it)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    expect(&mut lines, "signed-in").await;
    let mut a = logged_in(&broker).await;
    let mut b = logged_in(&broker).await;
    let (ref_a, ref_b) = (
        session_ref(a.cookie.as_deref().unwrap()),
        session_ref(b.cookie.as_deref().unwrap()),
    );
    stdin
        .write_all(format!("sessions {ref_a} {ref_b}\n").as_bytes())
        .await
        .unwrap();
    expect(&mut lines, "seen").await;

    let bye = a.send(&msg::bye()).await;
    assert!(bye.text().contains("<bye-resp"), "{}", bye.text());
    let said_bye = Instant::now();
    stdin.write_all(b"bye\n").await.unwrap();
    let gone = expect(&mut lines, "gone-a").await;
    let gone_after = said_bye.elapsed();
    assert!(
        gone_after < Duration::from_secs(1),
        "the ended session left the page {gone_after:?} after bye (page: {gone:?} ms)"
    );

    expect(&mut lines, "clicked").await;
    expect(&mut lines, "gone-b").await;
    let after = b.send(&msg::list()).await;
    assert!(
        after.text().contains("expired"),
        "the End button really ended the session: {}",
        after.text()
    );
    let done = expect(&mut lines, "done").await;
    assert_eq!(done, [screenshot.display().to_string()]);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the script exits")
        .unwrap();
    assert!(status.success(), "the dashboard script failed: {status}");
    let png = std::fs::read(&screenshot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1_000);
    eprintln!("dashboard screenshot: {}", screenshot.display());
}
