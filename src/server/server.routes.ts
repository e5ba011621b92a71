import { createRoute, z } from "@hono/zod-openapi";
import { guardAdmin, guardUser } from "../lib/guards";
import { PublicUserSchema, bearerSecurity, envelopeOf, errorResponses, jsonResponse } from "../lib/schemas";

export const statusRoute = createRoute({
  method: "get",
  path: "/api/server/status",
  summary: "Health: whether D1 answers",
  tags: ["Server"],
  responses: {
    200: jsonResponse(z.object({ db_connected: z.boolean(), version: z.string() })),
    503: jsonResponse(z.object({ db_connected: z.boolean(), version: z.string() }), "D1 does not answer"),
  },
});

export const configRoute = createRoute({
  method: "get",
  path: "/api/server/getconfig",
  summary: "Server configuration the web UI reads",
  tags: ["Server"],
  security: bearerSecurity,
  responses: { 200: jsonResponse(z.object({ Version: z.string() }).passthrough()), ...errorResponses(401) },
});

export const v1UserRoute = createRoute({
  method: "get",
  path: "/api/v1/users",
  summary: "A user with their platform role, as the web UI reads it",
  tags: ["Users"],
  security: bearerSecurity,
  middleware: [guardUser] as const,
  request: { query: z.object({ username: z.string().max(256) }) },
  responses: {
    200: jsonResponse(
      envelopeOf(
        PublicUserSchema.extend({
          platform_role: z.object({ id: z.string(), deny_dashboard_access: z.boolean() }),
        }),
      ),
    ),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const eventsRoute = createRoute({
  method: "get",
  path: "/api/audit/events",
  summary: "Recent authentication events, newest first (admin)",
  tags: ["Audit"],
  security: bearerSecurity,
  middleware: [guardAdmin] as const,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(500).default(100),
      before: z.coerce.number().int().positive().optional(),
    }),
  },
  responses: {
    200: jsonResponse(
      envelopeOf(
        z.object({
          events: z.array(
            z.object({
              id: z.int(),
              at: z.int(),
              kind: z.string(),
              subject: z.string(),
              actor: z.string().nullable(),
              ip: z.string().nullable(),
              outcome: z.enum(["success", "failure", "locked"]),
              reason: z.string().nullable(),
            }),
          ),
          next_before: z.int().nullable(),
        }),
      ),
    ),
    ...errorResponses(400, 401, 403),
  },
});
