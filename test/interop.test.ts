// Token interop with a Netmaker server that shares JWT_SECRET. The tokens this service issues are checked
// here by an independent JWT implementation (HMAC-SHA256 by hand with Web Crypto, not jose) that follows
// golang-jwt v4 (what Netmaker links) and Netmaker's own claim rules, as read in gravitl/netmaker:
//   logic/jwts.go  GetUserNameFromToken  every user route (SecurityCheck): parse UserClaims, refuse any
//                                        aud "auth:mfa", then the user named by UserName must exist;
//                                        SecurityCheck then refuses a disabled account
//                  VerifyUserToken      UserPermissions: parse, the user must exist; roles come from the
//                                        database, not from the Role claim
//                  VerifyHostToken      host routes: parse Claims, sub starts "node|", ID not empty
//   logic/security.go PreAuthCheck      verify-totp: a full user token, or a valid token whose aud has
//                                        "auth:mfa" (the user is its sub)
// golang-jwt v4 (ParseWithClaims with a key function that returns the secret): any HMAC alg (HS256/384/512),
// signature, then RegisteredClaims.Valid(): exp (if present) after now, iat and nbf (if present) not after
// now; no issuer or audience check. Claims decode into typed Go structs, so a wrongly typed claim fails.
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { hashPassword } from "../src/lib/passwords";
import { loadKeyRing, sealSecret } from "../src/lib/secretbox";
import { verifyToken } from "../src/lib/tokens";
import { NETMAKER_JWT_SECRET } from "./fixtures/netmaker-records";
import { expectEnvelope, get, nowSeconds, post } from "./helpers";

// ---- an independent JWT implementation, after golang-jwt v4 ----------------------------------------------

type Claims = Record<string, unknown>;
type Parsed = { ok: true; claims: Claims } | { ok: false; error: string };

const HMAC_ALGS: Record<string, string> = { HS256: "SHA-256", HS384: "SHA-384", HS512: "SHA-512" };
const text = new TextEncoder();

