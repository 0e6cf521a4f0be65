// HMAC-SHA1 (from @noble/hashes), base32 and TOTP.
//
// QuickJS has no WebCrypto and no `node:crypto`, so the hash comes from @noble/hashes, a pure-JS,
// audited implementation that `build.sh` bundles into the component. SHA-1 is broken for
// collisions but HMAC-SHA1 is still sound as a PRF, and RFC 6238 and every authenticator app
// use it by default. Only the RFC 4226/6238 arithmetic and base32 are written here.

import { hmac } from "@noble/hashes/hmac.js";
import { sha1 } from "@noble/hashes/legacy.js";

/**
 * HMAC-SHA1 (RFC 2104).
 * @param {Uint8Array} key
 * @param {Uint8Array} message
 * @returns {Uint8Array} the 20-byte MAC
 */
export function hmacSha1(key, message) {
  return hmac(sha1, key, message);
}

const BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/**
 * Decodes RFC 4648 base32 as authenticator apps write it: case-insensitive, spaces and
 * trailing `=` ignored.
 * @param {string} text
 * @returns {Uint8Array | null} the bytes, or null when the text is not base32
 */
export function base32Decode(text) {
  const clean = text.replace(/[\s]/g, "").replace(/=+$/, "").toUpperCase();
  const out = [];
  let buffer = 0;
  let bits = 0;
  for (const ch of clean) {
    const value = BASE32_ALPHABET.indexOf(ch);
    if (value < 0) {
      return null;
    }
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((buffer >>> bits) & 0xff);
    }
  }
  return Uint8Array.from(out);
}

/**
 * HOTP (RFC 4226) with HMAC-SHA1.
 * @param {Uint8Array} key
 * @param {number} counter a non-negative integer below 2^53
 * @param {number} digits
 * @returns {string} the code, zero-padded to `digits`
 */
export function hotp(key, counter, digits = 6) {
  const message = new Uint8Array(8);
  const view = new DataView(message.buffer);
  view.setUint32(0, Math.floor(counter / 0x100000000));
  view.setUint32(4, counter >>> 0);
  const mac = hmacSha1(key, message);
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = new DataView(mac.buffer, mac.byteOffset, mac.byteLength).getUint32(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** The RFC 6238 time step, in seconds. */
export const TOTP_STEP_SECONDS = 30;

/**
 * TOTP (RFC 6238) with HMAC-SHA1 and a 30 s step.
 * @param {Uint8Array} key
 * @param {number} unixSeconds
 * @param {number} digits
 * @returns {string}
 */
export function totp(key, unixSeconds, digits = 6) {
  return hotp(key, Math.floor(unixSeconds / TOTP_STEP_SECONDS), digits);
}

/**
 * Checks a 6-digit code against the previous, current and next time step, to allow for
 * clock drift and for a code typed just as it rolled over.
 * @param {Uint8Array} key
 * @param {string} code what the user typed; spaces are ignored
 * @param {number} unixSeconds
 * @returns {boolean}
 */
export function verifyTotp(key, code, unixSeconds) {
  const typed = code.replace(/\s/g, "");
  if (!/^[0-9]{6}$/.test(typed)) {
    return false;
  }
  const step = Math.floor(unixSeconds / TOTP_STEP_SECONDS);
  let matched = false;
  // Every window is computed, so the time taken does not reveal which one matched.
  for (const candidate of [step - 1, step, step + 1]) {
    if (candidate >= 0 && constantTimeEqual(hotp(key, candidate), typed)) {
      matched = true;
    }
  }
  return matched;
}

function constantTimeEqual(a, b) {
  if (a.length !== b.length) {
    return false;
  }
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  }
  return diff === 0;
}
