import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";

import { base32Decode, hmacSha1, hotp, totp, verifyTotp } from "../lib/totp.js";

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const bytes = (h) => Uint8Array.from(Buffer.from(h, "hex"));
const utf8 = (text) => new TextEncoder().encode(text);

test("HMAC-SHA1 matches the RFC 2202 test cases", () => {
  const cases = [
    [bytes("0b".repeat(20)), utf8("Hi There"), "b617318655057264e28bc0b6fb378c8ef146be00"],
    [utf8("Jefe"), utf8("what do ya want for nothing?"), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"],
    [bytes("aa".repeat(20)), bytes("dd".repeat(50)), "125d7342b9ac11cd91a39af48aa17b4f63f175d3"],
    [
      bytes("0102030405060708090a0b0c0d0e0f10111213141516171819"),
      bytes("cd".repeat(50)),
      "4c9007f4026250c6bc8414f9bf50c86c2d7235da",
    ],
    [bytes("0c".repeat(20)), utf8("Test With Truncation"), "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"],
    [
      bytes("aa".repeat(80)),
      utf8("Test Using Larger Than Block-Size Key - Hash Key First"),
      "aa4ae5e15272d00e95705637ce8a3b55ed402112",
    ],
    [
      bytes("aa".repeat(80)),
      utf8("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"),
      "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
    ],
  ];
  for (const [key, message, expected] of cases) {
    assert.equal(hex(hmacSha1(key, message)), expected);
  }
});

test("HMAC-SHA1 agrees with node:crypto for keys of every length up to two blocks", () => {
  const message = utf8("interstate");
  for (let length = 0; length <= 130; length++) {
    const key = Uint8Array.from({ length }, (_, i) => (i * 31 + 5) & 0xff);
    assert.equal(hex(hmacSha1(key, message)), createHmac("sha1", key).update(message).digest("hex"));
  }
});

test("base32 decodes RFC 4648 vectors, lower case and spaces", () => {
  const vectors = [
    ["", ""],
    ["MY======", "f"],
    ["MZXQ====", "fo"],
    ["MZXW6===", "foo"],
    ["MZXW6YQ=", "foob"],
    ["MZXW6YTB", "fooba"],
    ["MZXW6YTBOI======", "foobar"],
    ["mzxw 6ytb oi", "foobar"],
  ];
  for (const [encoded, decoded] of vectors) {
    assert.equal(Buffer.from(base32Decode(encoded)).toString(), decoded, encoded);
  }
  assert.equal(hex(base32Decode("JBSWY3DPEHPK3PXP")), "48656c6c6f21deadbeef");
  assert.equal(base32Decode("JBSWY3DP1"), null);
  assert.equal(base32Decode("JBSW-Y3DP"), null);
});

test("HOTP matches the RFC 4226 appendix D values", () => {
  const key = utf8("12345678901234567890");
  const expected = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
  ];
  expected.forEach((code, counter) => assert.equal(hotp(key, counter), code));
});

test("TOTP matches the RFC 6238 appendix B SHA-1 values", () => {
  const key = utf8("12345678901234567890");
  const vectors = [
    [59, "94287082"],
    [1111111109, "07081804"],
    [1111111111, "14050471"],
    [1234567890, "89005924"],
    [2000000000, "69279037"],
    [20000000000, "65353130"],
  ];
  for (const [time, code] of vectors) {
    assert.equal(totp(key, time, 8), code, `T=${time}`);
  }
});

test("verifyTotp accepts the previous, current and next step only", () => {
  const key = base32Decode("JBSWY3DPEHPK3PXP");
  const now = 1_700_000_015;
  const at = (offset) => totp(key, now + offset);
  assert.ok(verifyTotp(key, at(0), now));
  assert.ok(verifyTotp(key, at(-30), now));
  assert.ok(verifyTotp(key, at(30), now));
  assert.ok(!verifyTotp(key, at(-60), now));
  assert.ok(!verifyTotp(key, at(60), now));
  assert.ok(verifyTotp(key, ` ${at(0).slice(0, 3)} ${at(0).slice(3)} `, now), "spaces are ignored");
});

test("verifyTotp refuses malformed codes", () => {
  const key = base32Decode("JBSWY3DPEHPK3PXP");
  const now = 1_700_000_015;
  const good = totp(key, now);
  for (const code of ["", "12345", "1234567", "abcdef", `${good}0`, `+${good.slice(1)}`]) {
    assert.ok(!verifyTotp(key, code, now), code);
  }
});
