//! The pool against a store with a clock: holds, refreshes, expiry, a full pool and another
//! node's claims.

#![allow(clippy::unwrap_used, reason = "tests fail loudly")]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::*;

const EXAMPLE: &str = include_str!("../../pool.settings.json");
const MINUTE: u64 = 60;

/// A host whose store keeps TTLs against a clock the test moves.
#[derive(Default)]
struct TestHost {
    lines: RefCell<Vec<(Level, String)>>,
    checks: Cell<usize>,
    /// key -> (value, expiry in seconds)
    store: RefCell<HashMap<String, (String, u64)>>,
    now: Cell<u64>,
    store_down: bool,
}

impl TestHost {
    fn live(&self, key: &str) -> Option<String> {
        let now = self.now.get();
        self.store
            .borrow()
            .get(key)
            .filter(|(_, expiry)| *expiry > now)
            .map(|(value, _)| value.clone())
    }

    fn check_store(&self) -> Result<(), String> {
        if self.store_down {
            Err("unavailable (redis down)".to_owned())
        } else {
            Ok(())
        }
    }

    fn advance(&self, seconds: u64) {
        self.now.set(self.now.get() + seconds);
    }
}

impl Host for TestHost {
    fn log(&self, level: Level, message: &str) {
        self.lines.borrow_mut().push((level, message.to_owned()));
    }

    fn verify_password(&self, password: &str, hash: &str) -> bool {
        self.checks.set(self.checks.get() + 1);
        match hash {
            "7f63efb0ab5a0592b47baebc069aaaee864e59d1461e3c85629c040160b26b96" => {
                password == "alice-pw"
            }
            "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8" => {
                password == "bob-pw"
            }
            "684d234d891e694c6545dc91afdf411da0f8e938be04d4f562c39397d9194f55" => {
                password == "carol-pw"
            }
            _ => false,
        }
    }

    fn store_get(&self, key: &str) -> Result<Option<String>, String> {
        self.check_store()?;
        Ok(self.live(key))
    }

    fn store_set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), String> {
        self.check_store()?;
        let expiry = self.now.get() + ttl.as_secs();
        self.store
            .borrow_mut()
            .insert(key.to_owned(), (value.to_owned(), expiry));
        Ok(())
    }

    fn store_cas(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
        ttl: Duration,
    ) -> Result<bool, String> {
        self.check_store()?;
        if self.live(key).as_deref() != expected {
            return Ok(false);
        }
        self.store_set(key, new, ttl)?;
        Ok(true)
    }
}

fn settings() -> Settings {
    Settings::parse(EXAMPLE).unwrap()
}

fn pool() -> PoolPolicy {
    PoolPolicy::new(settings())
}

fn user(name: &str) -> Identity {
    Identity {
        username: name.into(),
        domain: "EXAMPLE".into(),
        attributes: Vec::new(),
    }
}

fn launched(allocation: &Allocation) -> (&str, Option<u16>) {
    match allocation {
        Allocation::Launch(launch) => (launch.hostname.as_str(), launch.agent_port),
        other => panic!("expected a launch, got {other:?}"),
    }
}

