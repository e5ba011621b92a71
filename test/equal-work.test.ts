// An unknown username, a wrong password and an imported (bcrypt) user cost the same work (API.md §2, §5):
// counted as hash runs and D1 statements, not measured on the clock.
import bcrypt from "bcryptjs";
import { env } from "cloudflare:test";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { createSuperAdmin, createUser, post } from "./helpers";

// Netmaker stores bcrypt at cost 5 with Go's "$2a$" prefix; bcryptjs writes "$2b$", the same algorithm.
const NETMAKER_BCRYPT_COST = 5;
const IMPORTED = { username: "imported", password: "netmaker-password-1" };
const NATIVE = { username: "native", password: "native-password-1" };

interface Work {
  status: number;
  body: string;
  derivations: number;
  bcryptCompares: number;
  statements: string[]; // every SQL text prepared, in order
  batches: number[]; // statements per batch, in order
}

let derivations: ReturnType<typeof vi.spyOn>;
let compares: ReturnType<typeof vi.spyOn>;

beforeEach(async () => {
  const admin = await createSuperAdmin();
  await createUser(admin, NATIVE.username, NATIVE.password);
  const hash = bcrypt.hashSync(IMPORTED.password, NETMAKER_BCRYPT_COST).replace(/^\$2b\$/, "$2a$");
  await env.DB.prepare("INSERT INTO users (username, password_hash, created_at, updated_at) VALUES (?, ?, 0, 0)")
    .bind(IMPORTED.username, hash)
    .run();
  derivations = vi.spyOn(crypto.subtle, "deriveBits");
  compares = vi.spyOn(bcrypt, "compare");
});
afterEach(() => vi.restoreAllMocks());

/** env.DB behind a proxy that records every statement prepared and every batch sent. */
function countingDb(db: D1Database) {
  const statements: string[] = [];
  const batches: number[] = [];
  const proxy = new Proxy(db, {
    get(target, property) {
      if (property === "prepare") {
        return (sql: string) => {
          statements.push(sql.replace(/\s+/g, " "));
          return target.prepare(sql);
        };
      }
      if (property === "batch") {
        return (list: D1PreparedStatement[]) => {
          batches.push(list.length);
          return target.batch(list);
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { proxy, statements, batches };
}

async function loginWork(username: string, password: string): Promise<Work> {
  derivations.mockClear();
  compares.mockClear();
  const db = countingDb(env.DB);
  const response = await post("/api/users/adm/authenticate", { body: { username, password }, env: { DB: db.proxy } });
  return {
    status: response.status,
    body: await response.text(),
    derivations: derivations.mock.calls.length,
    bcryptCompares: compares.mock.calls.length,
    statements: db.statements,
    batches: db.batches,
  };
}

it("answers an unknown user and a wrong password with the same status, message and work", async () => {
  const unknown = await loginWork("nobody", "some-guess-1");
  const wrongImported = await loginWork(IMPORTED.username, "some-guess-1");
  const wrongNative = await loginWork(NATIVE.username, "some-guess-1");

  expect(unknown.status).toBe(400);
  expect(JSON.parse(unknown.body)).toEqual({ Code: 400, Message: "incorrect credentials", Response: null });
  expect(unknown.derivations).toBe(1);
  expect(unknown.bcryptCompares).toBe(1);
  expect(unknown.batches).toEqual([2]);
  expect(unknown.statements).toHaveLength(3);
  expect(wrongImported).toEqual(unknown);
  expect(wrongNative).toEqual(unknown);

  // Only the audit trail tells them apart.
  const reasons = await env.DB.prepare("SELECT subject, reason FROM auth_events WHERE kind = 'user.login' AND outcome = 'failure' ORDER BY id").all();
  expect(reasons.results).toEqual([
    { subject: "nobody", reason: "unknown user" },
    { subject: IMPORTED.username, reason: "wrong password" },
    { subject: NATIVE.username, reason: "wrong password" },
  ]);
});

it("does the same hashing and the same reads for the right password of an imported user, then upgrades its hash", async () => {
  const unknown = await loginWork("nobody", "some-guess-1");
  const right = await loginWork(IMPORTED.username, IMPORTED.password);

  expect(right.status).toBe(200);
  expect(JSON.parse(right.body).Message).toBe(`W1R3: Device ${IMPORTED.username} Authorized`);
  expect(right.derivations).toBe(unknown.derivations);
  expect(right.bcryptCompares).toBe(unknown.bcryptCompares);
  // Up to the decision the statements are the same; success then writes what a failure does not.
  expect(right.statements.slice(0, 2)).toEqual(unknown.statements.slice(0, 2));
  expect(right.batches[0]).toBe(unknown.batches[0]);
  expect(right.statements.slice(2).map((sql) => sql.split(" ")[0])).toEqual(["UPDATE", "DELETE", "INSERT"]);

  const stored = await env.DB.prepare("SELECT password_hash FROM users WHERE username = ?").bind(IMPORTED.username).first<string>("password_hash");
  expect(stored).toMatch(/^pbkdf2-sha256\$100000\$/);
  const again = await loginWork(IMPORTED.username, IMPORTED.password);
  expect(again.status).toBe(200);
  expect(again.derivations).toBe(1);
  expect(again.bcryptCompares).toBe(1);
});
