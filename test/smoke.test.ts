import { env, SELF } from "cloudflare:test";
import { expect, it } from "vitest";

it("answers", async () => {
  const res = await SELF.fetch("https://auth.test/api/users/adm/hassuperadmin");
  expect(res.status).toBe(200);
  expect(await res.json()).toBe(false);
  const r2 = await SELF.fetch("https://auth.test/api/users/adm/createsuperadmin", { method: "POST", body: JSON.stringify({ username: "admin", password: "secret1" }) });
  console.log(r2.status, await r2.text());
  const r3 = await SELF.fetch("https://auth.test/api/users/adm/authenticate", { method: "POST", body: JSON.stringify({ username: "admin", password: "secret1" }) });
  console.log(r3.status, await r3.text());
  expect(await env.DB.prepare("select count(*) n from users").first("n")).toBe(1);
});
