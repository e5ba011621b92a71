// The Netmaker import end to end inside workerd: the global setup (Node) wrote Netmaker databases of both
// layouts and read them with the import's reader; here the import is planned against D1, its SQL applied, and
// every imported user and host logs in through fetch with its old password.
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, inject, it } from "vitest";
import type { NetmakerData } from "../scripts/import/netmaker";
import { existingState, planImport, type ImportPlan } from "../scripts/import/records";
import { EXISTING_STATE_QUERY, importStatements } from "../scripts/import/sql";
import { loadKeyRing } from "../src/lib/secretbox";
import {
  HASHES,
  HOST_IDS,
  NETMAKER_JWT_SECRET,
  PASSWORDS,
  TOTP_SECRETS,
} from "./fixtures/netmaker-records";
import {
  claims,
  createSuperAdmin,
  createUser,
  expectEnvelope,
  login,
  nowSeconds,
  post,
  snapshot,
  SUPER_ADMIN,
  totpCode,
} from "./helpers";

declare module "vitest" {
  interface ProvidedContext {
    netmaker: { keyValue: NetmakerData; relational: NetmakerData };
  }
}

const { keyValue, relational } = inject("netmaker");

async function d1State() {
  const { results } = await env.DB.prepare(EXISTING_STATE_QUERY).all<{ kind: string; name: string; role: string | null }>();
  return existingState(results);
}

async function plan(data: NetmakerData, now = nowSeconds()): Promise<ImportPlan> {
  return planImport(data, { ring: await loadKeyRing(env.TOTP_KEYS), now, existing: await d1State() });
}

async function apply(statements: string[]) {
  if (statements.length > 0) await env.DB.batch(statements.map((sql) => env.DB.prepare(sql)));
}

/** One run of the import as the CLI does it: plan against D1, then run the SQL. */
async function runImport(data: NetmakerData, now = nowSeconds()) {
  const planned = await plan(data, now);
  const statements = importStatements(planned, now);
  await apply(statements);
  return { plan: planned, statements };
}

const userRow = (username: string) => env.DB.prepare("SELECT * FROM users WHERE username = ?").bind(username).first<any>();
const hostRow = (id: string) => env.DB.prepare("SELECT * FROM hosts WHERE id = ?").bind(id).first<any>();
const PBKDF2 = /^pbkdf2-sha256\$100000\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/;
const HMAC = /^hmac-sha256\$[A-Za-z0-9+/]{43}=$/;
const SEALED = /^v1\.test2\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/;

/** Logs a user in with an old password and shows that the bcrypt hash gave way to the current scheme. */
async function expectUserMovesOver(username: string, password: string, role: string) {
  expect((await userRow(username)).password_hash).toBe(HASHES[username as keyof typeof HASHES]);
  const token = await login(username, password);
  expect(claims(token)).toMatchObject({ UserName: username, Role: role, sub: `user|${username}` });
  expect((await userRow(username)).password_hash).toMatch(PBKDF2);
  await login(username, password); // the new hash takes the same password
  const wrong = await post("/api/users/adm/authenticate", { body: { username, password: `${password}x` } });
  await expectEnvelope(wrong, 400, "incorrect credentials", null);
}

async function expectHostMovesOver(id: string, password: string) {
  expect((await hostRow(id)).password_hash).toMatch(/^\$2a\$05\$/);
  for (let round = 0; round < 2; round++) {
    const res = await post("/api/hosts/adm/authenticate", { body: { id, password, macaddress: "02:42:0a:00:00:01" } });
    const payload = await expectEnvelope(res, 200, `W1R3: Host ${id} Authorized`);
    expect(Object.keys(payload).sort()).toEqual(["AuthToken", "ID"]);
    expect(payload.ID).toBe(id);
    expect(claims(payload.AuthToken)).toMatchObject({ ID: id, sub: `node|${id}` });
    expect((await hostRow(id)).password_hash).toMatch(HMAC);
  }
  const wrong = await post("/api/hosts/adm/authenticate", { body: { id, password: `${password}x`, macaddress: "" } });
  await expectEnvelope(wrong, 401, "unauthorized", null);
}

/** Every value of every table and KV key, as text: a plain TOTP secret must appear nowhere. */
async function everythingStored(): Promise<string> {
  return JSON.stringify(await snapshot());
}

