// First-run setup for `npm run dev`: writes local secrets into the git-ignored .dev.vars once.
// Production secrets are set with `wrangler secret put` (README.md); these never leave this machine.
import { existsSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";

const DEV_VARS = new URL("../.dev.vars", import.meta.url);

if (existsSync(DEV_VARS)) {
  console.log(".dev.vars exists; keeping its secrets");
} else {
  const secrets = {
    JWT_SECRET: randomBytes(48).toString("base64url"),
    TOTP_KEYS: `dev1:${randomBytes(32).toString("base64")}`,
    HOST_KEY: randomBytes(32).toString("base64url"),
  };
  const lines = Object.entries(secrets).map(([name, value]) => `${name}="${value}"`);
  writeFileSync(DEV_VARS, `# Local development secrets, made by scripts/dev-setup.mjs. Not for production.\n${lines.join("\n")}\n`, {
    mode: 0o600,
  });
  console.log("wrote .dev.vars with fresh local secrets (JWT_SECRET, TOTP_KEYS, HOST_KEY)");
}
