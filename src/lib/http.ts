// The envelope every JSON answer uses (API.md §1), and the error that handlers throw to answer with it.
import type { RouteConfig, RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Config } from "../config";
import type { UserRow } from "../storage/users";
import type { VerifiedToken } from "./tokens";

export type UserToken = Extract<VerifiedToken, { kind: "user" | "preauth" }>;

export type AppEnv = {
  Bindings: Env;
  // Set by the guards: the caller's token and checked account, or (verify-totp) the account not yet checked.
  Variables: { config: Config; now: number; ip: string; token: UserToken; user: UserRow; account: UserRow | null };
};
export type AppContext = Context<AppEnv>;
export type AppHandler<R extends RouteConfig> = RouteHandler<R, AppEnv>;

export interface Envelope<T = unknown> {
  Code: number;
  Message: string;
  Response: T;
}

export function envelope<T>(status: number, message: string, response: T): Envelope<T> {
  return { Code: status, Message: message, Response: response };
}

/** An answer other than success: thrown by handlers and guards, turned into the envelope by onError. */
export class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 413 | 429,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const unauthorized = () => new ApiError(401, "unauthorized");
export const forbidden = () => new ApiError(403, "forbidden");
export const accountDisabled = () => new ApiError(401, "user account disabled");
export const tooManyAttempts = (retryAfterSeconds: number) =>
  new ApiError(429, "too many failed attempts, try again later", { "Retry-After": String(Math.max(1, retryAfterSeconds)) });
