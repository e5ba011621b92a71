// The users table (docs/storage.md). Plain functions over prepared statements.

export type PlatformRole = "super-admin" | "admin" | "platform-user" | "service-user" | "auditor";

export interface UserRow {
  username: string;
  password_hash: string;
  platform_role: PlatformRole;
  account_disabled: number;
  auth_type: string;
  mfa_enabled: number;
  totp_secret: string | null;
  last_totp_step: number | null;
  totp_enrolment: string | null;
  created_at: number;
  updated_at: number;
}

export const isAdminRole = (role: string) => role === "super-admin" || role === "admin";

/** What a response may show of a user: Netmaker's user object, never a hash or a secret. */
export function publicUser(user: UserRow) {
  return {
    username: user.username,
    display_name: "",
    account_disabled: user.account_disabled === 1,
    isadmin: isAdminRole(user.platform_role),
    issuperadmin: user.platform_role === "super-admin",
    platform_role_id: user.platform_role,
    auth_type: user.auth_type,
    is_mfa_enabled: user.mfa_enabled === 1,
    user_group_ids: {},
    network_roles: {},
  };
}

export function selectUser(db: D1Database, username: string) {
  return db.prepare("SELECT * FROM users WHERE username = ?").bind(username);
}

export function findUser(db: D1Database, username: string): Promise<UserRow | null> {
  return selectUser(db, username).first<UserRow>();
}

export async function hasSuperAdmin(db: D1Database): Promise<boolean> {
  return (await db.prepare("SELECT 1 FROM users WHERE platform_role = 'super-admin'").first()) !== null;
}

export function insertUser(
  db: D1Database,
  user: { username: string; passwordHash: string; role: PlatformRole },
  now: number,
) {
  return db
    .prepare(
      `INSERT INTO users (username, password_hash, platform_role, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *`,
    )
    .bind(user.username, user.passwordHash, user.role, now, now);
}

export function setPasswordHash(db: D1Database, username: string, passwordHash: string, now: number) {
  return db
    .prepare("UPDATE users SET password_hash = ?, updated_at = ? WHERE username = ?")
    .bind(passwordHash, now, username);
}

export function setDisabled(db: D1Database, username: string, disabled: boolean, now: number) {
  return db
    .prepare("UPDATE users SET account_disabled = ?, updated_at = ? WHERE username = ? RETURNING *")
    .bind(disabled ? 1 : 0, now, username);
}

export function deleteUser(db: D1Database, username: string) {
  return db.prepare("DELETE FROM users WHERE username = ?").bind(username);
}

/**
 * Turns MFA on with a newly sealed secret, once per enrolment: a second completion of the same enrolment
 * changes nothing (zero rows), which is how concurrent completions are told apart.
 */
export function enableTotp(
  db: D1Database,
  username: string,
  enrolment: { id: string; sealedSecret: string; step: number },
  now: number,
) {
  return db
    .prepare(
      `UPDATE users SET mfa_enabled = 1, totp_secret = ?, last_totp_step = ?, totp_enrolment = ?, updated_at = ?
       WHERE username = ? AND totp_enrolment IS NOT ?`,
    )
    .bind(enrolment.sealedSecret, enrolment.step, enrolment.id, now, username, enrolment.id);
}

export function disableTotp(db: D1Database, username: string, now: number) {
  return db
    .prepare(
      `UPDATE users SET mfa_enabled = 0, totp_secret = NULL, last_totp_step = NULL, updated_at = ?
       WHERE username = ?`,
    )
    .bind(now, username);
}

/**
 * Records a TOTP time step as used, if it is later than the last one used and the pre-auth token (if any)
 * has not let anyone in yet: one statement, so that two requests carrying the same code, or one token
 * carrying two codes, cannot both succeed. Success is `meta.changes === 1`.
 */
export function acceptTotpStep(db: D1Database, username: string, step: number, preAuthJti: string | null) {
  return db
    .prepare(
      `UPDATE users SET last_totp_step = ?1
       WHERE username = ?2 AND mfa_enabled = 1 AND (last_totp_step IS NULL OR last_totp_step < ?1)
         AND NOT EXISTS (SELECT 1 FROM preauth_tokens WHERE jti = ?3 AND used = 1)`,
    )
    .bind(step, username, preAuthJti);
}