describe("the reader", () => {
  it("reads the key-value layout of Netmaker 1.4 and the server's JWT secret", () => {
    expect(keyValue.layout).toBe("key-value");
    expect(keyValue.jwtSecret).toBe(NETMAKER_JWT_SECRET);
    expect(keyValue.users.map((u) => u.username)).toEqual([
      "alice", "bob", "broken", "carol", "dave", "erin@example.com", "frank", "hank", "mallory", "netadmin", "plain", "root2",
    ]);
    expect(keyValue.users.find((u) => u.username === "bob")).toEqual({ source: "users key 'bob'", username: "bob", password: HASHES.bob });
    expect(keyValue.users.find((u) => u.username === "broken")).toEqual({
      source: "users key 'broken'",
      username: "broken",
      problem: "the value is not valid JSON",
    });
    expect(keyValue.hosts.map((h) => [h.id, h.name, h.hostPass])).toEqual([
      [HOST_IDS.laptop, "laptop", HASHES.laptop],
      [HOST_IDS.noPassword, "half-registered", ""],
      [HOST_IDS.router, undefined, HASHES.router],
    ]);
  });

  it("reads the relational layout of 1.5.1 and ignores the stale key-value tables it leaves behind", () => {
    expect(relational.layout).toBe("relational");
    expect(relational.jwtSecret).toBe(NETMAKER_JWT_SECRET);
    expect(relational.users.map((u) => u.username)).toEqual(["ivy", "jack", "kate", "liam", "sso@example.com", "nopass", "mfa-broken"]);
    expect(relational.users[2]).toEqual({
      source: "users_v1 row 3",
      username: "kate",
      password: HASHES.kate,
      platformRoleId: "platform-user",
      accountDisabled: false,
      authType: "basic_auth",
      externalIdentityProviderId: "",
      isMfaEnabled: true,
      totpSecret: TOTP_SECRETS.kate,
      createdAt: Date.UTC(2025, 10, 20, 8, 30) / 1000, // "2025-11-20 08:30:00.123456789+00:00"
      updatedAt: Date.UTC(2026, 0, 5, 16, 45, 12) / 1000, // "2026-01-05 17:45:12.5+01:00"
    });
    expect(relational.hosts.map((h) => [h.id, h.hostPass])).toEqual([
      [HOST_IDS.server, HASHES.server],
      [HOST_IDS.relationalNoPassword, ""],
    ]);
  });
});

