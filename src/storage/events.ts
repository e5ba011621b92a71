// The audit trail (docs/storage.md): one row per login success or failure, lockout, enrolment and admin change.

export type Outcome = "success" | "failure" | "locked";

export interface AuthEvent {
  kind: string;
  subject: string;
  outcome: Outcome;
  reason?: string;
  actor?: string;
  ip?: string;
}

export interface AuthEventRow extends Required<Omit<AuthEvent, "actor" | "reason" | "ip">> {
  id: number;
  at: number;
  actor: string | null;
  reason: string | null;
  ip: string | null;
}

const INSERT = "INSERT INTO auth_events (at, kind, subject, actor, ip, outcome, reason) SELECT ?, ?, ?, ?, ?, ?, ?";

export function insertEvent(db: D1Database, event: AuthEvent, now: number) {
  return bindEvent(db.prepare(INSERT), event, now);
}

/**
 * Records the event only if the statement just before it in the same batch changed a row, so that an
 * insert that conflicted or a delete that found nothing leaves no event behind.
 */
export function insertEventIfChanged(db: D1Database, event: AuthEvent, now: number) {
  return bindEvent(db.prepare(`${INSERT} WHERE changes() > 0`), event, now);
}

function bindEvent(statement: D1PreparedStatement, event: AuthEvent, now: number) {
  return statement.bind(now, event.kind, event.subject, event.actor ?? null, event.ip ?? null, event.outcome, event.reason ?? null);
}

/** Newest first; `before` is the id of the last event of the previous page. */
export async function listEvents(db: D1Database, limit: number, before?: number): Promise<AuthEventRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM auth_events WHERE id < ? ORDER BY id DESC LIMIT ?")
    .bind(before ?? Number.MAX_SAFE_INTEGER, limit)
    .all<AuthEventRow>();
  return results;
}

export function pruneEvents(db: D1Database, olderThan: number) {
  return db.prepare("DELETE FROM auth_events WHERE at < ?").bind(olderThan);
}
