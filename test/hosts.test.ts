// Host login (API.md §2) and the admin routes that make hosts exist (§6). Lockout has its own file.
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { HOST_PASSWORD_MIN_LENGTH } from "../src/lib/passwords";
import { issueHostToken, issuePreAuthToken } from "../src/lib/tokens";
import {
  call,
  claims,
  createHost,
  createSuperAdmin,
  createUser,
  expectEnvelope,
  expectNoSecrets,
  get,
  login,
  nowSeconds,
  post,
  snapshot,
} from "./helpers";

const HOST_LOGIN = "/api/hosts/adm/authenticate";
const HOST_TOKEN_TTL = 900;
const HOST_PASSWORD = "a-host-password-of-32-characters";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// 24 random bytes in unpadded base64url.
const GENERATED_PASSWORD = /^[A-Za-z0-9_-]{32}$/;
const ISO_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

async function storedHost(id: string) {
  return env.DB.prepare("SELECT * FROM hosts WHERE id = ?").bind(id).first<Record<string, any>>();
}

async function hostFailures(id: string) {
  return env.DB.prepare("SELECT failures FROM login_failures WHERE subject = ?").bind(`host:${id}`).first("failures");
}

async function events(kind: string) {
  const { results } = await env.DB.prepare("SELECT subject, actor, outcome, reason FROM auth_events WHERE kind = ? ORDER BY id")
    .bind(kind)
    .all();
  return results;
}

let adminToken: string;
beforeEach(async () => {
  adminToken = await createSuperAdmin();
});

describe("host login: POST /api/hosts/adm/authenticate", () => {
  beforeEach(async () => {
    await createHost(adminToken, { id: "h1", password: HOST_PASSWORD });
  });

  it.each([
    [{ password: HOST_PASSWORD }, "W1R3: ID can't be empty"],
    [{ id: "", password: HOST_PASSWORD }, "W1R3: ID can't be empty"],
    [{ id: "", password: "" }, "W1R3: ID can't be empty"],
    [{ id: "h1" }, "W1R3: Password can't be empty"],
    [{ id: "h1", password: "", macaddress: "aa:bb" }, "W1R3: Password can't be empty"],
  ])("%j -> 400 %s, nothing stored", async (body, message) => {
    const before = await snapshot();
    await expectEnvelope(await post(HOST_LOGIN, { body }), 400, message, null);
    expect(await snapshot()).toEqual(before);
  });

  it("answers an unknown host with 400 no result found: recorded in the audit trail, nothing counted", async () => {
    const before = await snapshot();
    await expectEnvelope(await post(HOST_LOGIN, { body: { id: "h2", password: HOST_PASSWORD } }), 400, "no result found", null);
    const after = await snapshot();
    expect({ ...after, auth_events: before.auth_events }).toEqual(before);
    expect(await events("host.login")).toEqual([{ subject: "h2", actor: null, outcome: "failure", reason: "unknown host" }]);
  });

  it("answers a wrong password with 401 unauthorized and counts the failure", async () => {
    const response = await post(HOST_LOGIN, { body: { id: "h1", password: "x".repeat(32) } });
    await expectEnvelope(response, 401, "unauthorized", null);
    expect(await hostFailures("h1")).toBe(1);
    expect(await events("host.login")).toEqual([{ subject: "h1", actor: null, outcome: "failure", reason: "wrong password" }]);
  });

  it("logs the host in with {ID, AuthToken}, clears failures and records the success", async () => {
    await post(HOST_LOGIN, { body: { id: "h1", password: "x".repeat(32) } });
    const response = await post(HOST_LOGIN, { body: { id: "h1", password: HOST_PASSWORD, macaddress: "aa:bb:cc:dd:ee:ff" } });
    await expectNoSecrets(response, [HOST_PASSWORD]);
    const payload = await expectEnvelope(response, 200, "W1R3: Host h1 Authorized");
    expect(Object.keys(payload).sort()).toEqual(["AuthToken", "ID"]);
    expect(payload.ID).toBe("h1");
    expect(await hostFailures("h1")).toBeNull();
    expect((await events("host.login")).at(-1)).toEqual({ subject: "h1", actor: null, outcome: "success", reason: null });
  });

  it("issues Netmaker's host claim set, valid for 15 minutes", async () => {
    const response = await post(HOST_LOGIN, { body: { id: "h1", password: HOST_PASSWORD, macaddress: "aa:bb:cc:dd:ee:ff" } });
    const token = claims((await expectEnvelope(response, 200, "W1R3: Host h1 Authorized")).AuthToken);
    expect(token).toEqual({
      ID: "h1",
      MacAddress: "aa:bb:cc:dd:ee:ff",
      Network: "",
      iss: "Netmaker",
      sub: "node|h1",
      iat: expect.any(Number),
      exp: expect.any(Number),
    });
    expect(token.exp - token.iat).toBe(HOST_TOKEN_TTL);
  });

  it("does not check macaddress: it is copied into the token, empty when absent", async () => {
    const first = await post(HOST_LOGIN, { body: { id: "h1", password: HOST_PASSWORD, macaddress: "11:22" } });
    const second = await post(HOST_LOGIN, { body: { id: "h1", password: HOST_PASSWORD } });
    expect(claims((await expectEnvelope(first, 200, "W1R3: Host h1 Authorized")).AuthToken).MacAddress).toBe("11:22");
    expect(claims((await expectEnvelope(second, 200, "W1R3: Host h1 Authorized")).AuthToken).MacAddress).toBe("");
  });
});

