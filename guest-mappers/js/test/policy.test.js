import assert from "node:assert/strict";
import { test } from "node:test";

import {
  CODE_BUTTONS,
  CODE_PROMPT,
  LAST_DESKTOP_TTL_MS,
  makePolicy,
  REPLAYED_CODE_TEXT,
  WRONG_CODE_TEXT,
} from "../lib/policy.js";
import { ALICE_SECRET, EXAMPLE_SETTINGS, GOOD_CODE, hashTestPassword, testHost, verifyTestPassword } from "./host.js";

const CLIENT = {
  address: "192.0.2.10",
  hostname: "zc-1",
  productName: "Teradici PCoIP Desktop Client",
  productVersion: "24.07.3",
  platform: "Linux",
  locale: "en_US",
  logId: "log-1",
};
const DISCLAIMER = "This workstation is for authorised studio work only. Sessions may be monitored.";
const POWER_API = "http://power.example.com:8080/v1";
const BOB = {
  username: "bob",
  domain: "EXAMPLE",
  attributes: [{ key: "groups", value: "artists,render" }],
};
const ALICE_ACCEPTED = {
  tag: "accepted",
  val: { username: "alice", domain: "EXAMPLE", attributes: [{ key: "groups", value: "artists" }] },
};
const UNAVAILABLE = { tag: "unavailable", val: "redis down" };
const DISCLAIMER_ACCEPTED = { tag: "disclaimer-accepted" };

/** The example settings changed by `patch` (which edits the parsed object in place). */
function settingsWith(patch) {
  const settings = JSON.parse(EXAMPLE_SETTINGS);
  patch(settings);
  return JSON.stringify(settings);
}

const withoutDisclaimer = (s) => {
  delete s.disclaimer;
};
const withPowerApi = (s) => {
  s.power_api = POWER_API;
};

function configured(settings = EXAMPLE_SETTINGS, host = testHost()) {
  const policy = makePolicy(host);
  policy.configure(settings);
  return { policy, host };
}

function login(username, password) {
  return { username, password, domain: "EXAMPLE", client: CLIENT };
}

function codeAnswer(code, buttonId = "ok") {
  return { tag: "dialog", val: { fields: code === null ? [] : [{ id: "code", value: code }], buttonId } };
}

function codeState(user, attempts) {
  return JSON.stringify({ user, stage: "code", attempts });
}

function change(username, oldPassword, newPassword) {
  return { username, domain: "EXAMPLE", oldPassword, newPassword, client: CLIENT };
}

/** Asserts that no log line holds any of `secrets`. */
function assertNotLogged(host, ...secrets) {
  for (const line of host.lines) {
    for (const secret of secrets) {
      assert.ok(!line.includes(secret), `${JSON.stringify(secret)} is logged: ${line}`);
    }
  }
}

test("configure reports settings errors as the err string", () => {
  const policy = makePolicy(testHost());
  assert.throws(
    () => policy.configure('{"users": 3}'),
    (e) => e === "users: expected a list of users",
  );
});

test("calls before configure are mapper errors", () => {
  const policy = makePolicy(testHost());
  assert.throws(
    () => policy.domains(),
    (e) => e === "configure was not called",
  );
});

test("domains come from the settings", () => {
  assert.deepEqual(configured().policy.domains(), ["EXAMPLE"]);
});

test("a right password shows the disclaimer first, and accepting it lets bob in", () => {
  const { policy, host } = configured();
  const outcome = policy.authenticate(login("bob", "bob-pw"));
  assert.equal(outcome.tag, "disclaimer");
  assert.equal(outcome.val.text, DISCLAIMER);
  assert.deepEqual(JSON.parse(outcome.val.state), { user: "bob", stage: "disclaimer" });
  assert.deepEqual(policy.continueAuthentication(outcome.val.state, DISCLAIMER_ACCEPTED, CLIENT), {
    tag: "accepted",
    val: BOB,
  });
  assert.deepEqual(host.lines, ['info user "bob": disclaimer', 'info user "bob": accepted']);
});

