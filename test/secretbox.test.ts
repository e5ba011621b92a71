// AES-GCM sealing of TOTP secrets: round trip, key id in the ciphertext, rotation, binding to the user.
import { describe, expect, it } from "vitest";
import { loadKeyRing, openSecret, sealSecret } from "../src/lib/secretbox";

const KEY_A = `a:${btoa(String.fromCharCode(...new Uint8Array(32).fill(0xa1)))}`;
const KEY_B = `b:${btoa(String.fromCharCode(...new Uint8Array(32).fill(0xb2)))}`;
const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/** Replaces one base64url character of the part `index` of a sealed secret with another. */
function tamper(sealed: string, index: number): string {
  const parts = sealed.split(".");
  const part = parts[index];
  parts[index] = (part[0] === "A" ? "B" : "A") + part.slice(1);
  return parts.join(".");
}

describe("sealSecret / openSecret", () => {
  it("opens what it sealed, and the ciphertext shows neither the secret nor its bytes", async () => {
    const ring = await loadKeyRing(KEY_A);
    const sealed = await sealSecret(ring, SECRET, "alice");
    expect(sealed).not.toContain(SECRET);
    expect(await openSecret(ring, sealed, "alice")).toBe(SECRET);
  });

  it("names the key in the ciphertext: v1.<key id>.<iv>.<ciphertext>", async () => {
    const sealed = await sealSecret(await loadKeyRing(`${KEY_B},${KEY_A}`), SECRET, "alice");
    const [version, keyId, iv, ciphertext] = sealed.split(".");
    expect(sealed.split(".")).toHaveLength(4);
    expect([version, keyId]).toEqual(["v1", "b"]);
    expect(iv).toMatch(/^[A-Za-z0-9_-]{16}$/); // 12-byte IV in base64url
    expect(ciphertext).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("uses a fresh IV each time", async () => {
    const ring = await loadKeyRing(KEY_A);
    expect(await sealSecret(ring, SECRET, "alice")).not.toBe(await sealSecret(ring, SECRET, "alice"));
  });

  it("still opens a secret sealed under a key that is no longer the first of the ring", async () => {
    const sealedUnderA = await sealSecret(await loadKeyRing(KEY_A), SECRET, "alice");
    const rotated = await loadKeyRing(`${KEY_B},${KEY_A}`);
    expect(rotated.currentId).toBe("b");
    expect(await openSecret(rotated, sealedUnderA, "alice")).toBe(SECRET);
    // After rotation, new secrets are sealed under the new first key.
    expect((await sealSecret(rotated, SECRET, "alice")).split(".")[1]).toBe("b");
  });

  it("refuses a secret whose key has left the ring", async () => {
    const sealedUnderA = await sealSecret(await loadKeyRing(KEY_A), SECRET, "alice");
    await expect(openSecret(await loadKeyRing(KEY_B), sealedUnderA, "alice")).rejects.toThrow("key 'a'");
  });

  it("refuses to open the secret as another user (the username is associated data)", async () => {
    const ring = await loadKeyRing(KEY_A);
    const sealed = await sealSecret(ring, SECRET, "alice");
    await expect(openSecret(ring, sealed, "bob")).rejects.toThrow();
  });

  it("refuses a tampered IV or ciphertext, and a key id changed to another key of the ring", async () => {
    const ring = await loadKeyRing(`${KEY_A},${KEY_B}`);
    const sealed = await sealSecret(ring, SECRET, "alice");
    await expect(openSecret(ring, tamper(sealed, 2), "alice")).rejects.toThrow();
    await expect(openSecret(ring, tamper(sealed, 3), "alice")).rejects.toThrow();
    await expect(openSecret(ring, sealed.replace(".a.", ".b."), "alice")).rejects.toThrow();
    await expect(openSecret(ring, sealed.replace(/^v1\./, "v2."), "alice")).rejects.toThrow();
    await expect(openSecret(ring, sealed.split(".").slice(0, 3).join("."), "alice")).rejects.toThrow();
  });
});

describe("loadKeyRing", () => {
  it("refuses a key that is not 32 bytes, an entry without an id, and an empty ring", async () => {
    await expect(loadKeyRing(`short:${btoa("sixteen bytes!!!")}`)).rejects.toThrow("TOTP_KEYS");
    await expect(loadKeyRing(KEY_A.slice(1))).rejects.toThrow("TOTP_KEYS");
    await expect(loadKeyRing(" , ")).rejects.toThrow("TOTP_KEYS is empty");
  });
});
