// Lockout per account, per pre-auth token and per host (issue 4): the counters in src/storage/failures.ts,
// attacked through the login endpoints as a client would.
import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createHost, createSuperAdmin, createUser, expectEnvelope, login, post, totpCode, wrongTotpCode } from "./helpers";

/** Worker variables for one request (their generated types are the wrangler.toml literals). */
const vars = (values: Record<string, string>) => values as unknown as Partial<Env>;

const USER_LOGIN = "/api/users/adm/authenticate";
const HOST_LOGIN = "/api/hosts/adm/authenticate";
const LOCKED = "too many failed attempts, try again later";
const MAX_FAILED_ATTEMPTS = 10; // wrangler.toml
const LOCK_SECONDS = 900;
const PREAUTH_MAX_FAILURES = 5;
// Pinned clock, in the middle of a TOTP step so that step arithmetic below is exact.
const T0 = 1_900_000_005;
const ALICE = { username: "alice", password: "alice-password-1" };

const setClock = (seconds: number) => vi.setSystemTime(seconds * 1000);

beforeEach(() => setClock(T0));
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

async function counter(subject: string) {
  return env.DB.prepare("SELECT failures, locked_until FROM login_failures WHERE subject = ?")
    .bind(subject)
    .first<{ failures: number; locked_until: number }>();
}

const userLogin = (username: string, password: string, extra: Partial<Env> = {}) =>
  post(USER_LOGIN, { body: { username, password }, env: extra });

async function withAlice() {
  const admin = await createSuperAdmin();
  await createUser(admin, ALICE.username, ALICE.password);
  return admin;
}

/** Turns TOTP on for the user, enrolling with the previous step's code so that T0's step is still free. */
async function enableMfa(username: string, password: string): Promise<string> {
  const token = await login(username, password);
  const init = await expectEnvelope(await post(`/api/users/${username}/auth/init-totp`, { token }), 200, "totp setup initiated");
  const secret = new URL(init.otp_auth_url).searchParams.get("secret")!;
  const body = { otp_auth_url: init.otp_auth_url, otp_auth_url_signature: init.otp_auth_url_signature, totp: await totpCode(secret, T0 - 30) };
  const completed = await post(`/api/users/${username}/auth/complete-totp`, { token, body });
  await expectEnvelope(completed, 200, `totp setup complete for user ${username}`, null);
  return secret;
}

async function preAuthToken(username: string, password: string): Promise<string> {
  const payload = await expectEnvelope(await userLogin(username, password), 200, "W1R3: TOTP required");
  return payload.pre_auth_token;
}

const verifyTotp = (username: string, token: string, totp: string) =>
  post(`/api/users/${username}/auth/verify-totp`, { token, body: { totp } });

const wrongCode = (secret: string) => wrongTotpCode(secret, T0);

