// @ts-check
// TOTP (RFC 6238 over RFC 4226's HOTP) and base32 (RFC 4648), written here from the RFCs so
// that the browser tests do not share a bug with the service's own Rust implementation.
"use strict";

const crypto = require("node:crypto");

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Base32 without padding, as integrators send secrets. */
function base32Encode(bytes) {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** Base32 in any case, padding optional; throws on a character outside the alphabet. */
function base32Decode(text) {
  const clean = text.toUpperCase().replace(/=+$/, "");
  let bits = 0;
  let value = 0;
  const out = [];
  for (const char of clean) {
    const index = ALPHABET.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${JSON.stringify(char)}`);
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** A fresh 160-bit secret (RFC 4226 §4 recommends 160 bits), base32-encoded. */
function randomSecret() {
  return base32Encode(crypto.randomBytes(20));
}

/** RFC 4226 §5.3: HMAC-SHA-1 of the counter, dynamic truncation, `digits` decimal digits. */
function hotp(key, counter, digits = 6) {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac("sha1", key).update(message).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** The time step that `unixSeconds` falls in (RFC 6238 §4.2, T0 = 0). */
function stepAt(unixSeconds, period = 30) {
  return Math.floor(unixSeconds / period);
}

/** The code of time step `step` for a base32 secret. */
function codeForStep(secret, step, digits = 6) {
  return hotp(base32Decode(secret), step, digits);
}

module.exports = { base32Encode, base32Decode, randomSecret, hotp, stepAt, codeForStep };
