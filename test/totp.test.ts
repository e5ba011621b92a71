// init-totp, complete-totp and verify-totp through fetch (API.md §2, §3), with codes from the test's own
// RFC 6238 implementation (helpers.totpCode) and a fixed clock, so that every code is for a chosen step.
import { env } from "cloudflare:test";
import { SignJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  claims,
  createHost,
  createSuperAdmin,
  createUser,
  expectEnvelope,
  get,
  login,
  post,
  snapshot,
  SUPER_ADMIN,
  totpCode,
  call,
  userTokenClaims,
} from "./helpers";

const PERIOD = 30;
// 5 s into time step 63,333,334: the clock stands still here unless a test moves it.
const T0 = 1_900_000_020 + 5;
const STEP0 = Math.floor(T0 / PERIOD);
const USER_TOKEN_TTL = 12 * 3600;
const PREAUTH_TOKEN_TTL = 300;
const ALICE = { username: "alice", password: "alice-password-1" };
const BOB = { username: "bob", password: "bob-password-1" };
const UNAUTHORIZED = "unauthorized";
const EXPIRED = "totp setup expired, initiate it again";
const SIGNATURE_MISMATCH = "otp auth url signature mismatch";

const setClock = (seconds: number) => vi.setSystemTime(seconds * 1000);

beforeEach(() => {
  // Only Date is faked: the Worker runs in this isolate, so its Date.now() is this clock too.
  vi.useFakeTimers({ toFake: ["Date"] });
  setClock(T0);
});
afterEach(() => {
  vi.useRealTimers();
});

interface Enrolment {
  otp_auth_url: string;
  otp_auth_url_signature: string;
  qr_code: string;
}

interface UserTotpRow {
  mfa_enabled: number;
  totp_secret: string | null;
  last_totp_step: number | null;
}

/** The super admin, and alice (a platform user) logged in with a full token. */
async function setup() {
  const admin = await createSuperAdmin();
  await createUser(admin, ALICE.username, ALICE.password);
  const alice = await login(ALICE.username, ALICE.password);
  return { admin, alice };
}

const secretOf = (url: string) => new URL(url).searchParams.get("secret")!;

function userRow(username: string): Promise<UserTotpRow | null> {
  return env.DB.prepare("SELECT mfa_enabled, totp_secret, last_totp_step FROM users WHERE username = ?")
    .bind(username)
    .first<UserTotpRow>();
}

async function pendingKeys() {
  return (await env.ENROLMENTS.list()).keys;
}

function eventsOf(kind: string) {
  return env.DB.prepare("SELECT subject, outcome, reason FROM auth_events WHERE kind = ? ORDER BY id")
    .bind(kind)
    .all()
    .then((result) => result.results);
}

const initTotp = (token: string | undefined, username: string) => post(`/api/users/${username}/auth/init-totp`, { token });
const completeTotp = (token: string | undefined, username: string, body: unknown) =>
  post(`/api/users/${username}/auth/complete-totp`, { token, body });
// `vars` replaces Worker variables for the request; Env types them as their wrangler.toml values, hence the cast.
const verifyTotp = (token: string | undefined, username: string, body: unknown, vars: Record<string, string> = {}) =>
  post(`/api/users/${username}/auth/verify-totp`, { token, body, env: vars as unknown as Partial<Env> });

async function startEnrolment(token: string, username: string): Promise<Enrolment> {
  return expectEnvelope(await initTotp(token, username), 200, "totp setup initiated");
}

/** Enrols `username` with a code for the current step; returns the base32 secret. */
async function enrol(token: string, username: string): Promise<string> {
  const enrolment = await startEnrolment(token, username);
  const secret = secretOf(enrolment.otp_auth_url);
  const totp = await totpCode(secret, Date.now() / 1000);
  await expectEnvelope(await completeTotp(token, username, { ...enrolment, totp }), 200, `totp setup complete for user ${username}`, null);
  return secret;
}

/** Password login of an MFA user: the pre-auth token, after checking that no full token came with it. */
async function preAuthLogin(user: { username: string; password: string }): Promise<string> {
  const response = await post("/api/users/adm/authenticate", { body: user });
  const payload = await expectEnvelope(response, 200, "W1R3: TOTP required");
  expect(Object.keys(payload).sort()).toEqual(["pre_auth_token", "user_name"]);
  expect(payload.user_name).toBe(user.username);
  return payload.pre_auth_token;
}

/** The same claims re-signed with a key that is not JWT_SECRET. */
function forge(token: string): Promise<string> {
  return new SignJWT(claims(token)).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode("not-the-jwt-secret"));
}

async function hostToken(admin: string): Promise<string> {
  const host = await createHost(admin, { name: "h1" });
  const response = await post("/api/hosts/adm/authenticate", { body: { id: host.id, password: host.password, macaddress: "aa:bb" } });
  return (await expectEnvelope(response, 200, `W1R3: Host ${host.id} Authorized`)).AuthToken;
}

