import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../lib/http";
import * as handlers from "./totp.handlers";
import * as routes from "./totp.routes";

export function totpRoutes(app: OpenAPIHono<AppEnv>) {
  return app
    .openapi(routes.initTotpRoute, handlers.initTotp)
    .openapi(routes.completeTotpRoute, handlers.completeTotp)
    .openapi(routes.verifyTotpRoute, handlers.verifyTotp)
    .openapi(routes.resetTotpRoute, handlers.resetTotp);
}
