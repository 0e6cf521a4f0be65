// The built component, end to end: build.sh, then every policy call through the canonical ABI.
//
// Set MAPPER_WASM to run the same checks on another build of the example policy, such as
// `MAPPER_WASM=$PWD/../python/dist/mapper-py.wasm node --test test/component.test.js`.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { base32Decode, totp } from "../lib/totp.js";
import { loadComponent } from "./component.js";
import { EXAMPLE_SETTINGS, testHost } from "./host.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ALICE_KEY = base32Decode("JBSWY3DPEHPK3PXP");
const CLIENT = {
  address: "192.0.2.10",
  hostname: "zc-1",
  productName: "",
  productVersion: "",
  platform: "",
  locale: "",
  logId: "",
};

let wasm;

before(() => {
  if (process.env.MAPPER_WASM) {
    wasm = process.env.MAPPER_WASM;
    return;
  }
  wasm = join(mkdtempSync(join(tmpdir(), "mapper-js-")), "mapper-js.wasm");
  execFileSync(join(HERE, "..", "build.sh"), [wasm], { stdio: ["ignore", "ignore", "inherit"] });
});

async function configured(now = 1_800_000_000) {
  const host = testHost(now);
  const policy = await loadComponent(wasm, host);
  policy.configure(EXAMPLE_SETTINGS);
  return { policy, host };
}

function login(username, password) {
  return { username, password, domain: "", client: CLIENT };
}

test("configure errors come back as result errors naming the key", async () => {
  const policy = await loadComponent(wasm, testHost());
  assert.throws(
    () => policy.configure('{"users": [{"username": "x", "password_hash": "h", "groups": "a"}]}'),
    (e) => e.payload === "users[0].groups: expected a list of strings",
  );
});

test("bob logs in, lists two desktops and launches one", async () => {
  const { policy, host } = await configured();
  assert.deepEqual(policy.domains(), ["EXAMPLE"]);
  const outcome = policy.authenticate(login("bob", "bob-pw"));
  assert.equal(outcome.tag, "accepted");
  assert.deepEqual(outcome.val, {
    username: "bob",
    domain: "EXAMPLE",
    attributes: [{ key: "groups", value: "artists,render" }],
  });
  const desktops = policy.listDesktops(outcome.val, CLIENT);
  assert.deepEqual(
    desktops.map((d) => [d.id, d.agentPort, d.sessionKind, d.state]),
    [
      ["ws-art-1-example-com", undefined, "vdi", "unknown"],
      ["render-7-example-com", 60443, "vdi", "unknown"],
    ],
  );
  const allocation = policy.allocate(outcome.val, "render-7-example-com", CLIENT);
  assert.deepEqual(allocation, {
    tag: "launch",
    val: { hostname: "render-7.example.com", agentPort: 60443, username: undefined, domain: undefined },
  });
  assert.equal(policy.allocate(outcome.val, "elsewhere", CLIENT).val[0], "unknown-desktop");
  assert.ok(
    host.lines.length >= 3 && host.lines.every((l) => l.startsWith("info ") && !l.includes("bob-pw")),
  );
});

test("rejections go through the host's password check", async () => {
  const { policy } = await configured();
  assert.equal(policy.authenticate(login("bob", "nope")).val.kind, "bad-credentials");
  assert.equal(policy.authenticate(login("nobody", "bob-pw")).val.kind, "bad-credentials");
  assert.equal(policy.authenticate(login("carol", "carol-pw")).val.kind, "access-denied");
});

test("alice's TOTP is checked against the WASI wall clock", async () => {
  const now = 1_800_000_000;
  const { policy } = await configured(now);
  const challenge = policy.authenticate(login("alice", "alice-pw"));
  assert.equal(challenge.tag, "challenge");
  assert.equal(challenge.val.fields[0].kind, "secret");
  const answer = (state, t) =>
    policy.continueAuthentication(state, [{ id: "code", value: totp(ALICE_KEY, t) }], CLIENT);

  // A code for a time far from the component's clock fails; one for its clock passes.
  const retry = answer(challenge.val.state, now - 3600);
  assert.equal(retry.tag, "challenge");
  assert.equal(retry.val.errorText, "Wrong code, try again");
  assert.equal(JSON.parse(retry.val.state).attempts, 1);
  assert.equal(answer(retry.val.state, now).tag, "accepted");
});

test("three wrong codes are refused", async () => {
  const { policy } = await configured();
  let outcome = policy.authenticate(login("alice", "alice-pw"));
  for (let i = 0; i < 3; i++) {
    outcome = policy.continueAuthentication(outcome.val.state, [{ id: "code", value: "000000" }], CLIENT);
  }
  assert.equal(outcome.tag, "rejected");
  assert.equal(outcome.val.kind, "bad-credentials");
});
