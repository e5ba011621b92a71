// Storage faults (issue 4): with D1 or KV failing, every route answers the fixed 500 envelope, logs the
// cause, and leaves no half-written state: a multi-step change is one D1 batch, which D1 runs as a transaction.
import { applyD1Migrations, env, reset } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  call,
  createHost,
  createSuperAdmin,
  createUser,
  expectEnvelope,
  get,
  login,
  post,
  snapshot,
  SUPER_ADMIN,
  totpCode,
} from "./helpers";

const T0 = 1_900_000_005; // pinned clock, mid TOTP step
const ALICE = { username: "alice", password: "alice-password-1" };
const CAROL = { username: "carol", password: "carol-password-1" }; // has TOTP on
const LOGIN = "/api/users/adm/authenticate";
const INTERNAL = "internal server error";

class InjectedFault extends Error {}

interface Fixture {
  admin: string;
  alice: string;
  host: { id: string; password: string };
  enrolment: { otp_auth_url: string; otp_auth_url_signature: string; secret: string };
  carolPreAuth: string;
  carolSecret: string;
}

async function initTotp(username: string, token: string) {
  const init = await expectEnvelope(await post(`/api/users/${username}/auth/init-totp`, { token }), 200, "totp setup initiated");
  return { ...init, secret: new URL(init.otp_auth_url).searchParams.get("secret")! };
}

const enrolmentBody = (enrolment: Fixture["enrolment"], time: number) =>
  totpCode(enrolment.secret, time).then((totp) => ({
    otp_auth_url: enrolment.otp_auth_url,
    otp_auth_url_signature: enrolment.otp_auth_url_signature,
    totp,
  }));

/** An admin, alice with an enrolment pending, carol with TOTP on and a pre-auth token, and a host. */
async function setUp(): Promise<Fixture> {
  const admin = await createSuperAdmin();
  await createUser(admin, ALICE.username, ALICE.password);
  await createUser(admin, CAROL.username, CAROL.password);
  const host = await createHost(admin, { name: "h1" });
  const carolToken = await login(CAROL.username, CAROL.password);
  const carolEnrolment = await initTotp(CAROL.username, carolToken);
  const complete = post(`/api/users/${CAROL.username}/auth/complete-totp`, { token: carolToken, body: await enrolmentBody(carolEnrolment, T0 - 30) });
  await expectEnvelope(await complete, 200, `totp setup complete for user ${CAROL.username}`);
  const carolStep = await expectEnvelope(await post(LOGIN, { body: CAROL }), 200, "W1R3: TOTP required");
  const alice = await login(ALICE.username, ALICE.password);
  const enrolment = await initTotp(ALICE.username, alice);
  return { admin, alice, host, enrolment, carolPreAuth: carolStep.pre_auth_token, carolSecret: carolEnrolment.secret };
}

/** What a fault may leave behind, beyond nothing: an attempt counted before the check, a code used up. */
type Leftover = "counted attempt" | "used code";

interface Route {
  name: string;
  send: (fixture: Fixture, faulty: Partial<Env>) => Promise<Response>;
  ok: number; // the status without a fault
  kv?: "needs" | "cleans up"; // reads or writes a pending enrolment; or deletes one after its D1 change
  leftover?: Leftover[];
}