describe("importing a Netmaker 1.4 database", () => {
  it("reports each user and host as imported or skipped, with the reason", async () => {
    const { plan: planned } = await runImport(keyValue);
    const flags = (role: string) => `no platform_role_id: ${role} from the issuperadmin/isadmin flags`;
    expect(planned.outcomes).toEqual([
      { kind: "user", name: "alice", action: "import", notes: ["admin", flags("admin")] },
      { kind: "user", name: "bob", action: "import", notes: ["service-user", flags("service-user")] },
      { kind: "user", name: "broken", action: "skip", reason: "unreadable record: the value is not valid JSON", notes: [] },
      { kind: "user", name: "carol", action: "import", notes: ["platform-user", "MFA on: TOTP secret sealed with key 'test2'"] },
      { kind: "user", name: "dave", action: "import", notes: ["platform-user"] },
      { kind: "user", name: "erin@example.com", action: "import", notes: ["platform-user", "SSO user: imported without a usable password"] },
      { kind: "user", name: "frank", action: "skip", reason: "MFA is on but the record has no TOTP secret", notes: [] },
      { kind: "user", name: "hank", action: "import", notes: ["auditor"] },
      { kind: "user", name: "mallory", action: "skip", reason: "unknown platform role 'network-wizard'", notes: [] },
      { kind: "user", name: "netadmin", action: "import", notes: ["super-admin"] },
      { kind: "user", name: "plain", action: "skip", reason: "the password is not a bcrypt hash", notes: [] },
      {
        kind: "user",
        name: "root2",
        action: "skip",
        reason: "there is only one super admin, and netadmin is imported as it",
        notes: [],
      },
      { kind: "host", name: HOST_IDS.laptop, action: "import", notes: ["laptop"] },
      {
        kind: "host",
        name: HOST_IDS.noPassword,
        action: "skip",
        reason: "no password in Netmaker: the host cannot log in; register it again",
        notes: [],
      },
      { kind: "host", name: HOST_IDS.router, action: "import", notes: [] },
    ]);
  });

  it("stores roles, flags and hashes as Netmaker had them, and the TOTP secret sealed", async () => {
    const now = nowSeconds();
    await runImport(keyValue, now);
    const { results } = await env.DB.prepare("SELECT * FROM users ORDER BY username").all<any>();
    const row = (username: string, role: string, passwordHash: string, extra: Record<string, unknown> = {}) => ({
      username,
      password_hash: passwordHash,
      platform_role: role,
      account_disabled: 0,
      auth_type: "basic",
      mfa_enabled: 0,
      totp_secret: null,
      last_totp_step: null,
      totp_enrolment: null,
      created_at: now, // 1.4 records carry no creation time
      updated_at: now,
      ...extra,
    });
    expect(results).toEqual([
      row("alice", "admin", HASHES.alice),
      row("bob", "service-user", HASHES.bob),
      row("carol", "platform-user", HASHES.carol, { mfa_enabled: 1, totp_secret: expect.stringMatching(SEALED) }),
      row("dave", "platform-user", HASHES.dave, { account_disabled: 1 }),
      row("erin@example.com", "platform-user", "", { auth_type: "oauth" }),
      row("hank", "auditor", HASHES.hank),
      row("netadmin", "super-admin", HASHES.netadmin),
    ]);
    const { results: hosts } = await env.DB.prepare("SELECT * FROM hosts ORDER BY id").all<any>();
    expect(hosts).toEqual([
      { id: HOST_IDS.laptop, name: "laptop", password_hash: HASHES.laptop, created_at: now, updated_at: now },
      { id: HOST_IDS.router, name: "", password_hash: HASHES.router, created_at: now, updated_at: now },
    ]);
    const { results: events } = await env.DB.prepare("SELECT at, kind, subject, actor, ip, outcome FROM auth_events ORDER BY id").all<any>();
    expect(events).toEqual(
      [...results.map((user) => ["import.user", user.username]), ...hosts.map((host) => ["import.host", host.id])].map(
        ([kind, subject]) => ({ at: now, kind, subject, actor: "netmaker-import", ip: null, outcome: "success" }),
      ),
    );
  });

  it("lets every imported user log in with the old password, and upgrades the hash", async () => {
    await runImport(keyValue);
    await expectUserMovesOver("netadmin", PASSWORDS.netadmin, "super-admin");
    await expectUserMovesOver("alice", PASSWORDS.alice, "admin");
    await expectUserMovesOver("bob", PASSWORDS.bob, "service-user");
    await expectUserMovesOver("hank", PASSWORDS.hank, "auditor");
  });

  it("lets every imported host log in with the old password, and upgrades the hash", async () => {
    await runImport(keyValue);
    await expectHostMovesOver(HOST_IDS.laptop, PASSWORDS.laptop);
    await expectHostMovesOver(HOST_IDS.router, PASSWORDS.router);
    const missing = await post("/api/hosts/adm/authenticate", { body: { id: HOST_IDS.noPassword, password: "anything-at-all" } });
    await expectEnvelope(missing, 400, "no result found", null);
  });

  it("asks an MFA user for a code that the original authenticator makes", async () => {
    await runImport(keyValue);
    const res = await post("/api/users/adm/authenticate", { body: { username: "carol", password: PASSWORDS.carol } });
    const payload = await expectEnvelope(res, 200, "W1R3: TOTP required");
    expect(Object.keys(payload).sort()).toEqual(["pre_auth_token", "user_name"]);
    expect(payload.user_name).toBe("carol");
    expect((await userRow("carol")).password_hash).toMatch(PBKDF2);

    const now = nowSeconds();
    const verified = await post("/api/users/carol/auth/verify-totp", {
      token: payload.pre_auth_token,
      body: { totp: await totpCode(TOTP_SECRETS.carol, now) },
    });
    const full = await expectEnvelope(verified, 200, "W1R3: User carol Authorized");
    expect(full.UserName).toBe("carol");
    expect(claims(full.AuthToken)).toMatchObject({ UserName: "carol", Role: "platform-user", TokenType: "user_id_token" });
    expect((await userRow("carol")).last_totp_step).toBeGreaterThanOrEqual(Math.floor(now / 30) - 1);
  });

  it("refuses a disabled user with the right password", async () => {
    await runImport(keyValue);
    const res = await post("/api/users/adm/authenticate", { body: { username: "dave", password: PASSWORDS.dave } });
    await expectEnvelope(res, 401, "user account disabled", null);
  });

  it("gives an SSO user no password, not even the server secret Netmaker hashed as one", async () => {
    await runImport(keyValue);
    const res = await post("/api/users/adm/authenticate", {
      body: { username: "erin@example.com", password: PASSWORDS.ssoServerSecret },
    });
    await expectEnvelope(res, 400, "incorrect credentials", null);
    expect((await userRow("erin@example.com")).password_hash).toBe("");
  });

  it("never stores a TOTP secret in plain text, nor a stale one of a user with MFA off", async () => {
    await runImport(keyValue);
    const res = await post("/api/users/adm/authenticate", { body: { username: "carol", password: PASSWORDS.carol } });
    const { pre_auth_token } = await expectEnvelope(res, 200, "W1R3: TOTP required");
    const code = await totpCode(TOTP_SECRETS.carol, nowSeconds());
    await expectEnvelope(await post("/api/users/carol/auth/verify-totp", { token: pre_auth_token, body: { totp: code } }), 200, /Authorized/);
    const stored = await everythingStored();
    expect(stored).toContain("carol");
    for (const secret of Object.values(TOTP_SECRETS)) {
      expect(stored).not.toContain(secret);
      expect(stored.toLowerCase()).not.toContain(secret.toLowerCase());
    }
    expect((await userRow("hank")).totp_secret).toBeNull();
  });

  it("changes nothing when run a second time, and says so", async () => {
    const first = await runImport(keyValue);
    const after = await snapshot();
    await apply(first.statements); // the same SQL again
    expect(await snapshot()).toEqual(after);

    const second = await runImport(keyValue);
    expect(second.statements).toEqual([]);
    expect(second.plan.outcomes.filter((o) => o.action === "import")).toEqual([]);
    expect(second.plan.outcomes.filter((o) => o.action === "present").map((o) => o.name)).toEqual([
      "alice", "bob", "carol", "dave", "erin@example.com", "hank", "netadmin", HOST_IDS.laptop, HOST_IDS.router,
    ]);
    expect(second.plan.outcomes.find((o) => o.name === "root2")?.reason).toBe("D1 already has a super admin (netadmin); there is only one");
    expect(await snapshot()).toEqual(after);
  });
});