describe("create: POST /api/hosts", () => {
  it("generates a UUID id and a 32-character password, shown this once", async () => {
    const response = await post("/api/hosts", { token: adminToken, body: { name: "laptop" } });
    await expectNoSecrets(response);
    const created = await expectEnvelope(response, 200, /^host .+ created$/);
    expect(Object.keys(created).sort()).toEqual(["created_at", "id", "name", "password"]);
    expect(created.id).toMatch(UUID);
    expect(created.password).toMatch(GENERATED_PASSWORD);
    expect(created.name).toBe("laptop");
    expect(created.created_at).toMatch(ISO_DATE);

    const list = await get("/api/hosts", { token: adminToken });
    await expectNoSecrets(list, [created.password]);
    expect(list.status).toBe(200);
  });

  it("stores a keyed hash, not the password, and records who created the host", async () => {
    const created = await createHost(adminToken, { name: "laptop" });
    const row = await storedHost(created.id);
    expect(row).toMatchObject({ id: created.id, name: "laptop" });
    expect(row!.password_hash).toMatch(/^hmac-sha256\$/);
    expect(row!.password_hash).not.toContain(created.password);
    expect(await events("admin.host.create")).toEqual([{ subject: created.id, actor: "admin", outcome: "success", reason: null }]);
  });

  it("makes the generated password the one the host logs in with", async () => {
    const created = await createHost(adminToken);
    const response = await post(HOST_LOGIN, { body: { id: created.id, password: created.password } });
    await expectNoSecrets(response, [created.password]);
    await expectEnvelope(response, 200, `W1R3: Host ${created.id} Authorized`);
  });

  it("takes a given id and password, and does not echo the password", async () => {
    const response = await post("/api/hosts", { token: adminToken, body: { id: "h1", password: HOST_PASSWORD } });
    await expectNoSecrets(response, [HOST_PASSWORD]);
    const created = await expectEnvelope(response, 200, "host h1 created");
    expect(created).toEqual({ id: "h1", name: "", created_at: expect.stringMatching(ISO_DATE) });
    const login = await post(HOST_LOGIN, { body: { id: "h1", password: HOST_PASSWORD } });
    await expectEnvelope(login, 200, "W1R3: Host h1 Authorized");
  });

  it(`refuses a password shorter than ${HOST_PASSWORD_MIN_LENGTH} characters, nothing stored`, async () => {
    const before = await snapshot();
    const short = "p".repeat(HOST_PASSWORD_MIN_LENGTH - 1);
    const response = await post("/api/hosts", { token: adminToken, body: { id: "h1", password: short } });
    await expectEnvelope(response, 400, `host password must be at least ${HOST_PASSWORD_MIN_LENGTH} characters`, null);
    expect(await snapshot()).toEqual(before);
  });

  it(`accepts a password of exactly ${HOST_PASSWORD_MIN_LENGTH} characters`, async () => {
    const password = "p".repeat(HOST_PASSWORD_MIN_LENGTH);
    const response = await post("/api/hosts", { token: adminToken, body: { id: "h1", password } });
    await expectNoSecrets(response, [password]);
    await expectEnvelope(response, 200, "host h1 created");
  });

  it("refuses a duplicate id with 400 and keeps the first host's password", async () => {
    await createHost(adminToken, { id: "h1", password: HOST_PASSWORD });
    const before = await snapshot();
    const response = await post("/api/hosts", { token: adminToken, body: { id: "h1", password: "another-password-of-32-chars-xx" } });
    await expectEnvelope(response, 400, "host h1 already exists", null);
    expect(await snapshot()).toEqual(before);
    await expectEnvelope(await post(HOST_LOGIN, { body: { id: "h1", password: HOST_PASSWORD } }), 200, "W1R3: Host h1 Authorized");
  });

  it.each([
    ["bad id", /^invalid host id: /],
    ["-leading-dash", /^invalid host id: /],
    ["x".repeat(129), /^invalid request body: id: /],
  ])("refuses the id %j with 400", async (id, message) => {
    const before = await snapshot();
    const response = await post("/api/hosts", { token: adminToken, body: { id } });
    await expectEnvelope(response, 400, message, null);
    expect(await snapshot()).toEqual(before);
  });
});