test("without a disclaimer bob is accepted at once with his groups as an attribute", () => {
  const { policy, host } = configured(settingsWith(withoutDisclaimer));
  assert.deepEqual(policy.authenticate(login("bob", "bob-pw")), { tag: "accepted", val: BOB });
  assert.deepEqual(host.lines, ['info user "bob": accepted']);
});

test("wrong passwords, unknown users, disabled users and users without desktops are rejected", () => {
  const host = testHost();
  let checks = 0;
  host.verifyPassword = (password, hash) => {
    checks += 1;
    return verifyTestPassword(password, hash);
  };
  const { policy } = configured(EXAMPLE_SETTINGS, host);
  const rejection = (u, p) => {
    const outcome = policy.authenticate(login(u, p));
    assert.equal(outcome.tag, "rejected");
    return outcome.val;
  };
  assert.deepEqual(rejection("bob", "alice-pw"), { kind: "bad-credentials", reason: "wrong password" });
  assert.deepEqual(rejection("mallory", "bob-pw"), { kind: "bad-credentials", reason: "unknown user" });
  assert.equal(checks, 2, "an unknown user still costs one host hash check");
  assert.equal(rejection("carol", "carol-typo").kind, "bad-credentials", "a wrong password hides that carol is disabled");
  assert.deepEqual(rejection("carol", "carol-pw"), { kind: "access-denied", reason: "account disabled" });
  assert.equal(rejection("dave", "dave-typo").kind, "bad-credentials", "a wrong password hides the expiry");
  assertNotLogged(host, "bob-pw", "alice-pw", "carol-pw", "carol-typo", "dave-typo");

  const { policy: bare } = configured(
    settingsWith((s) => {
      s.users[1].groups = [];
    }),
  );
  assert.deepEqual(bare.authenticate(login("bob", "bob-pw")), {
    tag: "rejected",
    val: { kind: "no-resources", reason: "no desktops in the user's groups" },
  });
});

test("an expired password is rejected until it is changed", () => {
  const { policy, host } = configured();
  assert.deepEqual(policy.authenticate(login("dave", "dave-pw")), {
    tag: "rejected",
    val: { kind: "expired-password", reason: "password expired" },
  });
  host.values.set("password-hash:dave", Buffer.from(hashTestPassword("dave-new-password")));
  assert.equal(policy.authenticate(login("dave", "dave-pw")).tag, "rejected");
  assert.equal(policy.authenticate(login("dave", "dave-pw")).val.kind, "bad-credentials");
  assert.equal(policy.authenticate(login("dave", "dave-new-password")).tag, "disclaimer");
});

test("a changed password in the store replaces the settings' hash", () => {
  const { policy, host } = configured(settingsWith(withoutDisclaimer));
  host.values.set("password-hash:bob", Buffer.from(hashTestPassword("bob-new-password")));
  assert.equal(policy.authenticate(login("bob", "bob-pw")).val.kind, "bad-credentials");
  assert.equal(policy.authenticate(login("bob", "bob-new-password")).tag, "accepted");
});

test("a store failure while reading the password hash is a mapper error, never the old password", () => {
  const { policy, host } = configured();
  host.storeError = UNAVAILABLE;
  assert.throws(
    () => policy.authenticate(login("bob", "bob-pw")),
    (e) => e === "store: unavailable: redis down",
  );
});

test("alice: disclaimer, then the code dialog, then in with the right code", () => {
  const { policy, host } = configured();
  const disclaimer = policy.authenticate(login("alice", "alice-pw"));
  assert.equal(disclaimer.tag, "disclaimer");
  const outcome = policy.continueAuthentication(disclaimer.val.state, DISCLAIMER_ACCEPTED, CLIENT);
  assert.equal(outcome.tag, "challenge");
  assert.equal(outcome.val.prompt, CODE_PROMPT);
  assert.equal(outcome.val.prompt, "Enter the 6-digit code from your authenticator app");
  assert.equal(outcome.val.errorText, "");
  assert.deepEqual(outcome.val.fields, [{ id: "code", label: "Code", kind: "secret" }]);
  assert.deepEqual(outcome.val.buttons, [
    { id: "ok", label: "Verify", isDefault: true },
    { id: "cancel", label: "Cancel", isDefault: false },
  ]);
  assert.deepEqual(JSON.parse(outcome.val.state), { user: "alice", stage: "code", attempts: 0 });

  const done = policy.continueAuthentication(outcome.val.state, codeAnswer(GOOD_CODE), CLIENT);
  assert.deepEqual(done, ALICE_ACCEPTED);
  assert.deepEqual(host.totpCalls, [[ALICE_SECRET, GOOD_CODE]], "the host checks the code");
  assertNotLogged(host, GOOD_CODE, "alice-pw");
  assert.deepEqual(host.lines, [
    'info user "alice": disclaimer',
    'info user "alice": challenge',
    'info user "alice": accepted',
  ]);
});

