// RFC 6238 TOTP as Netmaker uses it (SHA1, 6 digits, 30 s), with one step of skew either side.
// Pure: the clock comes in as an argument (unix seconds).
import { Secret, TOTP } from "otpauth";
import { equalBytes, fromHex, hmacSha256, toHex } from "./encoding";

export const TOTP_PERIOD = 30;
export const TOTP_DIGITS = 6;
export const TOTP_SKEW_STEPS = 1;
const SECRET_BYTES = 20;

/** A fresh secret in unpadded base32 (32 characters for 20 bytes). */
export function generateTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32;
}

export function totpStep(now: number): number {
  return Math.floor(now / TOTP_PERIOD);
}

/** The key URI in exactly Netmaker's form; clients compare it as a string, so the order is fixed. */
export function otpAuthUrl(username: string, secret: string): string {
  // As Netmaker (Go's url.URL) writes the path: "@" and "+" of an email address stay as they are.
  const label = encodeURIComponent(username).replace(/%40/g, "@").replace(/%2B/g, "+");
  return `otpauth://totp/Netmaker:${label}?algorithm=SHA1&digits=6&issuer=Netmaker&period=30&secret=${secret}`;
}

/** Lowercase hex HMAC-SHA256 of the URL string, keyed with JWT_SECRET, as Netmaker signs it. */
export async function signOtpAuthUrl(url: string, jwtSecret: string): Promise<string> {
  return toHex(await hmacSha256(jwtSecret, url));
}

/** Whether `signature` (hex, either case) signs `url`; compared in constant time. */
export async function otpAuthUrlSignatureMatches(url: string, signature: string, jwtSecret: string): Promise<boolean> {
  const given = fromHex(signature);
  return given !== null && equalBytes(given, await hmacSha256(jwtSecret, url));
}

/** The time step whose code `code` is, within the skew window around `now`; null if none is. */
export function matchTotpStep(secret: string, code: string, now: number): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const totp = new TOTP({ secret: Secret.fromBase32(secret), algorithm: "SHA1", digits: TOTP_DIGITS, period: TOTP_PERIOD });
  const delta = totp.validate({ token: code, timestamp: now * 1000, window: TOTP_SKEW_STEPS });
  return delta === null ? null : totpStep(now) + delta;
}