const MALFORMED_HEADERS = ["", "Bearer", "Bearer ", "Basic YWxpY2U6cGFzcw==", "Bearer not-a-jwt", "Bearer a.b.c"];

describe("POST /api/users/{username}/auth/init-totp", () => {
  it("answers 401 unauthorized to a missing or malformed token, and stores nothing", async () => {
    await setup();
    const before = await snapshot();
    await expectEnvelope(await initTotp(undefined, "alice"), 401, UNAUTHORIZED, null);
    for (const header of MALFORMED_HEADERS) {
      const response = await post("/api/users/alice/auth/init-totp", { headers: { Authorization: header } });
      await expectEnvelope(response, 401, UNAUTHORIZED, null);
    }
    expect(await snapshot()).toEqual(before);
  });

  it("answers 401 unauthorized to a forged token, an expired one, and a host token", async () => {
    const { admin, alice } = await setup();
    const host = await hostToken(admin);
    const before = await snapshot();
    await expectEnvelope(await initTotp(await forge(alice), "alice"), 401, UNAUTHORIZED, null);
    await expectEnvelope(await initTotp(host, "alice"), 401, UNAUTHORIZED, null);
    setClock(T0 + USER_TOKEN_TTL + 1);
    await expectEnvelope(await initTotp(alice, "alice"), 401, UNAUTHORIZED, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 401 unauthorized to a pre-auth token of the user themself", async () => {
    const { alice } = await setup();
    await enrol(alice, "alice");
    const preAuth = await preAuthLogin(ALICE);
    const before = await snapshot();
    await expectEnvelope(await initTotp(preAuth, "alice"), 401, UNAUTHORIZED, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 403 forbidden to another user's token, the super admin's included", async () => {
    const { admin } = await setup();
    await createUser(admin, BOB.username, BOB.password);
    const bob = await login(BOB.username, BOB.password);
    const before = await snapshot();
    await expectEnvelope(await initTotp(bob, "alice"), 403, "forbidden", null);
    await expectEnvelope(await initTotp(admin, "alice"), 403, "forbidden", null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 401 user account disabled when the account is disabled", async () => {
    const { admin, alice } = await setup();
    await expectEnvelope(await post("/api/users/alice/disable", { token: admin }), 200, "user alice disabled");
    await expectEnvelope(await initTotp(alice, "alice"), 401, "user account disabled", null);
    expect(await pendingKeys()).toEqual([]);
  });

  it("answers the key URI, its signature and a QR code, and keeps the secret pending (sealed) in KV", async () => {
    const { alice } = await setup();
    const payload = await startEnrolment(alice, "alice");
    expect(Object.keys(payload).sort()).toEqual(["otp_auth_url", "otp_auth_url_signature", "qr_code"]);
    const secret = secretOf(payload.otp_auth_url);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(payload.otp_auth_url).toBe(
      `otpauth://totp/Netmaker:alice?algorithm=SHA1&digits=6&issuer=Netmaker&period=30&secret=${secret}`,
    );
    expect(payload.otp_auth_url_signature).toBe(await hmacHex(env.JWT_SECRET, payload.otp_auth_url));
    expect(payload.qr_code).toMatch(/^data:image\/png;base64,/);

    const keys = await pendingKeys();
    expect(keys.map((key) => key.name)).toEqual(["totp-enrolment:alice"]);
    // KV counts the TTL on its own (real) clock.
    const ttl = keys[0].expiration! - vi.getRealSystemTime() / 1000;
    expect(ttl).toBeGreaterThanOrEqual(60 - 5);
    expect(ttl).toBeLessThanOrEqual(15 * 60);
    expect(await env.ENROLMENTS.get("totp-enrolment:alice")).not.toContain(secret);
    expect(await userRow("alice")).toEqual({ mfa_enabled: 0, totp_secret: null, last_totp_step: null });
  });

  it("gives a fresh secret each time, and a new init replaces the earlier pending one", async () => {
    const { alice } = await setup();
    const first = await startEnrolment(alice, "alice");
    const second = await startEnrolment(alice, "alice");
    expect(secretOf(second.otp_auth_url)).not.toBe(secretOf(first.otp_auth_url));
    expect((await pendingKeys()).map((key) => key.name)).toEqual(["totp-enrolment:alice"]);

    const firstCode = await totpCode(secretOf(first.otp_auth_url), T0);
    await expectEnvelope(await completeTotp(alice, "alice", { ...first, totp: firstCode }), 400, EXPIRED, null);
    expect((await userRow("alice"))!.mfa_enabled).toBe(0);
    const secondCode = await totpCode(secretOf(second.otp_auth_url), T0);
    await expectEnvelope(await completeTotp(alice, "alice", { ...second, totp: secondCode }), 200, "totp setup complete for user alice", null);
  });
});

describe("POST /api/users/{username}/auth/complete-totp", () => {
  it("answers 401 unauthorized to a missing, malformed, forged, expired, pre-auth or host token, before reading the body", async () => {
    const { admin, alice } = await setup();
    const host = await hostToken(admin);
    await createUser(admin, BOB.username, BOB.password);
    const bob = await login(BOB.username, BOB.password);
    await enrol(bob, "bob");
    const bobPreAuth = await preAuthLogin(BOB);
    const enrolment = await startEnrolment(alice, "alice");
    const body = { ...enrolment, totp: await totpCode(secretOf(enrolment.otp_auth_url), T0) };
    const before = await snapshot();

    await expectEnvelope(await completeTotp(undefined, "alice", body), 401, UNAUTHORIZED, null);
    await expectEnvelope(await completeTotp(undefined, "alice", "not json"), 401, UNAUTHORIZED, null);
    for (const header of MALFORMED_HEADERS) {
      const response = await post("/api/users/alice/auth/complete-totp", { headers: { Authorization: header }, body });
      await expectEnvelope(response, 401, UNAUTHORIZED, null);
    }
    await expectEnvelope(await completeTotp(await forge(alice), "alice", body), 401, UNAUTHORIZED, null);
    await expectEnvelope(await completeTotp(host, "alice", body), 401, UNAUTHORIZED, null);
    await expectEnvelope(await completeTotp(bobPreAuth, "bob", { ...body, totp: await totpCode(secretOf(enrolment.otp_auth_url), T0) }), 401, UNAUTHORIZED, null);
    setClock(T0 + USER_TOKEN_TTL + 1);
    await expectEnvelope(await completeTotp(alice, "alice", body), 401, UNAUTHORIZED, null);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses a pre-auth token even with a valid pending enrolment of its user", async () => {
    const { alice } = await setup();
    await enrol(alice, "alice");
    const reEnrolment = await startEnrolment(alice, "alice");
    const preAuth = await preAuthLogin(ALICE);
    const before = await snapshot();
    const totp = await totpCode(secretOf(reEnrolment.otp_auth_url), T0 + PERIOD);
    await expectEnvelope(await completeTotp(preAuth, "alice", { ...reEnrolment, totp }), 401, UNAUTHORIZED, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 403 forbidden to another user's token, and 401 user account disabled, before reading the body", async () => {
    const { admin, alice } = await setup();
    await createUser(admin, BOB.username, BOB.password);
    const bob = await login(BOB.username, BOB.password);
    const enrolment = await startEnrolment(alice, "alice");
    const body = { ...enrolment, totp: await totpCode(secretOf(enrolment.otp_auth_url), T0) };
    await expectEnvelope(await completeTotp(bob, "alice", body), 403, "forbidden", null);
    await expectEnvelope(await completeTotp(bob, "alice", "not json"), 403, "forbidden", null);

    await expectEnvelope(await post("/api/users/alice/disable", { token: admin }), 200, "user alice disabled");
    await expectEnvelope(await completeTotp(alice, "alice", body), 401, "user account disabled", null);
    await expectEnvelope(await completeTotp(alice, "alice", "not json"), 401, "user account disabled", null);
    expect(await userRow("alice")).toEqual({ mfa_enabled: 0, totp_secret: null, last_totp_step: null });
    expect((await pendingKeys()).map((key) => key.name)).toEqual(["totp-enrolment:alice"]);
  });

  it("answers 400 invalid request body for a body that is not JSON, not an object, or has a field of the wrong type", async () => {
    const { alice } = await setup();
    const enrolment = await startEnrolment(alice, "alice");
    const before = await snapshot();
    await expectEnvelope(await completeTotp(alice, "alice", "{not json"), 400, "invalid request body: not valid JSON", null);
    await expectEnvelope(await completeTotp(alice, "alice", "[]"), 400, "invalid request body: expected a JSON object", null);
    await expectEnvelope(await completeTotp(alice, "alice", ""), 400, "invalid request body: the body is empty", null);
    const wrongType = await completeTotp(alice, "alice", { ...enrolment, totp: 123456 });
    await expectEnvelope(wrongType, 400, /^invalid request body: totp: /, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 400 otp auth url signature mismatch to a wrong, non-hex, empty or missing signature", async () => {
    const { alice } = await setup();
    const enrolment = await startEnrolment(alice, "alice");
    const totp = await totpCode(secretOf(enrolment.otp_auth_url), T0);
    const right = enrolment.otp_auth_url_signature;
    const flipped = (right[0] === "0" ? "1" : "0") + right.slice(1);
    const signatures = [flipped, right.slice(0, -2), `${right}00`, "zz".repeat(32), `g${right.slice(1)}`, ""];
    const before = await snapshot();
    for (const signature of signatures) {
      const response = await completeTotp(alice, "alice", { ...enrolment, otp_auth_url_signature: signature, totp });
      await expectEnvelope(response, 400, SIGNATURE_MISMATCH, null);
    }
    const { otp_auth_url_signature: _, ...unsigned } = enrolment;
    await expectEnvelope(await completeTotp(alice, "alice", { ...unsigned, totp }), 400, SIGNATURE_MISMATCH, null);
    // A signature is of the URL as sent: the right signature on a changed URL does not match either.
    const changed = enrolment.otp_auth_url.replace("digits=6", "digits=8");
    await expectEnvelope(await completeTotp(alice, "alice", { ...enrolment, otp_auth_url: changed, totp }), 400, SIGNATURE_MISMATCH, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 400 totp setup expired when there is no pending enrolment, before checking the code", async () => {
    const { alice } = await setup();
    const enrolment = await startEnrolment(alice, "alice");
    const totp = await totpCode(secretOf(enrolment.otp_auth_url), T0);
    // As if the KV entry's TTL had run out.
    await env.ENROLMENTS.delete("totp-enrolment:alice");
    const before = await snapshot();
    await expectEnvelope(await completeTotp(alice, "alice", { ...enrolment, totp }), 400, EXPIRED, null);
    await expectEnvelope(await completeTotp(alice, "alice", { ...enrolment, totp: "000000" }), 400, EXPIRED, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 400 totp setup expired when the key that sealed the pending secret has left TOTP_KEYS", async () => {
    const { alice } = await setup();
    const enrolment = await startEnrolment(alice, "alice");
    const totp = await totpCode(secretOf(enrolment.otp_auth_url), T0);
    const otherRing = { TOTP_KEYS: `other:${btoa(String.fromCharCode(...new Uint8Array(32).fill(9)))}` };
    const before = await snapshot();
    const response = await post("/api/users/alice/auth/complete-totp", { token: alice, body: { ...enrolment, totp }, env: otherRing });
    await expectEnvelope(response, 400, EXPIRED, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 400 totp setup expired to an enrolment made for another user, with or without one of one's own", async () => {
    const { admin, alice } = await setup();
    await createUser(admin, BOB.username, BOB.password);
    const bob = await login(BOB.username, BOB.password);
    const bobs = await startEnrolment(bob, "bob");
    const body = { ...bobs, totp: await totpCode(secretOf(bobs.otp_auth_url), T0) };
    await expectEnvelope(await completeTotp(alice, "alice", body), 400, EXPIRED, null);
    await startEnrolment(alice, "alice");
    await expectEnvelope(await completeTotp(alice, "alice", body), 400, EXPIRED, null);
    expect(await userRow("alice")).toEqual({ mfa_enabled: 0, totp_secret: null, last_totp_step: null });
    // Bob's enrolment is untouched and still completes, by bob.
    await expectEnvelope(await completeTotp(bob, "bob", body), 200, "totp setup complete for user bob", null);
  });

  it("answers 400 totp setup expired to an enrolment already completed", async () => {
    const { alice } = await setup();
    const enrolment = await startEnrolment(alice, "alice");
    const secret = secretOf(enrolment.otp_auth_url);
    await expectEnvelope(await completeTotp(alice, "alice", { ...enrolment, totp: await totpCode(secret, T0) }), 200, "totp setup complete for user alice", null);
    setClock(T0 + PERIOD);
    const before = await snapshot();
    await expectEnvelope(await completeTotp(alice, "alice", { ...enrolment, totp: await totpCode(secret, T0 + PERIOD) }), 400, EXPIRED, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 400 cannot setup totp ...: invalid otp to a wrong, missing, malformed or too old code, and keeps the enrolment pending", async () => {
    const { alice } = await setup();
    const enrolment = await startEnrolment(alice, "alice");
    const secret = secretOf(enrolment.otp_auth_url);
    const right = await totpCode(secret, T0);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, "0");
    const codes = [wrong, await totpCode(secret, T0 - 2 * PERIOD), await totpCode(secret, T0 + 2 * PERIOD), right.slice(1), `${right}0`, ""];
    for (const totp of codes) {
      const response = await completeTotp(alice, "alice", { ...enrolment, totp });
      await expectEnvelope(response, 400, "cannot setup totp for user alice: invalid otp", null);
    }
    await expectEnvelope(await completeTotp(alice, "alice", enrolment), 400, "cannot setup totp for user alice: invalid otp", null);
    expect(await userRow("alice")).toEqual({ mfa_enabled: 0, totp_secret: null, last_totp_step: null });
    expect((await pendingKeys()).map((key) => key.name)).toEqual(["totp-enrolment:alice"]);
    expect(await eventsOf("totp.enrol")).toEqual(Array(codes.length + 1).fill({ subject: "alice", outcome: "failure", reason: "wrong code" }));
    // The enrolment is still good for the right code.
    await expectEnvelope(await completeTotp(alice, "alice", { ...enrolment, totp: right }), 200, "totp setup complete for user alice", null);
  });

  it("turns MFA on with the secret sealed, records the code's step as used, and deletes the pending entry", async () => {
    const { alice } = await setup();
    const enrolment = await startEnrolment(alice, "alice");
    const secret = secretOf(enrolment.otp_auth_url);
    // A code from one step behind the clock is within the skew, and its own step is the one recorded.
    const totp = await totpCode(secret, T0 - PERIOD);
    const response = await completeTotp(alice, "alice", { ...enrolment, totp });
    await expectEnvelope(response, 200, "totp setup complete for user alice", null);

    const row = (await userRow("alice"))!;
    expect(row.mfa_enabled).toBe(1);
    expect(row.last_totp_step).toBe(STEP0 - 1);
    expect(row.totp_secret).toMatch(/^v1\.test2\./);
    expect(row.totp_secret).not.toContain(secret);
    expect(row.totp_secret).not.toContain(secret.toLowerCase());
    expect(await pendingKeys()).toEqual([]);
    expect(await eventsOf("totp.enrol")).toEqual([{ subject: "alice", outcome: "success", reason: null }]);
  });

  it("completes once when one enrolment is completed by many requests at the same time", async () => {
    const { alice } = await setup();
    const enrolment = await startEnrolment(alice, "alice");
    const body = { ...enrolment, totp: await totpCode(secretOf(enrolment.otp_auth_url), T0) };
    const responses = await Promise.all(Array.from({ length: 10 }, () => completeTotp(alice, "alice", body)));
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    for (const response of responses) {
      if (response.status === 200) await expectEnvelope(response, 200, "totp setup complete for user alice", null);
      else await expectEnvelope(response, 400, EXPIRED, null);
    }
    expect((await userRow("alice"))!.mfa_enabled).toBe(1);
    expect(await pendingKeys()).toEqual([]);
    expect(await eventsOf("totp.enrol")).toEqual([{ subject: "alice", outcome: "success", reason: null }]);
  });
});

describe("POST /api/users/{username}/auth/verify-totp", () => {
  /** alice enrolled at T0 (step STEP0 used), logged in with her password: her pre-auth token. */
  async function enrolledAlice() {
    const { admin, alice } = await setup();
    const secret = await enrol(alice, "alice");
    const preAuth = await preAuthLogin(ALICE);
    return { admin, alice, secret, preAuth };
  }

  it("answers 401 unauthorized to a missing, malformed, forged, expired, wrong-audience or host token", async () => {
    const { admin, secret, preAuth } = await enrolledAlice();
    const host = await hostToken(admin);
    const body = { totp: await totpCode(secret, T0 + PERIOD) };
    const now = T0;
    const otherAudience = await new SignJWT({ sub: "alice", aud: ["auth:other"], jti: crypto.randomUUID(), iss: "Netmaker", iat: now, exp: now + 300 })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(new TextEncoder().encode(env.JWT_SECRET));
    const before = await snapshot();

    await expectEnvelope(await verifyTotp(undefined, "alice", body), 401, UNAUTHORIZED, null);
    for (const header of MALFORMED_HEADERS) {
      const response = await post("/api/users/alice/auth/verify-totp", { headers: { Authorization: header }, body });
      await expectEnvelope(response, 401, UNAUTHORIZED, null);
    }
    await expectEnvelope(await verifyTotp(await forge(preAuth), "alice", body), 401, UNAUTHORIZED, null);
    await expectEnvelope(await verifyTotp(otherAudience, "alice", body), 401, UNAUTHORIZED, null);
    await expectEnvelope(await verifyTotp(host, "alice", body), 401, UNAUTHORIZED, null);
    setClock(T0 + PREAUTH_TOKEN_TTL + 1);
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp: await totpCode(secret, T0 + PREAUTH_TOKEN_TTL + 1) }), 401, UNAUTHORIZED, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 403 forbidden to another user's token, before reading the body", async () => {
    const { admin, secret } = await enrolledAlice();
    await createUser(admin, BOB.username, BOB.password);
    const bob = await login(BOB.username, BOB.password);
    await enrol(bob, "bob");
    const bobPreAuth = await preAuthLogin(BOB);
    const before = await snapshot();
    const body = { totp: await totpCode(secret, T0 + PERIOD) };
    await expectEnvelope(await verifyTotp(bobPreAuth, "alice", body), 403, "forbidden", null);
    await expectEnvelope(await verifyTotp(bob, "alice", body), 403, "forbidden", null);
    await expectEnvelope(await verifyTotp(bobPreAuth, "alice", "not json"), 403, "forbidden", null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 400 invalid request body to a body that is not JSON or has a field of the wrong type", async () => {
    const { preAuth } = await enrolledAlice();
    const before = await snapshot();
    await expectEnvelope(await verifyTotp(preAuth, "alice", "{"), 400, "invalid request body: not valid JSON", null);
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp: 123456 }), 400, /^invalid request body: totp: /, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 401 user account disabled to a disabled account, even with the right code", async () => {
    const { admin, secret, preAuth } = await enrolledAlice();
    await expectEnvelope(await post("/api/users/alice/disable", { token: admin }), 200, "user alice disabled");
    const before = await snapshot();
    const response = await verifyTotp(preAuth, "alice", { totp: await totpCode(secret, T0 + PERIOD) });
    await expectEnvelope(response, 401, "user account disabled", null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 400 mfa is disabled to a user without MFA", async () => {
    const { alice } = await setup();
    const before = await snapshot();
    const response = await verifyTotp(alice, "alice", { totp: "123456" });
    await expectEnvelope(response, 400, "mfa is disabled for user(alice), cannot process totp verification", null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers 401 invalid otp to a wrong or malformed code, counting it against the pre-auth token", async () => {
    const { secret, preAuth } = await enrolledAlice();
    const right = await totpCode(secret, T0 + PERIOD);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, "0");
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp: wrong }), 401, "invalid otp", null);
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp: "" }), 401, "invalid otp", null);
    expect((await userRow("alice"))!.last_totp_step).toBe(STEP0);
    const jti = claims(preAuth).jti;
    expect(await env.DB.prepare("SELECT failures, used FROM preauth_tokens WHERE jti = ?").bind(jti).first()).toEqual({ failures: 2, used: 0 });
    expect(await eventsOf("user.totp")).toEqual(Array(2).fill({ subject: "alice", outcome: "failure", reason: "wrong code" }));
  });

  it("refuses the code used to complete the enrolment: its step is already used", async () => {
    const { secret, preAuth } = await enrolledAlice();
    const response = await verifyTotp(preAuth, "alice", { totp: await totpCode(secret, T0) });
    await expectEnvelope(response, 401, "invalid otp", null);
    expect(await eventsOf("user.totp")).toEqual([{ subject: "alice", outcome: "failure", reason: "code already used" }]);
  });

  it("logs in with the code of the next step, ignoring otp_auth_url in the body, and uses the pre-auth token up", async () => {
    const { secret, preAuth } = await enrolledAlice();
    setClock(T0 + PERIOD);
    const body = { totp: await totpCode(secret, T0 + PERIOD), otp_auth_url: "ignored", otp_auth_url_signature: "ignored" };
    const payload = await expectEnvelope(await verifyTotp(preAuth, "alice", body), 200, "W1R3: User alice Authorized");
    expect(Object.keys(payload).sort()).toEqual(["AuthToken", "UserName"]);
    expect(payload.UserName).toBe("alice");
    const token = claims(payload.AuthToken);
    expect(token).toEqual(userTokenClaims("alice", "platform-user", T0 + PERIOD, T0 + PERIOD + USER_TOKEN_TTL));
    expect((await userRow("alice"))!.last_totp_step).toBe(STEP0 + 1);
    const jti = claims(preAuth).jti;
    expect(await env.DB.prepare("SELECT used FROM preauth_tokens WHERE jti = ?").bind(jti).first("used")).toBe(1);
    expect(await eventsOf("user.totp")).toEqual([{ subject: "alice", outcome: "success", reason: null }]);

    // The full token works where one is needed.
    const me = await get("/api/users/alice", { token: payload.AuthToken });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { is_mfa_enabled: boolean }).is_mfa_enabled).toBe(true);

    // Used up: the same pre-auth token with the next step's good code is refused at the door...
    setClock(T0 + 2 * PERIOD);
    const nextCode = await totpCode(secret, T0 + 2 * PERIOD);
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp: nextCode }), 401, UNAUTHORIZED, null);
    // ...while that code is good with a fresh pre-auth token.
    const fresh = await preAuthLogin(ALICE);
    await expectEnvelope(await verifyTotp(fresh, "alice", { totp: nextCode }), 200, "W1R3: User alice Authorized");
  });

  it("accepts a full token of the same user", async () => {
    const { alice, secret } = await enrolledAlice();
    const response = await verifyTotp(alice, "alice", { totp: await totpCode(secret, T0 + PERIOD) });
    const payload = await expectEnvelope(response, 200, "W1R3: User alice Authorized");
    expect(claims(payload.AuthToken)).toMatchObject({ UserName: "alice", TokenType: "user_id_token", sub: "user|alice" });
    expect((await userRow("alice"))!.last_totp_step).toBe(STEP0 + 1);
  });

  it("refuses a replay of the code just accepted", async () => {
    const { secret, preAuth } = await enrolledAlice();
    setClock(T0 + PERIOD);
    const totp = await totpCode(secret, T0 + PERIOD);
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp }), 200, "W1R3: User alice Authorized");
    const again = await preAuthLogin(ALICE);
    await expectEnvelope(await verifyTotp(again, "alice", { totp }), 401, "invalid otp", null);
    expect((await userRow("alice"))!.last_totp_step).toBe(STEP0 + 1);
  });

  it("refuses a code from two steps back", async () => {
    const { secret, preAuth } = await enrolledAlice();
    setClock(T0 + 3 * PERIOD);
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp: await totpCode(secret, T0 + PERIOD) }), 401, "invalid otp", null);
    expect(await eventsOf("user.totp")).toEqual([{ subject: "alice", outcome: "failure", reason: "wrong code" }]);
    // The code of the current step is good: the refusal was the window's, not the token's.
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp: await totpCode(secret, T0 + 3 * PERIOD) }), 200, "W1R3: User alice Authorized");
  });

  it("refuses a code for a step earlier than the last accepted, even inside the window", async () => {
    const { secret, preAuth } = await enrolledAlice();
    setClock(T0 + PERIOD);
    // One step ahead (clock skew): accepted, and step STEP0 + 2 is now the last used.
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp: await totpCode(secret, T0 + 2 * PERIOD) }), 200, "W1R3: User alice Authorized");
    expect((await userRow("alice"))!.last_totp_step).toBe(STEP0 + 2);
    const again = await preAuthLogin(ALICE);
    await expectEnvelope(await verifyTotp(again, "alice", { totp: await totpCode(secret, T0 + PERIOD) }), 401, "invalid otp", null);
    expect((await userRow("alice"))!.last_totp_step).toBe(STEP0 + 2);
  });

  it("lets exactly one of many concurrent requests with one code in", async () => {
    const { secret } = await enrolledAlice();
    const REQUESTS = 10;
    const preAuths: string[] = [];
    for (let i = 0; i < REQUESTS; i++) preAuths.push(await preAuthLogin(ALICE));
    const totp = await totpCode(secret, T0 + PERIOD);
    // Lockout is not what this test is about: its limit is raised out of the way.
    const limits = { MAX_FAILED_ATTEMPTS: "1000", PREAUTH_MAX_FAILURES: "1000" };
    const responses = await Promise.all(preAuths.map((token) => verifyTotp(token, "alice", { totp }, limits)));
    expect(responses.filter((response) => response.status === 200)).toHaveLength(1);
    for (const response of responses) {
      if (response.status === 200) await expectEnvelope(response, 200, "W1R3: User alice Authorized");
      else await expectEnvelope(response, 401, "invalid otp", null);
    }
    expect((await userRow("alice"))!.last_totp_step).toBe(STEP0 + 1);
    const outcomes = (await eventsOf("user.totp")).map((event: any) => event.outcome);
    expect(outcomes.filter((outcome) => outcome === "success")).toHaveLength(1);
  });
});