describe("list: GET /api/hosts", () => {
  it("answers an empty list before any host exists", async () => {
    const response = await get("/api/hosts", { token: adminToken });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([]);
  });

  it("answers a bare array of {id, name, created_at}, without passwords", async () => {
    await createHost(adminToken, { id: "h1", name: "one", password: HOST_PASSWORD });
    const second = await createHost(adminToken, { id: "h2", name: "two" });
    const response = await get("/api/hosts", { token: adminToken });
    await expectNoSecrets(response, [HOST_PASSWORD, second.password]);
    expect(response.status).toBe(200);
    const hosts = (await response.json()) as { id: string }[];
    expect(hosts.sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: "h1", name: "one", created_at: expect.stringMatching(ISO_DATE) },
      { id: "h2", name: "two", created_at: expect.stringMatching(ISO_DATE) },
    ]);
  });
});

describe("delete: DELETE /api/hosts/{id}", () => {
  it("deletes the host, its failure count, and its ability to log in", async () => {
    await createHost(adminToken, { id: "h1", password: HOST_PASSWORD });
    await post(HOST_LOGIN, { body: { id: "h1", password: "x".repeat(32) } });
    expect(await hostFailures("h1")).toBe(1);

    const response = await call("DELETE", "/api/hosts/h1", { token: adminToken });
    await expectNoSecrets(response);
    await expectEnvelope(response, 200, "host h1 deleted", null);
    expect(await storedHost("h1")).toBeNull();
    expect(await hostFailures("h1")).toBeNull();
    expect(await events("admin.host.delete")).toEqual([{ subject: "h1", actor: "admin", outcome: "success", reason: null }]);
    await expectEnvelope(await post(HOST_LOGIN, { body: { id: "h1", password: HOST_PASSWORD } }), 400, "no result found", null);
  });

  it("answers a missing host with 404, nothing stored", async () => {
    const before = await snapshot();
    await expectEnvelope(await call("DELETE", "/api/hosts/h9", { token: adminToken }), 404, "host not found", null);
    expect(await snapshot()).toEqual(before);
  });
});

describe("host routes are admin-only", () => {
  const routes: [string, string, object | undefined][] = [
    ["POST", "/api/hosts", { id: "h2", password: HOST_PASSWORD }],
    ["GET", "/api/hosts", undefined],
    ["DELETE", "/api/hosts/h1", undefined],
  ];

  // The credentials that must not administer hosts, and the answer each gets.
  const callers: [string, () => Promise<string | undefined>, number, string][] = [
    ["no token", async () => undefined, 401, "unauthorized"],
    [
      "a platform user's token",
      async () => {
        await createUser(adminToken, "bob", "bob-password-1");
        return login("bob", "bob-password-1");
      },
      403,
      "forbidden",
    ],
    ["the super admin's pre-auth token", () => issuePreAuthToken(env.JWT_SECRET, "admin", nowSeconds(), 300), 401, "unauthorized"],
    ["a host token", () => issueHostToken(env.JWT_SECRET, { id: "h1", macAddress: "" }, nowSeconds(), HOST_TOKEN_TTL), 401, "unauthorized"],
  ];

  beforeEach(async () => {
    await createHost(adminToken, { id: "h1", password: HOST_PASSWORD });
  });

  for (const [method, path, body] of routes) {
    it.each(callers)(`${method} ${path} with %s`, async (_name, token, status, message) => {
      const bearer = await token();
      const before = await snapshot();
      await expectEnvelope(await call(method, path, { token: bearer, body }), status, message, null);
      expect(await snapshot()).toEqual(before);
    });
  }

  it.each([
    ["POST", "/api/hosts"],
    ["POST", "/api/users/carol"],
  ])("%s %s checks the caller before it reads the body", async (method, path) => {
    const before = await snapshot();
    await expectEnvelope(await call(method, path, { body: "{not json" }), 401, "unauthorized", null);
    expect(await snapshot()).toEqual(before);
  });

  it("lets an admin (not only the super admin) administer hosts", async () => {
    await createUser(adminToken, "ops", "ops-password-1", "admin");
    const opsToken = await login("ops", "ops-password-1");
    const response = await post("/api/hosts", { token: opsToken, body: { id: "h2", password: HOST_PASSWORD } });
    await expectNoSecrets(response, [HOST_PASSWORD, "ops-password-1"]);
    await expectEnvelope(response, 200, "host h2 created");
    expect(await events("admin.host.create")).toContainEqual({ subject: "h2", actor: "ops", outcome: "success", reason: null });
  });
});
