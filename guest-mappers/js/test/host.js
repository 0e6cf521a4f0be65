// A host for tests: the same services the broker offers, implemented with node:crypto.

import { pbkdf2Sync, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

/** The example settings, read from the file the README points operators at. */
export const EXAMPLE_SETTINGS = readFileSync(new URL("../example.settings.json", import.meta.url), "utf8");

/**
 * The interstate_love_song hash check the broker implements: PBKDF2-HMAC-SHA256, salt
 * `IGNORED`, 100000 iterations, lowercase hex. Any other format is refused, as on the host.
 */
export function verifyIlsPassword(password, hash) {
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    return false;
  }
  const derived = pbkdf2Sync(password, "IGNORED", 100000, 32, "sha256");
  return timingSafeEqual(derived, Buffer.from(hash, "hex"));
}

/** A host whose clock is `now` seconds and which records every log line. */
export function testHost(now = 1_700_000_000) {
  const host = {
    lines: [],
    now,
    log(level, message) {
      host.lines.push(`${level} ${message}`);
    },
    verifyPassword: verifyIlsPassword,
    nowSeconds: () => host.now,
  };
  return host;
}