function base64UrlBytes(segment: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(segment)) return null; // RawURLEncoding: no padding, URL alphabet
  const binary = atob(segment.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (segment.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

function base64UrlJson(segment: string): unknown {
  const bytes = base64UrlBytes(segment);
  return bytes && JSON.parse(new TextDecoder().decode(bytes));
}

async function hmac(alg: string, secret: string, data: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", text.encode(secret), { name: "HMAC", hash: HMAC_ALGS[alg] }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, text.encode(data)));
}

/** Signs as Netmaker's jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret) does. */
async function goSign(claims: Claims, secret: string): Promise<string> {
  const encode = (value: unknown) =>
    btoa(String.fromCharCode(...text.encode(JSON.stringify(value)))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const input = `${encode({ alg: "HS256", typ: "JWT" })}.${encode(claims)}`;
  const signature = btoa(String.fromCharCode(...(await hmac("HS256", secret, input))));
  return `${input}.${signature.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}`;
}

// The Go struct fields each claim decodes into; encoding/json matches names exactly, else case-insensitively.
const STRING_CLAIMS = ["iss", "sub", "jti", "Role", "UserName", "Api", "TokenType", "ID", "MacAddress", "Network"];
const NUMBER_CLAIMS = ["exp", "iat", "nbf"];

function field(claims: Claims, name: string): unknown {
  if (name in claims) return claims[name];
  const key = Object.keys(claims).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : claims[key];
}

/** jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (interface{}, error) { return secret, nil }). */
async function goParse(token: string, secret: string, now: number): Promise<Parsed> {
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, error: "token contains an invalid number of segments" };
  let header: any;
  let claims: Claims;
  try {
    header = base64UrlJson(parts[0]);
    claims = base64UrlJson(parts[1]) as Claims;
  } catch {
    return { ok: false, error: "malformed" };
  }
  if (!header || !claims || typeof claims !== "object") return { ok: false, error: "malformed" };
  if (!(header.alg in HMAC_ALGS)) return { ok: false, error: "signing method (alg) is unavailable or key is of invalid type" };
  const given = base64UrlBytes(parts[2]);
  const expected = await hmac(header.alg, secret, `${parts[0]}.${parts[1]}`);
  if (!given || given.length !== expected.length || given.some((byte, i) => byte !== expected[i])) {
    return { ok: false, error: "signature is invalid" };
  }
  for (const name of STRING_CLAIMS) {
    const value = field(claims, name);
    if (value !== undefined && value !== null && typeof value !== "string") return { ok: false, error: `cannot decode ${name}` };
  }
  for (const name of NUMBER_CLAIMS) {
    const value = field(claims, name);
    if (value !== undefined && value !== null && typeof value !== "number") return { ok: false, error: `cannot decode ${name}` };
  }
  const rac = field(claims, "RacAutoDisable");
  if (rac !== undefined && rac !== null && typeof rac !== "boolean") return { ok: false, error: "cannot decode RacAutoDisable" };
  const aud = field(claims, "aud");
  if (aud !== undefined && aud !== null && typeof aud !== "string" && !(Array.isArray(aud) && aud.every((a) => typeof a === "string"))) {
    return { ok: false, error: "cannot decode aud" };
  }
  // RegisteredClaims.Valid(): verifyExp now.Before(exp); verifyIat and verifyNbf !now.Before(t).
  const exp = field(claims, "exp") as number | undefined;
  const iat = field(claims, "iat") as number | undefined;
  const nbf = field(claims, "nbf") as number | undefined;
  if (exp != null && !(now < exp)) return { ok: false, error: "token is expired" };
  if (iat != null && now < iat) return { ok: false, error: "token used before issued" };
  if (nbf != null && now < nbf) return { ok: false, error: "token is not valid yet" };
  return { ok: true, claims };
}

const audiences = (claims: Claims): string[] => {
  const aud = field(claims, "aud");
  return aud == null ? [] : Array.isArray(aud) ? aud : [aud as string];
};

// ---- Netmaker's rules over a Netmaker user store ----------------------------------------------------------

interface NetmakerUserRow {
  platformRoleId: string;
  accountDisabled: boolean;
}
type Store = Map<string, NetmakerUserRow>;

/** logic.GetUserNameFromToken, then SecurityCheck's disabled-account check: the user routes. */
async function netmakerUserRoute(authorization: string, store: Store, now: number): Promise<string> {
  const split = authorization.split(" ");
  if (split.length < 2) return "unauthorized";
  const parsed = await goParse(split[1], NETMAKER_JWT_SECRET, now);
  if (!parsed.ok) return "unauthorized";
  if (audiences(parsed.claims).includes("auth:mfa")) return "unauthorized"; // "token created for mfa cannot be used for anything else"
  const username = String(field(parsed.claims, "UserName") ?? "");
  const user = username ? store.get(username) : undefined; // schema.User.Get refuses empty identifiers
  if (!user) return "user does not exist";
  if (user.accountDisabled) return "user account disabled";
  return `user ${username}`;
}

/** logic.VerifyUserToken (UserPermissions): no audience check; the roles come from the store. */
async function netmakerVerifyUserToken(token: string, store: Store, now: number) {
  const parsed = await goParse(token, NETMAKER_JWT_SECRET, now);
  if (!parsed.ok) return { error: parsed.error };
  const username = String(field(parsed.claims, "UserName") ?? "");
  const user = username ? store.get(username) : undefined;
  if (!user) return { error: "user does not exist" };
  return { username, issuperadmin: user.platformRoleId === "super-admin", isadmin: user.platformRoleId === "admin" };
}

/** logic.VerifyHostToken. */
async function netmakerVerifyHostToken(token: string, now: number) {
  const parsed = await goParse(token, NETMAKER_JWT_SECRET, now);
  if (!parsed.ok) return { error: parsed.error };
  const sub = String(field(parsed.claims, "sub") ?? "");
  if (!sub.startsWith("node|")) return { error: "not a host token" };
  const id = String(field(parsed.claims, "ID") ?? "");
  if (!id) return { error: "invalid host token: missing host ID" };
  return { hostId: id, mac: String(field(parsed.claims, "MacAddress") ?? ""), network: String(field(parsed.claims, "Network") ?? "") };
}

/** logic.PreAuthCheck (verify-totp): a full user token, or a token for the MFA audience. */
async function netmakerPreAuthCheck(authorization: string, store: Store, now: number): Promise<string> {
  const split = authorization.split(" ");
  if (split.length !== 2) return "unauthorized";
  const asUser = await netmakerUserRoute(authorization, store, now);
  if (asUser.startsWith("user ")) return asUser;
  const parsed = await goParse(split[1], NETMAKER_JWT_SECRET, now);
  if (!parsed.ok || !audiences(parsed.claims).includes("auth:mfa")) return "unauthorized";
  return `user ${field(parsed.claims, "sub")}`;
}

// ---- the tests -------------------------------------------------------------------------------------------

const shared = { env: { JWT_SECRET: NETMAKER_JWT_SECRET } };
const PASSWORD = "interop-pass-1";
const MAC = "02:42:ac:11:00:02";

/** Netmaker's own tokens, claim for claim as logic/jwts.go makes them. */
function netmakerUserToken(username: string, role: string, now: number) {
  return goSign(
    { Role: role, UserName: username, Api: "", TokenType: "user_id_token", RacAutoDisable: false, iss: "Netmaker", sub: `user|${username}`, iat: now, exp: now + 43200 },
    NETMAKER_JWT_SECRET,
  );
}
const netmakerPreAuthToken = (username: string, now: number) =>
  goSign({ iss: "Netmaker", sub: username, aud: ["auth:mfa"], iat: now, exp: now + 300 }, NETMAKER_JWT_SECRET);
const netmakerHostToken = (id: string, mac: string, now: number) =>
  goSign({ ID: id, MacAddress: mac, Network: "", iss: "Netmaker", sub: `node|${id}`, iat: now, exp: now + 900 }, NETMAKER_JWT_SECRET);

async function addUser(username: string, role: string, mfa = false) {
  const now = nowSeconds();
  const sealed = mfa ? await sealSecret(await loadKeyRing(env.TOTP_KEYS), "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", username) : null;
  await env.DB.prepare(
    `INSERT INTO users (username, password_hash, platform_role, mfa_enabled, totp_secret, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  )
    .bind(username, await hashPassword(PASSWORD), role, mfa ? 1 : 0, sealed, now, now)
    .run();
}

async function userLogin(username: string) {
  const res = await post("/api/users/adm/authenticate", { body: { username, password: PASSWORD }, ...shared });
  return expectEnvelope(res, 200, /^W1R3: /);
}

function decodeParts(token: string) {
  const [header, payload] = token.split(".").slice(0, 2).map(base64UrlJson) as [Claims, Claims];
  return { header, payload };
}

// Netmaker's database, as the Netmaker server beside this service sees it.
const store: Store = new Map([
  ["ops", { platformRoleId: "admin", accountDisabled: false }],
  ["mfa-user", { platformRoleId: "platform-user", accountDisabled: false }],
  ["gone-dark", { platformRoleId: "platform-user", accountDisabled: true }],
]);

describe("the independent verifier", () => {
  it("accepts Netmaker's own tokens and refuses a wrong secret, another alg, a bad signature", async () => {
    const now = nowSeconds();
    const token = await netmakerUserToken("ops", "admin", now);
    expect(await goParse(token, NETMAKER_JWT_SECRET, now)).toMatchObject({ ok: true, claims: { UserName: "ops" } });
    expect(await goParse(token, "another-secret", now)).toEqual({ ok: false, error: "signature is invalid" });
    const [, payload, signature] = token.split(".");
    const none = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, "")}.${payload}.`;
    expect(await goParse(none, NETMAKER_JWT_SECRET, now)).toMatchObject({ ok: false });
    const flipped = `${token.split(".")[0]}.${payload}.${signature.startsWith("A") ? "B" : "A"}${signature.slice(1)}`;
    expect(await goParse(flipped, NETMAKER_JWT_SECRET, now)).toEqual({ ok: false, error: "signature is invalid" });
    expect(await goParse(token, NETMAKER_JWT_SECRET, now + 43200)).toEqual({ ok: false, error: "token is expired" });
  });
});

