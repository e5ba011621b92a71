// Coarse per-client-IP throttle for the unauthenticated endpoints, on the Workers Rate Limiting binding
// (configured in wrangler.toml; simulated by local workerd). IP_THROTTLE=off switches it off.
import type { MiddlewareHandler } from "hono";
import { ApiError, type AppEnv } from "./http";

export const ipThrottle: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get("config").ipThrottle) {
    const { success } = await c.env.IP_LIMITER.limit({ key: c.get("ip") });
    if (!success) throw new ApiError(429, "too many requests from this address, try again later", { "Retry-After": "60" });
  }
  await next();
};
