// What the import command prints: per user and host, imported / already in D1 / skipped and why.
import { LAYOUT_NAMES, type Layout } from "./netmaker";
import { countOutcomes, type Outcome } from "./records";

export interface ImportReport {
  source: string;
  layout: Layout;
  target: string;
  dryRun: boolean;
  /** Where the TOTP key ring came from, if one was found. */
  keySource?: string;
  users: { imported: number; present: number; skipped: number };
  hosts: { imported: number; present: number; skipped: number };
  /** Rows added to users and hosts (would be added, in a dry run). */
  added: number;
  outcomes: Outcome[];
}

export function buildReport(fields: Omit<ImportReport, "users" | "hosts" | "added">): ImportReport {
  const tally = (kind: Outcome["kind"]) => {
    const counts = countOutcomes(fields.outcomes, kind);
    return { imported: counts.import, present: counts.present, skipped: counts.skip };
  };
  const users = tally("user");
  const hosts = tally("host");
  return { ...fields, users, hosts, added: users.imported + hosts.imported };
}

const rows = (count: number) => `${count} row${count === 1 ? "" : "s"}`;

const MARK: Record<Outcome["action"], string> = { import: "+", present: "=", skip: "-" };

export function formatReport(report: ImportReport): string {
  const lines = [`Netmaker database: ${report.source}`, `  layout: ${LAYOUT_NAMES[report.layout]}`, `D1: ${report.target}`];
  if (report.keySource) lines.push(`TOTP secrets sealed with TOTP_KEYS from ${report.keySource}`);
  for (const kind of ["user", "host"] as const) {
    const counts = kind === "user" ? report.users : report.hosts;
    const verb = report.dryRun ? "to import" : "imported";
    lines.push("", `${kind}s: ${counts.imported} ${verb}, ${counts.present} already in D1, ${counts.skipped} skipped`);
    for (const outcome of report.outcomes.filter((o) => o.kind === kind)) {
      const detail = outcome.action === "import" ? outcome.notes.join("; ") : outcome.reason ?? "";
      lines.push(`  ${MARK[outcome.action]} ${outcome.name.padEnd(24)} ${outcome.action === "skip" ? "skipped: " : ""}${detail}`.trimEnd());
    }
  }
  lines.push("");
  if (report.added === 0) {
    lines.push("Nothing to change: every user and host that can be imported is already in D1.");
  } else if (report.dryRun) {
    lines.push(`Dry run: nothing was written; ${rows(report.added)} would be added.`);
  } else {
    lines.push(`Done: ${rows(report.added)} added to D1.`);
  }
  return lines.join("\n");
}
