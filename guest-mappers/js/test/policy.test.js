import assert from "node:assert/strict";
import { test } from "node:test";

import { CODE_PROMPT, makePolicy, WRONG_CODE_TEXT } from "../lib/policy.js";
import { base32Decode, totp } from "../lib/totp.js";
import { EXAMPLE_SETTINGS, testHost } from "./host.js";

const CLIENT = {
  address: "192.0.2.10",
  hostname: "zc-1",
  productName: "Teradici PCoIP Desktop Client",
  productVersion: "24.07.3",
  platform: "Linux",
  locale: "en_US",
  logId: "log-1",
};
const ALICE_KEY = base32Decode("JBSWY3DPEHPK3PXP");

function configured(host = testHost()) {
  const policy = makePolicy(host);
  policy.configure(EXAMPLE_SETTINGS);
  return { policy, host };
}

function login(username, password) {
  return { username, password, domain: "EXAMPLE", client: CLIENT };
}

const BOB = {
  username: "bob",
  domain: "EXAMPLE",
  attributes: [{ key: "groups", value: "artists,render" }],
};

test("configure reports settings errors as the err string", () => {
  const policy = makePolicy(testHost());
  assert.throws(
    () => policy.configure('{"users": 3}'),
    (e) => e === "users: expected a list of users",
  );
});

test("domains come from the settings", () => {
  assert.deepEqual(configured().policy.domains(), ["EXAMPLE"]);
});

test("bob is accepted with his groups as an attribute", () => {
  const { policy, host } = configured();
  assert.deepEqual(policy.authenticate(login("bob", "bob-pw")), { tag: "accepted", val: BOB });
  assert.deepEqual(host.lines, ['info user "bob": accepted']);
});

