// SHA-1, HMAC-SHA1, base32 and TOTP in plain JavaScript.
//
// QuickJS has no WebCrypto and no `node:crypto`, so the TOTP check needs its own primitives.
// SHA-1 is broken for collisions but HMAC-SHA1 is still sound as a PRF, and RFC 6238 and
// every authenticator app use it by default. Everything works on Uint8Array and 32-bit
// integer arithmetic so that QuickJS and Node give the same results.

/** SHA-1 digest size in bytes. */
const SHA1_BYTES = 20;
/** SHA-1 block size in bytes, which HMAC pads its key to. */
const SHA1_BLOCK = 64;

/**
 * Encodes a string as UTF-8. TextEncoder is not guaranteed in every QuickJS build, so this
 * avoids it.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8(text) {
  const out = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0);
    if (cp < 0x80) {
      out.push(cp);
    } else if (cp < 0x800) {
      out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    } else {
      out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    }
  }
  return Uint8Array.from(out);
}

/**
 * SHA-1 (FIPS 180-4) of a byte array.
 * @param {Uint8Array} message
 * @returns {Uint8Array} the 20-byte digest
 */
export function sha1(message) {
  const bitLength = message.length * 8;
  // Message, the 0x80 marker, zero padding, then the 64-bit big-endian bit length.
  const paddedLength = Math.ceil((message.length + 9) / SHA1_BLOCK) * SHA1_BLOCK;
  const padded = new Uint8Array(paddedLength);
  padded.set(message);
  padded[message.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(paddedLength - 8, Math.floor(bitLength / 0x100000000));
  view.setUint32(paddedLength - 4, bitLength >>> 0);

  let h0 = 0x67452301;
  let h1 = 0xefcdab89;
  let h2 = 0x98badcfe;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0;
  const w = new Uint32Array(80);
  for (let block = 0; block < paddedLength; block += SHA1_BLOCK) {
    for (let t = 0; t < 16; t++) {
      w[t] = view.getUint32(block + t * 4);
    }
    for (let t = 16; t < 80; t++) {
      w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    for (let t = 0; t < 80; t++) {
      let f;
      let k;
      if (t < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (t < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (t < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const temp = (rotl(a, 5) + f + e + k + w[t]) >>> 0;
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = temp;
    }
    h0 = (h0 + a) >>> 0;
    h1 = (h1 + b) >>> 0;
    h2 = (h2 + c) >>> 0;
    h3 = (h3 + d) >>> 0;
    h4 = (h4 + e) >>> 0;
  }

  const digest = new Uint8Array(SHA1_BYTES);
  const out = new DataView(digest.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => out.setUint32(i * 4, h));
  return digest;
}

/**
 * HMAC-SHA1 (RFC 2104).
 * @param {Uint8Array} key
 * @param {Uint8Array} message
 * @returns {Uint8Array} the 20-byte MAC
 */
export function hmacSha1(key, message) {
  const block = new Uint8Array(SHA1_BLOCK);
  block.set(key.length > SHA1_BLOCK ? sha1(key) : key);
  const inner = new Uint8Array(SHA1_BLOCK + message.length);
  const outer = new Uint8Array(SHA1_BLOCK + SHA1_BYTES);
  for (let i = 0; i < SHA1_BLOCK; i++) {
    inner[i] = block[i] ^ 0x36;
    outer[i] = block[i] ^ 0x5c;
  }
  inner.set(message, SHA1_BLOCK);
  outer.set(sha1(inner), SHA1_BLOCK);
  return sha1(outer);
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
  const binary = new DataView(mac.buffer).getUint32(offset) & 0x7fffffff;
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

function rotl(x, n) {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}