describe("per-account lockout on user login", () => {
  it("answers incorrect credentials ten times, then 429 for 15 minutes without checking the password", async () => {
    await withAlice();
    const derivations = vi.spyOn(crypto.subtle, "deriveBits");
    for (let i = 1; i <= MAX_FAILED_ATTEMPTS; i++) {
      await expectEnvelope(await userLogin(ALICE.username, `wrong-${i}`), 400, "incorrect credentials", null);
    }
    expect(derivations).toHaveBeenCalledTimes(MAX_FAILED_ATTEMPTS);
    expect(await counter("user:alice")).toEqual({ failures: MAX_FAILED_ATTEMPTS, locked_until: 0 });

    const locked = await userLogin(ALICE.username, ALICE.password);
    expect(locked.headers.get("Retry-After")).toBe(String(LOCK_SECONDS));
    await expectEnvelope(locked, 429, LOCKED, null);
    expect(derivations).toHaveBeenCalledTimes(MAX_FAILED_ATTEMPTS); // the right password was never checked
    expect(await counter("user:alice")).toEqual({ failures: MAX_FAILED_ATTEMPTS + 1, locked_until: T0 + LOCK_SECONDS });

    setClock(T0 + 600);
    const later = await userLogin(ALICE.username, ALICE.password);
    expect(later.headers.get("Retry-After")).toBe(String(LOCK_SECONDS - 600));
    await expectEnvelope(later, 429, LOCKED, null);
    expect(derivations).toHaveBeenCalledTimes(MAX_FAILED_ATTEMPTS);
  });

  it("locks an unknown username the same way, with the same answers as a known one", async () => {
    await withAlice();
    for (let i = 1; i <= MAX_FAILED_ATTEMPTS + 2; i++) {
      const known = await userLogin(ALICE.username, `wrong-${i}`);
      const unknown = await userLogin("nobody", `wrong-${i}`);
      expect(unknown.status).toBe(known.status);
      expect(unknown.headers.get("Retry-After")).toBe(known.headers.get("Retry-After"));
      expect(await unknown.text()).toBe(await known.text());
      expect(known.status).toBe(i <= MAX_FAILED_ATTEMPTS ? 400 : 429);
    }
    expect(await counter("user:nobody")).toEqual(await counter("user:alice"));
    expect(await counter("user:nobody")).toEqual({ failures: MAX_FAILED_ATTEMPTS + 2, locked_until: T0 + LOCK_SECONDS });
  });

  it("lets the right password in once the lock has expired, and a full success removes the counter", async () => {
    await withAlice();
    for (let i = 0; i <= MAX_FAILED_ATTEMPTS; i++) await userLogin(ALICE.username, "wrong-password");
    expect((await counter("user:alice"))!.locked_until).toBe(T0 + LOCK_SECONDS);

    await env.DB.prepare("UPDATE login_failures SET locked_until = ? WHERE subject = 'user:alice'").bind(T0 - 1).run();
    await expectEnvelope(await userLogin(ALICE.username, ALICE.password), 200, "W1R3: Device alice Authorized");
    expect(await counter("user:alice")).toBeNull();
  });

  it("starts a fresh count after the lock has expired", async () => {
    await withAlice();
    for (let i = 0; i <= MAX_FAILED_ATTEMPTS; i++) await userLogin(ALICE.username, "wrong-password");
    setClock(T0 + LOCK_SECONDS);
    await expectEnvelope(await userLogin(ALICE.username, "wrong-password"), 400, "incorrect credentials", null);
    expect(await counter("user:alice")).toEqual({ failures: 1, locked_until: 0 });
  });

  it("follows MAX_FAILED_ATTEMPTS and LOCK_SECONDS when they are configured", async () => {
    await withAlice();
    const limits = vars({ MAX_FAILED_ATTEMPTS: "3", LOCK_SECONDS: "60" });
    for (let i = 0; i < 3; i++) {
      await expectEnvelope(await userLogin(ALICE.username, "wrong-password", limits), 400, "incorrect credentials", null);
    }
    const locked = await userLogin(ALICE.username, ALICE.password, limits);
    expect(locked.headers.get("Retry-After")).toBe("60");
    await expectEnvelope(locked, 429, LOCKED, null);
    expect(await counter("user:alice")).toEqual({ failures: 4, locked_until: T0 + 60 });
  });

  it("does not reset the count for a right password whose TOTP is still to come", async () => {
    await withAlice();
    const secret = await enableMfa(ALICE.username, ALICE.password);
    for (let i = 0; i < 3; i++) await userLogin(ALICE.username, "wrong-password");

    const token = await preAuthToken(ALICE.username, ALICE.password);
    expect(await counter("user:alice")).toEqual({ failures: 3, locked_until: 0 });

    await expectEnvelope(await verifyTotp(ALICE.username, token, await totpCode(secret, T0)), 200, "W1R3: User alice Authorized");
    expect(await counter("user:alice")).toBeNull();
  });
});

