// Security headers on every response (issue 4), errors and 404s included: no caching of anything (answers
// carry tokens, generated passwords and TOTP secrets), no MIME sniffing, no framing, no referrer, HTTPS only.
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { call, createUser, get, login, post, SUPER_ADMIN, totpCode } from "./helpers";

/** Worker variables for one request (their generated types are the wrangler.toml literals). */
const vars = (values: Record<string, string>) => values as unknown as Partial<Env>;

const T0 = 1_900_000_005; // pinned clock, mid TOTP step
const ALICE = { username: "alice", password: "alice-password-1" };
const PREFLIGHT = { Origin: "https://ui.example", "Access-Control-Request-Method": "POST" };
const EXPECTED = {
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Content-Security-Policy": "frame-ancestors 'none'",
  "Referrer-Policy": "no-referrer",
  "Strict-Transport-Security": "max-age=31536000",
};

beforeEach(() => vi.setSystemTime(T0 * 1000));
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

function expectSecurityHeaders(label: string, response: Response) {
  for (const [name, value] of Object.entries(EXPECTED)) expect(response.headers.get(name), `${label}: ${name}`).toBe(value);
}

/** Every kind of answer the service gives, each with a label, starting from an empty service. */
async function everyKindOfAnswer(): Promise<[string, Response][]> {
  const answers: [string, Response][] = [];
  const keep = async (label: string, response: Response | Promise<Response>) => {
    answers.push([label, await response]);
    return answers[answers.length - 1][1];
  };
  await keep("hassuperadmin, a bare value", get("/api/users/adm/hassuperadmin"));
  await keep("createsuperadmin, a bare user", post("/api/users/adm/createsuperadmin", { body: SUPER_ADMIN }));
  const adminLogin = await keep("user login with a token", post("/api/users/adm/authenticate", { body: SUPER_ADMIN }));
  const admin = ((await adminLogin.clone().json()) as { Response: { AuthToken: string } }).Response.AuthToken;
  await createUser(admin, ALICE.username, ALICE.password);
  const alice = await login(ALICE.username, ALICE.password);

  const host = await keep("host creation with a generated password", post("/api/hosts", { token: admin, body: { id: "h1" } }));
  const hostPassword = ((await host.clone().json()) as { Response: { password: string } }).Response.password;
  await keep("host login with a token", post("/api/hosts/adm/authenticate", { body: { id: "h1", password: hostPassword } }));

  const init = await keep("init-totp with a secret", post(`/api/users/${ALICE.username}/auth/init-totp`, { token: alice }));
  const enrolment = ((await init.clone().json()) as { Response: { otp_auth_url: string; otp_auth_url_signature: string } }).Response;
  const secret = new URL(enrolment.otp_auth_url).searchParams.get("secret")!;
  const completion = { ...enrolment, totp: await totpCode(secret, T0 - 30) };
  await keep("complete-totp", post(`/api/users/${ALICE.username}/auth/complete-totp`, { token: alice, body: completion }));
  const step = await keep("login with a pre-auth token", post("/api/users/adm/authenticate", { body: ALICE }));
  const preAuth = ((await step.clone().json()) as { Response: { pre_auth_token: string } }).Response.pre_auth_token;
  const code = { totp: await totpCode(secret, T0) };
  await keep("verify-totp with a token", post(`/api/users/${ALICE.username}/auth/verify-totp`, { token: preAuth, body: code }));

  await keep("list of hosts", get("/api/hosts", { token: admin }));
  await keep("audit events", get("/api/audit/events", { token: admin }));
  await keep("getconfig", get("/api/server/getconfig", { token: admin }));
  await keep("health check", get("/api/server/status"));
  await keep("OpenAPI document", get("/openapi.json"));
  await keep("docs page", get("/docs"));
  await keep("CORS preflight", call("OPTIONS", "/api/users/adm/authenticate", { headers: PREFLIGHT }));

  await keep("400 invalid body", post("/api/users/adm/authenticate", { body: "{" }));
  await keep("400 incorrect credentials", post("/api/users/adm/authenticate", { body: { username: "nobody", password: "guess-1" } }));
  await keep("401 no token", get("/api/hosts"));
  await keep("401 wrong host password", post("/api/hosts/adm/authenticate", { body: { id: "h1", password: "wrong-host-password" } }));
  await keep("403 not an admin", get("/api/hosts", { token: alice }));
  await keep("404 unknown path", get("/nowhere"));
  await keep("404 wrong method", call("PUT", "/api/users/adm/authenticate"));
  await keep("413 body too large", post("/api/users/adm/authenticate", { body: "x".repeat(20_000) }));
  const locked = vars({ MAX_FAILED_ATTEMPTS: "1" });
  await post("/api/users/adm/authenticate", { body: { username: "nobody", password: "guess-2" }, env: locked });
  await keep("429 locked", post("/api/users/adm/authenticate", { body: { username: "nobody", password: "guess-3" }, env: locked }));
  const spentLimiter = { limit: async () => ({ success: false }) } as unknown as RateLimit;
  await keep("429 throttled", get("/api/users/adm/hassuperadmin", { env: { IP_THROTTLE: "on", IP_LIMITER: spentLimiter } }));
  vi.spyOn(console, "error").mockImplementation(() => {});
  const brokenDb = { prepare: () => { throw new Error("injected fault"); } } as unknown as D1Database;
  await keep("500 internal error", get("/api/hosts", { token: admin, env: { DB: brokenDb } }));
  await keep("503 health check", get("/api/server/status", { env: { DB: brokenDb } }));
  return answers;
}

it("sets the security headers on every kind of answer, errors and 404s included", async () => {
  const answers = await everyKindOfAnswer();
  expect(answers.map(([, response]) => response.status)).toEqual([
    200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 204,
    400, 400, 401, 401, 403, 404, 404, 413, 429, 429, 500, 503,
  ]);
  for (const [label, response] of answers) expectSecurityHeaders(label, response);
});

it("leaves the CORS headers in place", async () => {
  const response = await call("OPTIONS", "/api/users/adm/authenticate", { headers: PREFLIGHT });
  expect(response.headers.get("Access-Control-Allow-Origin")).toBe("*");
  expectSecurityHeaders("preflight", response);
});
