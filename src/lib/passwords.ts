// Password hashes, stored self-describing so that the scheme can change without a migration:
//   users:  "pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>"  (current)
//           "$2a$<cost>$..."                                          (imported from Netmaker, bcrypt)
//   hosts:  "hmac-sha256$<hash base64>"                               (long random machine secrets)
import bcrypt from "bcryptjs";
import { equalBytes, fromBase64, hmacSha256, randomBytes, toBase64, utf8 } from "./encoding";

/** The most that production Workers allow; local workerd allows more, so a test pins it. */
export const PBKDF2_ITERATIONS = 100_000;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
export const HOST_PASSWORD_MIN_LENGTH = 24;

async function pbkdf2(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", utf8.encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    HASH_BYTES * 8,
  );
  return new Uint8Array(bits);
}

export async function hashPassword(password: string, salt = randomBytes(SALT_BYTES)): Promise<string> {
  const hash = await pbkdf2(password, salt, PBKDF2_ITERATIONS);
  return `pbkdf2-sha256$${PBKDF2_ITERATIONS}$${toBase64(salt)}$${toBase64(hash)}`;
}

export function isBcryptHash(stored: string): boolean {
  return /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(stored);
}

export interface PasswordCheck {
  ok: boolean;
  /** Set when the password was right but the stored hash should be replaced by this current-scheme one. */
  upgradedHash?: string;
}

// Stands in for the hash of a user who does not exist, so that an unknown name costs one PBKDF2 run too.
const UNKNOWN_USER_HASH = `pbkdf2-sha256$${PBKDF2_ITERATIONS}$${toBase64(new Uint8Array(SALT_BYTES))}$${toBase64(new Uint8Array(HASH_BYTES))}`;
// A bcrypt hash at Netmaker's cost (5) of a password no one has: checks that are not against an imported
// hash compare with it too, so that an imported user costs no more than an unknown one.
const UNKNOWN_USER_BCRYPT_HASH = "$2b$05$IrlIFB/SDHl4aeaTNZ1rQeertPsh8jAZQEPMG2pjU9Y5ulBkHbsJW";

/**
 * Checks a user's password against a stored hash (or against nothing, for an unknown user). Every call
 * runs exactly one PBKDF2 derivation at the current iterations and one bcrypt comparison, whatever the
 * stored scheme, so that unknown users, wrong passwords and imported hashes cost the same.
 */
export async function verifyUserPassword(password: string, stored: string | null): Promise<PasswordCheck> {
  if (stored && isBcryptHash(stored)) {
    const [ok, upgradedHash] = await Promise.all([bcrypt.compare(password, stored), hashPassword(password)]);
    return ok ? { ok, upgradedHash } : { ok: false };
  }
  const parts = (stored || UNKNOWN_USER_HASH).split("$");
  const iterations = Number(parts[1]);
  // A hash made at another (lower) iteration count still verifies, and is then replaced at the current one.
  const usable =
    parts.length === 4 && parts[0] === "pbkdf2-sha256" && Number.isInteger(iterations) && iterations >= 1 && iterations <= PBKDF2_ITERATIONS;
  const [salt, expected] = usable ? [fromBase64(parts[2]), fromBase64(parts[3])] : [new Uint8Array(SALT_BYTES), null];
  const [actual] = await Promise.all([
    pbkdf2(password, salt, usable ? iterations : PBKDF2_ITERATIONS),
    bcrypt.compare(password, UNKNOWN_USER_BCRYPT_HASH),
  ]);
  const ok = Boolean(stored) && expected !== null && equalBytes(actual, expected);
  if (ok && iterations !== PBKDF2_ITERATIONS) return { ok, upgradedHash: await hashPassword(password) };
  return { ok };
}

const HOST_HASH_PREFIX = "hmac-sha256$";

export async function hashHostPassword(password: string, hostSecret: string): Promise<string> {
  return HOST_HASH_PREFIX + toBase64(await hmacSha256(hostSecret, password));
}

export async function verifyHostPassword(password: string, stored: string, hostSecret: string): Promise<PasswordCheck> {
  if (isBcryptHash(stored)) {
    const ok = await bcrypt.compare(password, stored);
    return ok ? { ok, upgradedHash: await hashHostPassword(password, hostSecret) } : { ok: false };
  }
  if (!stored.startsWith(HOST_HASH_PREFIX)) return { ok: false };
  return { ok: equalBytes(await hmacSha256(hostSecret, password), fromBase64(stored.slice(HOST_HASH_PREFIX.length))) };
}
