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

  for (const username of usernames) {
    it(`has a light quiet zone of 4 modules on every side for ${username}`, async () => {
      const image = decodePngToRgba(await qrPng(otpAuthUrl(username, SECRET)));
      const code = scanQr(image)!;
      expect(code).not.toBeNull();
      // The symbol's modules plus the 4-module quiet zone on each side span the 200-pixel image.
      const totalModules = 17 + 4 * code.version + 8;
      const band = Math.floor((4 * 200) / totalModules);
      expect(band).toBeGreaterThan(0);
      const darkInBand: [number, number][] = [];
      for (let y = 0; y < 200; y++) {
        for (let x = 0; x < 200; x++) {
          const inBand = x < band || y < band || x >= 200 - band || y >= 200 - band;
          if (inBand && image.data[(y * 200 + x) * 4] < 128) darkInBand.push([x, y]);
        }
      }
      expect(darkInBand).toEqual([]);
    });
  }
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
