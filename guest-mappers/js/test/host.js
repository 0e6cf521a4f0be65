// A host for tests: the services the broker offers, implemented with node:crypto, a Map for the
// store, a TOTP check that knows one good code, and a scripted power API.

import { createHash, pbkdf2Sync, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

/** The example settings, read from the file the README points operators at. */
export const EXAMPLE_SETTINGS = readFileSync(new URL("../example.settings.json", import.meta.url), "utf8");

/** alice's authenticator secret in the example settings. */
export const ALICE_SECRET = "JBSWY3DPEHPK3PXP";

/** The one code the test host's `verifyTotp` accepts for `ALICE_SECRET` (once). */
export const GOOD_CODE = "492039";

// The prefix of the test host's `hashPassword` results: not a format the real host knows, so a
// test cannot pass by accident with a real hash.
const TEST_HASH_PREFIX = "$test-sha256$";

/**
 * The interstate_love_song hash check the broker implements: PBKDF2-HMAC-SHA256, salt
 * `IGNORED`, 100000 iterations, lowercase hex. The test host's own `hashPassword` format is also
 * accepted; anything else is refused, as on the host.
 */
export function verifyTestPassword(password, hash) {
  if (hash.startsWith(TEST_HASH_PREFIX)) {
    const derived = createHash("sha256").update(password).digest();
    const stored = Buffer.from(hash.slice(TEST_HASH_PREFIX.length), "hex");
    return stored.length === derived.length && timingSafeEqual(derived, stored);
  }
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    return false;
  }
  const derived = pbkdf2Sync(password, "IGNORED", 100000, 32, "sha256");
  return timingSafeEqual(derived, Buffer.from(hash, "hex"));
}

/** The test host's `hashPassword`. */
export function hashTestPassword(password) {
  return TEST_HASH_PREFIX + createHash("sha256").update(password).digest("hex");
}

/**
 * A host which records every log line, keeps the store in `host.values` (key → bytes), and fails
 * every store call with `host.storeError` when it is set.
 */
export function testHost() {
  const host = {
    lines: [],
    values: new Map(),
    /** Every `set`: [key, value as text, ttlMs]. */
    writes: [],
    /** Set to a WIT `store.error` variant to make every store call throw it. */
    storeError: null,
    spentCodes: new Set(),
    totpCalls: [],
    /** The power API's answers by "METHOD path"; a function answer may throw. */
    routes: new Map(),
    requests: [],
    log(level, message) {
      host.lines.push(`${level} ${message}`);
    },
    verifyPassword: verifyTestPassword,
    hashPassword: hashTestPassword,
    verifyTotp(secret, code) {
      host.totpCalls.push([secret, code]);
      if (secret !== ALICE_SECRET || code !== GOOD_CODE) {
        return "rejected";
      }
      if (host.spentCodes.has(code)) {
        return "replayed";
      }
      host.spentCodes.add(code);
      return "accepted";
    },
    store: {
      get(key) {
        if (host.storeError !== null) {
          throw host.storeError;
        }
        return host.values.get(key) ?? null;
      },
      set(key, value, ttlMs) {
        if (host.storeError !== null) {
          throw host.storeError;
        }
        host.values.set(key, Uint8Array.from(value));
        host.writes.push([key, Buffer.from(value).toString("utf8"), ttlMs]);
      },
    },
    http(method, url) {
      host.requests.push(`${method} ${url}`);
      const answer = host.routes.get(`${method} ${url}`);
      if (answer === undefined) {
        return { status: 404, body: "" };
      }
      return typeof answer === "function" ? answer() : answer;
    },
  };
  return host;
}
