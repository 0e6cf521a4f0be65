// The built component, end to end: build.sh, then every policy call through the canonical ABI,
// with the power API a real HTTP server on 127.0.0.1 reached over the component's wasi:http.
//
// Set MAPPER_WASM to run the same checks on another build of the example policy, such as
// `MAPPER_WASM=$PWD/../python/dist/mapper-py.wasm node --test test/component.test.js`.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { loadComponent } from "./component.js";
import { ALICE_SECRET, EXAMPLE_SETTINGS, GOOD_CODE, hashTestPassword, testHost } from "./host.js";
import { startPowerApi } from "./power-server.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const DISCLAIMER = "This workstation is for authorised studio work only. Sessions may be monitored.";
const CLIENT = {
  address: "192.0.2.10",
  hostname: "zc-1",
  productName: "",
  productVersion: "",
  platform: "",
  locale: "",
  logId: "",
};
const BOB = { username: "bob", domain: "EXAMPLE", attributes: [] };

let wasm;
let powerApi;

before(async () => {
  powerApi = await startPowerApi();
  if (process.env.MAPPER_WASM) {
    wasm = process.env.MAPPER_WASM;
    return;
  }
  wasm = join(mkdtempSync(join(tmpdir(), "mapper-js-")), "mapper-js.wasm");
  execFileSync(join(HERE, "..", "build.sh"), [wasm], { stdio: ["ignore", "ignore", "inherit"] });
});

after(() => powerApi.stop());

async function configured(settings = EXAMPLE_SETTINGS) {
  const host = testHost();
  const policy = await loadComponent(wasm, host);
  policy.configure(settings);
  return { policy, host };
}

function withPowerApi(base) {
  const settings = JSON.parse(EXAMPLE_SETTINGS);
  settings.power_api = base;
  return JSON.stringify(settings);
}

function login(username, password) {
  return { username, password, domain: "", client: CLIENT };
}

function codeAnswer(code, buttonId = "ok") {
  return { tag: "dialog", val: { fields: [{ id: "code", value: code }], buttonId } };
}

/** A loopback port nothing listens on. */
async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("configure errors come back as result errors naming the key", async () => {
  const policy = await loadComponent(wasm, testHost());
  assert.throws(
    () => policy.configure('{"users": [{"username": "x", "password_hash": "h", "groups": "a"}]}'),
    (e) => e.payload === "users[0].groups: expected a list of strings",
  );
  assert.throws(
    () => policy.configure('{"users": [], "power_api": "http://power.example.com/"}'),
    (e) => e.payload === "power_api: expected an http:// or https:// base URL without a trailing slash",
  );
});

test("bob accepts the disclaimer, lists two desktops, launches one, and finds it first next time", async () => {
  const { policy, host } = await configured();
  assert.deepEqual(policy.domains(), ["EXAMPLE"]);
  const disclaimer = policy.authenticate(login("bob", "bob-pw"));
  assert.equal(disclaimer.tag, "disclaimer");
  assert.equal(disclaimer.val.text, DISCLAIMER);
  assert.deepEqual(JSON.parse(disclaimer.val.state), { user: "bob", stage: "disclaimer" });
  const outcome = policy.continueAuthentication(disclaimer.val.state, { tag: "disclaimer-accepted" }, CLIENT);
  assert.deepEqual(outcome, {
    tag: "accepted",
    val: { username: "bob", domain: "EXAMPLE", attributes: [{ key: "groups", value: "artists,render" }] },
  });
  const desktops = policy.listDesktops(outcome.val, CLIENT);
  assert.deepEqual(
    desktops.map((d) => [d.id, d.agentPort, d.sessionKind, d.state, d.operations]),
    [
      ["ws-art-1-example-com", undefined, "vdi", "unknown", []],
      ["render-7-example-com", 60443, "vdi", "unknown", []],
    ],
  );
  assert.deepEqual(policy.allocate(outcome.val, "render-7-example-com", CLIENT), {
    tag: "launch",
    val: { hostname: "render-7.example.com", agentPort: 60443, username: undefined, domain: undefined },
  });
  assert.deepEqual(host.writes, [["last-desktop:bob", "render-7-example-com", 2_592_000_000]]);
  assert.deepEqual(
    policy.listDesktops(outcome.val, CLIENT).map((d) => d.id),
    ["render-7-example-com", "ws-art-1-example-com"],
  );
  assert.equal(policy.allocate(outcome.val, "elsewhere", CLIENT).val[0], "unknown-desktop");
  assert.ok(host.lines.every((l) => !l.includes("bob-pw")));
});

