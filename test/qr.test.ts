// The QR code of init-totp, read back by an independent PNG decoder (fast-png) and QR decoder (jsQR).
import { describe, expect, it } from "vitest";
import { qrPng } from "../src/lib/qr";
import { otpAuthUrl } from "../src/lib/totp";
import { createSuperAdmin, expectEnvelope, post } from "./helpers";
import { decodePngToRgba, errorCorrectionLevel, pngFromDataUrl, scanQr } from "./png";

const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

async function expectScansTo(png: Uint8Array, text: string) {
  expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
  const image = decodePngToRgba(png);
  expect([image.width, image.height]).toEqual([200, 200]);
  const code = scanQr(image);
  expect(code?.data).toBe(text);
  expect(errorCorrectionLevel(image, code!)).toBe("M");
}

describe("qrPng", () => {
  const usernames = ["alice", "alice.smith@example.com", "a-rather-long-name.of-a-person@subdomain.example-company.com"];
  for (const username of usernames) {
    it(`scans back to the exact key URI of ${username}`, async () => {
      const url = otpAuthUrl(username, SECRET);
      await expectScansTo(await qrPng(url), url);
    });
  }

  it("has a light quiet zone around the symbol", async () => {
    const image = decodePngToRgba(await qrPng(otpAuthUrl("alice", SECRET)));
    const edge = [0, 199].flatMap((fixed) => Array.from({ length: 200 }, (_, i) => [[fixed, i], [i, fixed]]).flat());
    expect(edge.every(([x, y]) => image.data[(y * 200 + x) * 4] === 255)).toBe(true);
  });
});

describe("init-totp qr_code", () => {
  it("is a PNG data URL that scans back to exactly otp_auth_url", async () => {
    const admin = await createSuperAdmin();
    const response = await post("/api/users/admin/auth/init-totp", { token: admin });
    const payload = await expectEnvelope(response, 200, "totp setup initiated");
    expect(payload.qr_code).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
    await expectScansTo(pngFromDataUrl(payload.qr_code), payload.otp_auth_url);
  });
});