describe("importing beside users that D1 already has", () => {
  beforeEach(async () => {
    const admin = await createSuperAdmin();
    await createUser(admin, "alice", "alice-new-pass");
  });

  it("skips Netmaker's super admin when D1 has one, and leaves an existing user as it is", async () => {
    const aliceBefore = await userRow("alice");
    const { plan: planned } = await runImport(keyValue);
    expect(planned.outcomes.find((o) => o.name === "netadmin")).toEqual({
      kind: "user",
      name: "netadmin",
      action: "skip",
      reason: `D1 already has a super admin (${SUPER_ADMIN.username}); there is only one`,
      notes: [],
    });
    expect(planned.outcomes.find((o) => o.name === "alice")).toEqual({
      kind: "user",
      name: "alice",
      action: "present",
      reason: "already in D1, left as it is",
      notes: [],
    });
    expect(await userRow("netadmin")).toBeNull();
    expect(await userRow("alice")).toEqual(aliceBefore);
    await login("alice", "alice-new-pass");
  });

  it("keeps one super admin even when the SQL was made without looking at D1", async () => {
    const blind = await planImport(keyValue, {
      ring: await loadKeyRing(env.TOTP_KEYS),
      now: nowSeconds(),
      existing: existingState([]),
    });
    expect(blind.users.map((u) => u.username)).toContain("netadmin");
    await apply(importStatements(blind, nowSeconds()));
    const { results } = await env.DB.prepare("SELECT username FROM users WHERE platform_role = 'super-admin'").all();
    expect(results).toEqual([{ username: SUPER_ADMIN.username }]);
    expect((await userRow("alice")).password_hash).toMatch(PBKDF2); // not overwritten by Netmaker's bcrypt
    const { results: events } = await env.DB.prepare("SELECT subject FROM auth_events WHERE kind = 'import.user' ORDER BY subject").all();
    expect(events.map((e) => e.subject)).toEqual(["bob", "carol", "dave", "erin@example.com", "hank"]);
  });
});