test("rejections go through the host's password check", async () => {
  const { policy } = await configured();
  assert.equal(policy.authenticate(login("bob", "nope")).val.kind, "bad-credentials");
  assert.equal(policy.authenticate(login("nobody", "bob-pw")).val.kind, "bad-credentials");
  assert.equal(policy.authenticate(login("carol", "carol-pw")).val.kind, "access-denied");
  assert.deepEqual(policy.authenticate(login("dave", "dave-pw")), {
    tag: "rejected",
    val: { kind: "expired-password", reason: "password expired" },
  });
});

test("alice's code is checked by the host's verify-totp, with the dialog's buttons", async () => {
  const { policy, host } = await configured();
  const disclaimer = policy.authenticate(login("alice", "alice-pw"));
  const challenge = policy.continueAuthentication(disclaimer.val.state, { tag: "disclaimer-accepted" }, CLIENT);
  assert.equal(challenge.tag, "challenge");
  assert.deepEqual(challenge.val.fields, [{ id: "code", label: "Code", kind: "secret" }]);
  assert.deepEqual(challenge.val.buttons, [
    { id: "ok", label: "Verify", isDefault: true },
    { id: "cancel", label: "Cancel", isDefault: false },
  ]);
  const retry = policy.continueAuthentication(challenge.val.state, codeAnswer("000000"), CLIENT);
  assert.equal(retry.tag, "challenge");
  assert.equal(retry.val.errorText, "Wrong code, try again");
  assert.deepEqual(JSON.parse(retry.val.state), { user: "alice", stage: "code", attempts: 1 });
  assert.equal(policy.continueAuthentication(retry.val.state, codeAnswer(GOOD_CODE), CLIENT).tag, "accepted");
  const replayed = policy.continueAuthentication(retry.val.state, codeAnswer(GOOD_CODE), CLIENT);
  assert.equal(replayed.val.errorText, "That code was already used, wait for the next one");
  assert.deepEqual(host.totpCalls, [
    [ALICE_SECRET, "000000"],
    [ALICE_SECRET, GOOD_CODE],
    [ALICE_SECRET, GOOD_CODE],
  ]);
  assert.deepEqual(policy.continueAuthentication(retry.val.state, codeAnswer(GOOD_CODE, "cancel"), CLIENT), {
    tag: "rejected",
    val: { kind: "access-denied", reason: "code dialog cancelled" },
  });
  assert.throws(
    () => policy.continueAuthentication(retry.val.state, { tag: "disclaimer-accepted" }, CLIENT),
    (e) => e.payload === "step answer does not match the pending step",
  );
});

test("three wrong codes are refused", async () => {
  const { policy } = await configured();
  let state = JSON.stringify({ user: "alice", stage: "code", attempts: 0 });
  let outcome;
  for (let i = 0; i < 3; i++) {
    outcome = policy.continueAuthentication(state, codeAnswer("000000"), CLIENT);
    state = outcome.tag === "challenge" ? outcome.val.state : state;
  }
  assert.deepEqual(outcome, { tag: "rejected", val: { kind: "bad-credentials", reason: "3 wrong codes" } });
});

