import assert from "node:assert/strict";
import { test } from "node:test";

import { desktopId, desktopsOf, parseSettings } from "../lib/settings.js";
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
  assert.deepEqual([...settings.users.keys()], ["alice", "bob", "carol"]);
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
  assert.ok(settings.users.get("carol").disabled);
});

test("optional keys have defaults", () => {
  const settings = parseSettings(JSON.stringify({ users: [] }));
  assert.equal(settings.users.size, 0);
  assert.equal(settings.groups.size, 0);
  assert.deepEqual(settings.domains, []);
  assert.equal(settings.logonDomain, "");
});

test("errors name the key path", () => {
  assertRejects("{", "settings: not valid JSON (" + jsonError("{") + ")");
  assertRejects("[]", "settings: expected an object");
  assertRejects("{}", "users: missing (expected a list of users)");
  assertRejects(
    settingsWith((s) => ({ ...s, colour: "blue" })),
    "colour: unknown key (expected one of: users, groups, domains, logon_domain)",
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
    "users[0].shell: unknown key (expected one of: username, password_hash, groups, mfa, totp_secret, disabled)",
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
