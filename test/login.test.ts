// User login, POST /api/users/adm/authenticate (API.md §2), and the public endpoints' indifference to
// the Authorization header (§1). TOTP verification and lockout thresholds have their own files.
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { issueUserToken } from "../src/lib/tokens";
import {
  claims,
  createHost,
  createSuperAdmin,
  createUser,
  expectEnvelope,
  expectNoSecrets,
  get,
  nowSeconds,
  post,
  snapshot,
  SUPER_ADMIN,
  userTokenClaims,
} from "./helpers";

const LOGIN = "/api/users/adm/authenticate";
const USER_TOKEN_TTL = 12 * 3600;
const PRE_AUTH_TOKEN_TTL = 300;
// A token's iat is the server's clock; allow for the time the request itself takes.
const CLOCK_SLACK = 5;

const BOB = { username: "bob", password: "bob-password-1" };

async function failures(username: string) {
  return env.DB.prepare("SELECT failures FROM login_failures WHERE subject = ?").bind(`user:${username}`).first("failures");
}

async function loginEvents() {
  const { results } = await env.DB.prepare(
    "SELECT subject, outcome, reason, ip FROM auth_events WHERE kind = 'user.login' ORDER BY id",
  ).all();
  return results;
}

let adminToken: string;
beforeEach(async () => {
  adminToken = await createSuperAdmin();
  await createUser(adminToken, BOB.username, BOB.password);
});

describe("empty username or password: 400 before anything is checked or stored", () => {
  it.each([
    [{ password: "x" }, "username can't be empty"],
    [{ username: "", password: "x" }, "username can't be empty"],
    [{}, "username can't be empty"],
    [{ username: "", password: "" }, "username can't be empty"],
    [{ username: "bob" }, "password can't be empty"],
    [{ username: "bob", password: "" }, "password can't be empty"],
  ])("%j -> %s", async (body, message) => {
    const before = await snapshot();
    await expectEnvelope(await post(LOGIN, { body }), 400, message, null);
    expect(await snapshot()).toEqual(before);
  });
});

describe("unknown user or wrong password: the same 400 incorrect credentials", () => {
  it("answers both with an identical response", async () => {
    const unknown = await post(LOGIN, { body: { username: "nobody", password: BOB.password } });
    const wrong = await post(LOGIN, { body: { username: BOB.username, password: "not-bobs-password" } });
    expect(unknown.status).toBe(wrong.status);
    expect(await unknown.clone().text()).toBe(await wrong.clone().text());
    await expectEnvelope(unknown, 400, "incorrect credentials", null);
    await expectEnvelope(wrong, 400, "incorrect credentials", null);
  });

  it("counts a failure for known and unknown names alike, and records why in the audit trail", async () => {
    await post(LOGIN, { body: { username: "nobody", password: "whatever" } });
    await post(LOGIN, { body: { username: BOB.username, password: "not-bobs-password" } });
    expect(await failures("nobody")).toBe(1);
    expect(await failures(BOB.username)).toBe(1);
    expect((await loginEvents()).slice(-2)).toEqual([
      { subject: "nobody", outcome: "failure", reason: "unknown user", ip: "192.0.2.1" },
      { subject: "bob", outcome: "failure", reason: "wrong password", ip: "192.0.2.1" },
    ]);
  });

  it("is case-sensitive about the password", async () => {
    const response = await post(LOGIN, { body: { username: BOB.username, password: BOB.password.toUpperCase() } });
    await expectEnvelope(response, 400, "incorrect credentials", null);
  });
});

describe("right password, disabled account: 401 user account disabled", () => {
  beforeEach(async () => {
    await env.DB.prepare("UPDATE users SET account_disabled = 1 WHERE username = ?").bind(BOB.username).run();
  });

  it("refuses the login and records it", async () => {
    await expectEnvelope(await post(LOGIN, { body: BOB }), 401, "user account disabled", null);
    expect((await loginEvents()).at(-1)).toEqual({ subject: "bob", outcome: "failure", reason: "account disabled", ip: "192.0.2.1" });
  });

  it("still answers a wrong password with incorrect credentials (the password is checked first)", async () => {
    const response = await post(LOGIN, { body: { username: BOB.username, password: "not-bobs-password" } });
    await expectEnvelope(response, 400, "incorrect credentials", null);
  });
});

describe("MFA off: 200 W1R3: Device <u> Authorized with {UserName, AuthToken}", () => {
  it("issues a full user token with Netmaker's claim set", async () => {
    const response = await post(LOGIN, { body: BOB });
    await expectNoSecrets(response, [BOB.password]);
    const payload = await expectEnvelope(response, 200, "W1R3: Device bob Authorized");
    expect(Object.keys(payload).sort()).toEqual(["AuthToken", "UserName"]);
    expect(payload.UserName).toBe("bob");
    const token = claims(payload.AuthToken);
    expect(token).toEqual(userTokenClaims("bob", "platform-user", expect.any(Number), expect.any(Number)));
    expect(token.exp - token.iat).toBe(USER_TOKEN_TTL);
    expect(Math.abs(token.iat - nowSeconds())).toBeLessThanOrEqual(CLOCK_SLACK);
  });

  it("carries the super admin's role in the super admin's token", async () => {
    const response = await post(LOGIN, { body: SUPER_ADMIN });
    await expectNoSecrets(response);
    const payload = await expectEnvelope(response, 200, "W1R3: Device admin Authorized");
    expect(claims(payload.AuthToken)).toMatchObject({ Role: "super-admin", UserName: "admin", sub: "user|admin" });
  });

  it("clears earlier failures and records the success", async () => {
    await post(LOGIN, { body: { username: BOB.username, password: "not-bobs-password" } });
    expect(await failures(BOB.username)).toBe(1);
    const response = await post(LOGIN, { body: BOB });
    await expectNoSecrets(response, [BOB.password]);
    await expectEnvelope(response, 200, "W1R3: Device bob Authorized");
    expect(await failures(BOB.username)).toBeNull();
    expect((await loginEvents()).at(-1)).toEqual({ subject: "bob", outcome: "success", reason: null, ip: "192.0.2.1" });
  });

  it("issues a token that the authenticated routes accept", async () => {
    const payload = await expectEnvelope(await post(LOGIN, { body: BOB }), 200, "W1R3: Device bob Authorized");
    const response = await get("/api/users/bob", { token: payload.AuthToken });
    await expectNoSecrets(response, [BOB.password]);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ username: "bob", platform_role_id: "platform-user" });
  });
});

