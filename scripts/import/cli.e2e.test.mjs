// End-to-end check of `npm run import` against local D1 (a private --persist-to directory, so that the
// developer's own local database is untouched). Runs in Node, not workerd:
//   npx node --test scripts/import/cli.e2e.test.mjs
// It writes the Netmaker fixture databases of test/fixtures, runs the real command twice, and reads D1 back
// through wrangler. (The logins with the old passwords are shown by test/import.test.ts inside workerd.)
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { writeNetmakerDb } from "../../test/fixtures/netmaker-db.mjs";
import {
  HASHES,
  NETMAKER_JWT_SECRET,
  TOTP_SECRETS,
  keyValueFixture,
  relationalFixture,
} from "../../test/fixtures/netmaker-records.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const TOTP_KEYS = "e2e1:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
const dir = mkdtempSync(join(tmpdir(), "netmaker-import-e2e-"));
const state = join(dir, "d1");
const relationalDb = join(dir, "netmaker-1.5.1.db");
const keyValueDb = join(dir, "netmaker-1.4.db");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", TOTP_KEYS };

function run(command, args) {
  return spawnSync(command, args, { cwd: ROOT, env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
}

function importCommand(...args) {
  return run("npm", ["run", "-s", "import", "--", ...args]);
}

function d1(sql) {
  const result = run(process.execPath, [
    join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
    ...["d1", "execute", "DB", "--local", "--persist-to", state, "--json", "--command", sql],
  ]);
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout)[0].results;
}

const dump = () => ({
  users: d1("SELECT * FROM users ORDER BY username"),
  hosts: d1("SELECT * FROM hosts ORDER BY id"),
  events: d1("SELECT * FROM auth_events ORDER BY id"),
});

before(async () => {
  await writeNetmakerDb(relationalDb, relationalFixture);
  await writeNetmakerDb(keyValueDb, keyValueFixture);
  const migrated = run(process.execPath, [
    join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
    ...["d1", "migrations", "apply", "DB", "--local", "--persist-to", state],
  ]);
  assert.equal(migrated.status, 0, migrated.stderr);
});

after(() => rmSync(dir, { recursive: true, force: true }));

test("prints the Netmaker server's JWT secret and nothing else", () => {
  const result = importCommand(relationalDb, "--print-jwt-secret");
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, `${NETMAKER_JWT_SECRET}\n`);
});

test("a dry run reports and writes nothing", () => {
  const result = importCommand(relationalDb, "--persist-to", state, "--dry-run");
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /users: 6 to import, 0 already in D1, 1 skipped/);
  assert.match(result.stdout, /Dry run: nothing was written; 7 rows would be added\./);
  assert.deepEqual(dump(), { users: [], hosts: [], events: [] });
});

test("imports a 1.5.1 database into local D1, then changes nothing the second time", () => {
  const first = importCommand(relationalDb, "--persist-to", state, "--json");
  assert.equal(first.status, 0, first.stderr);
  const report = JSON.parse(first.stdout);
  assert.equal(report.layout, "relational");
  assert.equal(report.keySource, "the environment");
  assert.deepEqual(report.users, { imported: 6, present: 0, skipped: 1 });
  assert.deepEqual(report.hosts, { imported: 1, present: 0, skipped: 1 });
  assert.equal(report.added, 7);

  const stored = dump();
  assert.deepEqual(
    stored.users.map((u) => [u.username, u.platform_role, u.password_hash.slice(0, 7), u.mfa_enabled]),
    [
      ["ivy", "super-admin", "$2a$05$", 0],
      ["jack", "admin", "$2a$05$", 0],
      ["kate", "platform-user", "$2a$05$", 1],
      ["liam", "service-user", "$2a$05$", 0],
      ["nopass", "platform-user", "", 0],
      ["sso@example.com", "platform-user", "", 0],
    ],
  );
  assert.equal(stored.users.find((u) => u.username === "ivy").password_hash, HASHES.ivy);
  assert.match(stored.users.find((u) => u.username === "kate").totp_secret, /^v1\.e2e1\.[\w-]+\.[\w-]+$/);
  assert.equal(JSON.stringify(stored).includes(TOTP_SECRETS.kate), false);
  assert.equal(stored.hosts.length, 1);
  assert.equal(stored.events.length, 7);

  const second = importCommand(relationalDb, "--persist-to", state);
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, /users: 0 imported, 6 already in D1, 1 skipped/);
  assert.match(second.stdout, /Nothing to change: every user and host that can be imported is already in D1\.\n$/);
  assert.deepEqual(dump(), stored);
});

test("a second Netmaker database beside it: its super admin is skipped, the rest imported", () => {
  const result = importCommand(keyValueDb, "--persist-to", state, "--json");
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout);
  assert.equal(report.layout, "key-value");
  const netadmin = report.outcomes.find((o) => o.name === "netadmin");
  assert.deepEqual(netadmin, {
    kind: "user",
    name: "netadmin",
    action: "skip",
    reason: "D1 already has a super admin (ivy); there is only one",
    notes: [],
  });
  assert.deepEqual(report.users, { imported: 6, present: 0, skipped: 6 });
  assert.deepEqual(d1("SELECT username FROM users WHERE platform_role = 'super-admin'"), [{ username: "ivy" }]);
});

test("says what is wrong with its arguments", () => {
  const missing = importCommand(join(dir, "nope.db"));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /import: no such file: .*nope\.db/);
  const unknown = importCommand(relationalDb, "--force");
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /import: unknown option --force\n\nUsage: npm run import/);
});
