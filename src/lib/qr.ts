// The enrolment QR code as a PNG data URL: uqr lays out the modules, and the PNG is written here with the
// runtime's CompressionStream (zlib) for the image data, as a 1-bit greyscale image.
import { encode } from "uqr";
import { toBase64, utf8 } from "./encoding";

export const QR_IMAGE_SIZE = 200;
const QUIET_ZONE_MODULES = 4;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(utf8.encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function zlib(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Dark modules as a square matrix, `true` for dark, with the quiet zone around it. */
function qrModules(text: string): boolean[][] {
  return encode(text, { ecc: "M", border: QUIET_ZONE_MODULES }).data;
}

export async function qrPng(text: string, size = QR_IMAGE_SIZE): Promise<Uint8Array> {
  const modules = qrModules(text);
  const rowBytes = Math.ceil(size / 8);
  const raw = new Uint8Array((rowBytes + 1) * size); // each row: filter byte 0, then 1 bit a pixel, 1 = white
  for (let y = 0; y < size; y++) {
    const moduleRow = modules[Math.floor((y * modules.length) / size)];
    for (let x = 0; x < size; x++) {
      if (!moduleRow[Math.floor((x * modules.length) / size)]) raw[y * (rowBytes + 1) + 1 + (x >> 3)] |= 0x80 >> (x & 7);
    }
  }
  const header = new Uint8Array(13);
  new DataView(header.buffer).setUint32(0, size);
  new DataView(header.buffer).setUint32(4, size);
  header.set([1, 0, 0, 0, 0], 8); // bit depth 1, greyscale, deflate, adaptive filtering, no interlace
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", await zlib(raw)),
    chunk("IEND", new Uint8Array(0)),
  ];
  const png = new Uint8Array(parts.reduce((length, part) => length + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    png.set(part, offset);
    offset += part.length;
  }
  return png;
}

export async function qrPngDataUrl(text: string): Promise<string> {
  return `data:image/png;base64,${toBase64(await qrPng(text))}`;
}
