// Bench-only entry (never deployed): the production Worker plus baseline routes that show the floors every
// figure is compared with. Built by bench/run.mjs with the same bundler and config as `wrangler deploy`.
import bcrypt from "bcryptjs";
import worker from "../src/index";
import { createApp } from "../src/app";
import { PBKDF2_ITERATIONS } from "../src/lib/passwords";

const json = (body: unknown) =>
  new Response(JSON.stringify(body), { headers: { "Content-Type": "application/json" } });

// The framework floor: a route behind the app's own middleware (security headers, config, CORS), so that
// the cost of Hono and the middleware can be told apart from the runtime's.
const framed = createApp();
framed.get("/bench/hono", (c) => c.json({ ok: true }));

const BCRYPT_COST_5_HASH = "$2b$05$AcU04bXTPdMpFleH.u3s7eWB64QwhJloCmDa0isfESwaYSQr2mecy";

/** One PBKDF2 derivation, exactly as src/lib/passwords.ts runs it. */
async function pbkdf2Once(): Promise<number> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("bench-password"), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations: PBKDF2_ITERATIONS }, key, 256);
  return bits.byteLength;
}

// Round trips to D1 and KV, counted only for requests that carry X-Bench-Count (the timed runs do not), by
// wrapping the bindings: every D1 first/run/all/raw/batch/exec call and every KV call is one round trip.
const trips = { requests: 0, d1: 0, kv: 0 };
const REAL = Symbol("real statement");

function countedStatement(statement: D1PreparedStatement): D1PreparedStatement {
  const trip = <T>(call: () => Promise<T>) => {
    trips.d1++;
    return call();
  };
  const wrapped = {
    [REAL]: statement,
    bind: (...values: unknown[]) => countedStatement(statement.bind(...values)),
    first: (column?: string) => trip(() => (column === undefined ? statement.first() : statement.first(column))),
    run: () => trip(() => statement.run()),
    all: () => trip(() => statement.all()),
    raw: (options?: { columnNames?: boolean }) => trip(() => statement.raw(options as { columnNames: true })),
  };
  return wrapped as unknown as D1PreparedStatement;
}

function countedDb(db: D1Database): D1Database {
  const unwrap = (statement: D1PreparedStatement) =>
    (statement as unknown as { [REAL]?: D1PreparedStatement })[REAL] ?? statement;
  return {
    prepare: (query: string) => countedStatement(db.prepare(query)),
    batch: (statements: D1PreparedStatement[]) => {
      trips.d1++;
      return db.batch(statements.map(unwrap));
    },
    exec: (query: string) => {
      trips.d1++;
      return db.exec(query);
    },
    withSession: (constraint?: string) => db.withSession(constraint),
    dump: () => db.dump(),
  } as unknown as D1Database;
}

function countedKv(kv: KVNamespace): KVNamespace {
  return new Proxy(kv, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        trips.kv++;
        return value.apply(target, args);
      };
    },
  });
}

const baselines: Record<string, (request: Request, env: Env) => Promise<Response> | Response> = {
  // The runtime's floor: nothing but a tiny JSON answer.
  "/bench/empty": () => json({ ok: true }),
  // The storage floor: one D1 read by primary key.
  "/bench/d1": async (request, env) => {
    const username = new URL(request.url).searchParams.get("u") ?? "";
    const row = await env.DB.prepare("SELECT * FROM users WHERE username = ?").bind(username).first();
    return json({ found: row !== null });
  },
  // The password-hashing floor: one PBKDF2 at the configured iterations.
  "/bench/pbkdf2": async () => json({ bytes: await pbkdf2Once() }),
  "/bench/hono": (request, env) => framed.fetch(request, env),
  // One KV read, to price a KV round trip the way /bench/d1 prices a D1 one.
  "/bench/kv": async (request, env) => json({ found: (await env.ENROLMENTS.get("bench-missing-key")) !== null }),
  // One bcrypt comparison at Netmaker's cost (5), the other hash a login may run.
  "/bench/bcrypt": async () => json({ ok: await bcrypt.compare("bench-password", BCRYPT_COST_5_HASH) }),
  // Round trips counted since the last call, per counted request.
  "/bench/trips": () => {
    const answer = { ...trips };
    Object.assign(trips, { requests: 0, d1: 0, kv: 0 });
    return json(answer);
  },
};

export default {
  fetch(request, env, ctx) {
    if (request.headers.has("X-Bench-Count")) {
      trips.requests++;
      env = { ...env, DB: countedDb(env.DB), ENROLMENTS: countedKv(env.ENROLMENTS) };
    }
    const baseline = request.url.includes("/bench/") ? baselines[new URL(request.url).pathname] : undefined;
    return baseline ? baseline(request, env) : worker.fetch!(request, env, ctx);
  },
  scheduled: worker.scheduled,
} satisfies ExportedHandler<Env>;
