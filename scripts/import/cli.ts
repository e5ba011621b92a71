// `npm run import -- <netmaker.db> [options]`: reads a Netmaker SQLite database with node:sqlite, plans the
// import against what D1 already holds, runs the SQL with `wrangler d1 execute`, and reports. The npm script
// bundles this file with esbuild (wrangler's own) and runs it on the project's Node 22.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { loadKeyRing, type KeyRing } from "../../src/lib/secretbox";
import { ArgsError, devVarsValue, parseArgs, USAGE, type ImportArgs } from "./args";
import { readNetmaker, type NetmakerData } from "./netmaker";
import { existingState, planImport, settleOutcomes, type ExistingState } from "./records";
import { buildReport, formatReport } from "./report";
import { EXISTING_STATE_QUERY, importStatements } from "./sql";

function readDatabase(path: string): NetmakerData {
  if (!existsSync(path)) throw new ArgsError(`no such file: ${path}`);
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return readNetmaker({ all: (sql) => db.prepare(sql).all() as Record<string, unknown>[] });
  } finally {
    db.close();
  }
}

/** TOTP_KEYS from the environment; for a local import, from .dev.vars when the environment has none. */
function findKeyRing(args: ImportArgs): Promise<{ ring: KeyRing; source: string } | null> {
  if (process.env.TOTP_KEYS) return loadKeyRing(process.env.TOTP_KEYS).then((ring) => ({ ring, source: "the environment" }));
  if (args.remote) return Promise.resolve(null); // local development keys must never seal production secrets
  const file = args.env && existsSync(`.dev.vars.${args.env}`) ? `.dev.vars.${args.env}` : ".dev.vars";
  const value = existsSync(file) ? devVarsValue(readFileSync(file, "utf8"), "TOTP_KEYS") : undefined;
  return value ? loadKeyRing(value).then((ring) => ({ ring, source: file })) : Promise.resolve(null);
}

function wrangler(args: ImportArgs, extra: string[]): string {
  const bin = join(createRequire(import.meta.url).resolve("wrangler/package.json"), "..", "bin", "wrangler.js");
  const target = args.remote ? ["--remote"] : ["--local", ...(args.persistTo ? ["--persist-to", args.persistTo] : [])];
  const options = [...(args.env ? ["--env", args.env] : []), ...(args.config ? ["--config", args.config] : [])];
  const command = ["d1", "execute", args.database, ...target, ...options, ...extra];
  const run = spawnSync(process.execPath, [bin, ...command], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (run.status !== 0) {
    let output = `${run.stdout ?? ""}${run.stderr ?? ""}`.trim();
    try {
      output = JSON.parse(run.stdout).error.text ?? output; // --json puts the error there
    } catch {}
    const hint = /no such table/.test(output) ? `\n(apply the migrations first: wrangler d1 migrations apply ${args.database}${args.remote ? " --remote" : " --local"})` : "";
    throw new Error(`wrangler ${command.join(" ")} failed:\n${output}${hint}`);
  }
  return run.stdout;
}

function queryExisting(args: ImportArgs): ExistingState {
  const output = wrangler(args, ["--json", "--command", EXISTING_STATE_QUERY]);
  const [result] = JSON.parse(output) as { results: { kind: string; name: string; role: string | null }[] }[];
  return existingState(result.results);
}

async function main(argv: string[]): Promise<void> {
  const parsed = parseArgs(argv);
  if (parsed === "help") return void console.log(USAGE);
  const args = parsed;
  const data = readDatabase(args.databasePath);
  if (args.printJwtSecret) {
    if (!data.jwtSecret) throw new Error("the database has no JWT secret (serverconf key nm-jwt-secret)");
    return void process.stdout.write(`${data.jwtSecret}\n`);
  }

  const now = Math.floor(Date.now() / 1000);
  const keys = await findKeyRing(args);
  const before = queryExisting(args);
  const plan = await planImport(data, { ring: keys?.ring ?? null, now, existing: before });
  const statements = importStatements(plan, now);
  if (args.sqlOut) writeFileSync(args.sqlOut, `${statements.join("\n")}\n`, { mode: 0o600 });

  let outcomes = plan.outcomes;
  if (!args.dryRun && statements.length > 0) {
    // The file holds bcrypt hashes and sealed secrets: private directory, removed afterwards.
    const dir = mkdtempSync(join(tmpdir(), "netmaker-import-"));
    try {
      const file = join(dir, "import.sql");
      writeFileSync(file, `${statements.join("\n")}\n`, { mode: 0o600 });
      wrangler(args, ["--yes", "--file", file]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    outcomes = settleOutcomes(plan.outcomes, queryExisting(args));
  }

  const report = buildReport({
    source: args.databasePath,
    layout: data.layout,
    target: `${args.database} (${args.remote ? "remote" : "local"})`,
    dryRun: args.dryRun,
    keySource: keys?.source,
    outcomes,
  });
  console.log(args.json ? JSON.stringify(report, null, 2) : formatReport(report));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`import: ${message}`);
  if (error instanceof ArgsError) console.error(`\n${USAGE}`);
  process.exitCode = 1;
});
