// Bootstrap and user administration (API.md §6): hassuperadmin, createsuperadmin, and create, read,
// disable, enable and delete users, with the role rules of who may act on whom.
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  call,
  createSuperAdmin,
  createUser,
  expectEnvelope,
  expectedUser,
  expectNoSecrets,
  get,
  login,
  post,
  snapshot,
  SUPER_ADMIN,
} from "./helpers";

const CREATE_SUPER_ADMIN = "/api/users/adm/createsuperadmin";
const LOGIN = "/api/users/adm/authenticate";
const BOB = { username: "bob", password: "bob-password-1" };
const OPS = { username: "ops", password: "ops-password-1" };
const PASSWORDS = [BOB.password, OPS.password];

const publicUser = expectedUser;

async function storedUser(username: string) {
  return env.DB.prepare("SELECT * FROM users WHERE username = ?").bind(username).first<Record<string, any>>();
}

async function events(kind: string) {
  const { results } = await env.DB.prepare("SELECT subject, actor, outcome, reason FROM auth_events WHERE kind = ? ORDER BY id")
    .bind(kind)
    .all();
  return results;
}

/** Asserts a 200 whose body is exactly `expected`, and that it shows no secret. */
async function expectBare(response: Response, expected: unknown) {
  await expectNoSecrets(response, PASSWORDS);
  expect(response.status).toBe(200);
  expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
  expect(await response.json()).toEqual(expected);
}

describe("GET /api/users/adm/hassuperadmin: bare true or false", () => {
  it("answers false on an empty database and true once the super admin exists", async () => {
    const before = await get("/api/users/adm/hassuperadmin");
    expect(before.status).toBe(200);
    expect(await before.text()).toBe("false");
    await createSuperAdmin();
    const after = await get("/api/users/adm/hassuperadmin");
    expect(after.status).toBe(200);
    expect(await after.text()).toBe("true");
  });
});

describe("POST /api/users/adm/createsuperadmin", () => {
  it("creates the super admin and answers the bare user object", async () => {
    const response = await post(CREATE_SUPER_ADMIN, { body: SUPER_ADMIN });
    await expectBare(response, publicUser("admin", "super-admin"));
    const row = await storedUser("admin");
    expect(row).toMatchObject({ platform_role: "super-admin", account_disabled: 0, mfa_enabled: 0, totp_secret: null });
    expect(row!.password_hash).toMatch(/^pbkdf2-sha256\$100000\$/);
    expect(await events("admin.superadmin.create")).toEqual([{ subject: "admin", actor: null, outcome: "success", reason: null }]);
  });

  it("answers 400 superadmin user already exists once there is one, whatever the name", async () => {
    await createSuperAdmin();
    const before = await snapshot();
    for (const body of [SUPER_ADMIN, { username: "second", password: "second-password" }]) {
      await expectEnvelope(await post(CREATE_SUPER_ADMIN, { body }), 400, "superadmin user already exists", null);
    }
    expect(await snapshot()).toEqual(before);
  });

  it("answers 400 user already exists when the name is taken but there is no super admin yet (an imported user)", async () => {
    await env.DB.prepare("INSERT INTO users (username, password_hash, created_at, updated_at) VALUES ('carol', '', 1, 1)").run();
    const before = await snapshot();
    await expectEnvelope(await post(CREATE_SUPER_ADMIN, { body: { username: "carol", password: "carol-password" } }), 400, "user already exists", null);
    expect(await snapshot()).toEqual(before);
  });

  it("ignores is_mfa_enabled, totp_secret, platform_role_id and account_disabled in the body", async () => {
    const body = {
      ...SUPER_ADMIN,
      is_mfa_enabled: true,
      totp_secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
      platform_role_id: "platform-user",
      account_disabled: true,
    };
    const response = await post(CREATE_SUPER_ADMIN, { body });
    await expectNoSecrets(response, [body.totp_secret]);
    await expectBare(response, publicUser("admin", "super-admin"));
    expect(await storedUser("admin")).toMatchObject({
      platform_role: "super-admin",
      mfa_enabled: 0,
      totp_secret: null,
      account_disabled: 0,
    });
  });

  it.each(["abc", "a.b-c", "0x1", "ann@example.com", "Ann.Lee+ops@Example.org"])("accepts the username %j", async (username) => {
    const response = await post(CREATE_SUPER_ADMIN, { body: { username, password: "12345" } });
    await expectBare(response, publicUser(username, "super-admin"));
  });

  it.each(["", "ab", "Admin", "a_b", "a b", "ann@example", "bob/../x", "a".repeat(129)])("refuses the username %j with 400", async (username) => {
    const before = await snapshot();
    const response = await post(CREATE_SUPER_ADMIN, { body: { username, password: SUPER_ADMIN.password } });
    await expectEnvelope(response, 400, "invalid username: use 3 to 128 of a-z, 0-9, '-' and '.', or an email address", null);
    expect(await snapshot()).toEqual(before);
  });

  it.each([{ password: "1234" }, { password: "" }, {}])("refuses the password in %j with 400", async (password) => {
    const before = await snapshot();
    const response = await post(CREATE_SUPER_ADMIN, { body: { username: "admin", ...password } });
    await expectEnvelope(response, 400, "password must be at least 5 characters", null);
    expect(await snapshot()).toEqual(before);
  });
});

