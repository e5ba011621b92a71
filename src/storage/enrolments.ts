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

export function deletePendingEnrolment(kv: KVNamespace, username: string) {
  return kv.delete(key(username));
}