test("without a disclaimer alice goes straight to the code dialog", () => {
  const { policy } = configured(settingsWith(withoutDisclaimer));
  const outcome = policy.authenticate(login("alice", "alice-pw"));
  assert.equal(outcome.tag, "challenge");
  assert.deepEqual(outcome.val.buttons, CODE_BUTTONS);
  assert.deepEqual(JSON.parse(outcome.val.state), { user: "alice", stage: "code", attempts: 0 });
});

test("wrong and replayed codes show the dialog again, the third failure is refused", () => {
  const { policy, host } = configured();
  host.spentCodes.add(GOOD_CODE);
  let state = codeState("alice", 0);
  const retry = policy.continueAuthentication(state, codeAnswer("000000"), CLIENT);
  assert.equal(retry.tag, "challenge");
  assert.equal(retry.val.errorText, WRONG_CODE_TEXT);
  assert.equal(retry.val.errorText, "Wrong code, try again");
  assert.deepEqual(JSON.parse(retry.val.state), { user: "alice", stage: "code", attempts: 1 });
  state = retry.val.state;

  const replayed = policy.continueAuthentication(state, codeAnswer(GOOD_CODE), CLIENT);
  assert.equal(replayed.tag, "challenge");
  assert.equal(replayed.val.errorText, REPLAYED_CODE_TEXT);
  assert.equal(replayed.val.errorText, "That code was already used, wait for the next one");
  assert.deepEqual(replayed.val.buttons, CODE_BUTTONS);
  assert.deepEqual(JSON.parse(replayed.val.state), { user: "alice", stage: "code", attempts: 2 });

  const last = policy.continueAuthentication(replayed.val.state, codeAnswer("111111"), CLIENT);
  assert.deepEqual(last, { tag: "rejected", val: { kind: "bad-credentials", reason: "3 wrong codes" } });
  assertNotLogged(host, "000000", "111111", GOOD_CODE);
});

test("a code that was already used counts as a failure on the third attempt too", () => {
  const { policy, host } = configured();
  host.spentCodes.add(GOOD_CODE);
  assert.deepEqual(policy.continueAuthentication(codeState("alice", 2), codeAnswer(GOOD_CODE), CLIENT), {
    tag: "rejected",
    val: { kind: "bad-credentials", reason: "3 wrong codes" },
  });
});

test("a missing code answer counts as a wrong code", () => {
  const { policy, host } = configured();
  const outcome = policy.continueAuthentication(codeState("alice", 0), codeAnswer(null), CLIENT);
  assert.equal(outcome.tag, "challenge");
  assert.equal(outcome.val.errorText, WRONG_CODE_TEXT);
  assert.deepEqual(host.totpCalls, [[ALICE_SECRET, ""]]);
});

test("cancel on the code dialog is access-denied, and no code is checked", () => {
  const { policy, host } = configured();
  assert.deepEqual(policy.continueAuthentication(codeState("alice", 1), codeAnswer(GOOD_CODE, "cancel"), CLIENT), {
    tag: "rejected",
    val: { kind: "access-denied", reason: "code dialog cancelled" },
  });
  assert.deepEqual(host.totpCalls, []);
});

test("an answer that does not match the pending step is a mapper error", () => {
  const { policy } = configured();
  const mismatch = (e) => e === "step answer does not match the pending step";
  assert.throws(() => policy.continueAuthentication(codeState("alice", 0), DISCLAIMER_ACCEPTED, CLIENT), mismatch);
  const disclaimerState = JSON.stringify({ user: "alice", stage: "disclaimer" });
  assert.throws(() => policy.continueAuthentication(disclaimerState, codeAnswer(GOOD_CODE), CLIENT), mismatch);
});

