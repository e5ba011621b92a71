// Request bodies (API.md §1): JSON whatever the Content-Type says; a body that is not JSON, not an object,
// wrongly typed, empty or over the size limit gets a 4xx envelope naming the problem and changes nothing.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../src/index";
import { BASE, createSuperAdmin, expectEnvelope, expectNoSecrets, post, snapshot, SUPER_ADMIN } from "./helpers";

const MAX_BODY_BYTES = 16 * 1024;
const TOO_LARGE = `request body too large: the limit is ${MAX_BODY_BYTES} bytes`;
const encoder = new TextEncoder();

/**
 * Sends a body exactly as given: bytes and streams go without a Content-Type (a string body would get
 * text/plain from the Request constructor) and without a Content-Length unless `headers` sets one.
 */
async function send(path: string, body: BodyInit | null, headers: Record<string, string> = {}, token?: string) {
  const request = new Request(BASE + path, {
    method: "POST",
    headers: { "CF-Connecting-IP": "192.0.2.1", ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
    body,
  });
  const ctx = createExecutionContext();
  const response = await worker.fetch(request, env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** A stream that delivers `bytes` in small chunks, so its length is known only by reading it. */
function streamOf(bytes: Uint8Array, chunkSize = 1024) {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

/** A JSON object of exactly `size` bytes, valid apart from its size. */
function jsonOfSize(fields: Record<string, string>, size: number) {
  const bare = JSON.stringify({ ...fields, pad: "" });
  return JSON.stringify({ ...fields, pad: "x".repeat(size - bare.length) });
}

let adminToken: string;
beforeEach(async () => {
  adminToken = await createSuperAdmin();
});

// Every route that reads a body, with a field of the wrong type for it. The admin routes get a token.
const endpoints: { path: string; admin: boolean; fields: Record<string, string>; wrongType: object; field: string }[] = [
  { path: "/api/users/adm/authenticate", admin: false, fields: SUPER_ADMIN, wrongType: { username: 5, password: "x" }, field: "username" },
  { path: "/api/hosts/adm/authenticate", admin: false, fields: { id: "h1", password: "host-password-of-32-characters-x" }, wrongType: { id: "h1", password: ["p"] }, field: "password" },
  { path: "/api/users/adm/createsuperadmin", admin: false, fields: SUPER_ADMIN, wrongType: { username: { name: "x" } }, field: "username" },
  { path: "/api/users/bob", admin: true, fields: { password: "bob-password" }, wrongType: { password: true }, field: "password" },
  { path: "/api/hosts", admin: true, fields: { name: "h1" }, wrongType: { name: 1.5 }, field: "name" },
];

describe.each(endpoints)("POST $path refuses an unreadable body, changing nothing", ({ path, admin, fields, wrongType, field }) => {
  const token = () => (admin ? adminToken : undefined);

  const refusals: [string, () => BodyInit | null, Record<string, string>, number, string | RegExp][] = [
    ["malformed JSON", () => '{"username": "admin", ', {}, 400, "invalid request body: not valid JSON"],
    ["an array", () => JSON.stringify([fields]), {}, 400, "invalid request body: expected a JSON object"],
    ["null", () => "null", {}, 400, "invalid request body: expected a JSON object"],
    ["a number", () => "42", {}, 400, "invalid request body: expected a JSON object"],
    ["a string", () => '"admin"', {}, 400, "invalid request body: expected a JSON object"],
    ["a field of the wrong type", () => JSON.stringify(wrongType), {}, 400, new RegExp(`^invalid request body: ${field}: .*expected string`)],
    ["an empty body", () => "", {}, 400, "invalid request body: the body is empty"],
    ["only whitespace", () => " \n ", {}, 400, "invalid request body: the body is empty"],
    ["no body at all", () => null, {}, 400, "invalid request body: the body is empty"],
    ["bytes that are not UTF-8", () => new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), {}, 400, "invalid request body: not valid UTF-8"],
    [
      "over 16 KiB, with Content-Length",
      () => jsonOfSize(fields, MAX_BODY_BYTES + 1),
      { "Content-Length": String(MAX_BODY_BYTES + 1) },
      413,
      TOO_LARGE,
    ],
    ["over 16 KiB, streamed without Content-Length", () => streamOf(encoder.encode(jsonOfSize(fields, MAX_BODY_BYTES + 1))), {}, 413, TOO_LARGE],
    ["a Content-Length over 16 KiB before any of the body is read", () => "{}", { "Content-Length": String(10 * MAX_BODY_BYTES) }, 413, TOO_LARGE],
  ];

  it.each(refusals)("%s", async (_name, body, headers, status, message) => {
    const before = await snapshot();
    await expectEnvelope(await send(path, body(), headers, token()), status, message, null);
    expect(await snapshot()).toEqual(before);
  });

  it("reads a body of exactly 16 KiB (the limit is not off by one)", async () => {
    const body = jsonOfSize(fields, MAX_BODY_BYTES);
    expect(encoder.encode(body).length).toBe(MAX_BODY_BYTES);
    const response = await send(path, streamOf(encoder.encode(body)), {}, token());
    await expectNoSecrets(response, fields.password ? [fields.password] : []);
    expect(response.status).not.toBe(413);
    const { Message } = (await response.json()) as { Message?: string };
    expect(Message ?? "").not.toMatch(/^invalid request body|^request body too large/);
  });
});

describe("a JSON body is read whatever the Content-Type says", () => {
  const login = { username: SUPER_ADMIN.username, password: SUPER_ADMIN.password };

  it.each([
    ["no Content-Type", {}],
    ["text/plain", { "Content-Type": "text/plain" }],
    ["application/json", { "Content-Type": "application/json" }],
    ["application/x-www-form-urlencoded", { "Content-Type": "application/x-www-form-urlencoded" }],
  ])("%s", async (_name, headers) => {
    // The premise: a byte body carries exactly the Content-Type given here, or none.
    const request = new Request(BASE, { method: "POST", headers, body: encoder.encode(JSON.stringify(login)) });
    expect(request.headers.get("Content-Type")).toBe((headers as Record<string, string>)["Content-Type"] ?? null);
    const response = await send("/api/users/adm/authenticate", encoder.encode(JSON.stringify(login)), headers);
    await expectNoSecrets(response);
    await expectEnvelope(response, 200, "W1R3: Device admin Authorized");
  });
});

describe("unknown fields are ignored", () => {
  it("createsuperadmin takes the web UI's confirm-password", async () => {
    await env.DB.prepare("DELETE FROM users").run();
    const body = { username: "owner", password: "owner-password", "confirm-password": "owner-password", theme: "dark" };
    const response = await post("/api/users/adm/createsuperadmin", { body });
    await expectNoSecrets(response, [body.password]);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ username: "owner", issuperadmin: true });
  });

  it("login takes extra fields", async () => {
    const response = await post("/api/users/adm/authenticate", { body: { ...SUPER_ADMIN, remember: true, totp: "123456" } });
    await expectNoSecrets(response);
    await expectEnvelope(response, 200, "W1R3: Device admin Authorized");
  });
});

describe("the size limit is the MAX_BODY_BYTES variable", () => {
  it("refuses a body over a lowered limit, naming that limit", async () => {
    const before = await snapshot();
    const response = await post("/api/users/adm/authenticate", {
      body: { ...SUPER_ADMIN, pad: "x".repeat(100) },
      env: { MAX_BODY_BYTES: "100" },
    });
    await expectEnvelope(response, 413, "request body too large: the limit is 100 bytes", null);
    expect(await snapshot()).toEqual(before);
  });
});
