import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { claims, createHost, createSuperAdmin, expectEnvelope, post, SUPER_ADMIN } from "./helpers";

describe("POST /api/users/adm/authenticate", () => {
  it("logs the super admin in with Netmaker's claim set", async () => {
    const token = await createSuperAdmin();
    const c = claims(token);
    expect(c).toMatchObject({ Role: "super-admin", UserName: "admin", Api: "", TokenType: "user_id_token", RacAutoDisable: false, iss: "Netmaker", sub: "user|admin" });
    expect(c.exp - c.iat).toBe(12 * 3600);
  });

  it("answers incorrect credentials for a wrong password", async () => {
    await createSuperAdmin();
    const res = await post("/api/users/adm/authenticate", { body: { username: SUPER_ADMIN.username, password: "nope-nope" } });
    await expectEnvelope(res, 400, "incorrect credentials", null);
    expect(await env.DB.prepare("SELECT failures FROM login_failures WHERE subject = 'user:admin'").first("failures")).toBe(1);
  });
});

describe("POST /api/hosts/adm/authenticate", () => {
  it("logs a registered host in", async () => {
    const admin = await createSuperAdmin();
    const host = await createHost(admin, { name: "h1" });
    const res = await post("/api/hosts/adm/authenticate", { body: { id: host.id, password: host.password, macaddress: "aa:bb" } });
    const payload = await expectEnvelope(res, 200, `W1R3: Host ${host.id} Authorized`);
    expect(claims(payload.AuthToken)).toMatchObject({ ID: host.id, MacAddress: "aa:bb", Network: "", iss: "Netmaker", sub: `node|${host.id}` });
  });
});