describe("the secret at rest", () => {
  it("never appears in plain text in D1 or KV, through enrolment and login", async () => {
    const { alice } = await setup();
    const enrolment = await startEnrolment(alice, "alice");
    const secret = secretOf(enrolment.otp_auth_url);
    const raw = base32Bytes(secret);
    const rawHex = [...raw].map((byte) => byte.toString(16).padStart(2, "0")).join("");
    // Unpadded, so that a padded copy is caught too.
    const rawBase64 = btoa(String.fromCharCode(...raw)).replace(/=+$/, "");
    const rawBase64Url = rawBase64.replace(/\+/g, "-").replace(/\//g, "_");
    const pending = await kvValues();
    expect(pending).toContain("totp-enrolment:alice");
    await expectEnvelope(await completeTotp(alice, "alice", { ...enrolment, totp: await totpCode(secret, T0) }), 200, "totp setup complete for user alice", null);
    setClock(T0 + PERIOD);
    const preAuth = await preAuthLogin(ALICE);
    await expectEnvelope(await verifyTotp(preAuth, "alice", { totp: await totpCode(secret, T0 + PERIOD) }), 200, "W1R3: User alice Authorized");
    const stored = (await d1Rows()) + pending + (await kvValues());
    expect(stored).toContain("v1.");
    for (const form of [secret, secret.toLowerCase(), rawHex, rawBase64, rawBase64Url]) expect(stored).not.toContain(form);
  });
});

describe("POST /api/users/{username}/auth/reset-totp", () => {
  it("turns MFA off and deletes the secret, after which password login gives a full token", async () => {
    const { admin, alice } = await setup();
    await enrol(alice, "alice");
    await startEnrolment(alice, "alice"); // a pending re-enrolment goes too
    const response = await post("/api/users/alice/auth/reset-totp", { token: admin });
    const user = await expectEnvelope(response, 200, "totp reset for user alice");
    expect(user).toMatchObject({ username: "alice", is_mfa_enabled: false });
    expect(JSON.stringify(user)).not.toMatch(/totp_secret|v1\./);
    expect(await userRow("alice")).toEqual({ mfa_enabled: 0, totp_secret: null, last_totp_step: null });
    expect(await pendingKeys()).toEqual([]);
    expect(await eventsOf("admin.totp.reset")).toEqual([{ subject: "alice", outcome: "success", reason: null }]);

    const full = await login(ALICE.username, ALICE.password);
    const verify = await verifyTotp(full, "alice", { totp: "123456" });
    await expectEnvelope(verify, 400, "mfa is disabled for user(alice), cannot process totp verification", null);
  });
});

describe("the full flow, through fetch only", () => {
  it("creates the super admin, enrols, logs in with the password and then the code", async () => {
    const adminToken = await createSuperAdmin();
    const enrolment = await startEnrolment(adminToken, SUPER_ADMIN.username);
    const secret = secretOf(enrolment.otp_auth_url);
    const complete = await completeTotp(adminToken, SUPER_ADMIN.username, { ...enrolment, totp: await totpCode(secret, T0) });
    await expectEnvelope(complete, 200, `totp setup complete for user ${SUPER_ADMIN.username}`, null);

    setClock(T0 + 40);
    const preAuth = await preAuthLogin(SUPER_ADMIN);
    const preAuthClaims = claims(preAuth);
    expect(preAuthClaims).toEqual({
      iss: "Netmaker",
      sub: SUPER_ADMIN.username,
      aud: ["auth:mfa"],
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
      iat: T0 + 40,
      exp: T0 + 40 + PREAUTH_TOKEN_TTL,
    });

    const verify = await verifyTotp(preAuth, SUPER_ADMIN.username, { totp: await totpCode(secret, T0 + 40) });
    const payload = await expectEnvelope(verify, 200, `W1R3: User ${SUPER_ADMIN.username} Authorized`);
    expect(payload.UserName).toBe(SUPER_ADMIN.username);
    expect(claims(payload.AuthToken)).toMatchObject({ Role: "super-admin", UserName: "admin", TokenType: "user_id_token", sub: "user|admin" });
    expect(await userRow(SUPER_ADMIN.username)).toMatchObject({ mfa_enabled: 1, last_totp_step: STEP0 + 1 });
    const config = await get("/api/server/getconfig", { token: payload.AuthToken });
    expect(config.status).toBe(200);
  });

  it("refuses the pre-auth token on every route that needs a full token", async () => {
    const { admin } = await setup();
    await enrol(admin, SUPER_ADMIN.username);
    const preAuth = await preAuthLogin(SUPER_ADMIN);
    const before = await snapshot();
    const routes: [string, string, unknown?][] = [
      ["POST", "/api/users/bob", { username: "bob", password: BOB.password }],
      ["GET", "/api/users/alice"],
      ["GET", "/api/users/admin"],
      ["POST", "/api/users/alice/disable"],
      ["POST", "/api/users/alice/enable"],
      ["DELETE", "/api/users/alice"],
      ["POST", "/api/users/alice/auth/reset-totp"],
      ["POST", "/api/users/admin/auth/init-totp"],
      ["POST", "/api/hosts", { name: "h1" }],
      ["GET", "/api/hosts"],
      ["DELETE", "/api/hosts/h1"],
      ["GET", "/api/server/getconfig"],
      ["GET", "/api/v1/users?username=admin"],
      ["GET", "/api/audit/events"],
    ];
    for (const [method, path, body] of routes) {
      const response = await call(method, path, { token: preAuth, body });
      expect(response.status, `${method} ${path}`).toBe(401);
      await expectEnvelope(response, 401, UNAUTHORIZED, null);
    }
    expect(await snapshot()).toEqual(before);
  });
});

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)));
  return [...mac].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Every row of every D1 table, tables added later included, as text. */
async function d1Rows(): Promise<string> {
  const { results: tables } = await env.DB.prepare(
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
  ).all<{ name: string }>();
  expect(tables.map((table) => table.name)).toContain("users");
  const rows = await Promise.all(tables.map(async ({ name }) => [name, (await env.DB.prepare(`SELECT * FROM "${name}"`).all()).results]));
  return JSON.stringify(rows);
}

/** Every KV key with its value, as text. */
async function kvValues(): Promise<string> {
  const { keys } = await env.ENROLMENTS.list();
  const entries = await Promise.all(keys.map(async ({ name }) => [name, await env.ENROLMENTS.get(name)]));
  return JSON.stringify(entries);
}

function base32Bytes(text: string): Uint8Array {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bits = [...text].map((char) => alphabet.indexOf(char).toString(2).padStart(5, "0")).join("");
  return Uint8Array.from(bits.match(/.{8}/g) ?? [], (byte) => parseInt(byte, 2));
}
