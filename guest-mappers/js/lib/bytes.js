// UTF-8 for the store's byte values. QuickJS has no TextEncoder, so the component and the tests
// share this small codec.

/**
 * Encodes `text` as UTF-8.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8Encode(text) {
  const bytes = [];
  for (const char of text) {
    const code = char.codePointAt(0);
    if (code < 0x80) {
      bytes.push(code);
    } else if (code < 0x800) {
      bytes.push(0xc0 | (code >> 6), 0x80 | (code & 0x3f));
    } else if (code < 0x10000) {
      bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f));
    } else {
      bytes.push(
        0xf0 | (code >> 18),
        0x80 | ((code >> 12) & 0x3f),
        0x80 | ((code >> 6) & 0x3f),
        0x80 | (code & 0x3f),
      );
    }
  }
  return Uint8Array.from(bytes);
}

/**
 * Decodes UTF-8 bytes, or returns null when they are not valid UTF-8 (a value this mapper did
 * not write).
 * @param {Uint8Array | number[]} bytes
 * @returns {string | null}
 */
export function utf8Decode(bytes) {
  let text = "";
  let i = 0;
  while (i < bytes.length) {
    const first = bytes[i];
    const extra = leadExtra(first);
    if (extra < 0) {
      return null;
    }
    let code = extra === 0 ? first : first & (0x3f >> extra);
    for (let k = 1; k <= extra; k++) {
      const next = bytes[i + k];
      if (next === undefined || (next & 0xc0) !== 0x80) {
        return null;
      }
      code = (code << 6) | (next & 0x3f);
    }
    const minimum = [0, 0x80, 0x800, 0x10000][extra];
    if (code < minimum || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return null;
    }
    text += String.fromCodePoint(code);
    i += extra + 1;
  }
  return text;
}

// The number of continuation bytes a lead byte announces, or -1 for a byte that cannot lead.
function leadExtra(byte) {
  if (byte < 0x80) {
    return 0;
  }
  if (byte >= 0xc2 && byte < 0xe0) {
    return 1;
  }
  if (byte >= 0xe0 && byte < 0xf0) {
    return 2;
  }
  if (byte >= 0xf0 && byte < 0xf5) {
    return 3;
  }
  return -1;
}
