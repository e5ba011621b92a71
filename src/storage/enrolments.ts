// Pending TOTP enrolments in KV (docs/storage.md): one per user, replaced by a new init-totp, gone after
// completion or after its TTL. The secret in it is sealed like the one in D1; the key URI is not kept,
// since it holds the secret in plain text (complete-totp rebuilds it from the opened secret).

export interface PendingEnrolment {
  id: string;
  sealedSecret: string;
}

const key = (username: string) => `totp-enrolment:${username}`;

export function savePendingEnrolment(kv: KVNamespace, username: string, enrolment: PendingEnrolment, ttl: number) {
  return kv.put(key(username), JSON.stringify(enrolment), { expirationTtl: ttl });
}

export async function findPendingEnrolment(kv: KVNamespace, username: string): Promise<PendingEnrolment | null> {
  return kv.get<PendingEnrolment>(key(username), "json");
}

/**
 * Deletes the pending entry once a D1 change has committed, without turning that answer into a 500: an entry
 * a failing KV leaves behind can only be completed by its own user, and expires with its TTL.
 */
export async function discardPendingEnrolment(kv: KVNamespace, username: string): Promise<void> {
  try {
    await kv.delete(key(username));
  } catch (error) {
    console.error(`pending enrolment of ${username} not deleted, it expires with its TTL:`, error);
  }
}