test("wrong passwords, unknown users and disabled users are rejected", () => {
  const { policy, host } = configured();
  const kind = (u, p) => {
    const outcome = policy.authenticate(login(u, p));
    assert.equal(outcome.tag, "rejected");
    return outcome.val.kind;
  };
  assert.equal(kind("bob", "alice-pw"), "bad-credentials");
  assert.equal(kind("mallory", "bob-pw"), "bad-credentials");
  assert.equal(
    kind("carol", "wrong"),
    "bad-credentials",
    "a disabled account is not revealed by a wrong password",
  );
  assert.equal(kind("carol", "carol-pw"), "access-denied");
  for (const line of host.lines) {
    assert.ok(!/pw|wrong"/.test(line), `no password in the log: ${line}`);
  }
});

test("a user without desktops is rejected with no-resources", () => {
  const policy = makePolicy(testHost());
  const settings = JSON.parse(EXAMPLE_SETTINGS);
  settings.users[1].groups = [];
  policy.configure(JSON.stringify(settings));
  const outcome = policy.authenticate(login("bob", "bob-pw"));
  assert.equal(outcome.tag, "rejected");
  assert.equal(outcome.val.kind, "no-resources");
});

test("alice gets a one-time-code challenge and is accepted with the right code", () => {
  const { policy, host } = configured();
  const outcome = policy.authenticate(login("alice", "alice-pw"));
  assert.equal(outcome.tag, "challenge");
  assert.deepEqual(outcome.val.fields, [{ id: "code", label: "Code", kind: "secret" }]);
  assert.equal(outcome.val.prompt, CODE_PROMPT);
  assert.equal(outcome.val.errorText, "");
  assert.deepEqual(JSON.parse(outcome.val.state), { user: "alice", attempts: 0 });

  const code = totp(ALICE_KEY, host.now);
  const done = policy.continueAuthentication(outcome.val.state, [{ id: "code", value: code }], CLIENT);
  assert.deepEqual(done, {
    tag: "accepted",
    val: { username: "alice", domain: "EXAMPLE", attributes: [{ key: "groups", value: "artists" }] },
  });
  assert.ok(
    host.lines.every((line) => !line.includes(code)),
    "the code is never logged",
  );
});

test("codes from the neighbouring steps are accepted, older ones are not", () => {
  const { policy, host } = configured();
  const state = JSON.stringify({ user: "alice", attempts: 0 });
  const attempt = (offset) =>
    policy.continueAuthentication(state, [{ id: "code", value: totp(ALICE_KEY, host.now + offset) }], CLIENT)
      .tag;
  assert.equal(attempt(-30), "accepted");
  assert.equal(attempt(30), "accepted");
  assert.equal(attempt(-90), "challenge");
});

test("three wrong codes end in bad-credentials", () => {
  const { policy, host } = configured();
  let state = policy.authenticate(login("alice", "alice-pw")).val.state;
  const wrong = totp(ALICE_KEY, host.now - 3600);
  for (const attempts of [1, 2]) {
    const outcome = policy.continueAuthentication(state, [{ id: "code", value: wrong }], CLIENT);
    assert.equal(outcome.tag, "challenge");
    assert.equal(outcome.val.errorText, WRONG_CODE_TEXT);
    assert.deepEqual(JSON.parse(outcome.val.state), { user: "alice", attempts });
    state = outcome.val.state;
  }
  const last = policy.continueAuthentication(state, [{ id: "code", value: wrong }], CLIENT);
  assert.equal(last.tag, "rejected");
  assert.equal(last.val.kind, "bad-credentials");
});

test("a missing code answer counts as a wrong code", () => {
  const { policy } = configured();
  const outcome = policy.continueAuthentication(JSON.stringify({ user: "alice", attempts: 0 }), [], CLIENT);
  assert.equal(outcome.tag, "challenge");
  assert.equal(outcome.val.errorText, WRONG_CODE_TEXT);
});

test("a malformed state is a mapper error", () => {
  const { policy } = configured();
  assert.throws(
    () => policy.continueAuthentication("not json", [], CLIENT),
    (e) => typeof e === "string",
  );
  assert.throws(
    () => policy.continueAuthentication('{"user":"alice"}', [], CLIENT),
    (e) => typeof e === "string",
  );
});

test("desktops are the union of the user's groups with stable ids", () => {
  const { policy } = configured();
  assert.deepEqual(policy.listDesktops(BOB, CLIENT), [
    {
      id: "ws-art-1-example-com",
      name: "Artist Workstation 1",
      hostname: "ws-art-1.example.com",
      agentPort: null,
      sessionKind: "vdi",
      state: "unknown",
      operations: [],
    },
    {
      id: "render-7-example-com",
      name: "Render Node 7",
      hostname: "render-7.example.com",
      agentPort: 60443,
      sessionKind: "vdi",
      state: "unknown",
      operations: [],
    },
  ]);
});

test("desktops come from the settings, not from the identity's attributes", () => {
  const { policy } = configured();
  const forged = { username: "alice", domain: "", attributes: [{ key: "groups", value: "artists,render" }] };
  assert.deepEqual(
    policy.listDesktops(forged, CLIENT).map((d) => d.id),
    ["ws-art-1-example-com"],
  );
  assert.deepEqual(policy.listDesktops({ ...forged, username: "carol" }, CLIENT), []);
  assert.deepEqual(policy.listDesktops({ ...forged, username: "nobody" }, CLIENT), []);
});

test("allocate launches the user's desktop and refuses others", () => {
  const { policy } = configured();
  assert.deepEqual(policy.allocate(BOB, "render-7-example-com", CLIENT), {
    tag: "launch",
    val: { hostname: "render-7.example.com", agentPort: 60443, username: null, domain: null },
  });
  const alice = { username: "alice", domain: "EXAMPLE", attributes: [] };
  const refused = policy.allocate(alice, "render-7-example-com", CLIENT);
  assert.equal(refused.tag, "refused");
  assert.equal(refused.val[0], "unknown-desktop");
  assert.equal(policy.allocate(BOB, "0", CLIENT).tag, "refused");
});

test("calls before configure are mapper errors", () => {
  const policy = makePolicy(testHost());
  assert.throws(
    () => policy.domains(),
    (e) => e === "configure was not called",
  );
});