describe("TOTP failures", () => {
  it("count toward the account lock: verify-totp answers 429 once ten codes were wrong, and so does login", async () => {
    await withAlice();
    const secret = await enableMfa(ALICE.username, ALICE.password);
    const tokens = [];
    for (let i = 0; i < 3; i++) tokens.push(await preAuthToken(ALICE.username, ALICE.password));
    const wrong = await wrongCode(secret);
    for (const token of tokens.slice(0, 2)) {
      for (let i = 0; i < PREAUTH_MAX_FAILURES; i++) {
        await expectEnvelope(await verifyTotp(ALICE.username, token, wrong), 401, "invalid otp", null);
      }
    }
    expect(await counter("user:alice")).toEqual({ failures: MAX_FAILED_ATTEMPTS, locked_until: 0 });

    const locked = await verifyTotp(ALICE.username, tokens[2], await totpCode(secret, T0));
    expect(locked.headers.get("Retry-After")).toBe(String(LOCK_SECONDS));
    await expectEnvelope(locked, 429, LOCKED, null);
    await expectEnvelope(await userLogin(ALICE.username, ALICE.password), 429, LOCKED, null);
    expect(await counter("user:alice")).toEqual({ failures: MAX_FAILED_ATTEMPTS + 2, locked_until: T0 + LOCK_SECONDS });
    expect(await env.DB.prepare("SELECT last_totp_step FROM users WHERE username = 'alice'").first("last_totp_step")).toBe(
      Math.floor(T0 / 30) - 1, // the code sent while locked was not accepted
    );
  });

  it("kill a pre-auth token after five wrong codes, even for the right code; a new token still works", async () => {
    await withAlice();
    const secret = await enableMfa(ALICE.username, ALICE.password);
    const first = await preAuthToken(ALICE.username, ALICE.password);
    const wrong = await wrongCode(secret);
    for (let i = 0; i < PREAUTH_MAX_FAILURES; i++) {
      await expectEnvelope(await verifyTotp(ALICE.username, first, wrong), 401, "invalid otp", null);
    }
    const right = await totpCode(secret, T0);
    await expectEnvelope(await verifyTotp(ALICE.username, first, right), 401, "unauthorized", null);
    expect(await counter("user:alice")).toEqual({ failures: PREAUTH_MAX_FAILURES, locked_until: 0 });

    const second = await preAuthToken(ALICE.username, ALICE.password);
    await expectEnvelope(await verifyTotp(ALICE.username, second, right), 200, "W1R3: User alice Authorized");
    expect(await counter("user:alice")).toBeNull();
  });

  it("use up a pre-auth token with its one success", async () => {
    await withAlice();
    const secret = await enableMfa(ALICE.username, ALICE.password);
    const token = await preAuthToken(ALICE.username, ALICE.password);
    await expectEnvelope(await verifyTotp(ALICE.username, token, await totpCode(secret, T0)), 200, "W1R3: User alice Authorized");
    setClock(T0 + 30);
    await expectEnvelope(await verifyTotp(ALICE.username, token, await totpCode(secret, T0 + 30)), 401, "unauthorized", null);
    expect(await env.DB.prepare("SELECT used FROM preauth_tokens").first("used")).toBe(1);
  });
});

describe("per-host lockout", () => {
  it("answers 401 for ten wrong passwords, then 429 (never 401) without checking the password", async () => {
    const host = await createHost(await createSuperAdmin(), { name: "h1" });
    const hostLogin = (password: string) => post(HOST_LOGIN, { body: { id: host.id, password, macaddress: "aa:bb" } });
    const hmacs = vi.spyOn(crypto.subtle, "sign");
    for (let i = 1; i <= MAX_FAILED_ATTEMPTS; i++) {
      await expectEnvelope(await hostLogin(`wrong-host-password-${i}`), 401, "unauthorized", null);
    }
    expect(hmacs).toHaveBeenCalledTimes(MAX_FAILED_ATTEMPTS);
    for (let i = 0; i < 3; i++) {
      const locked = await hostLogin(host.password);
      expect(locked.headers.get("Retry-After")).toBe(String(LOCK_SECONDS));
      await expectEnvelope(locked, 429, LOCKED, null);
    }
    expect(hmacs).toHaveBeenCalledTimes(MAX_FAILED_ATTEMPTS);
    expect(await counter(`host:${host.id}`)).toEqual({ failures: MAX_FAILED_ATTEMPTS + 3, locked_until: T0 + LOCK_SECONDS });

    setClock(T0 + LOCK_SECONDS);
    await expectEnvelope(await hostLogin(host.password), 200, `W1R3: Host ${host.id} Authorized`);
    expect(await counter(`host:${host.id}`)).toBeNull();
  });

  it("keeps no counter for a host that does not exist", async () => {
    await createSuperAdmin();
    for (let i = 0; i <= MAX_FAILED_ATTEMPTS; i++) {
      const res = await post(HOST_LOGIN, { body: { id: "no-such-host", password: "some-password" } });
      await expectEnvelope(res, 400, "no result found", null);
    }
    expect(await counter("host:no-such-host")).toBeNull();
  });

  it("follows the configured limits", async () => {
    const host = await createHost(await createSuperAdmin(), { name: "h1" });
    const limits = vars({ MAX_FAILED_ATTEMPTS: "2", LOCK_SECONDS: "120" });
    const hostLogin = (password: string) => post(HOST_LOGIN, { body: { id: host.id, password }, env: limits });
    await expectEnvelope(await hostLogin("wrong-host-password"), 401, "unauthorized", null);
    await expectEnvelope(await hostLogin("wrong-host-password"), 401, "unauthorized", null);
    const locked = await hostLogin(host.password);
    expect(locked.headers.get("Retry-After")).toBe("120");
    await expectEnvelope(locked, 429, LOCKED, null);
  });
});
