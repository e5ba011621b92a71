// Test-only image reading for the QR tests: PNG bytes decoded by fast-png (independent of src/lib/qr.ts),
// turned into the RGBA pixels that jsQR reads, and the QR's error correction level read off those pixels.
import { decode, type DecodedPng } from "fast-png";
import jsQR, { type QRCode } from "jsqr";

export interface Rgba {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

/** The bytes of a `data:image/png;base64,...` URL. */
export function pngFromDataUrl(dataUrl: string): Uint8Array {
  const prefix = "data:image/png;base64,";
  if (!dataUrl.startsWith(prefix)) throw new Error("not a PNG data URL");
  return Uint8Array.from(atob(dataUrl.slice(prefix.length)), (char) => char.charCodeAt(0));
}

/** Decodes a greyscale or RGB(A) PNG of any bit depth up to 8 into RGBA. */
export function decodePngToRgba(bytes: Uint8Array): Rgba & { png: DecodedPng } {
  const png = decode(bytes, { checkCrc: true });
  if (png.palette || png.depth > 8) throw new Error(`unsupported PNG: depth ${png.depth}, palette ${!!png.palette}`);
  const { width, height, channels, depth } = png;
  const max = (1 << depth) - 1;
  // Rows of packed samples: below 8 bits several samples share a byte, the first in the high bits.
  const rowBytes = Math.ceil((width * channels * depth) / 8);
  const sample = (x: number, y: number, channel: number) => {
    const bit = (x * channels + channel) * depth;
    const byte = png.data[y * rowBytes + (bit >> 3)];
    return ((byte >> (8 - depth - (bit & 7))) & max) * (255 / max);
  };
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const grey = channels < 3;
      const out = (y * width + x) * 4;
      data[out] = sample(x, y, 0);
      data[out + 1] = sample(x, y, grey ? 0 : 1);
      data[out + 2] = sample(x, y, grey ? 0 : 2);
      data[out + 3] = channels === 2 || channels === 4 ? sample(x, y, channels - 1) : 255;
    }
  }
  return { width, height, data, png };
}

export function scanQr(image: Rgba): QRCode | null {
  return jsQR(image.data, image.width, image.height);
}

const FORMAT_MASK = 0x5412;
const EC_LEVELS = ["M", "L", "H", "Q"]; // ISO/IEC 18004 format bits 00, 01, 10, 11

/**
 * The error correction level, from the two top format bits, read in both of the symbol's copies. Module
 * centres are placed from the finder pattern centres jsQR found, which are the centres of modules 3 and
 * size - 4.
 */
export function errorCorrectionLevel(image: Rgba, code: QRCode): string {
  const size = 17 + 4 * code.version;
  const { topLeftFinderPattern: tl, topRightFinderPattern: tr, bottomLeftFinderPattern: bl } = code.location;
  const dark = (mx: number, my: number) => {
    const u = (mx - 3) / (size - 7);
    const v = (my - 3) / (size - 7);
    const x = Math.round(tl.x + u * (tr.x - tl.x) + v * (bl.x - tl.x));
    const y = Math.round(tl.y + u * (tr.y - tl.y) + v * (bl.y - tl.y));
    return image.data[(y * image.width + x) * 4] < 128;
  };
  const level = (bit14: boolean, bit13: boolean) => {
    const bits = ((bit14 ? 1 : 0) << 14) | ((bit13 ? 1 : 0) << 13);
    return EC_LEVELS[((bits ^ FORMAT_MASK) >> 13) & 3];
  };
  const first = level(dark(0, 8), dark(1, 8));
  const second = level(dark(8, size - 1), dark(8, size - 2));
  if (first !== second) throw new Error(`format copies disagree: ${first} and ${second}`);
  return first;
}
