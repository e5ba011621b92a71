// The served OpenAPI document (API.md §1): 3.1, every route of the service, the seed spec's component
// names, paths, summaries and tags, the capitalised keys that are really sent, a bearer scheme, and a
// description that says why the casing differs from the upstream swagger. And the /docs page.
import { beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../src/app";
import { get } from "./helpers";

// From ../shared/netmaker-auth.openapi.json (Netmaker API 1.4.0), written out so that the test pins them.
const SEED_PATHS: [string, string, string][] = [
  ["post", "/api/hosts/adm/authenticate", "To Fetch Auth Token for a Host"],
  ["post", "/api/users/{username}/auth/complete-totp", "Verify and complete setting up TOTP 2FA for a user"],
  ["post", "/api/users/{username}/auth/init-totp", "Initiate setting up TOTP 2FA for a user"],
  ["post", "/api/users/{username}/auth/verify-totp", "Verify a user's TOTP token"],
  ["post", "/api/users/adm/authenticate", "Authenticate a user to retrieve an authorization token"],
];
const SEED_TAG = "Auth";
const SEED_COMPONENTS = [
  "models.SuccessResponse",
  "models.ErrorResponse",
  "models.AuthParams",
  "models.UserAuthParams",
  "models.UserTOTPVerificationParams",
  "models.TOTPInitiateResponse",
  "models.SuccessfulUserLoginResponse",
];

// Every operation the service answers (API.md §2 and §6, plus the audit trail).
const SERVICE_OPERATIONS = [
  "post /api/users/adm/authenticate",
  "get /api/users/adm/hassuperadmin",
  "post /api/users/adm/createsuperadmin",
  "post /api/users/{username}",
  "get /api/users/{username}",
  "delete /api/users/{username}",
  "post /api/users/{username}/disable",
  "post /api/users/{username}/enable",
  "post /api/users/{username}/auth/init-totp",
  "post /api/users/{username}/auth/complete-totp",
  "post /api/users/{username}/auth/verify-totp",
  "post /api/users/{username}/auth/reset-totp",
  "post /api/hosts/adm/authenticate",
  "post /api/hosts",
  "get /api/hosts",
  "delete /api/hosts/{id}",
  "get /api/server/status",
  "get /api/server/getconfig",
  "get /api/v1/users",
  "get /api/audit/events",
];
// Routes that serve the documentation itself, not the API.
const DOCUMENTATION_ROUTES = ["get /openapi.json", "get /docs"];

type Doc = Record<string, any>;
let doc: Doc;
beforeAll(async () => {
  const response = await get("/openapi.json");
  expect(response.status).toBe(200);
  expect(response.headers.get("Content-Type")).toMatch(/^application\/json/);
  doc = await response.json();
});

const operations = (document: Doc) =>
  Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    Object.keys(item).map((method) => `${method} ${path}`),
  );

/** Follows a local $ref to the schema it names. */
const resolve = (schema: Doc): Doc =>
  schema.$ref ? doc.components.schemas[(schema.$ref as string).replace("#/components/schemas/", "")] : schema;

describe("GET /openapi.json", () => {
  it("is OpenAPI 3.1", () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toBe("NetMaker");
  });

  it("describes every operation of the service, and nothing else", () => {
    expect(operations(doc).sort()).toEqual([...SERVICE_OPERATIONS].sort());
  });

  it("documents every route the app has registered", () => {
    const registered = createApp()
      .routes.filter((route) => route.method !== "ALL")
      .map((route) => `${route.method.toLowerCase()} ${route.path.replace(/:(\w+)/g, "{$1}")}`);
    const undocumented = [...new Set(registered)].filter((op) => !operations(doc).includes(op) && !DOCUMENTATION_ROUTES.includes(op));
    expect(undocumented).toEqual([]);
  });

  it.each(SEED_PATHS)("keeps the seed's %s %s with its summary and the Auth tag", (method, path, summary) => {
    const operation = doc.paths[path]?.[method];
    expect(operation).toBeDefined();
    expect(operation.summary).toBe(summary);
    expect(operation.tags).toEqual([SEED_TAG]);
  });

  it("declares the path parameters of the seed's paths", () => {
    for (const [method, path] of SEED_PATHS.filter(([, path]) => path.includes("{username}"))) {
      const names = (doc.paths[path][method].parameters ?? []).filter((p: Doc) => p.in === "path").map((p: Doc) => p.name);
      expect(names).toEqual(["username"]);
    }
  });

  it("keeps the seed's component names", () => {
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(SEED_COMPONENTS));
  });

  it("describes the envelope with the capitalised keys that are really sent", () => {
    for (const name of ["models.SuccessResponse", "models.ErrorResponse"]) {
      expect(Object.keys(doc.components.schemas[name].properties).sort()).toEqual(["Code", "Message", "Response"]);
    }
  });

  it("describes the login payloads as they are really sent", () => {
    const schemas = doc.components.schemas;
    expect(Object.keys(schemas["models.SuccessfulUserLoginResponse"].properties).sort()).toEqual(["AuthToken", "UserName"]);
    const hostLogin = doc.paths["/api/hosts/adm/authenticate"].post.responses["200"].content["application/json"].schema;
    const hostPayload = resolve(resolve(hostLogin).properties.Response);
    expect(Object.keys(hostPayload.properties).sort()).toEqual(["AuthToken", "ID"]);
  });

  it("keeps the request bodies' lowercase fields", () => {
    const schemas = doc.components.schemas;
    expect(Object.keys(schemas["models.AuthParams"].properties).sort()).toEqual(["id", "macaddress", "password"]);
    expect(Object.keys(schemas["models.UserAuthParams"].properties).sort()).toEqual(["password", "username"]);
    expect(Object.keys(schemas["models.UserTOTPVerificationParams"].properties).sort()).toEqual([
      "otp_auth_url",
      "otp_auth_url_signature",
      "totp",
    ]);
    expect(Object.keys(schemas["models.TOTPInitiateResponse"].properties).sort()).toEqual([
      "otp_auth_url",
      "otp_auth_url_signature",
      "qr_code",
    ]);
  });

  it("has a bearer security scheme, used by the routes that take a token", () => {
    const schemes = Object.entries(doc.components.securitySchemes as Record<string, Doc>);
    const bearer = schemes.filter(([, scheme]) => scheme.type === "http" && scheme.scheme === "bearer");
    expect(bearer).toHaveLength(1);
    const [name] = bearer[0];
    for (const [method, path] of [
      ["get", "/api/users/{username}"],
      ["post", "/api/users/{username}/auth/init-totp"],
      ["get", "/api/hosts"],
      ["get", "/api/server/getconfig"],
    ]) {
      expect(doc.paths[path][method].security).toEqual([{ [name]: [] }]);
    }
    expect(doc.paths["/api/users/adm/authenticate"].post.security).toBeUndefined();
  });

  it("says in its description why the keys are capitalised", () => {
    const description: string = doc.info.description;
    expect(description).toMatch(/capitali[sz]ed/i);
    expect(description).toMatch(/Code, Message, Response/);
    expect(description).toMatch(/swagger/i);
  });
});

describe("GET /docs", () => {
  it("serves an interactive HTML page that loads /openapi.json", async () => {
    const response = await get("/docs");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toMatch(/<html/i);
    expect(html).toContain("/openapi.json");
  });
});
