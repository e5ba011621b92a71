// Tokens (API.md §4): the claim sets issued, and the one verification path that pins HS256, checks
// signature, expiry and issuer, and keeps user, pre-auth and host tokens apart; then the same refusals
// through the routes, which all answer 401 unauthorized.
import { env } from "cloudflare:test";
import { SignJWT, type JWTPayload } from "jose";
import { beforeEach, describe, expect, it } from "vitest";
import { fromBase64Url, toBase64Url, utf8 } from "../src/lib/encoding";
import { issueHostToken, issuePreAuthToken, issueUserToken, verifyToken } from "../src/lib/tokens";
import { call, claims, createSuperAdmin, createUser, expectEnvelope, expectNoSecrets, get, nowSeconds } from "./helpers";

const SECRET = "unit-test-secret-0123456789abcdef";
const OTHER_SECRET = "another-secret-0123456789abcdef";
const NOW = 1_700_000_000;
const USER_TTL = 12 * 3600;
const PRE_AUTH_TTL = 300;
const HOST_TTL = 900;

const header = (token: string) => JSON.parse(new TextDecoder().decode(fromBase64Url(token.split(".")[0])));
const encodePart = (value: object) => toBase64Url(utf8.encode(JSON.stringify(value)));

/** Signs any claims with any HMAC algorithm, to build the tokens the service must refuse. */
function sign(payload: JWTPayload, secret: string, alg = "HS256") {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: "JWT" }).sign(utf8.encode(secret));
}

/** A token with `alg: none` and no signature. */
function unsigned(payload: JWTPayload) {
  return `${encodePart({ alg: "none", typ: "JWT" })}.${encodePart(payload)}.`;
}

/** The token with its payload replaced and its original signature kept. */
function tampered(token: string, change: (payload: Record<string, any>) => object) {
  const [head, , signature] = token.split(".");
  return `${head}.${encodePart(change(claims(token)))}.${signature}`;
}

function userClaims(username: string, role: string, now: number, ttl = USER_TTL): JWTPayload {
  return {
    Role: role,
    UserName: username,
    Api: "",
    TokenType: "user_id_token",
    RacAutoDisable: false,
    iss: "Netmaker",
    sub: `user|${username}`,
    iat: now,
    exp: now + ttl,
  };
}

describe("issued claim sets", () => {
  it("user token: Netmaker's claims, HS256, 12 h by default", async () => {
    const token = await issueUserToken(SECRET, { username: "bob", role: "platform-user" }, NOW, USER_TTL);
    expect(header(token)).toEqual({ alg: "HS256", typ: "JWT" });
    expect(claims(token)).toEqual(userClaims("bob", "platform-user", NOW));
  });

  it("pre-auth token: sub, aud [auth:mfa], a jti, 5 min", async () => {
    const token = await issuePreAuthToken(SECRET, "bob", NOW, PRE_AUTH_TTL);
    expect(header(token)).toEqual({ alg: "HS256", typ: "JWT" });
    expect(claims(token)).toEqual({
      iss: "Netmaker",
      sub: "bob",
      aud: ["auth:mfa"],
      jti: expect.stringMatching(/^.{16,}$/),
      iat: NOW,
      exp: NOW + PRE_AUTH_TTL,
    });
  });

  it("host token: ID, MacAddress, Network, sub node|<id>, 15 min", async () => {
    const token = await issueHostToken(SECRET, { id: "h1", macAddress: "aa:bb" }, NOW, HOST_TTL);
    expect(header(token)).toEqual({ alg: "HS256", typ: "JWT" });
    expect(claims(token)).toEqual({ ID: "h1", MacAddress: "aa:bb", Network: "", iss: "Netmaker", sub: "node|h1", iat: NOW, exp: NOW + HOST_TTL });
  });
});

describe("verifyToken tells the three kinds apart", () => {
  it("reads a user token as kind user", async () => {
    const token = await issueUserToken(SECRET, { username: "bob", role: "admin" }, NOW, USER_TTL);
    expect(await verifyToken(SECRET, token, NOW)).toEqual({ kind: "user", username: "bob", role: "admin" });
  });

  it("reads a pre-auth token as kind preauth, with its jti", async () => {
    const token = await issuePreAuthToken(SECRET, "bob", NOW, PRE_AUTH_TTL);
    expect(await verifyToken(SECRET, token, NOW)).toEqual({ kind: "preauth", username: "bob", jti: claims(token).jti, exp: NOW + PRE_AUTH_TTL });
  });

  it("reads a host token as kind host, never as a user", async () => {
    const token = await issueHostToken(SECRET, { id: "h1", macAddress: "aa:bb" }, NOW, HOST_TTL);
    expect(await verifyToken(SECRET, token, NOW)).toEqual({ kind: "host", hostId: "h1", macAddress: "aa:bb" });
  });

  it("accepts a token one second before its expiry and refuses it at expiry", async () => {
    const token = await issueUserToken(SECRET, { username: "bob", role: "admin" }, NOW, USER_TTL);
    expect(await verifyToken(SECRET, token, NOW + USER_TTL - 1)).not.toBeNull();
    expect(await verifyToken(SECRET, token, NOW + USER_TTL)).toBeNull();
  });
});

