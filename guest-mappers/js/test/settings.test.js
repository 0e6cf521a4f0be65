import assert from "node:assert/strict";
import { test } from "node:test";

import { desktopId, desktopsOf, isBase32, parseSettings } from "../lib/settings.js";
import { EXAMPLE_SETTINGS } from "./host.js";

const HASH = "8ff41da5ef01bf7ddb6aef29749422ebad97fb879df33126aed850aeb22325e8";

function settingsWith(patch) {
  const base = {
    users: [{ username: "bob", password_hash: HASH, groups: ["artists"] }],
    groups: { artists: [{ name: "Artist Workstation 1", hostname: "ws-art-1.example.com" }] },
  };
  return JSON.stringify(patch(base) ?? base);
}

function assertRejects(json, message) {
  assert.throws(
    () => parseSettings(json),
    (error) => {
      assert.equal(error.message, message);
      return true;
    },
  );
}

test("the example settings parse", () => {
  const settings = parseSettings(EXAMPLE_SETTINGS);
  assert.deepEqual([...settings.users.keys()], ["alice", "bob", "carol", "dave"]);
  assert.deepEqual(settings.domains, ["EXAMPLE"]);
  assert.equal(settings.logonDomain, "EXAMPLE");
  const bob = settings.users.get("bob");
  assert.deepEqual(
    desktopsOf(settings, bob).map((d) => [d.id, d.name, d.hostname, d.agentPort]),
    [
      ["ws-art-1-example-com", "Artist Workstation 1", "ws-art-1.example.com", null],
      ["render-7-example-com", "Render Node 7", "render-7.example.com", 60443],
    ],
  );
  assert.ok(settings.users.get("alice").mfa);
  assert.equal(settings.users.get("alice").totpSecret, "JBSWY3DPEHPK3PXP");
  assert.ok(settings.users.get("carol").disabled);
  assert.ok(settings.users.get("dave").passwordExpired);
  assert.ok(!settings.users.get("bob").passwordExpired);
  assert.equal(
    settings.disclaimer,
    "This workstation is for authorised studio work only. Sessions may be monitored.",
  );
  assert.equal(settings.powerApi, null, "the example has no power API (tests add it)");
  assert.equal(settings.minPasswordLength, 12);
});

test("the new 0.2 keys parse", () => {
  const settings = parseSettings(
    settingsWith((s) => ({
      ...s,
      disclaimer: "é".repeat(2048),
      power_api: "https://power.example.com:8443/api/v1",
      min_password_length: 128,
    })),
  );
  assert.equal(settings.disclaimer.length, 2048);
  assert.equal(settings.powerApi, "https://power.example.com:8443/api/v1");
  assert.equal(settings.minPasswordLength, 128);
  for (const url of ["http://10.0.0.1", "http://power:8080", "https://[fd00::1]:8443/p"]) {
    assert.equal(parseSettings(settingsWith((s) => ({ ...s, power_api: url }))).powerApi, url);
  }
  assert.equal(parseSettings(settingsWith((s) => ({ ...s, min_password_length: 8 }))).minPasswordLength, 8);
});

test("the new 0.2 keys are validated with their key path", () => {
  assertRejects(settingsWith((s) => ({ ...s, disclaimer: 7 })), "disclaimer: expected a non-empty string");
  assertRejects(
    settingsWith((s) => ({ ...s, disclaimer: "é".repeat(2049) })),
    "disclaimer: longer than 4096 bytes",
  );
  const badUrl = "power_api: expected an http:// or https:// base URL without a trailing slash";
  for (const url of [
    "ftp://power.example.com",
    "power.example.com",
    "http://power.example.com/",
    "https://",
    "http://power.example.com/api?x=1",
    "http://power example.com",
  ]) {
    assertRejects(settingsWith((s) => ({ ...s, power_api: url })), badUrl);
  }
  assertRejects(settingsWith((s) => ({ ...s, power_api: true })), "power_api: expected a string");
  for (const length of [7, 129, 12.5, "12", null]) {
    assertRejects(
      settingsWith((s) => ({ ...s, min_password_length: length })),
      "min_password_length: expected an integer between 8 and 128",
    );
  }
  assertRejects(
    settingsWith((s) => {
      s.users[0].password_expired = "yes";
    }),
    "users[0].password_expired: expected true or false",
  );
});

test("base32 secrets are checked as the host's verify-totp reads them", () => {
  for (const secret of ["JBSWY3DPEHPK3PXP", "jbsw y3dp ehpk 3pxp", "MFRGG===", "MFRGGZA="]) {
    assert.ok(isBase32(secret), secret);
  }
  for (const secret of ["", "A", "ABC", "ABCDEF", "JBSWY3DPEHPK3PX1", "not base32!"]) {
    assert.ok(!isBase32(secret), secret);
  }
});