test("a malformed state is a mapper error", () => {
  const { policy } = configured();
  for (const state of [
    "not json",
    "[]",
    '{"user":"alice"}',
    '{"user":"alice","stage":"code"}',
    '{"user":"alice","stage":"code","attempts":-1}',
    '{"user":"alice","stage":"password"}',
    '{"stage":"disclaimer"}',
  ]) {
    assert.throws(
      () => policy.continueAuthentication(state, codeAnswer(GOOD_CODE), CLIENT),
      (e) => typeof e === "string" && e.startsWith("step state is"),
      state,
    );
  }
});

test("a user disabled or without MFA since the password step is refused", () => {
  const { policy } = configured(
    settingsWith((s) => {
      s.users[0].disabled = true;
      s.users[1].mfa = false;
    }),
  );
  const denied = { tag: "rejected", val: { kind: "access-denied", reason: "user no longer allowed to log in" } };
  assert.deepEqual(policy.continueAuthentication(codeState("alice", 0), codeAnswer(GOOD_CODE), CLIENT), denied);
  assert.deepEqual(
    policy.continueAuthentication(JSON.stringify({ user: "alice", stage: "disclaimer" }), DISCLAIMER_ACCEPTED, CLIENT),
    denied,
  );
  assert.deepEqual(policy.continueAuthentication(codeState("bob", 0), codeAnswer(GOOD_CODE), CLIENT), denied);
  assert.deepEqual(policy.continueAuthentication(codeState("nobody", 0), codeAnswer(GOOD_CODE), CLIENT), denied);
});