describe("verifyToken refuses", () => {
  const valid = () => issueUserToken(SECRET, { username: "bob", role: "admin" }, NOW, USER_TTL);
  const cases: [string, () => Promise<string> | string][] = [
    ["a token signed with another secret", () => issueUserToken(OTHER_SECRET, { username: "bob", role: "admin" }, NOW, USER_TTL)],
    ["an expired token", () => issueUserToken(SECRET, { username: "bob", role: "admin" }, NOW - USER_TTL - 1, USER_TTL)],
    ["alg none", () => unsigned(userClaims("bob", "admin", NOW))],
    ["HS512 signed with the right secret", () => sign(userClaims("bob", "admin", NOW), SECRET, "HS512")],
    ["HS384 signed with the right secret", () => sign(userClaims("bob", "admin", NOW), SECRET, "HS384")],
    ["the wrong issuer", () => sign({ ...userClaims("bob", "admin", NOW), iss: "NotNetmaker" }, SECRET)],
    ["no issuer", () => sign({ ...userClaims("bob", "admin", NOW), iss: undefined }, SECRET)],
    ["no expiry", () => sign({ ...userClaims("bob", "admin", NOW), exp: undefined }, SECRET)],
    ["a tampered payload (role raised)", async () => tampered(await valid(), (c) => ({ ...c, Role: "super-admin" }))],
    ["a tampered payload (user changed)", async () => tampered(await valid(), (c) => ({ ...c, UserName: "admin", sub: "user|admin" }))],
    ["a user token whose sub is not user|<UserName>", () => sign({ ...userClaims("bob", "admin", NOW), sub: "user|admin" }, SECRET)],
    ["a token with an audience other than auth:mfa", () => sign({ ...userClaims("bob", "admin", NOW), aud: ["other"] }, SECRET)],
    ["a pre-auth token without a jti", () => sign({ iss: "Netmaker", sub: "bob", aud: ["auth:mfa"], iat: NOW, exp: NOW + PRE_AUTH_TTL }, SECRET)],
    ["a pre-auth audience on a user claim set", () => sign({ ...userClaims("bob", "admin", NOW), aud: ["auth:mfa"], jti: "j" }, SECRET)],
    ["a token of no known kind", () => sign({ iss: "Netmaker", sub: "bob", iat: NOW, exp: NOW + 60 }, SECRET)],
    ["a string that is not a JWT", () => "not.a.jwt"],
  ];

  it.each(cases)("%s", async (_name, make) => {
    expect(await verifyToken(SECRET, await make(), NOW)).toBeNull();
  });
});

