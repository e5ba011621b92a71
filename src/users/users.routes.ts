import { createRoute, z } from "@hono/zod-openapi";
import { jsonBodyReader } from "../lib/body";
import { guardAdmin } from "../lib/guards";
import { ipThrottle } from "../lib/throttle";
import {
  PreAuthResponse,
  PublicUserSchema,
  SuccessfulUserLoginResponse,
  UsernameParam,
  bearerSecurity,
  envelopeOf,
  errorResponses,
  jsonBody,
  jsonResponse,
} from "../lib/schemas";

const text = (max: number) => z.string().max(max);

export const UserAuthParams = z
  .object({ username: text(256).optional(), password: text(1024).optional() })
  .openapi("models.UserAuthParams");

const NewUserParams = z
  .object({
    username: text(256).optional(),
    password: text(1024).optional(),
    platform_role_id: z.enum(["admin", "platform-user"]).optional(),
  })
  .openapi("NewUserParams");

export const loginRoute = createRoute({
  method: "post",
  path: "/api/users/adm/authenticate",
  summary: "Authenticate a user to retrieve an authorization token",
  tags: ["Auth"],
  middleware: [ipThrottle, jsonBodyReader] as const,
  request: jsonBody(UserAuthParams, "Authentication parameters"),
  responses: {
    200: jsonResponse(
      envelopeOf(z.union([SuccessfulUserLoginResponse, PreAuthResponse])),
      "OK: a full token, or a pre-auth token when the user has TOTP on",
    ),
    ...errorResponses(400, 401, 413, 429),
  },
});

export const hasSuperAdminRoute = createRoute({
  method: "get",
  path: "/api/users/adm/hassuperadmin",
  summary: "Whether a super admin exists",
  tags: ["Users"],
  middleware: [ipThrottle] as const,
  responses: { 200: jsonResponse(z.boolean()), ...errorResponses(429) },
});

export const createSuperAdminRoute = createRoute({
  method: "post",
  path: "/api/users/adm/createsuperadmin",
  summary: "Create the super admin (once)",
  tags: ["Users"],
  middleware: [ipThrottle, jsonBodyReader] as const,
  request: jsonBody(UserAuthParams, "The super admin's username and password"),
  responses: { 200: jsonResponse(PublicUserSchema), ...errorResponses(400, 413, 429) },
});

export const createUserRoute = createRoute({
  method: "post",
  path: "/api/users/{username}",
  summary: "Create a user (admin)",
  tags: ["Users"],
  security: bearerSecurity,
  middleware: [guardAdmin, jsonBodyReader] as const,
  request: { params: UsernameParam, ...jsonBody(NewUserParams, "The new user") },
  responses: { 200: jsonResponse(PublicUserSchema), ...errorResponses(400, 401, 403, 413) },
});

export const getUserRoute = createRoute({
  method: "get",
  path: "/api/users/{username}",
  summary: "Read a user (admin, or the user themself)",
  tags: ["Users"],
  security: bearerSecurity,
  request: { params: UsernameParam },
  responses: { 200: jsonResponse(PublicUserSchema), ...errorResponses(401, 403, 404) },
});

const userAction = (action: "disable" | "enable", summary: string) =>
  createRoute({
    method: "post",
    path: `/api/users/{username}/${action}`,
    summary,
    tags: ["Users"],
    security: bearerSecurity,
    request: { params: UsernameParam },
    responses: { 200: jsonResponse(envelopeOf(PublicUserSchema)), ...errorResponses(401, 403, 404) },
  });

export const disableUserRoute = userAction("disable", "Disable a user's account (admin)");
export const enableUserRoute = userAction("enable", "Enable a user's account (admin)");

export const deleteUserRoute = createRoute({
  method: "delete",
  path: "/api/users/{username}",
  summary: "Delete a user (admin)",
  tags: ["Users"],
  security: bearerSecurity,
  request: { params: UsernameParam },
  responses: { 200: jsonResponse(envelopeOf(z.null())), ...errorResponses(401, 403, 404) },
});