test("optional keys have defaults", () => {
  const settings = parseSettings(JSON.stringify({ users: [] }));
  assert.equal(settings.users.size, 0);
  assert.equal(settings.groups.size, 0);
  assert.deepEqual(settings.domains, []);
  assert.equal(settings.logonDomain, "");
  assert.equal(settings.disclaimer, null);
  assert.equal(settings.powerApi, null);
  assert.equal(settings.minPasswordLength, 12);
});

test("errors name the key path", () => {
  assertRejects("{", "settings: not valid JSON (" + jsonError("{") + ")");
  assertRejects("[]", "settings: expected an object");
  assertRejects("{}", "users: missing (expected a list of users)");
  assertRejects(
    settingsWith((s) => ({ ...s, colour: "blue" })),
    "colour: unknown key (expected one of: users, groups, domains, logon_domain, disclaimer, power_api, min_password_length)",
  );
  assertRejects(
    settingsWith((s) => {
      s.users[0].groups = "artists";
    }),
    "users[0].groups: expected a list of strings",
  );
  assertRejects(
    settingsWith((s) => {
      s.users.push({ username: "eve", password_hash: HASH, groups: [1] });
    }),
    "users[1].groups: expected a list of strings",
  );
  assertRejects(
    settingsWith((s) => {
      s.users[0].groups = ["artists", "nobody"];
    }),
    'users[0].groups[1]: unknown group "nobody"',
  );
  assertRejects(
    settingsWith((s) => {
      s.users[0].shell = "/bin/sh";
    }),
    "users[0].shell: unknown key (expected one of: username, password_hash, groups, mfa, totp_secret, disabled, password_expired)",
  );
  assertRejects(
    settingsWith((s) => {
      delete s.users[0].password_hash;
    }),
    "users[0].password_hash: missing (expected a non-empty string)",
  );
  assertRejects(
    settingsWith((s) => {
      s.users[0].mfa = "yes";
    }),
    "users[0].mfa: expected true or false",
  );
  assertRejects(
    settingsWith((s) => {
      s.users[0].mfa = true;
    }),
    "users[0].totp_secret: missing (required when mfa is true)",
  );
  assertRejects(
    settingsWith((s) => {
      s.users[0].totp_secret = "not base32!";
    }),
    "users[0].totp_secret: expected a base32 secret",
  );
  assertRejects(
    settingsWith((s) => {
      s.users.push({ ...s.users[0] });
    }),
    'users[1].username: duplicate user "bob"',
  );
  assertRejects(
    settingsWith((s) => {
      s.groups.artists = {};
    }),
    "groups.artists: expected a list of desktops",
  );
  assertRejects(
    settingsWith((s) => {
      s.groups.artists[0].agent_port = 70000;
    }),
    "groups.artists[0].agent_port: expected a port number between 1 and 65535",
  );
  assertRejects(
    settingsWith((s) => {
      s.groups.artists[0].agent_port = "60443";
    }),
    "groups.artists[0].agent_port: expected a port number between 1 and 65535",
  );
  assertRejects(
    settingsWith((s) => {
      s.groups.artists[0].hostname = "two words";
    }),
    "groups.artists[0].hostname: expected a host name or an IP address",
  );
  assertRejects(
    settingsWith((s) => {
      s.groups.artists[0].os = "linux";
    }),
    "groups.artists[0].os: unknown key (expected one of: name, hostname, agent_port)",
  );
  assertRejects(
    settingsWith((s) => {
      s.domains = "EXAMPLE";
    }),
    "domains: expected a list of strings",
  );
  assertRejects(
    settingsWith((s) => {
      s.logon_domain = 7;
    }),
    "logon_domain: expected a string",
  );
});

test("two different desktops cannot share an id", () => {
  assertRejects(
    settingsWith((s) => {
      s.groups.render = [{ name: "Other", hostname: "WS-ART-1.example.com" }];
    }),
    'groups.render[0].hostname: desktop id "ws-art-1-example-com" is already used by groups.artists[0] with a different name or agent_port',
  );
  // The same desktop in two groups is fine and listed once.
  const settings = parseSettings(
    settingsWith((s) => {
      s.groups.render = [{ name: "Artist Workstation 1", hostname: "ws-art-1.example.com" }];
      s.users[0].groups = ["artists", "render"];
    }),
  );
  assert.equal(desktopsOf(settings, settings.users.get("bob")).length, 1);
});

test("desktop ids are slugs of the host name", () => {
  assert.equal(desktopId("ws-art-1.example.com"), "ws-art-1-example-com");
  assert.equal(desktopId("Render-7.Example.COM"), "render-7-example-com");
  assert.equal(desktopId("fd00::17"), "fd00--17");
});

function jsonError(text) {
  try {
    JSON.parse(text);
  } catch (error) {
    return error.message;
  }
  return "";
}
