// Who is calling: bearer tokens checked once here, with the user's current state read from D1 (a token's
// Role claim is not trusted for authorisation; the stored role is).
import type { MiddlewareHandler } from "hono";
import { insertEvent } from "../storage/events";
import { isPreAuthTokenDead, selectPreAuthToken, type PreAuthTokenState } from "../storage/failures";
import { findUser, isAdminRole, selectUser, type UserRow } from "../storage/users";
import { ApiError, accountDisabled, forbidden, unauthorized, type AppContext, type AppEnv } from "./http";
import { verifyToken, type VerifiedToken } from "./tokens";

export async function bearerToken(c: AppContext): Promise<VerifiedToken> {
  const match = /^Bearer +([A-Za-z0-9_.-]+)$/i.exec(c.req.header("Authorization") ?? ""); // the scheme is case-insensitive
  const token = match && (await verifyToken(c.env.JWT_SECRET, match[1], c.get("now")));
  if (!token) throw unauthorized();
  return token;
}

/** A stored account that exists and is enabled; a token of a deleted user is no longer good for anything. */
export function enabledAccount(user: UserRow | null | undefined): UserRow {
  if (!user) throw unauthorized();
  if (user.account_disabled) throw accountDisabled();
  return user;
}

/** A pre-auth token that is used up or past its limit: recorded as a failed TOTP step, answered 401. */
export async function refusedPreAuthToken(c: AppContext, username: string): Promise<ApiError> {
  const event = { kind: "user.totp", subject: username, ip: c.get("ip"), outcome: "failure", reason: "pre-auth token used up" } as const;
  await insertEvent(c.env.DB, event, c.get("now")).run();
  return unauthorized();
}

/**
 * Route middleware for the caller's own account `{username}`, run before the body is read so that token
 * errors come first (API.md §2): a full user token or, where allowed, a pre-auth token that is still live
 * (not used up, not past its limit of codes), of that user. The account and the pre-auth token's state are
 * read in one round trip. With `checkAccount` the account is checked here too; otherwise the handler checks
 * the stored `account` after reading the body (verify-totp's order).
 */
export function guardSelf(options: { allowPreAuth?: boolean; checkAccount?: boolean }): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const username = c.req.param("username") ?? "";
    const token = await bearerToken(c);
    if (token.kind === "host" || (token.kind === "preauth" && !options.allowPreAuth)) throw unauthorized();
    const db = c.env.DB;
    const [account, preAuth] = await db.batch([
      selectUser(db, username),
      ...(token.kind === "preauth" ? [selectPreAuthToken(db, token.jti)] : []),
    ]);
    const preAuthState = preAuth?.results[0] as PreAuthTokenState | undefined;
    if (token.kind === "preauth" && isPreAuthTokenDead(preAuthState, c.get("config").preAuthMaxFailures)) {
      throw await refusedPreAuthToken(c, token.username);
    }
    if (token.username !== username) throw forbidden();
    c.set("token", token);
    const stored = (account.results[0] as UserRow | undefined) ?? null;
    c.set("account", stored);
    if (options.checkAccount) c.set("user", enabledAccount(stored));
    await next();
  };
}

/** Any signed-in user with a full token and an enabled account. */
export async function requireUser(c: AppContext): Promise<UserRow> {
  const token = await bearerToken(c);
  if (token.kind !== "user") throw unauthorized();
  return enabledAccount(await findUser(c.env.DB, token.username));
}

export async function requireAdmin(c: AppContext): Promise<UserRow> {
  const user = await requireUser(c);
  if (!isAdminRole(user.platform_role)) throw forbidden();
  return user;
}

/** Route middleware: the caller is checked before the body or query is validated. */
export const guardUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("user", await requireUser(c));
  await next();
};

export const guardAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("user", await requireAdmin(c));
  await next();
};

/**
 * The admin calling and the user they act on. An admin may act on a platform user; only the super admin
 * acts on an admin; no one acts on the super admin.
 */
export async function requireAdminOver(c: AppContext, username: string): Promise<{ actor: UserRow; target: UserRow }> {
  const actor = await requireAdmin(c);
  const target = await findUser(c.env.DB, username);
  if (!target) throw new ApiError(404, "user not found");
  if (target.platform_role === "super-admin") throw forbidden();
  if (isAdminRole(target.platform_role) && actor.platform_role !== "super-admin") throw forbidden();
  return { actor, target };
}
