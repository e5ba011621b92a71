// What Netmaker's web UI calls around login (API.md §6): status, getconfig, /api/v1/users; plus the
// 404 envelope for unknown paths and CORS as Netmaker does it (§1).
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { issuePreAuthToken } from "../src/lib/tokens";
import { VERSION } from "../src/version";
import { call, createSuperAdmin, createUser, expectEnvelope, expectedUser, expectNoSecrets, get, login, nowSeconds, post } from "./helpers";

const BOB = { username: "bob", password: "bob-password-1" };
const UI_ORIGIN = "https://dashboard.example.com";
const UI_HEADERS = ["Content-Type", "Authorization", "From-Ui", "X-Application-Name", "X-Requested-With"];

/** A D1 binding that fails on every statement, as D1 does when it cannot be reached. */
const unreachableDb = {
  prepare() {
    throw new Error("D1_ERROR: network connection lost");
  },
} as unknown as D1Database;

const expectedV1User = (username: string, role: string) =>
  expectedUser(username, role, { platform_role: { id: role, deny_dashboard_access: false } });

describe("GET /api/server/status: the health check", () => {
  it("answers 200 {db_connected: true} when D1 answers, without a token", async () => {
    const response = await get("/api/server/status");
    await expectNoSecrets(response);
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ db_connected: true, version: VERSION });
  });

  it("answers 503 {db_connected: false} when D1 does not, and logs why", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const response = await get("/api/server/status", { env: { DB: unreachableDb } });
      expect(response.status).toBe(503);
      expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
      const text = await response.text();
      expect(JSON.parse(text)).toEqual({ db_connected: false, version: VERSION });
      expect(text).not.toContain("network connection lost");
      expect(logged).toHaveBeenCalled();
    } finally {
      logged.mockRestore();
    }
  });
});

describe("with a super admin and a platform user", () => {
  let adminToken: string;
  let bobToken: string;
  beforeEach(async () => {
    adminToken = await createSuperAdmin();
    await createUser(adminToken, BOB.username, BOB.password);
    await createUser(adminToken, "carol", "carol-password");
    bobToken = await login(BOB.username, BOB.password);
  });

  describe("GET /api/server/getconfig: a bare object with Version, for a full token", () => {
    it.each([
      ["the super admin", () => adminToken],
      ["a platform user", () => bobToken],
    ])("answers %s", async (_name, token) => {
      const response = await get("/api/server/getconfig", { token: token() });
      await expectNoSecrets(response, [BOB.password]);
      expect(response.status).toBe(200);
      const config = (await response.json()) as Record<string, unknown>;
      expect(config).not.toHaveProperty("Code");
      expect(config.Version).toBe(VERSION);
    });

    it("refuses a caller without a token, or with a pre-auth token, with 401", async () => {
      await expectEnvelope(await get("/api/server/getconfig"), 401, "unauthorized", null);
      const preAuth = await issuePreAuthToken(env.JWT_SECRET, "bob", nowSeconds(), 300);
      await expectEnvelope(await get("/api/server/getconfig", { token: preAuth }), 401, "unauthorized", null);
    });
  });

  describe("GET /api/v1/users?username=<u>: the user with platform_role", () => {
    it("answers a user about themself", async () => {
      const response = await get("/api/v1/users?username=bob", { token: bobToken });
      await expectNoSecrets(response, [BOB.password]);
      await expectEnvelope(response, 200, "fetched user", expectedV1User("bob", "platform-user"));
    });

    it("answers an admin about anyone", async () => {
      const carol = await get("/api/v1/users?username=carol", { token: adminToken });
      await expectNoSecrets(carol, [BOB.password, "carol-password"]);
      await expectEnvelope(carol, 200, "fetched user", expectedV1User("carol", "platform-user"));
      const self = await get("/api/v1/users?username=admin", { token: adminToken });
      await expectNoSecrets(self);
      await expectEnvelope(self, 200, "fetched user", expectedV1User("admin", "super-admin"));
    });

    it("refuses a platform user another user's record with 403, whether or not it exists", async () => {
      await expectEnvelope(await get("/api/v1/users?username=carol", { token: bobToken }), 403, "forbidden", null);
      await expectEnvelope(await get("/api/v1/users?username=nobody", { token: bobToken }), 403, "forbidden", null);
    });

    it("answers an admin 404 for a missing user", async () => {
      await expectEnvelope(await get("/api/v1/users?username=nobody", { token: adminToken }), 404, "user not found", null);
    });

    it("refuses a caller without a token with 401, and a request without username with 400", async () => {
      await expectEnvelope(await get("/api/v1/users?username=bob"), 401, "unauthorized", null);
      await expectEnvelope(await get("/api/v1/users", { token: bobToken }), 400, /^invalid request query: username: /, null);
    });
  });
});

