import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../lib/http";
import * as handlers from "./users.handlers";
import * as routes from "./users.routes";

export function userRoutes(app: OpenAPIHono<AppEnv>) {
  return app
    .openapi(routes.loginRoute, handlers.login)
    .openapi(routes.hasSuperAdminRoute, handlers.hasSuperAdminHandler)
    .openapi(routes.createSuperAdminRoute, handlers.createSuperAdmin)
    .openapi(routes.createUserRoute, handlers.createUser)
    .openapi(routes.getUserRoute, handlers.getUser)
    .openapi(routes.disableUserRoute, handlers.disableUser)
    .openapi(routes.enableUserRoute, handlers.enableUser)
    .openapi(routes.deleteUserRoute, handlers.removeUser);
}
