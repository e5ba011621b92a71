// Reads the users and hosts of a Netmaker SQLite database, in either storage layout Netmaker has used:
//   key-value (1.4 and earlier, still present but stale after the 1.5.1 migration): tables `users` and
//     `hosts`, columns `key` and `value`, one JSON document per row (models.User / models.Host);
//   relational (1.5.1 and later, GORM): tables `users_v1` and `hosts_v1` (schema.User / schema.Host), one
//     column per field, booleans as 0/1, times as Go's "2006-01-02 15:04:05.999999999-07:00" text.
// The 1.5.1 migration copies the key-value rows into the new tables, records the job `migration-v1.5.1` in
// `jobs`, and leaves the old tables behind; so once that job is recorded, only the new tables are current.
// Pure: the database comes in as anything that can run a query (node:sqlite in the CLI, plain rows in tests).

export interface SqlSource {
  all(sql: string): Record<string, unknown>[];
}

export type Layout = "key-value" | "relational";
export const LAYOUT_NAMES: Record<Layout, string> = {
  "key-value": "key-value tables users/hosts (Netmaker 1.4 and earlier)",
  relational: "relational tables users_v1/hosts_v1 (Netmaker 1.5.1 and later)",
};

/** A Netmaker user as stored, field names normalised; absent fields stay undefined. */
export interface NetmakerUser {
  /** Where the record came from, for the report: "users_v1 row 3", "users key 'bob'". */
  source: string;
  username?: string;
  password?: string;
  platformRoleId?: string;
  isSuperAdmin?: boolean;
  isAdmin?: boolean;
  accountDisabled?: boolean;
  authType?: string;
  externalIdentityProviderId?: string;
  isMfaEnabled?: boolean;
  totpSecret?: string;
  createdAt?: number;
  updatedAt?: number;
  /** Set when the record could not be read at all (not JSON, not an object). */
  problem?: string;
}

export interface NetmakerHost {
  source: string;
  id?: string;
  name?: string;
  hostPass?: string;
  createdAt?: number;
  updatedAt?: number;
  problem?: string;
}

export interface NetmakerData {
  layout: Layout;
  users: NetmakerUser[];
  hosts: NetmakerHost[];
  /** The server's HS256 key (table `serverconf`, key `nm-jwt-secret`, JSON `{"privatekey": ...}`). */
  jwtSecret?: string;
}

export const MIGRATION_JOB = "migration-v1.5.1";

export function readNetmaker(db: SqlSource): NetmakerData {
  const tables = new Set(db.all("SELECT name FROM sqlite_master WHERE type = 'table'").map((row) => String(row.name)));
  const layout = detectLayout(db, tables);
  const data: NetmakerData =
    layout === "relational"
      ? {
          layout,
          users: tables.has("users_v1") ? db.all("SELECT * FROM users_v1 ORDER BY rowid").map(relationalUser) : [],
          hosts: tables.has("hosts_v1") ? db.all("SELECT * FROM hosts_v1 ORDER BY rowid").map(relationalHost) : [],
        }
      : {
          layout,
          users: keyValueRows(db, tables, "users").map(keyValueUser),
          hosts: keyValueRows(db, tables, "hosts").map(keyValueHost),
        };
  const jwtSecret = readJwtSecret(db, tables);
  return jwtSecret ? { ...data, jwtSecret } : data;
}

function detectLayout(db: SqlSource, tables: Set<string>): Layout {
  if (tables.has("jobs") && db.all(`SELECT 1 FROM jobs WHERE id = '${MIGRATION_JOB}'`).length > 0) return "relational";
  if (tables.has("users_v1") && (!tables.has("users") || db.all("SELECT 1 FROM users_v1 LIMIT 1").length > 0)) {
    return "relational";
  }
  if (tables.has("users")) return "key-value";
  throw new Error("not a Netmaker database: it has neither a users table (1.4 and earlier) nor users_v1 (1.5.1 and later)");
}

interface KeyValueRow {
  key: string;
  value: unknown;
}

function keyValueRows(db: SqlSource, tables: Set<string>, table: "users" | "hosts"): KeyValueRow[] {
  if (!tables.has(table)) return [];
  return db.all(`SELECT key, value FROM ${table} ORDER BY key`).map((row) => ({ key: String(row.key), value: row.value }));
}