describe("routes answer every bad token with 401 unauthorized", () => {
  let adminToken: string;
  beforeEach(async () => {
    adminToken = await createSuperAdmin();
  });

  // Routes that take a full user token: admin ones, and the ones the web UI calls around login.
  const routes: [string, string][] = [
    ["GET", "/api/users/admin"],
    ["POST", "/api/users/admin/disable"],
    ["GET", "/api/hosts"],
    ["DELETE", "/api/hosts/h1"],
    ["GET", "/api/server/getconfig"],
    ["GET", "/api/v1/users?username=admin"],
  ];

  const now = () => nowSeconds();
  const admin = { username: "admin", role: "super-admin" };
  const badTokens: [string, () => Promise<string> | string][] = [
    ["signed with another secret", () => issueUserToken(OTHER_SECRET, admin, now(), USER_TTL)],
    ["expired", () => issueUserToken(env.JWT_SECRET, admin, now() - USER_TTL - 60, USER_TTL)],
    ["alg none", () => unsigned(userClaims("admin", "super-admin", now()))],
    ["HS512 with the right secret", () => sign(userClaims("admin", "super-admin", now()), env.JWT_SECRET, "HS512")],
    ["the wrong issuer", () => sign({ ...userClaims("admin", "super-admin", now()), iss: "Evil" }, env.JWT_SECRET)],
    ["tampered", async () => tampered(await issueUserToken(env.JWT_SECRET, { username: "bob", role: "platform-user" }, now(), USER_TTL), (c) => ({ ...c, UserName: "admin", sub: "user|admin" }))],
    ["the super admin's pre-auth token", () => issuePreAuthToken(env.JWT_SECRET, "admin", now(), PRE_AUTH_TTL)],
    ["a host token", () => issueHostToken(env.JWT_SECRET, { id: "admin", macAddress: "" }, now(), HOST_TTL)],
  ];

  for (const [method, path] of routes) {
    it.each(badTokens)(`${method} ${path}: %s`, async (_name, make) => {
      await expectEnvelope(await call(method, path, { token: await make() }), 401, "unauthorized", null);
    });
  }

  it("accepts the genuine token on the same routes (the refusals above are about the token)", async () => {
    const config = await get("/api/server/getconfig", { token: adminToken });
    await expectNoSecrets(config);
    expect(config.status).toBe(200);
    const user = await get("/api/users/admin", { token: adminToken });
    await expectNoSecrets(user);
    expect(user.status).toBe(200);
  });

  it("refuses a pre-auth token obtained by a real MFA login on admin routes", async () => {
    await env.DB.prepare("UPDATE users SET mfa_enabled = 1, totp_secret = 'v1.test2.x.y' WHERE username = 'admin'").run();
    const response = await call("POST", "/api/users/adm/authenticate", { body: { username: "admin", password: "admin-password-1" } });
    const { pre_auth_token: preAuthToken } = await expectEnvelope(response, 200, "W1R3: TOTP required");
    await expectEnvelope(await call("POST", "/api/users/bob", { token: preAuthToken, body: { password: "bob-password" } }), 401, "unauthorized", null);
    await expectEnvelope(await get("/api/server/getconfig", { token: preAuthToken }), 401, "unauthorized", null);
    await expectEnvelope(await get("/api/v1/users?username=admin", { token: preAuthToken }), 401, "unauthorized", null);
  });

  it("refuses a host token from a real host login as a user token", async () => {
    const created = await call("POST", "/api/hosts", { token: adminToken, body: { id: "admin" } });
    const { password } = await expectEnvelope(created, 200, "host admin created");
    const hostLogin = await call("POST", "/api/hosts/adm/authenticate", { body: { id: "admin", password } });
    const { AuthToken: hostToken } = await expectEnvelope(hostLogin, 200, "W1R3: Host admin Authorized");
    await expectEnvelope(await get("/api/users/admin", { token: hostToken }), 401, "unauthorized", null);
    await expectEnvelope(await get("/api/hosts", { token: hostToken }), 401, "unauthorized", null);
  });

  it("authorises by the stored role: a validly signed token claiming super-admin for a platform user gets 403", async () => {
    await createUser(adminToken, "bob", "bob-password");
    const forged = await issueUserToken(env.JWT_SECRET, { username: "bob", role: "super-admin" }, nowSeconds(), USER_TTL);
    await expectEnvelope(await get("/api/hosts", { token: forged }), 403, "forbidden", null);
  });
});

describe("malformed Authorization headers: 401 unauthorized", () => {
  let adminToken: string;
  beforeEach(async () => {
    adminToken = await createSuperAdmin();
  });

  const headers: [string, (token: string) => string][] = [
    ["the token without Bearer", (token) => token],
    ["Basic credentials", () => `Basic ${btoa("admin:admin-password-1")}`],
    ["an empty header", () => ""],
    ["Bearer with nothing after it", () => "Bearer "],
    ["Bearer and two tokens", (token) => `Bearer ${token} ${token}`],
    ["Token instead of Bearer", (token) => `Token ${token}`],
  ];

  it.each(headers)("%s", async (_name, make) => {
    const response = await get("/api/users/admin", { headers: { Authorization: make(adminToken) } });
    await expectEnvelope(response, 401, "unauthorized", null);
  });

  it("no header at all", async () => {
    await expectEnvelope(await get("/api/users/admin"), 401, "unauthorized", null);
  });

  it.each(["bearer", "BEARER"])("the scheme is case-insensitive: %s is accepted", async (scheme) => {
    const response = await get("/api/users/admin", { headers: { Authorization: `${scheme} ${adminToken}` } });
    expect(response.status).toBe(200);
  });

  it("the same token with Bearer is accepted (the refusals above are about the header)", async () => {
    const response = await get("/api/users/admin", { headers: { Authorization: `Bearer ${adminToken}` } });
    await expectNoSecrets(response);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ username: "admin", issuperadmin: true });
  });
});
