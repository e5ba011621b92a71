// The import command's arguments: `npm run import -- <netmaker.db> [options]`.

export interface ImportArgs {
  databasePath: string;
  remote: boolean;
  /** D1 database name or binding, as `wrangler d1 execute` takes it. */
  database: string;
  env?: string;
  config?: string;
  persistTo?: string;
  dryRun: boolean;
  json: boolean;
  sqlOut?: string;
  printJwtSecret: boolean;
}

export const USAGE = `Usage: npm run import -- <netmaker.db> [options]

Imports the users and hosts of a Netmaker SQLite database (1.4 and earlier, or 1.5.1 and later) into D1.
Safe to run again: what is already in D1 is left as it is.

Options:
  --local                 import into the local D1 of \`wrangler dev\` (the default)
  --remote                import into the deployed D1 database
  --database <name>       D1 database name or binding (default: DB)
  --env <name>            wrangler environment
  --config <path>         wrangler configuration file
  --persist-to <dir>      local D1 state directory (with --local)
  --dry-run               read both sides and report, write nothing
  --json                  print the report as JSON
  --sql-out <file>        also write the generated SQL to this file
  --print-jwt-secret      print the Netmaker server's JWT secret and nothing else (for JWT_SECRET)
  --help                  this text

TOTP secrets of users with MFA on are sealed with TOTP_KEYS from the environment, or, with --local only, from
.dev.vars. With --remote, set TOTP_KEYS to the deployed Worker's value.`;

/** A mistake in the command line: the message, then the usage, is what the person needs. */
export class ArgsError extends Error {}

const VALUE_OPTIONS = new Set(["--database", "--env", "--config", "--persist-to", "--sql-out"]);
const FLAG_OPTIONS = new Set(["--local", "--remote", "--dry-run", "--json", "--print-jwt-secret", "--help", "-h"]);

/** Parses the arguments; "help" when help is asked for; throws an ArgsError that says what is wrong. */
export function parseArgs(argv: string[]): ImportArgs | "help" {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inline: string | undefined;
    const equals = arg.indexOf("=");
    if (arg.startsWith("--") && equals > 0) [arg, inline] = [arg.slice(0, equals), arg.slice(equals + 1)];
    if (VALUE_OPTIONS.has(arg)) {
      const value = inline ?? argv[++i];
      if (value === undefined || value === "") throw new ArgsError(`${arg} needs a value`);
      values.set(arg, value);
    } else if (FLAG_OPTIONS.has(arg) && inline === undefined) {
      flags.add(arg);
    } else if (arg.startsWith("-")) {
      throw new ArgsError(`unknown option ${argv[i]}`);
    } else {
      positional.push(arg);
    }
  }
  if (flags.has("--help") || flags.has("-h")) return "help";
  if (positional.length !== 1) throw new ArgsError("give exactly one Netmaker database file");
  if (flags.has("--local") && flags.has("--remote")) throw new ArgsError("--local and --remote exclude each other");
  if (flags.has("--remote") && values.has("--persist-to")) throw new ArgsError("--persist-to goes with --local only");
  return {
    databasePath: positional[0],
    remote: flags.has("--remote"),
    database: values.get("--database") ?? "DB",
    env: values.get("--env"),
    config: values.get("--config"),
    persistTo: values.get("--persist-to"),
    dryRun: flags.has("--dry-run"),
    json: flags.has("--json"),
    sqlOut: values.get("--sql-out"),
    printJwtSecret: flags.has("--print-jwt-secret"),
  };
}

/** The TOTP_KEYS value of a .dev.vars file (NAME=value lines, the value optionally quoted). */
export function devVarsValue(text: string, name: string): string | undefined {
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!match || match[1] !== name) continue;
    const value = match[2];
    const quoted = /^(["'])(.*)\1$/.exec(value);
    return quoted ? quoted[2] : value;
  }
  return undefined;
}