describe("importing a Netmaker 1.5.1 database", () => {
  it("imports the relational tables only, with their times, and skips what cannot log in", async () => {
    const { plan: planned } = await runImport(relational);
    expect(planned.outcomes.map((o) => [o.name, o.action, o.reason ?? o.notes.join("; ")])).toEqual([
      ["ivy", "import", "super-admin"],
      ["jack", "import", "admin"],
      ["kate", "import", "platform-user; MFA on: TOTP secret sealed with key 'test2'"],
      ["liam", "import", "service-user"],
      ["sso@example.com", "import", "platform-user; SSO user: imported without a usable password"],
      ["nopass", "import", "platform-user; no password in Netmaker: imported without a usable password"],
      ["mfa-broken", "skip", "MFA is on but the record has no TOTP secret"],
      [HOST_IDS.server, "import", "server"],
      [HOST_IDS.relationalNoPassword, "skip", "no password in Netmaker: the host cannot log in; register it again"],
    ]);
    expect(await userRow("ghost")).toBeNull();
    expect(await hostRow(HOST_IDS.ghost)).toBeNull();
    expect(await userRow("ivy")).toMatchObject({ password_hash: HASHES.ivy, created_at: 1763627400, updated_at: 1767631512 });
    expect(await userRow("liam")).toMatchObject({ platform_role: "service-user", account_disabled: 1 });
    expect(await userRow("nopass")).toMatchObject({ password_hash: "", auth_type: "basic" });
    expect(await userRow("kate")).toMatchObject({ mfa_enabled: 1, totp_secret: expect.stringMatching(SEALED) });
    expect(await hostRow(HOST_IDS.server)).toEqual({
      id: HOST_IDS.server,
      name: "server",
      password_hash: HASHES.server,
      created_at: Date.UTC(2025, 11, 1, 10) / 1000,
      updated_at: Date.UTC(2025, 11, 2, 11) / 1000,
    });
  });

  it("lets its users and hosts log in with their old passwords, and upgrades the hashes", async () => {
    await runImport(relational);
    await expectUserMovesOver("ivy", PASSWORDS.ivy, "super-admin");
    await expectUserMovesOver("jack", PASSWORDS.jack, "admin");
    await expectHostMovesOver(HOST_IDS.server, PASSWORDS.server);
    const disabled = await post("/api/users/adm/authenticate", { body: { username: "liam", password: PASSWORDS.liam } });
    await expectEnvelope(disabled, 401, "user account disabled", null);
    const noPassword = await post("/api/users/adm/authenticate", { body: { username: "nopass", password: "whatever" } });
    await expectEnvelope(noPassword, 400, "incorrect credentials", null);
  });

  it("takes an MFA user through verify-totp with the original secret", async () => {
    await runImport(relational);
    const res = await post("/api/users/adm/authenticate", { body: { username: "kate", password: PASSWORDS.kate } });
    const { pre_auth_token } = await expectEnvelope(res, 200, "W1R3: TOTP required");
    const wrong = await post("/api/users/kate/auth/verify-totp", { token: pre_auth_token, body: { totp: "000000" } });
    await expectEnvelope(wrong, 401, "invalid otp", null);
    const code = await totpCode(TOTP_SECRETS.kate, nowSeconds());
    const ok = await post("/api/users/kate/auth/verify-totp", { token: pre_auth_token, body: { totp: code } });
    const payload = await expectEnvelope(ok, 200, "W1R3: User kate Authorized");
    expect(payload.UserName).toBe("kate");
    expect((await userRow("kate")).password_hash).toMatch(PBKDF2);
    expect(await everythingStored()).not.toContain(TOTP_SECRETS.kate);
  });

  it("changes nothing when run a second time", async () => {
    const first = await runImport(relational);
    const after = await snapshot();
    await apply(first.statements);
    const second = await runImport(relational);
    expect(second.statements).toEqual([]);
    expect(await snapshot()).toEqual(after);
  });
});
