import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Tests run inside workerd against local D1 and KV, with the real migrations and test-only secrets.
export default defineConfig({
  plugins: [
    cloudflareTest(async () => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          JWT_SECRET: "test-jwt-secret-0123456789abcdef0123456789abcdef",
          TOTP_KEYS: "test2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=,test1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
          HOST_KEY: "test-host-key-0123456789abcdef0123456789abcdef",
          IP_THROTTLE: "off",
          TEST_MIGRATIONS: await readD1Migrations("./migrations"),
        },
      },
    })),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/setup.ts"],
    globalSetup: ["./test/import.global-setup.mjs"], // Node side: builds the Netmaker fixture databases
  },
});
