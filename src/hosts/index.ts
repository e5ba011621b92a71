import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../lib/http";
import * as handlers from "./hosts.handlers";
import * as routes from "./hosts.routes";

export function hostRoutes(app: OpenAPIHono<AppEnv>) {
  return app
    .openapi(routes.hostLoginRoute, handlers.hostLogin)
    .openapi(routes.createHostRoute, handlers.createHost)
    .openapi(routes.listHostsRoute, handlers.listHostsHandler)
    .openapi(routes.deleteHostRoute, handlers.removeHost);
}