function parseDocument(row: KeyValueRow): Record<string, unknown> | string {
  if (typeof row.value !== "string") return "the value is not JSON text";
  try {
    const document = JSON.parse(row.value);
    if (document && typeof document === "object" && !Array.isArray(document)) return document as Record<string, unknown>;
    return "the value is not a JSON object";
  } catch {
    return "the value is not valid JSON";
  }
}

function keyValueUser(row: KeyValueRow): NetmakerUser {
  const source = `users key '${row.key}'`;
  const doc = parseDocument(row);
  if (typeof doc === "string") return { source, username: row.key, problem: doc };
  return withoutUndefined({
    source,
    username: text(doc.username) || row.key, // the key is the username
    password: text(doc.password),
    platformRoleId: text(doc.platform_role_id),
    isSuperAdmin: flag(doc.issuperadmin),
    isAdmin: flag(doc.isadmin),
    accountDisabled: flag(doc.account_disabled),
    authType: text(doc.auth_type),
    externalIdentityProviderId: text(doc.external_identity_provider_id),
    isMfaEnabled: flag(doc.is_mfa_enabled),
    totpSecret: text(doc.totp_secret),
    createdAt: time(doc.created_at),
    updatedAt: time(doc.updated_at),
  });
}

function keyValueHost(row: KeyValueRow): NetmakerHost {
  const source = `hosts key '${row.key}'`;
  const doc = parseDocument(row);
  if (typeof doc === "string") return { source, id: row.key, problem: doc };
  return withoutUndefined({
    source,
    id: text(doc.id) || row.key, // the key is the host id
    name: text(doc.name),
    hostPass: text(doc.hostpass),
    createdAt: time(doc.created_at),
    updatedAt: time(doc.updated_at),
  });
}

function relationalUser(row: Record<string, unknown>, index: number): NetmakerUser {
  return withoutUndefined({
    source: `users_v1 row ${index + 1}`,
    username: text(row.username),
    password: text(row.password),
    platformRoleId: text(row.platform_role_id),
    accountDisabled: flag(row.account_disabled),
    authType: text(row.auth_type),
    externalIdentityProviderId: text(row.external_identity_provider_id),
    isMfaEnabled: flag(row.is_mfa_enabled),
    totpSecret: text(row.totp_secret),
    createdAt: time(row.created_at),
    updatedAt: time(row.updated_at),
  });
}

function relationalHost(row: Record<string, unknown>, index: number): NetmakerHost {
  return withoutUndefined({
    source: `hosts_v1 row ${index + 1}`,
    id: text(row.id),
    name: text(row.name),
    hostPass: text(row.host_pass),
    createdAt: time(row.created_at),
    updatedAt: time(row.updated_at),
  });
}

function readJwtSecret(db: SqlSource, tables: Set<string>): string | undefined {
  if (!tables.has("serverconf")) return undefined;
  const [row] = db.all("SELECT value FROM serverconf WHERE key = 'nm-jwt-secret'");
  const doc = row ? parseDocument({ key: "nm-jwt-secret", value: row.value }) : undefined;
  return doc && typeof doc === "object" ? text(doc.privatekey) : undefined;
}

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

/** JSON booleans in the key-value layout, 0/1 (SQLite "numeric") in the relational one. */
function flag(value: unknown): boolean | undefined {
  if (value === true || value === 1 || value === 1n || value === "1" || value === "true") return true;
  if (value === false || value === 0 || value === 0n || value === "0" || value === "false") return false;
  return undefined;
}

/**
 * Unix seconds from RFC 3339 (JSON) or Go's SQLite text form; undefined for anything else, and for Go's zero
 * time ("0001-01-01T00:00:00Z"), which Netmaker writes for a time it never set.
 */
export function time(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?$/.exec(value.trim());
  if (!match) return undefined;
  const [, date, clock, fraction = "", zone = "Z"] = match;
  const offset = zone === "Z" ? "Z" : zone.includes(":") ? zone : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const millis = Date.parse(`${date}T${clock}${fraction.slice(0, 4)}${offset}`);
  if (Number.isNaN(millis) || millis <= 0) return undefined;
  return Math.floor(millis / 1000);
}

function withoutUndefined<T extends object>(record: T): T {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as T;
}
