// Concurrent requests (issue 4): the decisions that must happen once are made by one D1 statement each
// (a unique index, an atomic upsert, a conditional update), so a burst of parallel requests cannot pass twice.
import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createSuperAdmin, createUser, expectEnvelope, login, post, rowCount, totpCode } from "./helpers";

const PARALLEL = 10;
const MAX_FAILED_ATTEMPTS = 10; // wrangler.toml
const PREAUTH_MAX_FAILURES = 5;
const T0 = 1_900_000_005; // pinned clock, mid TOTP step
const ALICE = { username: "alice", password: "alice-password-1" };

beforeEach(() => vi.setSystemTime(T0 * 1000));
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const times = <T>(count: number, make: (index: number) => Promise<T>) => Promise.all(Array.from({ length: count }, (_, i) => make(i)));

/** How many responses had each status and message. */
async function tally(responses: Response[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const response of responses) {
    const body = (await response.clone().json()) as { Message?: string };
    const key = `${response.status} ${body.Message ?? JSON.stringify(body).slice(0, 30)}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

async function initTotp(username: string, token: string) {
  const response = await post(`/api/users/${username}/auth/init-totp`, { token });
  const init = await expectEnvelope(response, 200, "totp setup initiated");
  return { ...init, secret: new URL(init.otp_auth_url).searchParams.get("secret")! };
}

/** alice, with TOTP on, enrolled with the previous step's code so that T0's step is still free. */
async function enrolledAlice() {
  const admin = await createSuperAdmin();
  await createUser(admin, ALICE.username, ALICE.password);
  const token = await login(ALICE.username, ALICE.password);
  const init = await initTotp(ALICE.username, token);
  const body = { otp_auth_url: init.otp_auth_url, otp_auth_url_signature: init.otp_auth_url_signature, totp: await totpCode(init.secret, T0 - 30) };
  const completed = await post(`/api/users/${ALICE.username}/auth/complete-totp`, { token, body });
  await expectEnvelope(completed, 200, `totp setup complete for user ${ALICE.username}`, null);
  return init;
}

const lastTotpStep = () => env.DB.prepare("SELECT last_totp_step FROM users WHERE username = ?").bind(ALICE.username).first("last_totp_step");

it("makes exactly one super admin out of parallel bootstraps", async () => {
  const derivations = vi.spyOn(crypto.subtle, "deriveBits");
  const responses = await times(PARALLEL, (i) =>
    post("/api/users/adm/createsuperadmin", { body: { username: `root-${i}`, password: "root-password-1" } }),
  );
  const winners = responses.filter((response) => response.status === 200);
  expect(winners).toHaveLength(1);
  const winner = (await winners[0].json()) as { username: string; issuperadmin: boolean };
  expect(winner.issuperadmin).toBe(true);
  for (const loser of responses.filter((response) => response.status !== 200)) {
    await expectEnvelope(loser, 400, "superadmin user already exists", null);
  }
  // More than one request got past the "is there one already?" read: the unique index decided.
  expect(derivations.mock.calls.length).toBeGreaterThan(1);
  const users = await env.DB.prepare("SELECT username, platform_role FROM users").all();
  expect(users.results).toEqual([{ username: winner.username, platform_role: "super-admin" }]);
  const events = await env.DB.prepare("SELECT kind, subject, outcome FROM auth_events").all();
  expect(events.results).toEqual([{ kind: "admin.superadmin.create", subject: winner.username, outcome: "success" }]);
});

describe("parallel failed logins", () => {
  for (const [label, username] of [["of a known user", ALICE.username], ["of an unknown name", "nobody"]] as const) {
    it(`are all counted, and no more than the limit are checked (${label})`, async () => {
      const admin = await createSuperAdmin();
      await createUser(admin, ALICE.username, ALICE.password);
      const derivations = vi.spyOn(crypto.subtle, "deriveBits");
      const burst = 2 * MAX_FAILED_ATTEMPTS;
      const responses = await times(burst, (i) => post("/api/users/adm/authenticate", { body: { username, password: `guess-${i}` } }));
      expect(await tally(responses)).toEqual({
        "400 incorrect credentials": MAX_FAILED_ATTEMPTS,
        "429 too many failed attempts, try again later": burst - MAX_FAILED_ATTEMPTS,
      });
      expect(derivations).toHaveBeenCalledTimes(MAX_FAILED_ATTEMPTS);
      const counter = await env.DB.prepare("SELECT failures, locked_until FROM login_failures WHERE subject = ?").bind(`user:${username}`).first();
      expect(counter).toEqual({ failures: burst, locked_until: T0 + 900 });
      const events = await env.DB.prepare(
        "SELECT outcome, count(*) AS n FROM auth_events WHERE kind = 'user.login' AND subject = ? GROUP BY outcome ORDER BY outcome",
      )
        .bind(username)
        .all();
      expect(events.results).toEqual([
        { outcome: "failure", n: MAX_FAILED_ATTEMPTS },
        { outcome: "locked", n: burst - MAX_FAILED_ATTEMPTS },
      ]);
    });
  }
});

describe("one TOTP code sent in parallel", () => {
  it("completes an enrolment once", async () => {
    const admin = await createSuperAdmin();
    await createUser(admin, ALICE.username, ALICE.password);
    const token = await login(ALICE.username, ALICE.password);
    const init = await initTotp(ALICE.username, token);
    const body = { otp_auth_url: init.otp_auth_url, otp_auth_url_signature: init.otp_auth_url_signature, totp: await totpCode(init.secret, T0) };

    const responses = await times(PARALLEL, () => post(`/api/users/${ALICE.username}/auth/complete-totp`, { token, body }));
    expect(await tally(responses)).toEqual({
      [`200 totp setup complete for user ${ALICE.username}`]: 1,
      "400 totp setup expired, initiate it again": PARALLEL - 1,
    });
    const user = await env.DB.prepare("SELECT mfa_enabled, last_totp_step FROM users WHERE username = ?").bind(ALICE.username).first();
    expect(user).toEqual({ mfa_enabled: 1, last_totp_step: Math.floor(T0 / 30) });
    expect(await env.DB.prepare("SELECT count(*) AS n FROM auth_events WHERE kind = 'totp.enrol' AND outcome = 'success'").first("n")).toBe(1);
    expect((await env.ENROLMENTS.list()).keys).toEqual([]);
  });

  it("checks no more than PREAUTH_MAX_FAILURES codes sent in parallel with one pre-auth token", async () => {
    const init = await enrolledAlice();
    const step = await expectEnvelope(await post("/api/users/adm/authenticate", { body: ALICE }), 200, "W1R3: TOTP required");
    const preAuth = step.pre_auth_token as string;

    // The account limit is raised out of the way: this is about the token's own limit.
    const limits = { MAX_FAILED_ATTEMPTS: "1000" } as unknown as Partial<Env>;
    const accepted = await Promise.all([T0 - 30, T0, T0 + 30].map((time) => totpCode(init.secret, time)));
    const wrong = Array.from({ length: 1000 }, (_, i) => String(i).padStart(6, "0")).filter((code) => !accepted.includes(code));
    const burst = 4 * PREAUTH_MAX_FAILURES;
    const responses = await times(burst, (i) =>
      post(`/api/users/${ALICE.username}/auth/verify-totp`, { token: preAuth, body: { totp: wrong[i] }, env: limits }),
    );
    expect(await tally(responses)).toEqual({ "401 invalid otp": PREAUTH_MAX_FAILURES, "401 unauthorized": burst - PREAUTH_MAX_FAILURES });
    const events = await env.DB.prepare("SELECT reason, count(*) AS n FROM auth_events WHERE kind = 'user.totp' GROUP BY reason ORDER BY reason").all();
    expect(events.results).toEqual([
      { reason: "pre-auth token used up", n: burst - PREAUTH_MAX_FAILURES },
      { reason: "wrong code", n: PREAUTH_MAX_FAILURES },
    ]);
  });

  it("lets one pre-auth token in once, even with two different valid codes sent at the same time", async () => {
    const init = await enrolledAlice();
    const step = await expectEnvelope(await post("/api/users/adm/authenticate", { body: ALICE }), 200, "W1R3: TOTP required");
    const preAuth = step.pre_auth_token as string;
    // Codes for this step and the next are both within the skew window, and both later than the last used.
    const codes = await Promise.all([T0, T0 + 30].map((time) => totpCode(init.secret, time)));
    const responses = await Promise.all(
      codes.map((totp) => post(`/api/users/${ALICE.username}/auth/verify-totp`, { token: preAuth, body: { totp } })),
    );
    expect(await tally(responses)).toEqual({ [`200 W1R3: User ${ALICE.username} Authorized`]: 1, "401 invalid otp": 1 });
    expect(await env.DB.prepare("SELECT used FROM preauth_tokens").first("used")).toBe(1);
  });

  it("lets one login through verify-totp, whichever pre-auth token carries it", async () => {
    const init = await enrolledAlice();

    const preAuthTokens = [];
    for (let i = 0; i < PARALLEL; i++) {
      const step = await expectEnvelope(await post("/api/users/adm/authenticate", { body: ALICE }), 200, "W1R3: TOTP required");
      preAuthTokens.push(step.pre_auth_token as string);
    }
    const code = await totpCode(init.secret, T0);
    const responses = await Promise.all(
      preAuthTokens.map((preAuth) => post(`/api/users/${ALICE.username}/auth/verify-totp`, { token: preAuth, body: { totp: code } })),
    );
    expect(await tally(responses)).toEqual({ [`200 W1R3: User ${ALICE.username} Authorized`]: 1, "401 invalid otp": PARALLEL - 1 });
    expect(await lastTotpStep()).toBe(Math.floor(T0 / 30));
    expect(await rowCount("preauth_tokens")).toBe(PARALLEL);
    expect(await env.DB.prepare("SELECT count(*) AS n FROM preauth_tokens WHERE used = 1").first("n")).toBe(1);
  });
});
