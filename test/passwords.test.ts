// Passwords at rest (API.md §5): PBKDF2-SHA256 at exactly 100,000 iterations, salted and self-describing;
// the same hashing work for every login outcome; bcrypt hashes imported from Netmaker upgraded at the
// next login; host passwords as a keyed fast hash with a minimum length.
import { env } from "cloudflare:test";
import bcrypt from "bcryptjs";
import { describe, expect, it, vi } from "vitest";
import { fromBase64, toBase64, utf8 } from "../src/lib/encoding";
import {
  HOST_PASSWORD_MIN_LENGTH,
  PBKDF2_ITERATIONS,
  hashHostPassword,
  hashPassword,
  verifyHostPassword,
  verifyUserPassword,
} from "../src/lib/passwords";
import { checkNewHost } from "../src/lib/rules";
import { expectEnvelope, expectNoSecrets, nowSeconds, post } from "./helpers";

const PASSWORD = "correct horse battery staple";
// 16-byte salt and 32-byte hash in padded base64.
const CURRENT_HASH = /^pbkdf2-sha256\$100000\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/;
const HOST_HASH = /^hmac-sha256\$[A-Za-z0-9+/]{43}=$/;
const BCRYPT_COST = 5;
const HOST_SECRET = "unit-test-host-key";

/** A Netmaker-style bcrypt hash ($2a$); bcryptjs writes $2b$, the same algorithm under a newer tag. */
const bcryptHash = (password: string) => bcrypt.hashSync(password, BCRYPT_COST).replace(/^\$2b\$/, "$2a$");

/** PBKDF2-SHA256 computed here, to check a stored hash independently of src/. */
async function pbkdf2(password: string, salt: Uint8Array, iterations: number) {
  const key = await crypto.subtle.importKey("raw", utf8.encode(password), "PBKDF2", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256));
}

