// The three kinds of HS256 token, with Netmaker's claim sets (API.md §4), and the one verification path
// that tells them apart. Pure: the secret and the clock come in as arguments.
import { SignJWT, jwtVerify, type JWTPayload } from "jose";
import { utf8 } from "./encoding";

export const ISSUER = "Netmaker";
export const MFA_AUDIENCE = "auth:mfa";

export type VerifiedToken =
  | { kind: "user"; username: string; role: string }
  | { kind: "preauth"; username: string; jti: string; exp: number }
  | { kind: "host"; hostId: string; macAddress: string };

const keys = new Map<string, Uint8Array>();
function keyFor(secret: string): Uint8Array {
  let key = keys.get(secret);
  if (!key) keys.set(secret, (key = utf8.encode(secret)));
  return key;
}

function sign(claims: JWTPayload, secret: string, now: number, ttlSeconds: number): Promise<string> {
  return new SignJWT({ ...claims, iss: ISSUER, iat: now, exp: now + ttlSeconds })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(keyFor(secret));
}

export function issueUserToken(secret: string, user: { username: string; role: string }, now: number, ttl: number) {
  return sign(
    {
      Role: user.role,
      UserName: user.username,
      Api: "",
      TokenType: "user_id_token",
      RacAutoDisable: false,
      sub: `user|${user.username}`,
    },
    secret,
    now,
    ttl,
  );
}

export function issuePreAuthToken(secret: string, username: string, now: number, ttl: number) {
  return sign({ sub: username, aud: [MFA_AUDIENCE], jti: crypto.randomUUID() }, secret, now, ttl);
}

export function issueHostToken(secret: string, host: { id: string; macAddress: string }, now: number, ttl: number) {
  return sign({ ID: host.id, MacAddress: host.macAddress, Network: "", sub: `node|${host.id}` }, secret, now, ttl);
}

/** Verifies signature (HS256 only), expiry and issuer, then says which kind the token is; null if none. */
export async function verifyToken(secret: string, token: string, now: number): Promise<VerifiedToken | null> {
  let claims: JWTPayload;
  try {
    ({ payload: claims } = await jwtVerify(token, keyFor(secret), {
      algorithms: ["HS256"],
      issuer: ISSUER,
      currentDate: new Date(now * 1000),
      requiredClaims: ["exp", "sub"],
    }));
  } catch {
    return null;
  }
  const sub = claims.sub!;
  const audience = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (audience.includes(MFA_AUDIENCE)) {
    if (audience.length !== 1 || typeof claims.jti !== "string" || "UserName" in claims) return null;
    return { kind: "preauth", username: sub, jti: claims.jti, exp: claims.exp! };
  }
  if (audience.length > 0) return null;
  if (
    claims.TokenType === "user_id_token" &&
    typeof claims.UserName === "string" &&
    typeof claims.Role === "string" &&
    sub === `user|${claims.UserName}`
  ) {
    return { kind: "user", username: claims.UserName, role: claims.Role };
  }
  if (typeof claims.ID === "string" && sub === `node|${claims.ID}` && !("UserName" in claims)) {
    return { kind: "host", hostId: claims.ID, macAddress: String(claims.MacAddress ?? "") };
  }
  return null;
}
