// Shared by the route tests: drive the Worker through fetch as a client would, and read the stored effect.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { expect } from "vitest";
import worker from "../src/index";

export const BASE = "https://auth.test";

export interface CallOptions {
  body?: unknown; // an object is sent as JSON; a string is sent as it is
  token?: string;
  headers?: Record<string, string>;
  /** Bindings to replace for this one request (fault injection, limits); a variable takes any string. */
  env?: { [K in keyof Env]?: Env[K] extends string ? string : Env[K] };
}

export async function call(method: string, path: string, options: CallOptions = {}): Promise<Response> {
  const headers = new Headers(options.headers);
  if (options.token) headers.set("Authorization", `Bearer ${options.token}`);
  if (!headers.has("CF-Connecting-IP")) headers.set("CF-Connecting-IP", "192.0.2.1");
  const body =
    options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body);
  const request = new Request(BASE + path, { method, headers, body });
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, { ...env, ...options.env } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

export const post = (path: string, options: CallOptions = {}) => call("POST", path, options);
export const get = (path: string, options: CallOptions = {}) => call("GET", path, options);

/** Asserts the status and every envelope field; returns the `Response` value. */
export async function expectEnvelope(response: Response, status: number, message: string | RegExp, payload?: unknown) {
  expect(response.status).toBe(status);
  expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
  const body = (await response.json()) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(["Code", "Message", "Response"]);
  expect(body.Code).toBe(status);
  if (message instanceof RegExp) expect(body.Message).toMatch(message);
  else expect(body.Message).toBe(message);
  if (payload !== undefined) expect(body.Response).toEqual(payload);
  return body.Response as any;
}

export const SUPER_ADMIN = { username: "admin", password: "admin-password-1" };

/** Netmaker's user object as this service shows it. */
export function expectedUser(username: string, role: string, overrides: Record<string, unknown> = {}) {
  return {
    username,
    display_name: "",
    account_disabled: false,
    isadmin: role === "admin" || role === "super-admin",
    issuperadmin: role === "super-admin",
    platform_role_id: role,
    auth_type: "basic",
    is_mfa_enabled: false,
    user_group_ids: {},
    network_roles: {},
    ...overrides,
  };
}

// What a stored hash or a secret column looks like; none of it may ever reach a client (API.md §6).
const SECRET_MARKERS = [/pbkdf2-sha256\$/, /\$2[aby]\$/, /hmac-sha256\$/, /password_hash/, /totp_secret/];

/**
 * Fails if the body shows a hash, a secret column, the super admin's password or any of `secrets`
 * (passwords, TOTP secrets). Reads a clone, so call it before expectEnvelope.
 */
export async function expectNoSecrets(response: Response, secrets: string[] = []) {
  const text = await response.clone().text();
  for (const marker of SECRET_MARKERS) expect(text).not.toMatch(marker);
  for (const secret of [SUPER_ADMIN.password, ...secrets]) expect(text).not.toContain(secret);
}

export async function createSuperAdmin(): Promise<string> {
  const created = await post("/api/users/adm/createsuperadmin", { body: SUPER_ADMIN });
  expect(created.status).toBe(200);
  return login(SUPER_ADMIN.username, SUPER_ADMIN.password);
}

export async function login(username: string, password: string): Promise<string> {
  const response = await post("/api/users/adm/authenticate", { body: { username, password } });
  const payload = await expectEnvelope(response, 200, `W1R3: Device ${username} Authorized`);
  return payload.AuthToken as string;
}

export async function createUser(adminToken: string, username: string, password: string, role?: string) {
  const response = await post(`/api/users/${username}`, {
    token: adminToken,
    body: { username, password, ...(role ? { platform_role_id: role } : {}) },
  });
  expect(response.status).toBe(200);
  return response.json();
}

export async function createHost(adminToken: string, host: { id?: string; name?: string; password?: string } = {}) {
  const response = await post("/api/hosts", { token: adminToken, body: host });
  return expectEnvelope(response, 200, /^host .+ created$/);
}

/** The claims of a full user token, Netmaker's set (API.md §4). */
export function userTokenClaims(username: string, role: string, iat: unknown, exp: unknown) {
  return { Role: role, UserName: username, Api: "", TokenType: "user_id_token", RacAutoDisable: false, iss: "Netmaker", sub: `user|${username}`, iat, exp };
}

/** Decodes a JWT's payload without verifying it, to inspect claims. */
export function claims(token: string): Record<string, any> {
  const payload = token.split(".")[1];
  return JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
}

export async function rowCount(table: string): Promise<number> {
  return (await env.DB.prepare(`SELECT count(*) AS n FROM ${table}`).first<number>("n"))!;
}

/** A snapshot of every stored row, to show that a refused request changed nothing. */
export async function snapshot(): Promise<Record<string, unknown[]>> {
  const tables = ["users", "hosts", "login_failures", "preauth_tokens", "auth_events"];
  const out: Record<string, unknown[]> = {};
  for (const table of tables) out[table] = (await env.DB.prepare(`SELECT * FROM ${table} ORDER BY 1`).all()).results;
  out.kv = (await env.ENROLMENTS.list()).keys.map((key) => key.name);
  return out;
}

/**
 * RFC 6238 TOTP computed here with Web Crypto, independently of the otpauth library that src/ uses.
 * `secret` is base32; `time` is unix seconds.
 */
export async function totpCode(secret: string, time: number, digits = 6, algorithm = "SHA-1"): Promise<string> {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const char of secret.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(char).toString(2).padStart(5, "0");
  const key = new Uint8Array(Math.floor(bits.length / 8));
  for (let i = 0; i < key.length; i++) key[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  return hotp(key, Math.floor(time / 30), digits, algorithm);
}

export async function hotp(key: Uint8Array, counter: number, digits: number, algorithm: string): Promise<string> {
  const message = new Uint8Array(8);
  new DataView(message.buffer).setBigUint64(0, BigInt(counter));
  const hmacKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: algorithm }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", hmacKey, message));
  const offset = mac[mac.length - 1] & 0x0f;
  const binary =
    ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** A code that no step within the skew window around `time` accepts. */
export async function wrongTotpCode(secret: string, time: number): Promise<string> {
  const accepted = await Promise.all([time - 30, time, time + 30].map((at) => totpCode(secret, at)));
  let code = Number(accepted[1]);
  do code = (code + 1) % 1_000_000;
  while (accepted.includes(String(code).padStart(6, "0")));
  return String(code).padStart(6, "0");
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);