fn refused(allocation: &Allocation) -> (RefusalKind, &str) {
    match allocation {
        Allocation::Refused((kind, reason)) => (*kind, reason.as_str()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn ids(desktops: &[Desktop]) -> Vec<&str> {
    desktops.iter().map(|d| d.id.as_str()).collect()
}

#[test]
fn logins() {
    let host = TestHost::default();
    let p = pool();
    assert!(matches!(
        p.authenticate(&host, "alice", "alice-pw"),
        AuthOutcome::Accepted(ref i) if i.username == "alice" && i.domain == "EXAMPLE"
    ));
    for (name, password, kind) in [
        ("alice", "nope", RejectionKind::BadCredentials),
        ("mallory", "alice-pw", RejectionKind::BadCredentials),
    ] {
        assert!(
            matches!(p.authenticate(&host, name, password), AuthOutcome::Rejected(ref r) if r.kind == kind),
            "{name}"
        );
    }
    assert_eq!(host.checks.get(), 3, "an unknown user costs one hash check");
    let mut s = settings();
    s.users[2].disabled = true;
    assert!(matches!(
        PoolPolicy::new(s).authenticate(&host, "carol", "carol-pw"),
        AuthOutcome::Rejected(ref r) if r.kind == RejectionKind::AccessDenied
    ));
    assert!(
        host.lines
            .borrow()
            .iter()
            .all(|(_, line)| !line.contains("-pw")),
        "no password in the log"
    );
}

#[test]
fn two_users_fill_the_pool_and_the_third_is_refused() {
    let host = TestHost::default();
    let p = pool();
    let listing = p.list_desktops(&host, &user("alice"));
    assert_eq!(ids(&listing), ["pool"]);
    assert_eq!(listing[0].name, "Pool desktop");
    assert_eq!(listing[0].hostname, "");

    let alice = p.allocate(&host, &user("alice"), "pool");
    assert_eq!(launched(&alice), ("pool-1.example.com", None));
    let bob = p.allocate(&host, &user("bob"), "pool");
    assert_eq!(launched(&bob), ("pool-2.example.com", Some(60443)));
    assert_eq!(
        refused(&p.allocate(&host, &user("carol"), "pool")),
        (
            RefusalKind::Unavailable,
            "the pool is full: all 2 machines are in use"
        )
    );
    assert_eq!(
        host.live("machine:pool-1.example.com").as_deref(),
        Some("alice")
    );
    assert_eq!(host.live("user:bob").as_deref(), Some("pool-2.example.com"));

    // alice comes back: the same machine, listed as hers too.
    let listing = p.list_desktops(&host, &user("alice"));
    assert_eq!(ids(&listing), ["pool", "machine-pool-1-example-com"]);
    assert_eq!(listing[1].name, "Your pool machine (pool-1.example.com)");
    assert_eq!(listing[1].hostname, "pool-1.example.com");
    assert_eq!(
        launched(&p.allocate(&host, &user("alice"), "pool")).0,
        "pool-1.example.com"
    );
    assert_eq!(
        launched(&p.allocate(&host, &user("alice"), "machine-pool-1-example-com")).0,
        "pool-1.example.com"
    );
    // Another user cannot name alice's machine.
    assert_eq!(
        refused(&p.allocate(&host, &user("carol"), "machine-pool-1-example-com")).0,
        RefusalKind::UnknownDesktop
    );
    assert_eq!(
        refused(&p.allocate(&host, &user("alice"), "elsewhere")).0,
        RefusalKind::UnknownDesktop
    );
}

#[test]
fn a_hold_runs_from_the_last_allocation() {
    let host = TestHost::default();
    let p = pool();
    launched(&p.allocate(&host, &user("alice"), "pool"));
    launched(&p.allocate(&host, &user("bob"), "pool"));

    // alice allocates again at 20 minutes: her hold now ends at 50; bob's ends at 30.
    host.advance(20 * MINUTE);
    assert_eq!(
        launched(&p.allocate(&host, &user("alice"), "pool")).0,
        "pool-1.example.com"
    );
    host.advance(15 * MINUTE);
    assert_eq!(
        launched(&p.allocate(&host, &user("carol"), "pool")).0,
        "pool-2.example.com",
        "bob's hold lapsed at 30 minutes"
    );
    assert_eq!(ids(&p.list_desktops(&host, &user("bob"))), ["pool"]);
    assert_eq!(
        refused(&p.allocate(&host, &user("bob"), "pool")).1,
        "the pool is full: all 2 machines are in use"
    );
    host.advance(20 * MINUTE);
    assert_eq!(
        launched(&p.allocate(&host, &user("bob"), "pool")).0,
        "pool-1.example.com",
        "alice's hold lapsed at 50 minutes"
    );
}

#[test]
fn a_machine_claimed_on_another_node_is_skipped() {
    let host = TestHost::default();
    let p = pool();
    // Another broker node claimed pool-1 for mallory a moment ago.
    assert!(
        host.store_cas(
            "machine:pool-1.example.com",
            None,
            "mallory",
            Duration::from_secs(600)
        )
        .unwrap()
    );
    assert_eq!(
        launched(&p.allocate(&host, &user("alice"), "pool")).0,
        "pool-2.example.com"
    );
    // A stale record naming a machine someone else now holds is not trusted.
    host.store_set("user:bob", "pool-1.example.com", Duration::from_secs(600))
        .unwrap();
    assert_eq!(ids(&p.list_desktops(&host, &user("bob"))), ["pool"]);
    assert_eq!(
        refused(&p.allocate(&host, &user("bob"), "machine-pool-1-example-com")).0,
        RefusalKind::UnknownDesktop
    );
}

#[test]
fn with_two_machines_per_user_the_pool_entry_claims_until_the_limit() {
    let host = TestHost::default();
    let mut s = settings();
    s.max_per_user = 2;
    let p = PoolPolicy::new(s);
    assert_eq!(
        launched(&p.allocate(&host, &user("alice"), "pool")).0,
        "pool-1.example.com"
    );
    assert_eq!(
        launched(&p.allocate(&host, &user("alice"), "pool")).0,
        "pool-2.example.com"
    );
    assert_eq!(
        host.live("user:alice").as_deref(),
        Some("pool-2.example.com\npool-1.example.com")
    );
    assert_eq!(
        launched(&p.allocate(&host, &user("alice"), "pool")).0,
        "pool-2.example.com",
        "at the limit, the machine used last"
    );
    assert_eq!(
        ids(&p.list_desktops(&host, &user("alice"))),
        [
            "pool",
            "machine-pool-2-example-com",
            "machine-pool-1-example-com"
        ]
    );
    assert_eq!(
        refused(&p.allocate(&host, &user("bob"), "pool")).1,
        "the pool is full: all 2 machines are in use"
    );
}

#[test]
fn a_store_failure_refuses_cleanly() {
    let host = TestHost {
        store_down: true,
        ..TestHost::default()
    };
    let p = pool();
    assert_eq!(ids(&p.list_desktops(&host, &user("alice"))), ["pool"]);
    assert_eq!(
        refused(&p.allocate(&host, &user("alice"), "pool")),
        (
            RefusalKind::Unavailable,
            "the pool's store failed: unavailable (redis down)"
        )
    );
    assert!(
        host.lines
            .borrow()
            .iter()
            .any(|(level, line)| *level == Level::Warn
                && line == "user \"alice\": held machines not read: unavailable (redis down)")
    );
}

#[test]
fn unknown_and_disabled_users_get_nothing() {
    let host = TestHost::default();
    let mut s = settings();
    s.users[2].disabled = true;
    let p = PoolPolicy::new(s);
    assert!(p.list_desktops(&host, &user("carol")).is_empty());
    assert!(p.list_desktops(&host, &user("mallory")).is_empty());
    assert_eq!(
        refused(&p.allocate(&host, &user("carol"), "pool")).0,
        RefusalKind::UnknownDesktop
    );
    assert!(host.store.borrow().is_empty());
}
