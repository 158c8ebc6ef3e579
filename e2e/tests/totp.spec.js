// @ts-check
// The tests' own TOTP and base32, checked against the RFCs' vectors before anything relies
// on them (no browser, no service).
"use strict";

const { test, expect } = require("@playwright/test");
const { hotp, stepAt, base32Encode, base32Decode } = require("../lib/totp");

const RFC_KEY = Buffer.from("12345678901234567890");

test("the test TOTP gives RFC 4226's HOTP values and RFC 6238's SHA-1 TOTP values", () => {
  // RFC 4226, Appendix D.
  expect([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((counter) => hotp(RFC_KEY, counter))).toEqual([
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
  ]);
  // RFC 6238, Appendix B (SHA-1, 8 digits, 30-second steps).
  expect([59, 1111111109, 1111111111, 1234567890, 2000000000, 20000000000].map((t) => hotp(RFC_KEY, stepAt(t), 8))).toEqual([
    "94287082", "07081804", "14050471", "89005924", "69279037", "65353130",
  ]);
});

test("the test base32 round-trips and reads RFC 4648's examples in any case, padded or not", () => {
  expect(base32Encode(Buffer.from("foobar"))).toBe("MZXW6YTBOI");
  expect(base32Decode("MZXW6YTBOI======").toString()).toBe("foobar");
  expect(base32Decode("mzxw6ytb").toString()).toBe("fooba");
  expect(base32Decode(base32Encode(RFC_KEY))).toEqual(RFC_KEY);
  expect(() => base32Decode("MZXW1")).toThrow();
});