describe("with a super admin", () => {
  let adminToken: string;
  beforeEach(async () => {
    adminToken = await createSuperAdmin();
  });

  describe("create: POST /api/users/{username}", () => {
    it("creates a platform user by default, who can log in", async () => {
      const response = await post("/api/users/bob", { token: adminToken, body: BOB });
      await expectBare(response, publicUser("bob", "platform-user"));
      const row = await storedUser("bob");
      expect(row).toMatchObject({ platform_role: "platform-user", account_disabled: 0 });
      expect(row!.password_hash).toMatch(/^pbkdf2-sha256\$100000\$/);
      expect(await events("admin.user.create")).toEqual([{ subject: "bob", actor: "admin", outcome: "success", reason: "platform-user" }]);
      await login(BOB.username, BOB.password);
    });

    it("takes the username from the path when the body has none", async () => {
      const response = await post("/api/users/bob", { token: adminToken, body: { password: BOB.password } });
      await expectBare(response, publicUser("bob", "platform-user"));
    });

    it("lets the super admin create an admin", async () => {
      const response = await post("/api/users/ops", { token: adminToken, body: { ...OPS, platform_role_id: "admin" } });
      await expectBare(response, publicUser("ops", "admin"));
      expect(await storedUser("ops")).toMatchObject({ platform_role: "admin" });
    });

    it("refuses to make a second super admin through the role field", async () => {
      const before = await snapshot();
      const response = await post("/api/users/ops", { token: adminToken, body: { ...OPS, platform_role_id: "super-admin" } });
      await expectEnvelope(response, 400, /^invalid request body: platform_role_id: /, null);
      expect(await snapshot()).toEqual(before);
    });

    it("refuses an admin who tries to create an admin with 403, and lets them create a platform user", async () => {
      await createUser(adminToken, OPS.username, OPS.password, "admin");
      const opsToken = await login(OPS.username, OPS.password);
      const before = await snapshot();
      const refused = await post("/api/users/eve", { token: opsToken, body: { username: "eve", password: "eve-password", platform_role_id: "admin" } });
      await expectEnvelope(refused, 403, "forbidden", null);
      expect(await snapshot()).toEqual(before);
      const created = await post("/api/users/bob", { token: opsToken, body: BOB });
      await expectBare(created, publicUser("bob", "platform-user"));
      expect(await events("admin.user.create")).toContainEqual({ subject: "bob", actor: "ops", outcome: "success", reason: "platform-user" });
    });

    it("refuses a platform user with 403 and a caller without a token with 401", async () => {
      await createUser(adminToken, BOB.username, BOB.password);
      const bobToken = await login(BOB.username, BOB.password);
      const before = await snapshot();
      const body = { username: "eve", password: "eve-password" };
      await expectEnvelope(await post("/api/users/eve", { token: bobToken, body }), 403, "forbidden", null);
      await expectEnvelope(await post("/api/users/eve", { body }), 401, "unauthorized", null);
      expect(await snapshot()).toEqual(before);
    });

    it("refuses a duplicate with 400 and keeps the first user's password", async () => {
      await createUser(adminToken, BOB.username, BOB.password);
      const before = await snapshot();
      const response = await post("/api/users/bob", { token: adminToken, body: { username: "bob", password: "another-password" } });
      await expectEnvelope(response, 400, "user already exists", null);
      expect(await snapshot()).toEqual(before);
      await login(BOB.username, BOB.password);
    });

    it("refuses a body whose username differs from the path with 400", async () => {
      const before = await snapshot();
      const response = await post("/api/users/bob", { token: adminToken, body: { username: "eve", password: BOB.password } });
      await expectEnvelope(response, 400, "username in the path and the body differ", null);
      expect(await snapshot()).toEqual(before);
    });

    it("applies the username and password rules", async () => {
      const before = await snapshot();
      const badName = await post("/api/users/ab", { token: adminToken, body: { username: "ab", password: BOB.password } });
      await expectEnvelope(badName, 400, /^invalid username: /, null);
      const badPassword = await post("/api/users/bob", { token: adminToken, body: { username: "bob", password: "1234" } });
      await expectEnvelope(badPassword, 400, "password must be at least 5 characters", null);
      expect(await snapshot()).toEqual(before);
    });
  });

  describe("read: GET /api/users/{username}", () => {
    let bobToken: string;
    beforeEach(async () => {
      await createUser(adminToken, BOB.username, BOB.password);
      await createUser(adminToken, "carol", "carol-password");
      bobToken = await login(BOB.username, BOB.password);
    });

    it("lets a user read themself", async () => {
      await expectBare(await get("/api/users/bob", { token: bobToken }), publicUser("bob", "platform-user"));
    });

    it("refuses a platform user another user's record with 403, whether or not it exists", async () => {
      await expectEnvelope(await get("/api/users/carol", { token: bobToken }), 403, "forbidden", null);
      await expectEnvelope(await get("/api/users/admin", { token: bobToken }), 403, "forbidden", null);
      await expectEnvelope(await get("/api/users/nobody", { token: bobToken }), 403, "forbidden", null);
    });

    it("lets an admin read anyone, and answers 404 for a missing user", async () => {
      await expectBare(await get("/api/users/carol", { token: adminToken }), publicUser("carol", "platform-user"));
      await expectBare(await get("/api/users/admin", { token: adminToken }), publicUser("admin", "super-admin"));
      await expectEnvelope(await get("/api/users/nobody", { token: adminToken }), 404, "user not found", null);
    });

    it("refuses a caller without a token with 401", async () => {
      await expectEnvelope(await get("/api/users/bob"), 401, "unauthorized", null);
    });
  });

  describe("disable and enable: POST /api/users/{username}/disable, /enable", () => {
    let bobToken: string;
    beforeEach(async () => {
      await createUser(adminToken, BOB.username, BOB.password);
      bobToken = await login(BOB.username, BOB.password);
    });

    it("disables the account: the answer shows it, D1 holds it, the audit trail records it", async () => {
      const response = await post("/api/users/bob/disable", { token: adminToken });
      await expectNoSecrets(response, PASSWORDS);
      const user = await expectEnvelope(response, 200, "user bob disabled");
      expect(user).toEqual(publicUser("bob", "platform-user", { account_disabled: true }));
      expect(await storedUser("bob")).toMatchObject({ account_disabled: 1 });
      expect(await events("admin.user.disable")).toEqual([{ subject: "bob", actor: "admin", outcome: "success", reason: null }]);
    });

    it("makes login answer 401 user account disabled and refuses the user's existing token", async () => {
      await post("/api/users/bob/disable", { token: adminToken });
      await expectEnvelope(await post(LOGIN, { body: BOB }), 401, "user account disabled", null);
      await expectEnvelope(await get("/api/users/bob", { token: bobToken }), 401, "user account disabled", null);
      await expectEnvelope(await get("/api/server/getconfig", { token: bobToken }), 401, "user account disabled", null);
    });

    it("enables the account again: login and the existing token work", async () => {
      await post("/api/users/bob/disable", { token: adminToken });
      const response = await post("/api/users/bob/enable", { token: adminToken });
      await expectNoSecrets(response, PASSWORDS);
      const user = await expectEnvelope(response, 200, "user bob enabled");
      expect(user).toEqual(publicUser("bob", "platform-user"));
      expect(await storedUser("bob")).toMatchObject({ account_disabled: 0 });
      expect(await events("admin.user.enable")).toEqual([{ subject: "bob", actor: "admin", outcome: "success", reason: null }]);
      await login(BOB.username, BOB.password);
      await expectBare(await get("/api/users/bob", { token: bobToken }), publicUser("bob", "platform-user"));
    });

    it("answers 404 for a missing user, nothing stored", async () => {
      const before = await snapshot();
      await expectEnvelope(await post("/api/users/nobody/disable", { token: adminToken }), 404, "user not found", null);
      await expectEnvelope(await post("/api/users/nobody/enable", { token: adminToken }), 404, "user not found", null);
      expect(await snapshot()).toEqual(before);
    });
  });

  describe("delete: DELETE /api/users/{username}", () => {
    let bobToken: string;
    beforeEach(async () => {
      await createUser(adminToken, BOB.username, BOB.password);
      bobToken = await login(BOB.username, BOB.password);
    });

    it("deletes the user and their failure count, and records it", async () => {
      await post(LOGIN, { body: { username: "bob", password: "wrong-password" } });
      const response = await call("DELETE", "/api/users/bob", { token: adminToken });
      await expectNoSecrets(response, PASSWORDS);
      await expectEnvelope(response, 200, "user bob deleted", null);
      expect(await storedUser("bob")).toBeNull();
      expect(await env.DB.prepare("SELECT * FROM login_failures WHERE subject = 'user:bob'").first()).toBeNull();
      expect(await events("admin.user.delete")).toEqual([{ subject: "bob", actor: "admin", outcome: "success", reason: null }]);
    });

    it("stops the user logging in and refuses their existing token with 401", async () => {
      await call("DELETE", "/api/users/bob", { token: adminToken });
      await expectEnvelope(await post(LOGIN, { body: BOB }), 400, "incorrect credentials", null);
      await expectEnvelope(await get("/api/users/bob", { token: bobToken }), 401, "unauthorized", null);
      await expectEnvelope(await get("/api/server/getconfig", { token: bobToken }), 401, "unauthorized", null);
    });

    it("answers 404 for a missing user, nothing stored", async () => {
      const before = await snapshot();
      await expectEnvelope(await call("DELETE", "/api/users/nobody", { token: adminToken }), 404, "user not found", null);
      expect(await snapshot()).toEqual(before);
    });
  });

  describe("who may act on whom", () => {
    // [what it is called, method, path suffix]
    const actions: [string, string, string][] = [
      ["disable", "POST", "disable"],
      ["enable", "POST", "enable"],
      ["delete", "DELETE", ""],
    ];
    const path = (username: string, action: string) => `/api/users/${username}${action ? `/${action}` : ""}`;

    let opsToken: string;
    let bobToken: string;
    beforeEach(async () => {
      await createUser(adminToken, OPS.username, OPS.password, "admin");
      await createUser(adminToken, "ops2", "ops2-password", "admin");
      await createUser(adminToken, BOB.username, BOB.password);
      await createUser(adminToken, "carol", "carol-password");
      opsToken = await login(OPS.username, OPS.password);
      bobToken = await login(BOB.username, BOB.password);
    });

    /** Makes enable observable: the target starts disabled in D1, so only a real enable clears the flag. */
    async function prepare(name: string, username: string) {
      if (name === "enable") await env.DB.prepare("UPDATE users SET account_disabled = 1 WHERE username = ?").bind(username).run();
    }

    /** The row the action leaves in D1, and its one audit event naming the actor. */
    async function expectStoredEffect(name: string, username: string, actor: string) {
      const row = await storedUser(username);
      if (name === "delete") expect(row).toBeNull();
      else expect(row).toMatchObject({ account_disabled: name === "disable" ? 1 : 0 });
      expect(await events(`admin.user.${name}`)).toEqual([{ subject: username, actor, outcome: "success", reason: null }]);
    }

    it.each(actions)("an admin may %s a platform user", async (name, method, action) => {
      await prepare(name, "carol");
      const response = await call(method, path("carol", action), { token: opsToken });
      await expectNoSecrets(response, PASSWORDS);
      await expectEnvelope(response, 200, `user carol ${name}d`);
      await expectStoredEffect(name, "carol", "ops");
    });

    it.each(actions)("an admin may not %s another admin (403)", async (_name, method, action) => {
      const before = await snapshot();
      await expectEnvelope(await call(method, path("ops2", action), { token: opsToken }), 403, "forbidden", null);
      expect(await snapshot()).toEqual(before);
    });

    it.each(actions)("the super admin may %s an admin", async (name, method, action) => {
      await prepare(name, "ops2");
      const response = await call(method, path("ops2", action), { token: adminToken });
      await expectNoSecrets(response, PASSWORDS);
      await expectEnvelope(response, 200, `user ops2 ${name}d`);
      await expectStoredEffect(name, "ops2", "admin");
    });

    it.each(actions)("nobody may %s the super admin, not even the super admin (403)", async (_name, method, action) => {
      const before = await snapshot();
      await expectEnvelope(await call(method, path("admin", action), { token: adminToken }), 403, "forbidden", null);
      await expectEnvelope(await call(method, path("admin", action), { token: opsToken }), 403, "forbidden", null);
      expect(await snapshot()).toEqual(before);
    });

    it.each(actions)("a platform user may not %s anyone (403), a caller without a token gets 401", async (_name, method, action) => {
      const before = await snapshot();
      await expectEnvelope(await call(method, path("carol", action), { token: bobToken }), 403, "forbidden", null);
      await expectEnvelope(await call(method, path("bob", action), { token: bobToken }), 403, "forbidden", null);
      await expectEnvelope(await call(method, path("carol", action)), 401, "unauthorized", null);
      expect(await snapshot()).toEqual(before);
    });

    it("goes by the stored role: an admin demoted in D1 loses admin rights with the same token", async () => {
      await env.DB.prepare("UPDATE users SET platform_role = 'platform-user' WHERE username = 'ops'").run();
      await expectEnvelope(await post("/api/users/carol/disable", { token: opsToken }), 403, "forbidden", null);
      expect(await storedUser("carol")).toMatchObject({ account_disabled: 0 });
    });

    it("refuses a disabled admin's token with 401", async () => {
      await post("/api/users/ops/disable", { token: adminToken });
      await expectEnvelope(await post("/api/users/carol/disable", { token: opsToken }), 401, "user account disabled", null);
      expect(await storedUser("carol")).toMatchObject({ account_disabled: 0 });
    });
  });
});