test("desktops are the union of the user's groups with stable ids, and no operations without a power API", () => {
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

test("with a power API every desktop offers restart, power-down and power-up", () => {
  const { policy } = configured(settingsWith(withPowerApi));
  for (const desktop of policy.listDesktops(BOB, CLIENT)) {
    assert.deepEqual(desktop.operations, ["restart", "power-down", "power-up"]);
  }
});

test("the desktop launched last is listed first, the others keep their order", () => {
  const { policy, host } = configured(
    settingsWith((s) => {
      s.groups.render.push({ name: "Render Node 8", hostname: "render-8.example.com" });
    }),
  );
  const ids = () => policy.listDesktops(BOB, CLIENT).map((d) => d.id);
  assert.deepEqual(ids(), ["ws-art-1-example-com", "render-7-example-com", "render-8-example-com"]);
  host.values.set("last-desktop:bob", Buffer.from("render-8-example-com"));
  assert.deepEqual(ids(), ["render-8-example-com", "ws-art-1-example-com", "render-7-example-com"]);
  host.values.set("last-desktop:bob", Buffer.from("not-bobs"));
  assert.deepEqual(ids(), ["ws-art-1-example-com", "render-7-example-com", "render-8-example-com"]);
});

test("a store failure while reading the last desktop is logged and ignored", () => {
  const { policy, host } = configured();
  host.storeError = UNAVAILABLE;
  assert.deepEqual(
    policy.listDesktops(BOB, CLIENT).map((d) => d.id),
    ["ws-art-1-example-com", "render-7-example-com"],
  );
  assert.ok(host.lines.includes('warn user "bob": last desktop not read: unavailable: redis down'), host.lines.join("\n"));
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

test("allocate launches the user's desktop, remembers it for 30 days, and refuses others", () => {
  const { policy, host } = configured();
  assert.deepEqual(policy.allocate(BOB, "render-7-example-com", CLIENT), {
    tag: "launch",
    val: { hostname: "render-7.example.com", agentPort: 60443, username: null, domain: null },
  });
  assert.equal(LAST_DESKTOP_TTL_MS, 2_592_000_000);
  assert.deepEqual(host.writes, [["last-desktop:bob", "render-7-example-com", 2_592_000_000]]);
  assert.deepEqual(
    policy.listDesktops(BOB, CLIENT).map((d) => d.id),
    ["render-7-example-com", "ws-art-1-example-com"],
  );

  const alice = { username: "alice", domain: "EXAMPLE", attributes: [] };
  const refused = policy.allocate(alice, "render-7-example-com", CLIENT);
  assert.equal(refused.tag, "refused");
  assert.equal(refused.val[0], "unknown-desktop");
  assert.equal(policy.allocate(BOB, "0", CLIENT).tag, "refused");
  assert.equal(host.writes.length, 1, "a refusal remembers nothing");
});

test("a store failure while remembering the desktop is logged and the launch goes on", () => {
  const { policy, host } = configured();
  host.storeError = { tag: "full" };
  assert.equal(policy.allocate(BOB, "ws-art-1-example-com", CLIENT).tag, "launch");
  assert.ok(host.lines.includes('warn user "bob": last desktop not kept: full'), host.lines.join("\n"));
});

test("operate is unsupported without a power API", () => {
  const { policy, host } = configured();
  assert.deepEqual(policy.operate(BOB, "ws-art-1-example-com", "restart", CLIENT), { tag: "unsupported" });
  assert.deepEqual(host.requests, []);
});

test("operate refuses a desktop that is not the user's", () => {
  const { policy, host } = configured(settingsWith(withPowerApi));
  const alice = { username: "alice", domain: "EXAMPLE", attributes: [] };
  assert.deepEqual(policy.operate(alice, "render-7-example-com", "restart", CLIENT), {
    tag: "refused",
    val: "unknown desktop",
  });
  assert.deepEqual(policy.operate(BOB, "elsewhere", "power-up", CLIENT), { tag: "refused", val: "unknown desktop" });
  assert.deepEqual(host.requests, []);
});

test("restart and power-down are POSTs to the machine; a 2xx is done", () => {
  const { policy, host } = configured(settingsWith(withPowerApi));
  const machine = `${POWER_API}/machines/render-7.example.com`;
  host.routes.set(`POST ${machine}/restart`, { status: 202, body: "" });
  host.routes.set(`POST ${machine}/power-down`, { status: 200, body: "{}" });
  assert.deepEqual(policy.operate(BOB, "render-7-example-com", "restart", CLIENT), { tag: "done", val: "requested" });
  assert.deepEqual(policy.operate(BOB, "render-7-example-com", "power-down", CLIENT), {
    tag: "done",
    val: "requested",
  });
  assert.deepEqual(host.requests, [`POST ${machine}/restart`, `POST ${machine}/power-down`]);
});

test("power-up reads the machine's state first", () => {
  const { policy, host } = configured(settingsWith(withPowerApi));
  const machine = `${POWER_API}/machines/ws-art-1.example.com`;
  const powerUp = () => policy.operate(BOB, "ws-art-1-example-com", "power-up", CLIENT);
  const state = (s) => host.routes.set(`GET ${machine}`, { status: 200, body: JSON.stringify({ state: s }) });

  state("running");
  assert.deepEqual(powerUp(), { tag: "done", val: "running" });
  state("starting");
  assert.deepEqual(powerUp(), { tag: "try-again", val: "starting" });
  assert.deepEqual(host.requests, [`GET ${machine}`, `GET ${machine}`]);

  state("stopped");
  host.routes.set(`POST ${machine}/power-up`, { status: 204, body: "" });
  host.requests.length = 0;
  assert.deepEqual(powerUp(), { tag: "try-again", val: "powering on" });
  assert.deepEqual(host.requests, [`GET ${machine}`, `POST ${machine}/power-up`]);
});

test("every power API failure is refused with its detail, never an error", () => {
  const { policy, host } = configured(settingsWith(withPowerApi));
  const machine = `${POWER_API}/machines/ws-art-1.example.com`;
  const powerUp = () => policy.operate(BOB, "ws-art-1-example-com", "power-up", CLIENT);
  const refusedWith = (outcome, detail) => {
    assert.equal(outcome.tag, "refused");
    assert.ok(outcome.val.startsWith("power API: "), outcome.val);
    assert.ok(outcome.val.includes(detail), `${outcome.val} should mention ${detail}`);
  };

  refusedWith(policy.operate(BOB, "ws-art-1-example-com", "restart", CLIENT), "answered 404");
  host.routes.set(`GET ${machine}`, { status: 500, body: "oops" });
  refusedWith(powerUp(), `GET ${machine} answered 500`);
  host.routes.set(`GET ${machine}`, { status: 200, body: "<html>" });
  refusedWith(powerUp(), "not JSON");
  host.routes.set(`GET ${machine}`, { status: 200, body: '{"state": "exploded"}' });
  refusedWith(powerUp(), "expected");
  host.routes.set(`GET ${machine}`, { status: 200, body: "null" });
  refusedWith(powerUp(), "expected");
  host.routes.set(`GET ${machine}`, { status: 200, body: '{"state": "stopped"}' });
  host.routes.set(`POST ${machine}/power-up`, { status: 409, body: "" });
  refusedWith(powerUp(), `POST ${machine}/power-up answered 409`);
  host.routes.set(`GET ${machine}`, () => {
    throw { tag: "connection-refused" };
  });
  refusedWith(powerUp(), "connection-refused");
  host.routes.set(`GET ${machine}`, () => {
    throw new Error("HTTP request denied");
  });
  refusedWith(powerUp(), "HTTP request denied");
});

test("the machine's host name is percent-encoded in the path", () => {
  const { policy, host } = configured(
    settingsWith((s) => {
      s.power_api = "https://power.example.com";
      s.groups.render[0].hostname = "::ffff:10.0.0.7";
    }),
  );
  host.routes.set("POST https://power.example.com/machines/%3A%3Affff%3A10.0.0.7/restart", { status: 200, body: "" });
  assert.deepEqual(policy.operate(BOB, "--ffff-10-0-0-7", "restart", CLIENT), { tag: "done", val: "requested" });
});

test("change-password refuses an unknown user and a wrong old password", () => {
  const { policy, host } = configured();
  const wrong = (c) => {
    const outcome = policy.changePassword(c);
    assert.equal(outcome.tag, "rejected");
    assert.equal(outcome.val.kind, "wrong-password");
    return outcome.val.reason;
  };
  assert.equal(wrong(change("nobody", "dave-pw", "a-long-new-password")), "unknown user");
  assert.equal(wrong(change("dave", "not-daves", "a-long-new-password")), "wrong password");
  host.values.set("password-hash:bob", Buffer.from(hashTestPassword("bob-changed-once")));
  assert.equal(wrong(change("bob", "bob-pw", "a-long-new-password")), "wrong password", "the stored hash wins");
  assert.deepEqual(host.writes, []);
  assertNotLogged(host, "dave-pw", "not-daves", "a-long-new-password", "carol-pw", "bob-pw");
});

test("change-password refuses a short new password and the old one again", () => {
  const { policy, host } = configured();
  const weak = (newPassword) => {
    const outcome = policy.changePassword(change("dave", "dave-pw", newPassword));
    assert.equal(outcome.tag, "rejected");
    assert.equal(outcome.val.kind, "weak-password");
    return outcome.val.reason;
  };
  assert.equal(weak("elevenchars"), "the new password is shorter than 12 characters");
  assert.equal(weak("ééééééééééé"), "the new password is shorter than 12 characters", "characters, not bytes");
  assert.deepEqual(host.writes, []);

  const { policy: eight } = configured(
    settingsWith((s) => {
      s.min_password_length = 8;
      s.users[3].password_hash = s.users[1].password_hash;
    }),
  );
  assert.equal(eight.changePassword(change("dave", "bob-pw", "eightchr")).tag, "changed");
  assert.deepEqual(eight.changePassword(change("bob", "bob-pw", "bob-pw")), {
    tag: "rejected",
    val: { kind: "weak-password", reason: "the new password is shorter than 8 characters" },
  });
  const { policy: six } = configured(
    settingsWith((s) => {
      s.min_password_length = 8;
      s.users[1].password_hash = hashTestPassword("same-password");
    }),
  );
  assert.deepEqual(six.changePassword(change("bob", "same-password", "same-password")), {
    tag: "rejected",
    val: { kind: "weak-password", reason: "the new password is the old one" },
  });
});

test("a changed password is stored as the host's hash and the login goes on", () => {
  const { policy, host } = configured();
  const outcome = policy.changePassword(change("dave", "dave-pw", "dave-new-password"));
  assert.equal(outcome.tag, "changed");
  assert.equal(outcome.val.tag, "disclaimer", "step 5: the disclaimer comes next");
  assert.equal(outcome.val.val.text, DISCLAIMER);
  assert.deepEqual(JSON.parse(outcome.val.val.state), { user: "dave", stage: "disclaimer" });
  assert.deepEqual(host.writes, [["password-hash:dave", hashTestPassword("dave-new-password"), null]]);
  assertNotLogged(host, "dave-pw", "dave-new-password");

  assert.equal(policy.authenticate(login("dave", "dave-new-password")).tag, "disclaimer");
  assert.equal(policy.authenticate(login("dave", "dave-pw")).val.kind, "bad-credentials");
  // A second change checks the old password against the stored hash.
  assert.equal(policy.changePassword(change("dave", "dave-new-password", "dave-third-password")).tag, "changed");
});

test("the outcome after a change is what follows the password: the code, or in", () => {
  const { policy } = configured(settingsWith(withoutDisclaimer));
  const alice = policy.changePassword(change("alice", "alice-pw", "alice-new-password"));
  assert.equal(alice.tag, "changed");
  assert.equal(alice.val.tag, "challenge", "a password change never skips the second factor");
  assert.deepEqual(JSON.parse(alice.val.val.state), { user: "alice", stage: "code", attempts: 0 });
  assert.deepEqual(policy.changePassword(change("dave", "dave-pw", "dave-new-password")), {
    tag: "changed",
    val: {
      tag: "accepted",
      val: { username: "dave", domain: "EXAMPLE", attributes: [{ key: "groups", value: "artists" }] },
    },
  });
});

test("a disabled user may change the password, and is still refused as at login", () => {
  const { policy, host } = configured();
  assert.deepEqual(policy.changePassword(change("carol", "carol-pw", "carol-new-password")), {
    tag: "changed",
    val: { tag: "rejected", val: { kind: "access-denied", reason: "account disabled" } },
  });
  assert.equal(host.writes.length, 1);
  assert.deepEqual(host.lines, [
    'info user "carol": password changed, then rejected (access-denied: account disabled)',
  ]);
});

test("a store failure during a change is a directory-error", () => {
  const { policy, host } = configured();
  host.storeError = UNAVAILABLE;
  assert.deepEqual(policy.changePassword(change("dave", "dave-pw", "dave-new-password")), {
    tag: "rejected",
    val: { kind: "directory-error", reason: "store: unavailable: redis down" },
  });
  host.storeError = null;
  host.store.set = () => {
    throw { tag: "too-large", val: "value over 65536 bytes" };
  };
  assert.deepEqual(policy.changePassword(change("dave", "dave-pw", "dave-new-password")), {
    tag: "rejected",
    val: { kind: "directory-error", reason: "store: too-large: value over 65536 bytes" },
  });
});

test("every decision logs one info line without a password or a code", () => {
  const { policy, host } = configured(settingsWith(withPowerApi));
  policy.authenticate(login("bob", "bob-pw"));
  policy.continueAuthentication(codeState("alice", 0), codeAnswer(GOOD_CODE), CLIENT);
  policy.listDesktops(BOB, CLIENT);
  policy.allocate(BOB, "ws-art-1-example-com", CLIENT);
  policy.operate(BOB, "ws-art-1-example-com", "restart", CLIENT);
  policy.changePassword(change("dave", "dave-pw", "dave-new-password"));
  assert.deepEqual(host.lines, [
    'info user "bob": disclaimer',
    'info user "alice": accepted',
    'info user "bob": 2 desktop(s)',
    'info user "bob": launch on ws-art-1.example.com',
    `info user "bob": restart on ws-art-1.example.com: refused (power API: POST ${POWER_API}/machines/ws-art-1.example.com/restart answered 404)`,
    'info user "dave": password changed, then disclaimer',
  ]);
  assertNotLogged(host, "bob-pw", GOOD_CODE, "dave-pw", "dave-new-password");
});

test("store errors thrown as an Error with the variant as payload are described the same", () => {
  const { policy, host } = configured();
  host.storeError = Object.assign(new Error("[object Object] (see error.payload)"), { payload: UNAVAILABLE });
  assert.throws(
    () => policy.authenticate(login("bob", "bob-pw")),
    (e) => e === "store: unavailable: redis down",
  );
});