const ROUTES: Route[] = [
  { name: "user login", ok: 200, leftover: ["counted attempt"], send: (_, e) => post(LOGIN, { body: ALICE, env: e }) },
  {
    name: "user login, wrong password",
    ok: 400,
    leftover: ["counted attempt"],
    send: (_, e) => post(LOGIN, { body: { ...ALICE, password: "wrong-password" }, env: e }),
  },
  {
    name: "host login",
    ok: 200,
    leftover: ["counted attempt"],
    send: (f, e) => post("/api/hosts/adm/authenticate", { body: { id: f.host.id, password: f.host.password }, env: e }),
  },
  { name: "hassuperadmin", ok: 200, send: (_, e) => get("/api/users/adm/hassuperadmin", { env: e }) },
  {
    name: "createsuperadmin",
    ok: 400,
    send: (_, e) => post("/api/users/adm/createsuperadmin", { body: { username: "root", password: "root-password" }, env: e }),
  },
  { name: "init-totp", ok: 200, kv: "needs", send: (f, e) => post(`/api/users/${ALICE.username}/auth/init-totp`, { token: f.alice, env: e }) },
  {
    name: "complete-totp",
    ok: 200,
    kv: "needs",
    send: async (f, e) =>
      post(`/api/users/${ALICE.username}/auth/complete-totp`, { token: f.alice, body: await enrolmentBody(f.enrolment, T0), env: e }),
  },
  {
    name: "verify-totp",
    ok: 200,
    leftover: ["counted attempt", "used code"],
    send: async (f, e) =>
      post(`/api/users/${CAROL.username}/auth/verify-totp`, { token: f.carolPreAuth, body: { totp: await totpCode(f.carolSecret, T0) }, env: e }),
  },
  { name: "reset-totp", ok: 200, kv: "cleans up", send: (f, e) => post(`/api/users/${CAROL.username}/auth/reset-totp`, { token: f.admin, env: e }) },
  {
    name: "create user",
    ok: 200,
    send: (f, e) => post("/api/users/dave", { token: f.admin, body: { username: "dave", password: "dave-password-1" }, env: e }),
  },
  { name: "read user", ok: 200, send: (f, e) => get(`/api/users/${ALICE.username}`, { token: f.admin, env: e }) },
  { name: "disable user", ok: 200, send: (f, e) => post(`/api/users/${ALICE.username}/disable`, { token: f.admin, env: e }) },
  { name: "enable user", ok: 200, send: (f, e) => post(`/api/users/${ALICE.username}/enable`, { token: f.admin, env: e }) },
  { name: "delete user", ok: 200, kv: "cleans up", send: (f, e) => call("DELETE", `/api/users/${ALICE.username}`, { token: f.admin, env: e }) },
  { name: "create host", ok: 200, send: (f, e) => post("/api/hosts", { token: f.admin, body: { name: "h2" }, env: e }) },
  { name: "list hosts", ok: 200, send: (f, e) => get("/api/hosts", { token: f.admin, env: e }) },
  { name: "delete host", ok: 200, send: (f, e) => call("DELETE", `/api/hosts/${f.host.id}`, { token: f.admin, env: e }) },
  { name: "getconfig", ok: 200, send: (f, e) => get("/api/server/getconfig", { token: f.alice, env: e }) },
  { name: "v1 user", ok: 200, send: (f, e) => get(`/api/v1/users?username=${ALICE.username}`, { token: f.alice, env: e }) },
  { name: "audit events", ok: 200, send: (f, e) => get("/api/audit/events?limit=5", { token: f.admin, env: e }) },
];

// ---------------------------------------------------------------------------------------------------
// Faulty bindings

type Operation = "prepare" | "batch" | "first" | "run" | "all" | "raw";

/**
 * env.DB behind a proxy that throws where `fails(operation, n)` says so; `n` numbers the executions
 * (a batch, or a statement's first/run/all/raw) from 1, and is 0 for prepare.
 */
