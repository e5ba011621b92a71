// Lockout counters (docs/storage.md). An attempt is counted *before* the password or code is checked,
// in one atomic upsert, so that a burst of parallel guesses cannot slip past the limit; success clears
// the count, and a right password with MFA still to come gives its attempt back.

export const userSubject = (username: string) => `user:${username}`;
export const hostSubject = (id: string) => `host:${id}`;

export interface Attempt {
  failures: number;
  locked_until: number;
}

// Shared by the counting statements: one more failure, a lock once past the limit, and a fresh count once a
// lock has run out. ?2 = now, ?3 = the limit, ?4 = the lock's length in seconds.
const COUNT_ONE_MORE = `ON CONFLICT (subject) DO UPDATE SET
         failures = CASE WHEN locked_until > 0 AND locked_until <= ?2 THEN 1 ELSE failures + 1 END,
         locked_until = CASE
           WHEN locked_until > 0 AND locked_until <= ?2 THEN 0
           WHEN locked_until = 0 AND failures + 1 > ?3 THEN ?2 + ?4
           ELSE locked_until END,
         updated_at = ?2
       RETURNING failures, locked_until`;

/** Counts one attempt; the returned row says whether the subject is locked (locked_until > now). */
export function countAttempt(db: D1Database, subject: string, now: number, maxFailures: number, lockSeconds: number) {
  return db
    .prepare(
      `INSERT INTO login_failures (subject, failures, locked_until, updated_at)
       VALUES (?1, 1, CASE WHEN 1 > ?3 THEN ?2 + ?4 ELSE 0 END, ?2)
       ${COUNT_ONE_MORE}`,
    )
    .bind(subject, now, maxFailures, lockSeconds);
}

/**
 * countAttempt for a host login, counted only if the host exists (an unknown id leaves no row), so that
 * it can share one round trip with reading the host.
 */
export function countHostAttempt(db: D1Database, hostId: string, now: number, maxFailures: number, lockSeconds: number) {
  return db
    .prepare(
      `INSERT INTO login_failures (subject, failures, locked_until, updated_at)
       SELECT ?1, 1, CASE WHEN 1 > ?3 THEN ?2 + ?4 ELSE 0 END, ?2
       WHERE EXISTS (SELECT 1 FROM hosts WHERE id = ?5)
       ${COUNT_ONE_MORE}`,
    )
    .bind(hostSubject(hostId), now, maxFailures, lockSeconds, hostId);
}

export function clearAttempts(db: D1Database, subject: string) {
  return db.prepare("DELETE FROM login_failures WHERE subject = ?").bind(subject);
}

/** Gives back an attempt counted by countAttempt, for a right password whose second factor is pending. */
export function returnAttempt(db: D1Database, subject: string) {
  return db
    .prepare("UPDATE login_failures SET failures = max(failures - 1, 0) WHERE subject = ? AND locked_until = 0")
    .bind(subject);
}

export function isLocked(attempt: Attempt | null, now: number): attempt is Attempt {
  return attempt !== null && attempt.locked_until > now;
}

/**
 * Codes tried with a pre-auth token: counts one before the code is checked, like countAttempt, and says how
 * many there have been. Its one success uses the token up, so the count is the wrong codes that matter.
 */
export function countPreAuthAttempt(db: D1Database, jti: string, expiresAt: number) {
  return db
    .prepare(
      `INSERT INTO preauth_tokens (jti, failures, expires_at) VALUES (?, 1, ?)
       ON CONFLICT (jti) DO UPDATE SET failures = failures + 1 RETURNING failures`,
    )
    .bind(jti, expiresAt);
}

/** A pre-auth token that has let a user in is used up. */
export function usePreAuthToken(db: D1Database, jti: string, expiresAt: number) {
  // Batched right after acceptTotpStep, and only if that accepted the code (changes() is its row count).
  return db
    .prepare(
      `INSERT INTO preauth_tokens (jti, used, expires_at) SELECT ?, 1, ? WHERE changes() > 0
       ON CONFLICT (jti) DO UPDATE SET used = 1`,
    )
    .bind(jti, expiresAt);
}

export interface PreAuthTokenState {
  failures: number;
  used: number;
}

export function selectPreAuthToken(db: D1Database, jti: string) {
  return db.prepare("SELECT failures, used FROM preauth_tokens WHERE jti = ?").bind(jti);
}

/** Used up, or past its limit of codes; a token that has tried nothing has no row and is live. */
export function isPreAuthTokenDead(state: PreAuthTokenState | undefined, maxFailures: number): boolean {
  return state !== undefined && (state.used === 1 || state.failures >= maxFailures);
}

// A count of failures that has not grown for a day is forgotten; the daily cron cannot then be waited out to
// get a fresh set of guesses more than once a day.
export const COUNTER_IDLE_SECONDS = 86_400;

/** For the cron handler: counters idle for a day that lock nothing, and pre-auth tokens past their expiry. */
export function pruneCounters(db: D1Database, now: number) {
  return [
    db.prepare("DELETE FROM login_failures WHERE locked_until <= ? AND updated_at < ?").bind(now, now - COUNTER_IDLE_SECONDS),
    db.prepare("DELETE FROM preauth_tokens WHERE expires_at < ?").bind(now),
  ];
}