describe("MFA on: 200 W1R3: TOTP required with {user_name, pre_auth_token} and no full token", () => {
  // Stands in for a sealed secret; login must neither open nor show it.
  const STORED_SECRET = "v1.test2.AAAAAAAAAAAAAAAA.c2VhbGVkLXNlY3JldA";

  beforeEach(async () => {
    await env.DB.prepare("UPDATE users SET mfa_enabled = 1, totp_secret = ? WHERE username = ?")
      .bind(STORED_SECRET, BOB.username)
      .run();
  });

  it("answers with a pre-auth token only", async () => {
    const response = await post(LOGIN, { body: BOB });
    await expectNoSecrets(response, [BOB.password, STORED_SECRET]);
    const payload = await expectEnvelope(response, 200, "W1R3: TOTP required");
    expect(Object.keys(payload).sort()).toEqual(["pre_auth_token", "user_name"]);
    expect(payload.user_name).toBe("bob");
  });

  it("makes the pre-auth token Netmaker's MFA claim set, valid for 5 minutes", async () => {
    const payload = await expectEnvelope(await post(LOGIN, { body: BOB }), 200, "W1R3: TOTP required");
    const token = claims(payload.pre_auth_token);
    expect(token).toEqual({
      iss: "Netmaker",
      sub: "bob",
      aud: ["auth:mfa"],
      jti: expect.any(String),
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    expect(token.jti.length).toBeGreaterThan(0);
    expect(token.exp - token.iat).toBe(PRE_AUTH_TOKEN_TTL);
  });

  it("gives each login its own jti", async () => {
    const first = await expectEnvelope(await post(LOGIN, { body: BOB }), 200, "W1R3: TOTP required");
    const second = await expectEnvelope(await post(LOGIN, { body: BOB }), 200, "W1R3: TOTP required");
    expect(claims(first.pre_auth_token).jti).not.toBe(claims(second.pre_auth_token).jti);
  });

  it("does not count the right password as a failure, and records that TOTP is pending", async () => {
    await expectEnvelope(await post(LOGIN, { body: BOB }), 200, "W1R3: TOTP required");
    expect(await failures(BOB.username)).toBe(0);
    expect((await loginEvents()).at(-1)).toEqual({ subject: "bob", outcome: "success", reason: "totp required", ip: "192.0.2.1" });
    const preAuthRows = await env.DB.prepare("SELECT count(*) AS n FROM preauth_tokens").first("n");
    expect(preAuthRows).toBe(0);
  });

  it("answers a wrong password with incorrect credentials and no token of any kind", async () => {
    const response = await post(LOGIN, { body: { username: BOB.username, password: "not-bobs-password" } });
    await expectEnvelope(response, 400, "incorrect credentials", null);
  });
});

describe("public endpoints ignore the Authorization header (API.md §1)", () => {
  const expired = () => issueUserToken(env.JWT_SECRET, { username: "admin", role: "super-admin" }, nowSeconds() - 2 * USER_TOKEN_TTL, USER_TOKEN_TTL);
  const garbage = ["Bearer garbage", "Bearer a.b.c", "Basic Zm9vOmJhcg==", "nonsense", ""];

  it.each(garbage)("user login succeeds with Authorization %j", async (authorization) => {
    const response = await post(LOGIN, { body: BOB, headers: { Authorization: authorization } });
    await expectNoSecrets(response, [BOB.password]);
    await expectEnvelope(response, 200, "W1R3: Device bob Authorized");
  });

  it("user login succeeds with the web UI's old, expired token", async () => {
    const response = await post(LOGIN, { body: BOB, token: await expired() });
    await expectNoSecrets(response, [BOB.password]);
    await expectEnvelope(response, 200, "W1R3: Device bob Authorized");
  });

  it("host login, hassuperadmin and status answer as without the header", async () => {
    const host = await createHost(adminToken, { id: "h1" });
    const headers = { Authorization: "Bearer garbage" };
    const hostLogin = await post("/api/hosts/adm/authenticate", { body: { id: "h1", password: host.password }, headers });
    await expectNoSecrets(hostLogin);
    await expectEnvelope(hostLogin, 200, "W1R3: Host h1 Authorized");
    const hasSuperAdmin = await get("/api/users/adm/hassuperadmin", { headers });
    expect(hasSuperAdmin.status).toBe(200);
    expect(await hasSuperAdmin.json()).toBe(true);
    const status = await get("/api/server/status", { headers });
    expect(status.status).toBe(200);
  });
});

describe("createsuperadmin ignores the Authorization header (API.md §1)", () => {
  it("bootstraps on an empty database with a garbage token", async () => {
    await env.DB.prepare("DELETE FROM users").run();
    const response = await post("/api/users/adm/createsuperadmin", {
      body: SUPER_ADMIN,
      headers: { Authorization: "Bearer garbage" },
    });
    await expectNoSecrets(response);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ username: "admin", issuperadmin: true });
  });
});