describe("tokens issued here, checked by Netmaker's rules", () => {
  beforeEach(async () => {
    await addUser("ops", "admin");
    await addUser("mfa-user", "platform-user", true);
  });

  it("a user token carries exactly Netmaker's claim set and passes every user route's check", async () => {
    const { AuthToken } = await userLogin("ops");
    const now = nowSeconds();
    const ours = decodeParts(AuthToken);
    const theirs = decodeParts(await netmakerUserToken("ops", "admin", now));
    expect(ours.header).toEqual(theirs.header);
    expect(Object.keys(ours.payload).sort()).toEqual(Object.keys(theirs.payload).sort());
    expect(ours.payload).toEqual({ ...theirs.payload, iat: ours.payload.iat, exp: ours.payload.exp });

    expect(await netmakerUserRoute(`Bearer ${AuthToken}`, store, now)).toBe("user ops");
    expect(await netmakerVerifyUserToken(AuthToken, store, now)).toEqual({ username: "ops", issuperadmin: false, isadmin: true });
    expect(await netmakerPreAuthCheck(`Bearer ${AuthToken}`, store, now)).toBe("user ops");
    expect(await netmakerVerifyHostToken(AuthToken, now)).toEqual({ error: "not a host token" });
  });

  it("a user token is refused by Netmaker for a user it does not know or has disabled, as its own would be", async () => {
    const { AuthToken } = await userLogin("ops");
    const now = nowSeconds();
    const elsewhere: Store = new Map([["ops", { platformRoleId: "admin", accountDisabled: true }]]);
    expect(await netmakerUserRoute(`Bearer ${AuthToken}`, elsewhere, now)).toBe("user account disabled");
    expect(await netmakerUserRoute(`Bearer ${AuthToken}`, new Map(), now)).toBe("user does not exist");
    const own = await netmakerUserToken("ops", "admin", now);
    expect(await netmakerUserRoute(`Bearer ${own}`, elsewhere, now)).toBe("user account disabled");
  });

  it("a user token expires for Netmaker when it expires here, and signed with another secret it is nothing", async () => {
    const { AuthToken } = await userLogin("ops");
    const { exp } = decodeParts(AuthToken).payload as { exp: number };
    expect(await netmakerUserRoute(`Bearer ${AuthToken}`, store, exp - 1)).toBe("user ops");
    expect(await verifyToken(NETMAKER_JWT_SECRET, AuthToken, exp - 1)).toMatchObject({ kind: "user" });
    expect(await netmakerUserRoute(`Bearer ${AuthToken}`, store, exp)).toBe("unauthorized");
    expect(await verifyToken(NETMAKER_JWT_SECRET, AuthToken, exp)).toBeNull();

    const res = await post("/api/users/adm/authenticate", { body: { username: "ops", password: PASSWORD } }); // the test secret
    const { AuthToken: unshared } = await expectEnvelope(res, 200, "W1R3: Device ops Authorized");
    expect(await netmakerUserRoute(`Bearer ${unshared}`, store, nowSeconds())).toBe("unauthorized");
  });

  it("a token issued here is refused by a Netmaker server whose clock is behind its iat (golang-jwt v4 checks iat)", async () => {
    const { AuthToken } = await userLogin("ops");
    const { iat } = decodeParts(AuthToken).payload as { iat: number };
    expect(await netmakerUserRoute(`Bearer ${AuthToken}`, store, iat)).toBe("user ops");
    expect(await netmakerUserRoute(`Bearer ${AuthToken}`, store, iat - 1)).toBe("unauthorized");
  });

  it("a pre-auth token is refused for user routes just as Netmaker's own, and taken by verify-totp's check", async () => {
    const payload = await userLogin("mfa-user");
    expect(Object.keys(payload).sort()).toEqual(["pre_auth_token", "user_name"]);
    const ours = payload.pre_auth_token as string;
    const now = nowSeconds();
    const theirs = await netmakerPreAuthToken("mfa-user", now);
    expect(decodeParts(ours).payload).toMatchObject({ ...decodeParts(theirs).payload, iat: expect.any(Number), exp: expect.any(Number) });

    for (const token of [ours, theirs]) {
      expect(await goParse(token, NETMAKER_JWT_SECRET, now)).toMatchObject({ ok: true });
      expect(await netmakerUserRoute(`Bearer ${token}`, store, now)).toBe("unauthorized");
      expect(await netmakerVerifyUserToken(token, store, now)).toEqual({ error: "user does not exist" });
      expect(await netmakerVerifyHostToken(token, now)).toEqual({ error: "not a host token" });
      expect(await netmakerPreAuthCheck(`Bearer ${token}`, store, now)).toBe("user mfa-user");
    }
  });

  it("a host token carries Netmaker's host claims and passes VerifyHostToken, never a user check", async () => {
    const id = "4e1f0c7a-6b2d-4c8e-9f3a-0d5b7c9e1a24";
    await env.DB.prepare("INSERT INTO hosts (id, name, password_hash, created_at, updated_at) VALUES (?, 'h', ?, 0, 0)")
      .bind(id, "$2a$05$TVAdR2qbJ2LzhhoEDhXVU.fElHx5DZAa0NhPJRqwLx9go/Qi1Xunq")
      .run();
    const res = await post("/api/hosts/adm/authenticate", { body: { id, password: "NYXAC73NGJHBZQS5BU4W3A4EDMV6EUFV", macaddress: MAC }, ...shared });
    const { AuthToken } = await expectEnvelope(res, 200, `W1R3: Host ${id} Authorized`);
    const now = nowSeconds();
    const ours = decodeParts(AuthToken);
    const theirs = decodeParts(await netmakerHostToken(id, MAC, now));
    expect(ours.header).toEqual(theirs.header);
    expect(ours.payload).toEqual({ ...theirs.payload, iat: ours.payload.iat, exp: ours.payload.exp });
    expect(ours.payload.exp as number - (ours.payload.iat as number)).toBe(900);

    expect(await netmakerVerifyHostToken(AuthToken, now)).toEqual({ hostId: id, mac: MAC, network: "" });
    expect(await netmakerUserRoute(`Bearer ${AuthToken}`, store, now)).toBe("user does not exist");
    expect(await netmakerVerifyUserToken(AuthToken, store, now)).toEqual({ error: "user does not exist" });
  });
});

describe("tokens issued by Netmaker, used here", () => {
  beforeEach(() => addUser("ops", "admin"));

  it("takes Netmaker's user token for the user's own routes", async () => {
    const token = await netmakerUserToken("ops", "admin", nowSeconds());
    const res = await get("/api/users/ops", { token, ...shared });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ username: "ops", platform_role_id: "admin", isadmin: true });
  });

  it("refuses Netmaker's pre-auth and host tokens where a user token is needed", async () => {
    const now = nowSeconds();
    for (const token of [await netmakerPreAuthToken("ops", now), await netmakerHostToken("ops", MAC, now)]) {
      await expectEnvelope(await get("/api/users/ops", { token, ...shared }), 401, "unauthorized", null);
    }
  });
});
