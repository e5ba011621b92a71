// The audit trail (issue 4): an auth_events row for every login, lockout, enrolment and admin change;
// GET /api/audit/events for admins, paged; the cron handler that deletes old events and stale counters.
import { createScheduledController, env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { scheduled } from "../src/index";
import { COUNTER_IDLE_SECONDS } from "../src/storage/failures";
import { call, createHost, createSuperAdmin, createUser, expectEnvelope, get, login, post, SUPER_ADMIN, totpCode, wrongTotpCode } from "./helpers";

/** Worker variables for one request (their generated types are the wrangler.toml literals). */
const vars = (values: Record<string, string>) => values as unknown as Partial<Env>;

const T0 = 1_900_000_005; // pinned clock, mid TOTP step
const DAY = 86_400;
const AUDIT_RETENTION_DAYS = 90; // wrangler.toml
const LOCK_SECONDS = 900;
const CLIENT_IP = "192.0.2.1"; // what the helpers send as CF-Connecting-IP
const ALICE = { username: "alice", password: "alice-password-1" };
const LOGIN = "/api/users/adm/authenticate";
const HOST_LOGIN = "/api/hosts/adm/authenticate";
const LOCKED = "too many failed attempts, try again later";
const LOCK_AFTER_ONE = vars({ MAX_FAILED_ATTEMPTS: "1" });

const setClock = (seconds: number) => vi.setSystemTime(seconds * 1000);
beforeEach(() => setClock(T0));
afterEach(() => vi.useRealTimers());

interface Event {
  id: number;
  at: number;
  kind: string;
  subject: string;
  actor: string | null;
  ip: string | null;
  outcome: "success" | "failure" | "locked";
  reason: string | null;
}

const event = (kind: string, subject: string, outcome: Event["outcome"], more: Partial<Event> = {}) => ({
  kind,
  subject,
  outcome,
  actor: null,
  reason: null,
  ip: CLIENT_IP,
  at: T0,
  ...more,
});

async function readEvents(token: string, query = "limit=500") {
  const page = await expectEnvelope(await get(`/api/audit/events?${query}`, { token }), 200, "events");
  return page as { events: Event[]; next_before: number | null };
}

const wrongCode = (secret: string) => wrongTotpCode(secret, T0);

async function initTotp(username: string, token: string) {
  const init = await expectEnvelope(await post(`/api/users/${username}/auth/init-totp`, { token }), 200, "totp setup initiated");
  const url = init.otp_auth_url as string;
  return { url, signature: init.otp_auth_url_signature as string, secret: new URL(url).searchParams.get("secret")! };
}

describe("auth_events", () => {
  it("records every login, lockout, TOTP step and admin change, with the client's address", async () => {
    const admin = await createSuperAdmin();
    await createUser(admin, ALICE.username, ALICE.password);
    await createUser(admin, "ann", "ann-password-1", "admin");
    const totpPath = (action: string) => `/api/users/${ALICE.username}/auth/${action}`;

    await expectEnvelope(await post(LOGIN, { body: { ...ALICE, password: "wrong-password" } }), 400, "incorrect credentials");
    const ghost = { username: "ghost", password: "x-guess" };
    await expectEnvelope(await post(LOGIN, { body: ghost, headers: { "CF-Connecting-IP": "203.0.113.9" } }), 400, "incorrect credentials");
    await expectEnvelope(await post(LOGIN, { body: ghost, env: LOCK_AFTER_ONE }), 429, LOCKED);
    await expectEnvelope(await post(`/api/users/${ALICE.username}/disable`, { token: admin }), 200, `user ${ALICE.username} disabled`);
    await expectEnvelope(await post(LOGIN, { body: ALICE }), 401, "user account disabled");
    await expectEnvelope(await post(`/api/users/${ALICE.username}/enable`, { token: admin }), 200, `user ${ALICE.username} enabled`);

    const alice = await login(ALICE.username, ALICE.password);
    const enrolment = await initTotp(ALICE.username, alice);
    const complete = (totp: string) => post(totpPath("complete-totp"), { token: alice, body: { otp_auth_url: enrolment.url, otp_auth_url_signature: enrolment.signature, totp } });
    await expectEnvelope(await complete(await wrongCode(enrolment.secret)), 400, `cannot setup totp for user ${ALICE.username}: invalid otp`);
    await expectEnvelope(await complete(await totpCode(enrolment.secret, T0 - 30)), 200, `totp setup complete for user ${ALICE.username}`);

    const preAuth = (await expectEnvelope(await post(LOGIN, { body: ALICE }), 200, "W1R3: TOTP required")).pre_auth_token;
    const verify = (totp: string) => post(totpPath("verify-totp"), { token: preAuth, body: { totp } });
    const code = await totpCode(enrolment.secret, T0);
    await expectEnvelope(await verify(await wrongCode(enrolment.secret)), 401, "invalid otp");
    await expectEnvelope(await verify(code), 200, `W1R3: User ${ALICE.username} Authorized`);
    const again = (await expectEnvelope(await post(LOGIN, { body: ALICE }), 200, "W1R3: TOTP required")).pre_auth_token;
    await expectEnvelope(await post(totpPath("verify-totp"), { token: again, body: { totp: code } }), 401, "invalid otp");
    await expectEnvelope(await post(totpPath("verify-totp"), { token: again, body: { totp: code }, env: LOCK_AFTER_ONE }), 429, LOCKED);
    await expectEnvelope(await post(totpPath("reset-totp"), { token: admin }), 200, `totp reset for user ${ALICE.username}`);

    const host = await createHost(admin, { id: "h1" });
    await expectEnvelope(await post(HOST_LOGIN, { body: { id: "h1", password: "wrong-host-password" } }), 401, "unauthorized");
    await expectEnvelope(await post(HOST_LOGIN, { body: { id: "h1", password: "wrong-host-password" }, env: LOCK_AFTER_ONE }), 429, LOCKED);
    await env.DB.prepare("DELETE FROM login_failures").run();
    await expectEnvelope(await post(HOST_LOGIN, { body: { id: "h1", password: host.password } }), 200, "W1R3: Host h1 Authorized");
    await expectEnvelope(await call("DELETE", "/api/hosts/h1", { token: admin }), 200, "host h1 deleted");
    await expectEnvelope(await call("DELETE", "/api/users/ann", { token: admin }), 200, "user ann deleted");

    const { events } = await readEvents(admin);
    const byAdmin = { actor: SUPER_ADMIN.username };
    expect(events.reverse().map(({ id: _, ...rest }) => rest)).toEqual([
      event("admin.superadmin.create", "admin", "success"),
      event("user.login", "admin", "success"),
      event("admin.user.create", ALICE.username, "success", { ...byAdmin, reason: "platform-user" }),
      event("admin.user.create", "ann", "success", { ...byAdmin, reason: "admin" }),
      event("user.login", ALICE.username, "failure", { reason: "wrong password" }),
      event("user.login", "ghost", "failure", { reason: "unknown user", ip: "203.0.113.9" }),
      event("user.login", "ghost", "locked"),
      event("admin.user.disable", ALICE.username, "success", byAdmin),
      event("user.login", ALICE.username, "failure", { reason: "account disabled" }),
      event("admin.user.enable", ALICE.username, "success", byAdmin),
      event("user.login", ALICE.username, "success"),
      event("totp.enrol", ALICE.username, "failure", { reason: "wrong code" }),
      event("totp.enrol", ALICE.username, "success"),
      event("user.login", ALICE.username, "success", { reason: "totp required" }),
      event("user.totp", ALICE.username, "failure", { reason: "wrong code" }),
      event("user.totp", ALICE.username, "success"),
      event("user.login", ALICE.username, "success", { reason: "totp required" }),
      event("user.totp", ALICE.username, "failure", { reason: "code already used" }),
      event("user.totp", ALICE.username, "locked"),
      event("admin.totp.reset", ALICE.username, "success", byAdmin),
      event("admin.host.create", "h1", "success", byAdmin),
      event("host.login", "h1", "failure", { reason: "wrong password" }),
      event("host.login", "h1", "locked"),
      event("host.login", "h1", "success"),
      event("admin.host.delete", "h1", "success", byAdmin),
      event("admin.user.delete", "ann", "success", byAdmin),
    ]);
  });

  it("records nothing for a refused admin change", async () => {
    const admin = await createSuperAdmin();
    await createUser(admin, ALICE.username, ALICE.password);
    const count = () => env.DB.prepare("SELECT count(*) AS n FROM auth_events").first<number>("n");
    const before = await count();
    await expectEnvelope(await post(`/api/users/${ALICE.username}`, { token: admin, body: ALICE }), 400, "user already exists");
    await expectEnvelope(await call("DELETE", "/api/hosts/no-such-host", { token: admin }), 404, "host not found");
    await expectEnvelope(await post("/api/users/adm/createsuperadmin", { body: { username: "root", password: "root-password" } }), 400, "superadmin user already exists");
    expect(await count()).toBe(before);
  });
});

describe("GET /api/audit/events", () => {
  it("is refused without a token, with a pre-auth or host token, and to a platform user", async () => {
    const admin = await createSuperAdmin();
    await createUser(admin, ALICE.username, ALICE.password);
    const alice = await login(ALICE.username, ALICE.password);
    const host = await createHost(admin, { id: "h1" });
    const hostToken = (await expectEnvelope(await post(HOST_LOGIN, { body: { id: "h1", password: host.password } }), 200, "W1R3: Host h1 Authorized")).AuthToken;
    const enrolment = await initTotp(ALICE.username, alice);
    const body = { otp_auth_url: enrolment.url, otp_auth_url_signature: enrolment.signature, totp: await totpCode(enrolment.secret, T0) };
    await expectEnvelope(await post(`/api/users/${ALICE.username}/auth/complete-totp`, { token: alice, body }), 200, `totp setup complete for user ${ALICE.username}`);
    const preAuth = (await expectEnvelope(await post(LOGIN, { body: ALICE }), 200, "W1R3: TOTP required")).pre_auth_token;

    await expectEnvelope(await get("/api/audit/events"), 401, "unauthorized", null);
    await expectEnvelope(await get("/api/audit/events", { token: preAuth }), 401, "unauthorized", null);
    await expectEnvelope(await get("/api/audit/events", { token: hostToken }), 401, "unauthorized", null);
    await expectEnvelope(await get("/api/audit/events", { token: alice }), 403, "forbidden", null);
  });

  it("is open to an admin as well as the super admin", async () => {
    const admin = await createSuperAdmin();
    await createUser(admin, "ann", "ann-password-1", "admin");
    const ann = await login("ann", "ann-password-1");
    const { events } = await readEvents(ann);
    expect(events[0]).toMatchObject({ kind: "user.login", subject: "ann", outcome: "success" });
  });

  it("pages newest first with limit and before, and says where the next page starts", async () => {
    const admin = await createSuperAdmin(); // events 1 and 2
    for (let i = 0; i < 7; i++) {
      await env.DB.prepare("INSERT INTO auth_events (at, kind, subject, outcome) VALUES (?, 'test', ?, 'success')").bind(T0, `s${i}`).run();
    }
    const ids = (page: { events: Event[] }) => page.events.map((row) => row.id);

    const first = await readEvents(admin, "limit=4");
    expect(ids(first)).toEqual([9, 8, 7, 6]);
    expect(first.next_before).toBe(6);
    const second = await readEvents(admin, `limit=4&before=${first.next_before}`);
    expect(ids(second)).toEqual([5, 4, 3, 2]);
    expect(second.next_before).toBe(2);
    const last = await readEvents(admin, `limit=4&before=${second.next_before}`);
    expect(ids(last)).toEqual([1]);
    expect(last.next_before).toBeNull();
    expect(last.events[0]).toEqual({ id: 1, ...event("admin.superadmin.create", "admin", "success") });

    expect(ids(await readEvents(admin, ""))).toHaveLength(9); // default limit 100
  });

  it.each([["limit=0"], ["limit=501"], ["limit=abc"], ["before=0"], ["before=-3"], ["before=1.5"]])("refuses %s with 400", async (query) => {
    const admin = await createSuperAdmin();
    const field = query.split("=")[0];
    await expectEnvelope(await get(`/api/audit/events?${query}`, { token: admin }), 400, new RegExp(`^invalid request query: ${field}: `), null);
  });

  it("checks the caller before the query: no token and a bad query is 401", async () => {
    await createSuperAdmin();
    await expectEnvelope(await get("/api/audit/events?limit=abc"), 401, "unauthorized", null);
    await expectEnvelope(await get("/api/v1/users"), 401, "unauthorized", null);
  });
});

describe("the scheduled clean-up", () => {
  async function runCron(at: number, overrides: Partial<Env> = {}) {
    const controller = createScheduledController({ scheduledTime: at * 1000, cron: "17 3 * * *" });
    await scheduled(controller, { ...env, ...overrides } as Env);
  }

  async function insertEventAt(at: number, subject: string) {
    await env.DB.prepare("INSERT INTO auth_events (at, kind, subject, outcome) VALUES (?, 'test', ?, 'success')").bind(at, subject).run();
  }

  const subjects = async (table: string, column: string) =>
    (await env.DB.prepare(`SELECT ${column} AS s FROM ${table} ORDER BY ${column}`).all<{ s: string }>()).results.map((row) => row.s);

  it("deletes events older than AUDIT_RETENTION_DAYS and keeps the newer ones", async () => {
    const retention = AUDIT_RETENTION_DAYS * DAY;
    await insertEventAt(T0 - retention - 1, "too old");
    await insertEventAt(T0 - retention, "just kept");
    await insertEventAt(T0 - 1, "recent");
    await runCron(T0);
    expect(await subjects("auth_events", "subject")).toEqual(["just kept", "recent"]);
  });

  it("follows a configured retention", async () => {
    await insertEventAt(T0 - 8 * DAY, "eight days old");
    await insertEventAt(T0 - 6 * DAY, "six days old");
    await runCron(T0, vars({ AUDIT_RETENTION_DAYS: "7" }));
    expect(await subjects("auth_events", "subject")).toEqual(["six days old"]);
  });

  it("prunes failure counters idle for a day that lock nothing, and expired pre-auth tokens, keeping the rest", async () => {
    const counter = env.DB.prepare("INSERT INTO login_failures (subject, failures, locked_until, updated_at) VALUES (?, ?, ?, ?)");
    await env.DB.batch([
      counter.bind("user:idle", 3, 0, T0 - COUNTER_IDLE_SECONDS - 1), // no lock, idle for more than a day
      counter.bind("user:expired-lock", 11, T0 - 1, T0 - COUNTER_IDLE_SECONDS - 1),
      counter.bind("user:recent", 3, 0, T0 - LOCK_SECONDS - 1), // idle longer than a lock, but not a day: kept
      counter.bind("user:locked", 11, T0 + 300, T0 - COUNTER_IDLE_SECONDS - 1), // still locked: kept whatever its age
    ]);
    const token = env.DB.prepare("INSERT INTO preauth_tokens (jti, failures, used, expires_at) VALUES (?, 0, 0, ?)");
    await env.DB.batch([token.bind("expired", T0 - 1), token.bind("live", T0 + 60)]);

    await runCron(T0);
    expect(await subjects("login_failures", "subject")).toEqual(["user:locked", "user:recent"]);
    expect(await subjects("preauth_tokens", "jti")).toEqual(["live"]);
  });

  it("keeps a locked account locked across the clean-up", async () => {
    await createSuperAdmin();
    for (let i = 0; i <= 10; i++) await post(LOGIN, { body: { username: "alice", password: "guess" } });
    setClock(T0 + LOCK_SECONDS - 1);
    await runCron(T0 + LOCK_SECONDS - 1);
    await expectEnvelope(await post(LOGIN, { body: { username: "alice", password: "guess" } }), 429, LOCKED, null);
  });
});
