import { requireUser } from "../lib/guards";
import { ApiError, envelope, forbidden, type AppHandler } from "../lib/http";
import { listEvents } from "../storage/events";
import { findUser, isAdminRole, publicUser } from "../storage/users";
import { VERSION } from "../version";
import type * as routes from "./server.routes";

export const status: AppHandler<typeof routes.statusRoute> = async (c) => {
  try {
    await c.env.DB.prepare("SELECT 1").first();
    return c.json({ db_connected: true, version: VERSION }, 200);
  } catch (error) {
    console.error("health check: D1 does not answer", error);
    return c.json({ db_connected: false, version: VERSION }, 503);
  }
};

export const getConfig: AppHandler<typeof routes.configRoute> = async (c) => {
  await requireUser(c);
  return c.json({ Version: VERSION, IsPro: "no", IsEE: "no", MFA: "on" }, 200);
};

export const v1User: AppHandler<typeof routes.v1UserRoute> = async (c) => {
  const caller = c.get("user");
  const { username } = c.req.valid("query");
  if (caller.username !== username && !isAdminRole(caller.platform_role)) throw forbidden();
  const user = caller.username === username ? caller : await findUser(c.env.DB, username);
  if (!user) throw new ApiError(404, "user not found");
  const platformRole = { id: user.platform_role, deny_dashboard_access: false };
  return c.json(envelope(200, "fetched user", { ...publicUser(user), platform_role: platformRole }), 200);
};

export const events: AppHandler<typeof routes.eventsRoute> = async (c) => {
  const { limit, before } = c.req.valid("query");
  const rows = await listEvents(c.env.DB, limit, before);
  const nextBefore = rows.length === limit ? rows[rows.length - 1].id : null;
  return c.json(envelope(200, "events", { events: rows, next_before: nextBefore }), 200);
};