describe("user passwords: PBKDF2-SHA256, salted, self-describing", () => {
  it("verifies a hash made at a lower iteration count and replaces it with one at the current count", async () => {
    const salt = new Uint8Array(16).fill(7);
    const older = `pbkdf2-sha256$50000$${toBase64(salt)}$${toBase64(await pbkdf2(PASSWORD, salt, 50_000))}`;
    const check = await verifyUserPassword(PASSWORD, older);
    expect(check.ok).toBe(true);
    expect(check.upgradedHash).toMatch(CURRENT_HASH);
    expect(await verifyUserPassword(PASSWORD, check.upgradedHash!)).toEqual({ ok: true });
    expect(await verifyUserPassword("wrong-password", older)).toEqual({ ok: false });
  });

  it("pins the iteration count at exactly 100,000", () => {
    // Production Workers refuse PBKDF2 above 100,000 iterations; local workerd does not, so only this pin catches it.
    expect(PBKDF2_ITERATIONS).toBe(100_000);
  });

  it("stores pbkdf2-sha256$100000$<salt>$<hash>, and the hash is what its fields say", async () => {
    const stored = await hashPassword(PASSWORD);
    expect(stored).toMatch(CURRENT_HASH);
    const [, iterations, salt, hash] = stored.split("$");
    expect(toBase64(await pbkdf2(PASSWORD, fromBase64(salt), Number(iterations)))).toBe(hash);
  });

  it("salts: the same password hashes differently each time", async () => {
    const [first, second] = [await hashPassword(PASSWORD), await hashPassword(PASSWORD)];
    expect(first).not.toBe(second);
    expect(first.split("$")[2]).not.toBe(second.split("$")[2]);
  });

  it("verifies the right password, with no upgrade needed", async () => {
    expect(await verifyUserPassword(PASSWORD, await hashPassword(PASSWORD))).toEqual({ ok: true });
  });

  it.each([
    ["a wrong password", PASSWORD.toUpperCase()],
    ["an empty password", ""],
  ])("refuses %s", async (_name, attempt) => {
    expect(await verifyUserPassword(attempt, await hashPassword(PASSWORD))).toEqual({ ok: false });
  });

  it.each([
    ["an unknown user (no stored hash)", null],
    ["a user with no usable password (empty hash)", ""],
    ["a wrong hash at another iteration count", "pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],
    ["a hash above the Workers limit", "pbkdf2-sha256$200000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],
    ["a hash in an unknown scheme", "md5$5f4dcc3b5aa765d61d8327deb882cf99"],
  ])("refuses %s", async (_name, stored) => {
    expect(await verifyUserPassword(PASSWORD, stored)).toEqual({ ok: false });
  });
});

describe("the same hashing work for every outcome", () => {
  /** The iteration counts of the PBKDF2 derivations that `run` makes. */
  async function derivations(run: () => Promise<unknown>) {
    const spy = vi.spyOn(crypto.subtle, "deriveBits");
    try {
      await run();
      return spy.mock.calls.map(([params]) => (params as { iterations: number }).iterations);
    } finally {
      spy.mockRestore();
    }
  }

  it("runs exactly one PBKDF2 at 100,000 iterations for an unknown user, a wrong password and a right one", async () => {
    const stored = await hashPassword(PASSWORD);
    const bcryptStored = bcryptHash(PASSWORD);
    for (const run of [
      () => verifyUserPassword(PASSWORD, null),
      () => verifyUserPassword("wrong-password", stored),
      () => verifyUserPassword(PASSWORD, stored),
      () => verifyUserPassword(PASSWORD, bcryptStored),
    ]) {
      expect(await derivations(run)).toEqual([PBKDF2_ITERATIONS]);
    }
  });
});

describe("bcrypt hashes imported from Netmaker", () => {
  it("verifies a $2a$ hash and hands back a replacement in the current scheme", async () => {
    const check = await verifyUserPassword(PASSWORD, bcryptHash(PASSWORD));
    expect(check.ok).toBe(true);
    expect(check.upgradedHash).toMatch(CURRENT_HASH);
    expect(await verifyUserPassword(PASSWORD, check.upgradedHash!)).toEqual({ ok: true });
  });

  it("refuses a wrong password against a $2a$ hash, with no replacement", async () => {
    expect(await verifyUserPassword("wrong-password", bcryptHash(PASSWORD))).toEqual({ ok: false });
  });

  describe("at login", () => {
    const insertImportedUser = (hash: string) =>
      env.DB.prepare("INSERT INTO users (username, password_hash, created_at, updated_at) VALUES ('imported', ?, ?, ?)")
        .bind(hash, nowSeconds(), nowSeconds())
        .run();
    const storedHash = () => env.DB.prepare("SELECT password_hash FROM users WHERE username = 'imported'").first("password_hash");

    it("logs the user in and replaces the bcrypt hash with a pbkdf2-sha256 one that still works", async () => {
      await insertImportedUser(bcryptHash(PASSWORD));
      const response = await post("/api/users/adm/authenticate", { body: { username: "imported", password: PASSWORD } });
      await expectNoSecrets(response, [PASSWORD]);
      await expectEnvelope(response, 200, "W1R3: Device imported Authorized");
      expect(await storedHash()).toMatch(CURRENT_HASH);

      const again = await post("/api/users/adm/authenticate", { body: { username: "imported", password: PASSWORD } });
      await expectNoSecrets(again, [PASSWORD]);
      await expectEnvelope(again, 200, "W1R3: Device imported Authorized");
    });

    it("keeps the bcrypt hash after a wrong password", async () => {
      const hash = bcryptHash(PASSWORD);
      await insertImportedUser(hash);
      const response = await post("/api/users/adm/authenticate", { body: { username: "imported", password: "wrong-password" } });
      await expectEnvelope(response, 400, "incorrect credentials", null);
      expect(await storedHash()).toBe(hash);
    });
  });
});

describe("host passwords: keyed fast hash, short ones refused", () => {
  it("stores hmac-sha256$<base64 HMAC-SHA256 of the password under the host key>", async () => {
    const stored = await hashHostPassword(PASSWORD, HOST_SECRET);
    expect(stored).toMatch(HOST_HASH);
    const key = await crypto.subtle.importKey("raw", utf8.encode(HOST_SECRET), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, utf8.encode(PASSWORD)));
    expect(stored).toBe(`hmac-sha256$${toBase64(mac)}`);
  });

  it("verifies the right password and refuses a wrong one or another key's hash", async () => {
    const stored = await hashHostPassword(PASSWORD, HOST_SECRET);
    expect(await verifyHostPassword(PASSWORD, stored, HOST_SECRET)).toEqual({ ok: true });
    expect(await verifyHostPassword(`${PASSWORD}!`, stored, HOST_SECRET)).toEqual({ ok: false });
    expect(await verifyHostPassword(PASSWORD, await hashHostPassword(PASSWORD, "another-key"), HOST_SECRET)).toEqual({ ok: false });
    expect(await verifyHostPassword(PASSWORD, "plain-text", HOST_SECRET)).toEqual({ ok: false });
  });

  it(`requires at least ${HOST_PASSWORD_MIN_LENGTH} characters of a given password; a generated one is not checked`, () => {
    expect(() => checkNewHost("h1", "p".repeat(HOST_PASSWORD_MIN_LENGTH - 1))).toThrow(
      `host password must be at least ${HOST_PASSWORD_MIN_LENGTH} characters`,
    );
    expect(() => checkNewHost("h1", "p".repeat(HOST_PASSWORD_MIN_LENGTH))).not.toThrow();
    expect(() => checkNewHost("h1", undefined)).not.toThrow();
  });

  it("keeps the minimum long enough for a machine secret", () => {
    expect(HOST_PASSWORD_MIN_LENGTH).toBeGreaterThanOrEqual(24);
  });
});
