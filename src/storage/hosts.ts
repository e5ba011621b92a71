// The hosts table (docs/storage.md).

export interface HostRow {
  id: string;
  name: string;
  password_hash: string;
  created_at: number;
  updated_at: number;
}

export function publicHost(host: HostRow) {
  return { id: host.id, name: host.name, created_at: new Date(host.created_at * 1000).toISOString() };
}

export function selectHost(db: D1Database, id: string) {
  return db.prepare("SELECT * FROM hosts WHERE id = ?").bind(id);
}

export async function listHosts(db: D1Database): Promise<HostRow[]> {
  return (await db.prepare("SELECT * FROM hosts ORDER BY created_at, id").all<HostRow>()).results;
}

export function insertHost(db: D1Database, host: { id: string; name: string; passwordHash: string }, now: number) {
  return db
    .prepare(
      `INSERT INTO hosts (id, name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING RETURNING *`,
    )
    .bind(host.id, host.name, host.passwordHash, now, now);
}

export function setHostPasswordHash(db: D1Database, id: string, passwordHash: string, now: number) {
  return db.prepare("UPDATE hosts SET password_hash = ?, updated_at = ? WHERE id = ?").bind(passwordHash, now, id);
}

export function deleteHost(db: D1Database, id: string) {
  return db.prepare("DELETE FROM hosts WHERE id = ?").bind(id);
}
