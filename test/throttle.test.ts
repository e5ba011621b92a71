// The coarse per-client-IP throttle (src/lib/throttle.ts) on the IP_LIMITER binding of wrangler.toml.
// Local workerd simulates the binding: fixed windows aligned on the wall clock, counted per key, in a
// Durable Object that the per-test storage reset does not clear; so every test uses addresses of its own.
import { afterEach, describe, expect, it, vi } from "vitest";
import { createSuperAdmin, expectEnvelope, get, post, snapshot, type CallOptions } from "./helpers";

/** Worker variables for one request (their generated types are the wrangler.toml literals). */
const vars = (values: Record<string, string>) => values as unknown as Partial<Env>;

const IP_LIMIT = 60; // wrangler.toml [[ratelimits]] simple.limit
const IP_PERIOD_SECONDS = 60;
const THROTTLED = "too many requests from this address, try again later";
const THROTTLE_ON = vars({ IP_THROTTLE: "on" });
const THROTTLE_OFF = vars({ IP_THROTTLE: "off" });

afterEach(() => vi.restoreAllMocks());

let addresses = 0;
/** An address no other test (or earlier run against the same simulated limiter) has used. */
const freshIp = () => `2001:db8:${Date.now().toString(16).slice(-4)}::${(++addresses).toString(16)}`;

const from = (ip: string, options: CallOptions = {}): CallOptions => ({
  ...options,
  headers: { ...options.headers, "CF-Connecting-IP": ip },
  env: { ...THROTTLE_ON, ...options.env },
});

const limiterWindow = () => Math.floor(Date.now() / (IP_PERIOD_SECONDS * 1000));

/**
 * Runs `attempt` inside one limiter window: if the wall clock crossed a window boundary while it ran (the
 * budget was renewed half-way), it runs again with fresh addresses. No sleeping.
 */
async function withinOneWindow(attempt: () => Promise<void>) {
  for (let tries = 0; tries < 3; tries++) {
    const start = limiterWindow();
    await attempt();
    if (limiterWindow() === start) return;
  }
  throw new Error("the limiter window kept rolling over");
}

/** Spends an address's whole budget on a cheap public endpoint; returns the statuses seen. */
async function exhaust(ip: string): Promise<number[]> {
  const statuses = [];
  for (let i = 0; i < IP_LIMIT; i++) statuses.push((await get("/api/users/adm/hassuperadmin", from(ip))).status);
  return statuses;
}

async function expectThrottled(response: Response) {
  expect(response.headers.get("Retry-After")).toBe(String(IP_PERIOD_SECONDS));
  await expectEnvelope(response, 429, THROTTLED, null);
}

describe("per-IP throttle", () => {
  it("lets the configured number of requests through, then answers 429 with Retry-After; another address is unaffected", async () => {
    await withinOneWindow(async () => {
      const [ip, other] = [freshIp(), freshIp()];
      expect(await exhaust(ip)).toEqual(Array(IP_LIMIT).fill(200));
      for (let i = 0; i < 3; i++) await expectThrottled(await get("/api/users/adm/hassuperadmin", from(ip)));
      const otherAnswer = await get("/api/users/adm/hassuperadmin", from(other));
      expect(otherAnswer.status).toBe(200);
      expect(await otherAnswer.json()).toBe(false);
    });
  });

  it("refuses a throttled login before the password is checked or anything is stored", async () => {
    await withinOneWindow(async () => {
      const ip = freshIp();
      await exhaust(ip);
      const before = await snapshot();
      const derivations = vi.spyOn(crypto.subtle, "deriveBits");
      await expectThrottled(await post("/api/users/adm/authenticate", from(ip, { body: { username: "alice", password: "guess-1" } })));
      expect(derivations).not.toHaveBeenCalled();
      expect(await snapshot()).toEqual(before);
    });
  });

  it("shares one budget across every unauthenticated endpoint", async () => {
    await withinOneWindow(async () => {
      const ip = freshIp();
      await exhaust(ip);
      const before = await snapshot();
      await expectThrottled(await post("/api/users/adm/authenticate", from(ip, { body: { username: "a", password: "b" } })));
      await expectThrottled(await post("/api/hosts/adm/authenticate", from(ip, { body: { id: "h", password: "p" } })));
      await expectThrottled(await post("/api/users/adm/createsuperadmin", from(ip, { body: { username: "root", password: "root-password" } })));
      await expectThrottled(await post("/api/users/alice/auth/verify-totp", from(ip, { body: { totp: "123456" } })));
      expect(await snapshot()).toEqual(before);
    });
  });

  it("does not throttle authenticated admin routes", async () => {
    const admin = await createSuperAdmin();
    await withinOneWindow(async () => {
      const ip = freshIp();
      await exhaust(ip);
      await expectThrottled(await get("/api/users/adm/hassuperadmin", from(ip)));
      const authed = (options: CallOptions = {}) => from(ip, { ...options, token: admin });
      expect((await get("/api/hosts", authed())).status).toBe(200);
      expect((await get("/api/users/admin", authed())).status).toBe(200);
      expect((await get("/api/server/getconfig", authed())).status).toBe(200);
      await expectEnvelope(await get("/api/audit/events?limit=1", authed()), 200, "events");
      await expectEnvelope(await post("/api/users/admin/auth/init-totp", authed()), 200, "totp setup initiated");
    });
  });

  it("answers no 429 of its own when IP_THROTTLE is off, even for an address past its budget", async () => {
    await withinOneWindow(async () => {
      const ip = freshIp();
      await exhaust(ip);
      await expectThrottled(await get("/api/users/adm/hassuperadmin", from(ip)));
      for (let i = 0; i < IP_LIMIT + 10; i++) {
        expect((await get("/api/users/adm/hassuperadmin", from(ip, { env: THROTTLE_OFF }))).status).toBe(200);
      }
      const login = await post("/api/users/adm/authenticate", from(ip, { env: THROTTLE_OFF, body: { username: "a", password: "b" } }));
      await expectEnvelope(login, 400, "incorrect credentials", null);
    });
  });
});