function faultyDb(fails: (operation: Operation, n: number) => boolean) {
  const db = env.DB;
  const real = new WeakMap<object, D1PreparedStatement>();
  const state = { executions: 0, fired: 0 };
  const execute = (operation: Operation) => {
    const n = ++state.executions;
    if (fails(operation, n)) {
      state.fired++;
      throw new InjectedFault(`injected D1 fault: ${operation} #${n}`);
    }
  };
  const wrap = (statement: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(statement, {
      get(target, property) {
        if (property === "bind") return (...values: unknown[]) => wrap(target.bind(...values));
        if (property === "first" || property === "run" || property === "all" || property === "raw") {
          return async (...args: unknown[]) => {
            execute(property);
            return (target[property] as (...a: unknown[]) => unknown)(...args);
          };
        }
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    real.set(proxy, statement);
    return proxy;
  };
  const proxy = new Proxy(db, {
    get(target, property) {
      if (property === "prepare") {
        return (sql: string) => {
          if (fails("prepare", 0)) {
            state.fired++;
            throw new InjectedFault("injected D1 fault: prepare");
          }
          return wrap(target.prepare(sql));
        };
      }
      if (property === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          execute("batch");
          return target.batch(statements.map((statement) => real.get(statement) ?? statement));
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { db: proxy, state };
}

/** env.ENROLMENTS whose `methods` throw. */
const failingKv = (methods = ["get", "put", "delete", "list", "getWithMetadata"]) =>
  new Proxy(env.ENROLMENTS, {
    get(target, property) {
      if (methods.includes(String(property))) {
        return () => Promise.reject(new InjectedFault(`injected KV fault: ${String(property)}`));
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });

// ---------------------------------------------------------------------------------------------------
// Checks

let errors: ReturnType<typeof vi.spyOn>;
const setClock = (seconds: number) => vi.setSystemTime(seconds * 1000);
beforeEach(() => {
  setClock(T0);
  errors = vi.spyOn(console, "error").mockImplementation(() => {});
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

async function expectInternalError(response: Response, cause: RegExp) {
  const text = await response.clone().text();
  await expectEnvelope(response, 500, INTERNAL, null);
  expect(text).not.toMatch(/injected|D1_|SQLITE|stack/i); // the fixed message, no internals
  expect(errors).toHaveBeenCalledWith(expect.stringMatching(/ failed:$/), expect.objectContaining({ message: expect.stringMatching(cause) }));
}

type Snapshot = Awaited<ReturnType<typeof snapshot>>;
type Row = Record<string, unknown>;
const without = (rows: unknown[], column: string) => (rows as Row[]).map(({ [column]: _, ...rest }) => rest);

/** At most one counter (rows keyed by `key`) went up by one; no other row changed. */
function expectAtMostOneMoreAttempt(before: unknown[], after: unknown[], key: string) {
  const failures = (rows: unknown[]) => Object.fromEntries((rows as Row[]).map((row) => [row[key], row.failures as number]));
  const [was, is] = [failures(before), failures(after)];
  const changed = Object.keys(is).filter((id) => is[id] !== was[id]);
  expect(changed.length).toBeLessThanOrEqual(1);
  for (const id of changed) expect(is[id]).toBe((was[id] ?? 0) + 1);
  expect(without(after, "updated_at").filter((row) => !changed.includes(row[key] as string))).toEqual(
    without(before, "updated_at").filter((row) => !changed.includes(row[key] as string)),
  );
}

/** Nothing changed, except what `leftover` allows: attempts counted before the check, a TOTP step used up. */
function expectNoHalfWrite(before: Snapshot, after: Snapshot, leftover: Leftover[] = []) {
  for (const table of ["hosts", "auth_events", "kv"]) expect(after[table], table).toEqual(before[table]);
  if (leftover.includes("used code")) expect(without(after.users, "last_totp_step")).toEqual(without(before.users, "last_totp_step"));
  else expect(after.users).toEqual(before.users);
  if (leftover.includes("counted attempt")) {
    expectAtMostOneMoreAttempt(before.login_failures, after.login_failures, "subject");
    expectAtMostOneMoreAttempt(before.preauth_tokens, after.preauth_tokens, "jti");
  } else {
    expect(after.login_failures).toEqual(before.login_failures);
    expect(after.preauth_tokens).toEqual(before.preauth_tokens);
  }
}

async function freshFixture(): Promise<Fixture> {
  await reset();
  await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
  return setUp();
}

// ---------------------------------------------------------------------------------------------------

describe("with D1 failing", () => {
  it.each(ROUTES)("$name answers 500 when prepare throws, and nothing changes", async (route) => {
    const fixture = await setUp();
    const before = await snapshot();
    const { db, state } = faultyDb((operation) => operation === "prepare");
    await expectInternalError(await route.send(fixture, { DB: db }), /injected D1 fault: prepare/);
    expect(state.fired).toBeGreaterThan(0);
    expect(await snapshot()).toEqual(before);
  });

  it.each(ROUTES)("$name answers 500 when every statement and batch rejects, and nothing changes", async (route) => {
    const fixture = await setUp();
    const before = await snapshot();
    const { db } = faultyDb((operation) => operation !== "prepare");
    await expectInternalError(await route.send(fixture, { DB: db }), /injected D1 fault: (batch|first|run|all|raw) #1$/);
    expect(await snapshot()).toEqual(before);
  });

  it.each(ROUTES)("$name answers 500 whichever D1 step fails, and leaves no half-written state", async (route) => {
    const MAX_STEPS = 10;
    for (let n = 1; n <= MAX_STEPS; n++) {
      const fixture = await freshFixture();
      errors.mockClear();
      const before = await snapshot();
      const { db, state } = faultyDb((operation, at) => at === n);
      const response = await route.send(fixture, { DB: db });
      if (state.fired === 0) {
        // Past the last step: the fault never fired, and the request did what it does.
        expect(response.status).toBe(route.ok);
        expect(n).toBeGreaterThan(1);
        return;
      }
      await expectInternalError(response, new RegExp(`injected D1 fault: \\w+ #${n}$`));
      expectNoHalfWrite(before, await snapshot(), route.leftover);
    }
    throw new Error(`${route.name} ran more than ${MAX_STEPS} D1 steps`);
  });

  it("reports the health check as 503, db_connected false, and logs why", async () => {
    const { db } = faultyDb(() => true);
    const response = await get("/api/server/status", { env: { DB: db } });
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ db_connected: false, version: expect.any(String) });
    expect(errors).toHaveBeenCalledWith(expect.any(String), expect.any(InjectedFault));
  });
});

describe("a fault inside a D1 batch", () => {
  /** Puts a statement that D1 refuses right after the first statement of every batch. */
  function sabotagedBatches() {
    return new Proxy(env.DB, {
      get(target, property) {
        if (property === "batch") {
          return (statements: D1PreparedStatement[]) =>
            target.batch([statements[0], target.prepare("SELECT * FROM injected_fault_no_such_table"), ...statements.slice(1)]);
        }
        const value = Reflect.get(target, property);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }

  it("undoes the first statement of createsuperadmin; the bootstrap can be retried", async () => {
    const body = { username: "root", password: "root-password-1" };
    const response = await post("/api/users/adm/createsuperadmin", { body, env: { DB: sabotagedBatches() } });
    await expectInternalError(response, /no such table: injected_fault_no_such_table/);
    expect(await snapshot()).toEqual({ users: [], hosts: [], login_failures: [], preauth_tokens: [], auth_events: [], kv: [] });

    const retried = await post("/api/users/adm/createsuperadmin", { body });
    expect(retried.status).toBe(200);
    expect(await env.DB.prepare("SELECT username, platform_role FROM users").all().then((r) => r.results)).toEqual([
      { username: "root", platform_role: "super-admin" },
    ]);
  });

  it("undoes the first statement of complete-totp; the enrolment can be completed by a retry", async () => {
    await createSuperAdmin();
    const admin = await login(SUPER_ADMIN.username, SUPER_ADMIN.password);
    await createUser(admin, ALICE.username, ALICE.password);
    const token = await login(ALICE.username, ALICE.password);
    const enrolment = await initTotp(ALICE.username, token);
    const before = await snapshot();

    const path = `/api/users/${ALICE.username}/auth/complete-totp`;
    const body = await enrolmentBody(enrolment, T0);
    await expectInternalError(await post(path, { token, body, env: { DB: sabotagedBatches() } }), /no such table/);
    expect(await snapshot()).toEqual(before);
    expect(await env.DB.prepare("SELECT mfa_enabled, totp_secret FROM users WHERE username = ?").bind(ALICE.username).first()).toEqual({
      mfa_enabled: 0,
      totp_secret: null,
    });

    await expectEnvelope(await post(path, { token, body }), 200, `totp setup complete for user ${ALICE.username}`, null);
  });
});

describe("with KV failing", () => {
  it.each(ROUTES.filter((route) => route.kv === "needs"))("$name answers 500, and nothing changes", async (route) => {
    const fixture = await setUp();
    const before = await snapshot();
    await expectInternalError(await route.send(fixture, { ENROLMENTS: failingKv() }), /injected KV fault/);
    expect(await snapshot()).toEqual(before);
  });

  // D1 holds the truth: once its change has committed, a pending entry that cannot be deleted only waits
  // for its TTL, and the answer says what happened.
  const cleaningUp = ROUTES.filter((route) => route.kv === "cleans up");
  it.each(cleaningUp)("$name still answers for its committed change, and logs the leftover", async (route) => {
    const fixture = await setUp();
    const kvBefore = (await snapshot()).kv;
    const response = await route.send(fixture, { ENROLMENTS: failingKv() });
    expect(response.status).toBe(200);
    expect(errors).toHaveBeenCalledWith(expect.stringMatching(/not deleted/), expect.objectContaining({ message: "injected KV fault: delete" }));
    expect((await snapshot()).kv).toEqual(kvBefore);
  });

  it("completes an enrolment whose pending entry cannot be deleted, and the entry cannot be used again", async () => {
    const fixture = await setUp();
    const path = `/api/users/${ALICE.username}/auth/complete-totp`;
    const body = await enrolmentBody(fixture.enrolment, T0);
    const response = await post(path, { token: fixture.alice, body, env: { ENROLMENTS: failingKv(["delete"]) } });
    await expectEnvelope(response, 200, `totp setup complete for user ${ALICE.username}`, null);
    expect(errors).toHaveBeenCalledWith(expect.stringMatching(/not deleted/), expect.any(InjectedFault));
    expect(await env.DB.prepare("SELECT mfa_enabled FROM users WHERE username = ?").bind(ALICE.username).first("mfa_enabled")).toBe(1);
    expect((await snapshot()).kv).toEqual([`totp-enrolment:${ALICE.username}`]);

    setClock(T0 + 30);
    const replay = await post(path, { token: fixture.alice, body: await enrolmentBody(fixture.enrolment, T0 + 30) });
    await expectEnvelope(replay, 400, "totp setup expired, initiate it again", null);
  });

  it.each(ROUTES.filter((route) => !route.kv))("$name does not touch KV", async (route) => {
    const fixture = await setUp();
    const response = await route.send(fixture, { ENROLMENTS: failingKv() });
    expect(response.status).toBe(route.ok);
    expect(errors).not.toHaveBeenCalled();
  });
});