test("dave changes his expired password: the host hashes it, the store keeps it", async () => {
  const { policy, host } = await configured();
  const change = (oldPassword, newPassword) =>
    policy.changePassword({ username: "dave", domain: "", oldPassword, newPassword, client: CLIENT });
  assert.deepEqual(change("dave-pw", "short"), {
    tag: "rejected",
    val: { kind: "weak-password", reason: "the new password is shorter than 12 characters" },
  });
  assert.equal(change("wrong", "dave-new-password").val.kind, "wrong-password");
  const changed = change("dave-pw", "dave-new-password");
  assert.equal(changed.tag, "changed");
  assert.equal(changed.val.tag, "disclaimer");
  assert.deepEqual(host.writes, [["password-hash:dave", hashTestPassword("dave-new-password"), null]]);
  assert.equal(policy.authenticate(login("dave", "dave-new-password")).tag, "disclaimer");
  assert.ok(host.lines.every((l) => !l.includes("dave-pw") && !l.includes("dave-new-password")));
});

test("store errors reach the policy as the WIT error variant", async () => {
  const { policy, host } = await configured();
  host.storeError = { tag: "unavailable", val: "redis down" };
  assert.throws(
    () => policy.authenticate(login("bob", "bob-pw")),
    (e) => e.payload === "store: unavailable: redis down",
  );
  assert.equal(policy.allocate(BOB, "ws-art-1-example-com", CLIENT).tag, "launch");
  assert.ok(host.lines.includes('warn user "bob": last desktop not kept: unavailable: redis down'));
});

test("operate is unsupported without a power API", async () => {
  const { policy } = await configured();
  assert.deepEqual(policy.operate(BOB, "ws-art-1-example-com", "restart", CLIENT), { tag: "unsupported" });
});

test("operate calls the power API over wasi:http", async () => {
  const { policy } = await configured(withPowerApi(powerApi.base));
  const machine = "/api/machines/ws-art-1.example.com";
  await powerApi.script({
    [`GET ${machine}`]: { status: 200, body: '{"state": "stopped"}' },
    [`POST ${machine}/power-up`]: { status: 202, body: "" },
    [`POST ${machine}/restart`]: { status: 200, body: "" },
    [`POST ${machine}/power-down`]: { status: 503, body: "busy" },
  });
  const listed = policy.listDesktops(BOB, CLIENT);
  assert.deepEqual(listed[0].operations, ["restart", "power-down", "power-up"]);
  assert.deepEqual(policy.operate(BOB, "ws-art-1-example-com", "power-up", CLIENT), {
    tag: "try-again",
    val: "powering on",
  });
  assert.deepEqual(policy.operate(BOB, "ws-art-1-example-com", "restart", CLIENT), {
    tag: "done",
    val: "requested",
  });
  const refused = policy.operate(BOB, "ws-art-1-example-com", "power-down", CLIENT);
  assert.equal(refused.tag, "refused");
  assert.match(refused.val, /^power API: .*answered 503/);
  assert.deepEqual(await powerApi.log(), [
    `GET ${machine}`,
    `POST ${machine}/power-up`,
    `POST ${machine}/restart`,
    `POST ${machine}/power-down`,
  ]);

  await powerApi.script({ [`GET ${machine}`]: { status: 200, body: '{"state": "running"}' } });
  assert.deepEqual(policy.operate(BOB, "ws-art-1-example-com", "power-up", CLIENT), { tag: "done", val: "running" });
  await powerApi.script({ [`GET ${machine}`]: { status: 200, body: "not json" } });
  assert.equal(policy.operate(BOB, "ws-art-1-example-com", "power-up", CLIENT).tag, "refused");
  assert.deepEqual(policy.operate(BOB, "nope", "power-up", CLIENT), { tag: "refused", val: "unknown desktop" });
});

test("an unreachable power API is refused, not an error", async () => {
  const { policy } = await configured(withPowerApi(`http://127.0.0.1:${await closedPort()}`));
  const outcome = policy.operate(BOB, "ws-art-1-example-com", "restart", CLIENT);
  assert.equal(outcome.tag, "refused");
  assert.match(outcome.val, /^power API: POST http:\/\/127\.0\.0\.1:\d+\/machines\/ws-art-1\.example\.com\/restart: /);
});
