import { afterEach, describe, expect, it, vi } from "vitest";
import { expectEnvelope, get, call } from "./helpers";

afterEach(() => vi.restoreAllMocks());

describe("PASS_THROUGH beside a Netmaker server", () => {
  it("sends a path this service does not answer on to the origin, unchanged", async () => {
    const upstream = vi
      .spyOn(globalThis, "fetch")
      .mockResolvedValue(new Response('{"from":"netmaker"}', { status: 200, headers: { "Content-Type": "application/json" } }));
    const res = await call("PUT", "/api/users/alice", { body: { username: "alice" }, env: { PASS_THROUGH: "on" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ from: "netmaker" });
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(upstream).toHaveBeenCalledTimes(1);
    const forwarded = upstream.mock.calls[0][0] as Request;
    expect(forwarded.method).toBe("PUT");
    expect(new URL(forwarded.url).pathname).toBe("/api/users/alice");
    expect(await forwarded.text()).toBe('{"username":"alice"}');
  });

  it("answers the paths it owns itself, and 404 for the rest when off", async () => {
    const upstream = vi.spyOn(globalThis, "fetch");
    const status = await get("/api/server/status", { env: { PASS_THROUGH: "on" } });
    expect(status.status).toBe(200);
    await expectEnvelope(await get("/api/networks"), 404, "not found", null);
    expect(upstream).not.toHaveBeenCalled();
  });
});
