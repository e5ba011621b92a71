import { createApp } from "./app";
import { readConfig } from "./config";
import { pruneCounters } from "./storage/failures";
import { pruneEvents } from "./storage/events";

const app = createApp();

/** Daily clean-up: audit events past their retention, counters that no longer lock anything. */
export async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  const config = readConfig(env);
  const now = Math.floor(controller.scheduledTime / 1000);
  await env.DB.batch([
    pruneEvents(env.DB, now - config.auditRetentionDays * 86400),
    ...pruneCounters(env.DB, now),
  ]);
}

export default { fetch: app.fetch, scheduled } satisfies ExportedHandler<Env>;
