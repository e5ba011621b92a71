import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../lib/http";
import * as handlers from "./server.handlers";
import * as routes from "./server.routes";

export function serverRoutes(app: OpenAPIHono<AppEnv>) {
  return app
    .openapi(routes.statusRoute, handlers.status)
    .openapi(routes.configRoute, handlers.getConfig)
    .openapi(routes.v1UserRoute, handlers.v1User)
    .openapi(routes.eventsRoute, handlers.events);
}
