import { createRoute, z } from "@hono/zod-openapi";
import { jsonBodyReader } from "../lib/body";
import { guardAdmin } from "../lib/guards";
import { HostLoginResponse, bearerSecurity, envelopeOf, errorResponses, jsonBody, jsonResponse } from "../lib/schemas";
import { ipThrottle } from "../lib/throttle";

export const AuthParams = z
  .object({
    id: z.string().max(256).optional(),
    macaddress: z.string().max(256).optional(),
    password: z.string().max(1024).optional(),
  })
  .openapi("models.AuthParams");

const NewHostParams = z
  .object({
    id: z.string().max(128).optional(),
    name: z.string().max(256).optional(),
    password: z.string().max(1024).optional(),
  })
  .openapi("NewHostParams");

const PublicHost = z.object({ id: z.string(), name: z.string(), created_at: z.string() }).openapi("Host");
const CreatedHost = PublicHost.extend({ password: z.string().optional() }).openapi("CreatedHost");

const HostIdParam = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, description: "Host id" }),
});

export const hostLoginRoute = createRoute({
  method: "post",
  path: "/api/hosts/adm/authenticate",
  summary: "To Fetch Auth Token for a Host",
  tags: ["Auth"],
  middleware: [ipThrottle, jsonBodyReader] as const,
  request: jsonBody(AuthParams, "Authentication parameters"),
  responses: { 200: jsonResponse(envelopeOf(HostLoginResponse)), ...errorResponses(400, 401, 413, 429) },
});

export const createHostRoute = createRoute({
  method: "post",
  path: "/api/hosts",
  summary: "Register a host (admin); a generated password is shown once",
  tags: ["Hosts"],
  security: bearerSecurity,
  middleware: [guardAdmin, jsonBodyReader] as const,
  request: jsonBody(NewHostParams, "The new host; id and password are generated when absent"),
  responses: { 200: jsonResponse(envelopeOf(CreatedHost)), ...errorResponses(400, 401, 403, 413) },
});

export const listHostsRoute = createRoute({
  method: "get",
  path: "/api/hosts",
  summary: "List hosts (admin)",
  tags: ["Hosts"],
  security: bearerSecurity,
  responses: { 200: jsonResponse(z.array(PublicHost)), ...errorResponses(401, 403) },
});

export const deleteHostRoute = createRoute({
  method: "delete",
  path: "/api/hosts/{id}",
  summary: "Delete a host (admin)",
  tags: ["Hosts"],
  security: bearerSecurity,
  request: { params: HostIdParam },
  responses: { 200: jsonResponse(envelopeOf(z.null())), ...errorResponses(401, 403, 404) },
});
