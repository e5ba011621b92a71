import { OpenAPIHono, type Hook } from "@hono/zod-openapi";
import { swaggerUI } from "@hono/swagger-ui";
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { readConfig } from "./config";
import { hostRoutes } from "./hosts";
import { ApiError, envelope, type AppEnv } from "./lib/http";
import { serverRoutes } from "./server";
import { totpRoutes } from "./totp";
import { userRoutes } from "./users";
import { VERSION } from "./version";

/** Every validation failure becomes one 400 envelope naming the field and what is wrong with it. */
const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.length ? `${issue.path.join(".")}: ` : "";
    const part = result.target === "json" ? "body" : result.target;
    throw new ApiError(400, `invalid request ${part}: ${where}${issue.message}`);
  }
};

const requestContext: MiddlewareHandler<AppEnv> = async (c, next) => {
  c.set("config", readConfig(c.env));
  c.set("now", Math.floor(Date.now() / 1000));
  c.set("ip", c.req.header("CF-Connecting-IP") ?? "unknown");
  await next();
};

const securityHeaders: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const headers = c.res.headers;
  headers.set("Cache-Control", "no-store");
  headers.set("X-Content-Type-Options", "nosniff");
  headers.set("X-Frame-Options", "DENY");
  headers.set("Content-Security-Policy", "frame-ancestors 'none'");
  headers.set("Referrer-Policy", "no-referrer");
  headers.set("Strict-Transport-Security", "max-age=31536000");
};

/** The headers Netmaker's clients send, allowed from CORS_ORIGIN ("*" or a comma-separated list). */
function corsFor(allowed: string): MiddlewareHandler<AppEnv> {
  const origins = allowed.split(",").map((origin) => origin.trim());
  return cors({
    origin: allowed === "*" ? "*" : (origin) => (origins.includes(origin) ? origin : null),
    allowMethods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"],
    allowHeaders: ["Content-Type", "Authorization", "From-Ui", "X-Application-Name", "X-Requested-With"],
    maxAge: 600,
  });
}

const corsPolicies = new Map<string, MiddlewareHandler<AppEnv>>();
const corsPolicy: MiddlewareHandler<AppEnv> = (c, next) => {
  const allowed = c.get("config").corsOrigin;
  let policy = corsPolicies.get(allowed);
  if (!policy) corsPolicies.set(allowed, (policy = corsFor(allowed)));
  return policy(c, next);
};

export function createApp() {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.use("*", securityHeaders, requestContext, corsPolicy);

  userRoutes(app);
  totpRoutes(app);
  hostRoutes(app);
  serverRoutes(app);

  app.openAPIRegistry.registerComponent("securitySchemes", "oauth", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: "A user token from login or verify-totp; verify-totp also takes the pre-auth token.",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.1",
    info: {
      title: "NetMaker",
      version: VERSION,
      description:
        "Netmaker's authentication API as a Cloudflare Worker. Envelope and login payload keys are capitalised " +
        "(Code, Message, Response, UserName, AuthToken, ID) because Netmaker's Go structs carry no JSON tags, so " +
        "that is what the real server sends and what netclient and the web UI parse; the upstream swagger's " +
        "lowercase keys do not match the wire.",
    },
    tags: [{ name: "Auth" }, { name: "Users" }, { name: "Hosts" }, { name: "Server" }, { name: "Audit" }],
  });
  app.get("/docs", swaggerUI({ url: "/openapi.json", title: "Netmaker auth API" }));

  // Beside a Netmaker server on the same hostname, a path this service does not answer goes on to it.
  app.notFound(async (c) => {
    if (!c.get("config").passThrough) return c.json(envelope(404, "not found", null), 404);
    const upstream = await fetch(c.req.raw);
    return new Response(upstream.body, upstream); // a fetched response's headers are immutable
  });
  app.onError((error, c) => {
    if (error instanceof ApiError) {
      return c.json(envelope(error.status, error.message, null), error.status, error.headers);
    }
    console.error(`${c.req.method} ${new URL(c.req.url).pathname} failed:`, error);
    return c.json(envelope(500, "internal server error", null), 500);
  });
  return app;
}
