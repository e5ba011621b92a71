// Shared OpenAPI schemas. The component names are the seed spec's; the property casing is what Netmaker
// really sends (API.md §1), not the seed's lowercase.
import { z } from "@hono/zod-openapi";

export const SuccessResponse = z
  .object({ Code: z.int(), Message: z.string(), Response: z.unknown().openapi({ description: "payload, or null" }) })
  .required()
  .openapi("models.SuccessResponse");

export const ErrorResponse = z
  .object({ Code: z.int(), Message: z.string(), Response: z.null() })
  .openapi("models.ErrorResponse");

export const SuccessfulUserLoginResponse = z
  .object({ UserName: z.string(), AuthToken: z.string() })
  .openapi("models.SuccessfulUserLoginResponse");

export const HostLoginResponse = z.object({ ID: z.string(), AuthToken: z.string() }).openapi("HostLoginResponse");

export const PreAuthResponse = z
  .object({ user_name: z.string(), pre_auth_token: z.string() })
  .openapi("PreAuthResponse");

export const TOTPInitiateResponse = z
  .object({ otp_auth_url: z.string(), otp_auth_url_signature: z.string(), qr_code: z.string() })
  .openapi("models.TOTPInitiateResponse");

export const PublicUserSchema = z
  .object({
    username: z.string(),
    display_name: z.string(),
    account_disabled: z.boolean(),
    isadmin: z.boolean(),
    issuperadmin: z.boolean(),
    platform_role_id: z.string(),
    auth_type: z.string(),
    is_mfa_enabled: z.boolean(),
    user_group_ids: z.record(z.string(), z.unknown()),
    network_roles: z.record(z.string(), z.unknown()),
  })
  .openapi("models.ReturnUser");

/** The envelope with a typed `Response`, for one route's success answer. */
export function envelopeOf<T extends z.ZodType>(response: T) {
  return z.object({ Code: z.int(), Message: z.string(), Response: response });
}

const errorDescriptions: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  413: "Payload Too Large",
  429: "Too Many Requests",
  500: "Internal Server Error",
};

/** Error answers of a route, each the error envelope. */
export function errorResponses(...statuses: (keyof typeof errorDescriptions)[]) {
  return Object.fromEntries(
    [...statuses, 500].map((status) => [
      status,
      { description: errorDescriptions[status], content: { "application/json": { schema: ErrorResponse } } },
    ]),
  );
}

export function jsonResponse<T extends z.ZodType>(schema: T, description = "OK") {
  return { description, content: { "application/json": { schema } } };
}

export function jsonBody<T extends z.ZodType>(schema: T, description: string) {
  return { body: { content: { "application/json": { schema } }, description, required: true } };
}

export const UsernameParam = z.object({
  username: z.string().openapi({ param: { name: "username", in: "path" }, description: "Username" }),
});

export const bearerSecurity = [{ oauth: [] }];
