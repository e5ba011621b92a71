// The pure TOTP module: RFC 6238 codes, the skew window, the key URI and its signature, fresh secrets.
import { describe, expect, it } from "vitest";
import { generateTotpSecret, matchTotpStep, otpAuthUrl, signOtpAuthUrl, totpStep } from "../src/lib/totp";

// RFC 6238 Appendix B: the SHA1 seed is the ASCII string "12345678901234567890".
const RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
// [time, 8-digit code] from the Appendix B table, SHA1 rows; a 6-digit code is the last 6 digits.
const RFC_SHA1_VECTORS: [number, string][] = [
  [59, "94287082"],
  [1111111109, "07081804"],
  [1111111111, "14050471"],
  [1234567890, "89005924"],
  [2000000000, "69279037"],
  [20000000000, "65353130"],
];
const PERIOD = 30;

/** RFC 4648 base32 decoding, written here so that the test does not lean on src/ or otpauth. */
function base32Decode(text: string): Uint8Array {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of text) {
    const value = alphabet.indexOf(char);
    if (value < 0) throw new Error(`not base32: ${char}`);
    bits += value.toString(2).padStart(5, "0");
  }
  return Uint8Array.from(bits.slice(0, bits.length - (bits.length % 8)).match(/.{8}/g) ?? [], (byte) => parseInt(byte, 2));
}

describe("matchTotpStep against RFC 6238 Appendix B (SHA1)", () => {
  it("decodes the RFC seed from the base32 used here", () => {
    expect(new TextDecoder().decode(base32Decode(RFC_SECRET))).toBe("12345678901234567890");
  });

  for (const [time, code8] of RFC_SHA1_VECTORS) {
    const code = code8.slice(-6);
    const step = Math.floor(time / PERIOD);

    it(`accepts ${code} at t=${time}, and one step either side of it`, () => {
      expect(totpStep(time)).toBe(step);
      expect(matchTotpStep(RFC_SECRET, code, time)).toBe(step);
      // The verifier's clock one step ahead of or behind the code's step: the step matched is still the code's.
      expect(matchTotpStep(RFC_SECRET, code, time + PERIOD)).toBe(step);
      if (time >= PERIOD) expect(matchTotpStep(RFC_SECRET, code, time - PERIOD)).toBe(step);
    });

    it(`refuses ${code} two steps away from t=${time}`, () => {
      expect(matchTotpStep(RFC_SECRET, code, time + 2 * PERIOD)).toBeNull();
      if (time >= 2 * PERIOD) expect(matchTotpStep(RFC_SECRET, code, time - 2 * PERIOD)).toBeNull();
    });
  }

  it("refuses the 8-digit form and anything that is not exactly 6 digits", () => {
    const [time, code8] = RFC_SHA1_VECTORS[1];
    const code = code8.slice(-6);
    for (const wrong of [code8, code.slice(1), `${code}0`, ` ${code}`, `${code} `, `${code.slice(0, 5)}a`, "", "-81804", "0x1234"]) {
      expect(matchTotpStep(RFC_SECRET, wrong, time), JSON.stringify(wrong)).toBeNull();
    }
  });

  it("refuses a right-looking code for another secret", () => {
    const [time, code8] = RFC_SHA1_VECTORS[2];
    expect(matchTotpStep("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", code8.slice(-6), time)).toBeNull();
  });
});

describe("otpAuthUrl", () => {
  const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

  it("is exactly Netmaker's key URI, parameters in Netmaker's order", () => {
    expect(otpAuthUrl("alice", secret)).toBe(
      `otpauth://totp/Netmaker:alice?algorithm=SHA1&digits=6&issuer=Netmaker&period=30&secret=${secret}`,
    );
  });

  it("keeps an email username as it is in the label, '@' and '+' included, as Netmaker writes it", () => {
    expect(otpAuthUrl("alice.smith@example.com", secret)).toBe(
      `otpauth://totp/Netmaker:alice.smith@example.com?algorithm=SHA1&digits=6&issuer=Netmaker&period=30&secret=${secret}`,
    );
    expect(otpAuthUrl("Ann.Lee+ops@Example.org", secret)).toBe(
      `otpauth://totp/Netmaker:Ann.Lee+ops@Example.org?algorithm=SHA1&digits=6&issuer=Netmaker&period=30&secret=${secret}`,
    );
  });
});

describe("signOtpAuthUrl", () => {
  it("is HMAC-SHA256 as RFC 4231 test case 2 gives it", async () => {
    expect(await signOtpAuthUrl("what do ya want for nothing?", "Jefe")).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
  });

  it("equals an HMAC-SHA256 of the URL keyed with the JWT secret, in lowercase hex", async () => {
    const url = otpAuthUrl("alice", generateTotpSecret());
    const jwtSecret = "a-jwt-secret-for-this-test";
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(jwtSecret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(url)));
    const expected = [...mac].map((byte) => byte.toString(16).padStart(2, "0")).join("");
    expect(await signOtpAuthUrl(url, jwtSecret)).toBe(expected);
    expect(await signOtpAuthUrl(url, `${jwtSecret}x`)).not.toBe(expected);
  });
});

describe("generateTotpSecret", () => {
  it("is 32 characters of unpadded base32 that decode to 20 bytes", () => {
    const secret = generateTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(secret)).toHaveLength(20);
  });

  it("is fresh on every call", () => {
    const secrets = new Set(Array.from({ length: 50 }, generateTotpSecret));
    expect(secrets.size).toBe(50);
  });
});
