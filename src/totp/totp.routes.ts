import { createRoute, z } from "@hono/zod-openapi";
import { jsonBodyReader } from "../lib/body";
import { guardSelf } from "../lib/guards";
import {
  PublicUserSchema,
  SuccessResponse,
  SuccessfulUserLoginResponse,
  TOTPInitiateResponse,
  UsernameParam,
  bearerSecurity,
  envelopeOf,
  errorResponses,
  jsonBody,
  jsonResponse,
} from "../lib/schemas";
import { ipThrottle } from "../lib/throttle";

export const UserTOTPVerificationParams = z
  .object({
    otp_auth_url: z.string().max(1024).optional(),
    otp_auth_url_signature: z.string().max(256).optional(),
    totp: z.string().max(64).optional(),
  })
  .openapi("models.UserTOTPVerificationParams");

export const initTotpRoute = createRoute({
  method: "post",
  path: "/api/users/{username}/auth/init-totp",
  summary: "Initiate setting up TOTP 2FA for a user",
  tags: ["Auth"],
  security: bearerSecurity,
  middleware: [guardSelf({ checkAccount: true })] as const,
  request: { params: UsernameParam },
  responses: { 200: jsonResponse(envelopeOf(TOTPInitiateResponse)), ...errorResponses(401, 403) },
});

export const completeTotpRoute = createRoute({
  method: "post",
  path: "/api/users/{username}/auth/complete-totp",
  summary: "Verify and complete setting up TOTP 2FA for a user",
  tags: ["Auth"],
  security: bearerSecurity,
  middleware: [guardSelf({ checkAccount: true }), jsonBodyReader] as const,
  request: { params: UsernameParam, ...jsonBody(UserTOTPVerificationParams, "TOTP verification parameters") },
  responses: { 200: jsonResponse(SuccessResponse), ...errorResponses(400, 401, 403, 413) },
});

export const verifyTotpRoute = createRoute({
  method: "post",
  path: "/api/users/{username}/auth/verify-totp",
  summary: "Verify a user's TOTP token",
  tags: ["Auth"],
  security: bearerSecurity,
  middleware: [ipThrottle, guardSelf({ allowPreAuth: true }), jsonBodyReader] as const,
  request: { params: UsernameParam, ...jsonBody(UserTOTPVerificationParams, "TOTP verification parameters") },
  responses: {
    200: jsonResponse(envelopeOf(SuccessfulUserLoginResponse)),
    ...errorResponses(400, 401, 403, 413, 429),
  },
});

export const resetTotpRoute = createRoute({
  method: "post",
  path: "/api/users/{username}/auth/reset-totp",
  summary: "Turn a user's TOTP off and delete the secret (admin)",
  tags: ["Auth"],
  security: bearerSecurity,
  request: { params: UsernameParam },
  responses: { 200: jsonResponse(envelopeOf(PublicUserSchema)), ...errorResponses(401, 403, 404) },
});
