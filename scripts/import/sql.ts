// The import as SQL statements for D1, one per line, safe to run any number of times: every insert is
// `ON CONFLICT DO NOTHING`, so a username or host id already in D1 is left as it is, and so is a second super
// admin (the unique index users_one_super_admin refuses it). An audit event follows each insert and is written
// only when that insert changed a row, so a second run writes nothing at all.
import type { HostRecord, ImportPlan, UserRecord } from "./records";

export const IMPORT_ACTOR = "netmaker-import";

/** A SQL literal: text quoted with '' doubled, integers as they are, null as NULL. */
export function literal(value: string | number | boolean | null): string {
  if (value === null) return "NULL";
  if (typeof value === "boolean") return value ? "1" : "0";
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
    return String(value);
  }
  if (/[\x00\r\n]/.test(value)) throw new Error("text with a NUL or line break cannot go into the import file");
  return `'${value.replace(/'/g, "''")}'`;
}

const values = (row: (string | number | boolean | null)[]) => `(${row.map(literal).join(", ")})`;

function userInsert(user: UserRecord): string {
  return (
    "INSERT INTO users (username, password_hash, platform_role, account_disabled, auth_type, mfa_enabled, totp_secret, created_at, updated_at) VALUES " +
    values([
      user.username,
      user.passwordHash,
      user.role,
      user.accountDisabled,
      user.authType,
      user.mfaEnabled,
      user.totpSecret,
      user.createdAt,
      user.updatedAt,
    ]) +
    " ON CONFLICT DO NOTHING;"
  );
}

function hostInsert(host: HostRecord): string {
  return (
    "INSERT INTO hosts (id, name, password_hash, created_at, updated_at) VALUES " +
    values([host.id, host.name, host.passwordHash, host.createdAt, host.updatedAt]) +
    " ON CONFLICT DO NOTHING;"
  );
}

function eventIfInserted(kind: string, subject: string, reason: string, now: number): string {
  return (
    "INSERT INTO auth_events (at, kind, subject, actor, ip, outcome, reason) SELECT " +
    [now, kind, subject, IMPORT_ACTOR, null, "success", reason].map(literal).join(", ") +
    " WHERE changes() > 0;"
  );
}

export function importStatements(plan: ImportPlan, now: number): string[] {
  const statements: string[] = [];
  for (const user of plan.users) {
    statements.push(userInsert(user), eventIfInserted("import.user", user.username, `role ${user.role}`, now));
  }
  for (const host of plan.hosts) {
    statements.push(hostInsert(host), eventIfInserted("import.host", host.id, "imported from Netmaker", now));
  }
  return statements;
}

/** The query whose rows make ExistingState: what D1 holds before (and after) the import. */
export const EXISTING_STATE_QUERY =
  "SELECT 'user' AS kind, username AS name, platform_role AS role FROM users UNION ALL SELECT 'host', id, NULL FROM hosts";