describe("unknown paths: 404 envelope", () => {
  it.each([
    ["GET", "/"],
    ["GET", "/api/nothing/here"],
    ["POST", "/api/server/restart"],
    ["PUT", "/api/hosts"],
  ])("%s %s", async (method, path) => {
    await expectEnvelope(await call(method, path), 404, "not found", null);
  });
});

describe("CORS as Netmaker does it", () => {
  const preflight = (path: string, origin: string, corsOrigin?: string) =>
    call("OPTIONS", path, {
      headers: {
        Origin: origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": UI_HEADERS.join(", ").toLowerCase(),
      },
      env: corsOrigin ? { CORS_ORIGIN: corsOrigin } : {},
    });

  const allowedHeaders = (response: Response) =>
    (response.headers.get("Access-Control-Allow-Headers") ?? "").split(",").map((name) => name.trim().toLowerCase());

  it("answers a preflight from any origin by default, allowing the headers Netmaker's clients send", async () => {
    const response = await preflight("/api/users/adm/authenticate", UI_ORIGIN);
    expect(response.status).toBe(204);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe("*");
    expect(allowedHeaders(response)).toEqual(expect.arrayContaining(UI_HEADERS.map((name) => name.toLowerCase())));
    expect(response.headers.get("Access-Control-Allow-Methods")).toMatch(/\bPOST\b/);
  });

  it("marks actual answers, errors included, as readable from any origin by default", async () => {
    const ok = await get("/api/server/status", { headers: { Origin: UI_ORIGIN } });
    expect(ok.headers.get("Access-Control-Allow-Origin")).toBe("*");
    // The UI must be able to read a 401 to know it has to log out.
    const refused = await get("/api/server/getconfig", { headers: { Origin: UI_ORIGIN } });
    await expectEnvelope(refused, 401, "unauthorized", null);
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBe("*");
  });

  describe("CORS_ORIGIN restricts the origin", () => {
    const allowed = `${UI_ORIGIN}, https://other.example.com`;

    it("echoes an allowed origin in a preflight", async () => {
      for (const origin of [UI_ORIGIN, "https://other.example.com"]) {
        const response = await preflight("/api/users/adm/authenticate", origin, allowed);
        expect(response.status).toBe(204);
        expect(response.headers.get("Access-Control-Allow-Origin")).toBe(origin);
        expect(allowedHeaders(response)).toEqual(expect.arrayContaining(UI_HEADERS.map((name) => name.toLowerCase())));
      }
    });

    it("does not allow any other origin", async () => {
      const response = await preflight("/api/users/adm/authenticate", "https://evil.example.net", allowed);
      expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();
      const actual = await post("/api/users/adm/authenticate", {
        body: { username: "x", password: "" },
        headers: { Origin: "https://evil.example.net" },
        env: { CORS_ORIGIN: allowed },
      });
      await expectEnvelope(actual, 400, "password can't be empty", null);
      expect(actual.headers.get("Access-Control-Allow-Origin")).toBeNull();
    });
  });
});
