// Request bodies are JSON whatever the Content-Type says (API.md §1). This middleware is the one place
// that reads them: it enforces the size limit, parses, refuses non-objects, and hands the validator a
// request that declares JSON, so that zod validation runs for every body.
import type { MiddlewareHandler } from "hono";
import { ApiError, type AppEnv } from "./http";

const invalidBody = (why: string) => new ApiError(400, `invalid request body: ${why}`);

async function readLimited(request: Request, limit: number): Promise<string> {
  const tooLarge = () => new ApiError(413, `request body too large: the limit is ${limit} bytes`);
  if (Number(request.headers.get("Content-Length")) > limit) throw tooLarge();
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw invalidBody("not valid UTF-8");
  }
}

export const jsonBodyReader: MiddlewareHandler<AppEnv> = async (c, next) => {
  const text = await readLimited(c.req.raw, c.get("config").maxBodyBytes);
  if (text.trim() === "") throw invalidBody("the body is empty");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalidBody("not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw invalidBody("expected a JSON object");
  }
  const headers = new Headers(c.req.raw.headers);
  headers.set("Content-Type", "application/json");
  c.req.raw = new Request(c.req.raw.url, { method: c.req.method, headers, body: text });
  await next();
};
