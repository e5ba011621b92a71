// AES-256-GCM for TOTP secrets at rest. The key ring comes from the TOTP_KEYS secret,
// "<id>:<base64 32-byte key>[,<id>:<key>...]": the first key encrypts, every key decrypts, and each
// ciphertext names its key ("v1.<id>.<iv>.<ciphertext>"), so keys can be rotated without re-encrypting
// everything at once. The username is bound in as associated data: a ciphertext copied to another
// user's row does not decrypt.
import { fromBase64, fromBase64Url, randomBytes, toBase64Url, utf8 } from "./encoding";

export interface KeyRing {
  currentId: string;
  keys: Map<string, CryptoKey>;
}

const keyRings = new Map<string, Promise<KeyRing>>();

export function loadKeyRing(spec: string): Promise<KeyRing> {
  let ring = keyRings.get(spec);
  if (!ring) {
    ring = parseKeyRing(spec);
    keyRings.set(spec, ring);
  }
  return ring;
}

async function parseKeyRing(spec: string): Promise<KeyRing> {
  const keys = new Map<string, CryptoKey>();
  let currentId = "";
  for (const entry of spec.split(",").map((part) => part.trim()).filter(Boolean)) {
    const separator = entry.indexOf(":");
    const id = entry.slice(0, separator);
    const raw = fromBase64(entry.slice(separator + 1));
    if (separator < 1 || !/^[A-Za-z0-9_-]+$/.test(id) || raw.length !== 32) {
      throw new Error("TOTP_KEYS must be '<id>:<base64 of 32 bytes>' entries separated by commas");
    }
    keys.set(id, await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]));
    currentId ||= id;
  }
  if (!currentId) throw new Error("TOTP_KEYS is empty");
  return { currentId, keys };
}

export async function sealSecret(ring: KeyRing, plaintext: string, boundTo: string): Promise<string> {
  const iv = randomBytes(12);
  const key = ring.keys.get(ring.currentId)!;
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: utf8.encode(boundTo) },
    key,
    utf8.encode(plaintext),
  );
  return ["v1", ring.currentId, toBase64Url(iv), toBase64Url(new Uint8Array(sealed))].join(".");
}

export async function openSecret(ring: KeyRing, sealed: string, boundTo: string): Promise<string> {
  const [version, id, iv, ciphertext] = sealed.split(".");
  const key = ring.keys.get(id);
  if (version !== "v1" || !key || !iv || !ciphertext) throw new Error(`cannot open secret sealed with key '${id}'`);
  const plaintext = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: fromBase64Url(iv), additionalData: utf8.encode(boundTo) },
    key,
    fromBase64Url(ciphertext),
  );
  return new TextDecoder().decode(plaintext);
}
