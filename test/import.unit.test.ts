// The import's pure parts: arguments, layout detection, record mapping, SQL literals and the report.
import { describe, expect, it } from "vitest";
import { ArgsError, devVarsValue, parseArgs } from "../scripts/import/args";
import { readNetmaker, time, type NetmakerData, type SqlSource } from "../scripts/import/netmaker";
import { existingState, planImport, settleOutcomes, type PlanOptions } from "../scripts/import/records";
import { buildReport, formatReport } from "../scripts/import/report";
import { importStatements, literal } from "../scripts/import/sql";
import { loadKeyRing, openSecret } from "../src/lib/secretbox";
import { HASHES, TOTP_SECRETS } from "./fixtures/netmaker-records";

const RING = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=,k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const NOW = 1_760_000_000;

async function options(overrides: Partial<PlanOptions> = {}): Promise<PlanOptions> {
  return { ring: await loadKeyRing(RING), now: NOW, existing: existingState([]), ...overrides };
}

const data = (users: NetmakerData["users"], hosts: NetmakerData["hosts"] = []): NetmakerData => ({ layout: "key-value", users, hosts });

describe("parseArgs", () => {
  it("takes the database path and defaults to the local DB binding", () => {
    expect(parseArgs(["netmaker.db"])).toEqual({
      databasePath: "netmaker.db",
      remote: false,
      database: "DB",
      env: undefined,
      config: undefined,
      persistTo: undefined,
      dryRun: false,
      json: false,
      sqlOut: undefined,
      printJwtSecret: false,
    });
  });

  it("reads every option, with a value after it or after '='", () => {
    expect(
      parseArgs(["--remote", "--database", "prod-auth", "--env=production", "--dry-run", "--json", "--sql-out", "x.sql", "nm.db"]),
    ).toMatchObject({ databasePath: "nm.db", remote: true, database: "prod-auth", env: "production", dryRun: true, json: true, sqlOut: "x.sql" });
    expect(parseArgs(["nm.db", "--persist-to", "/tmp/state", "--print-jwt-secret"])).toMatchObject({
      persistTo: "/tmp/state",
      printJwtSecret: true,
    });
    expect(parseArgs(["--help"])).toBe("help");
  });

  it.each([
    [[], "give exactly one Netmaker database file"],
    [["a.db", "b.db"], "give exactly one Netmaker database file"],
    [["a.db", "--force"], "unknown option --force"],
    [["a.db", "--database"], "--database needs a value"],
    [["a.db", "--local", "--remote"], "--local and --remote exclude each other"],
    [["a.db", "--remote", "--persist-to", "x"], "--persist-to goes with --local only"],
  ])("refuses %j: %s", (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(new ArgsError(message));
  });
});

describe("devVarsValue", () => {
  it("reads a quoted or bare value from .dev.vars text", () => {
    const text = '# local\nJWT_SECRET="abc"\nTOTP_KEYS="dev1:AAAA="\nOTHER=1\n';
    expect(devVarsValue(text, "TOTP_KEYS")).toBe("dev1:AAAA=");
    expect(devVarsValue("TOTP_KEYS=k:x=\n", "TOTP_KEYS")).toBe("k:x=");
    expect(devVarsValue("TOTP_KEYS_OLD=x\n", "TOTP_KEYS")).toBeUndefined();
  });
});

describe("time", () => {
  it.each([
    ["2025-11-20T08:30:00Z", Date.UTC(2025, 10, 20, 8, 30) / 1000],
    ["2025-05-02T09:14:03.512345Z", Date.UTC(2025, 4, 2, 9, 14, 3) / 1000],
    ["2026-01-05 17:45:12.5+01:00", Date.UTC(2026, 0, 5, 16, 45, 12) / 1000],
    ["2025-11-20 08:30:00.123456789+00:00", Date.UTC(2025, 10, 20, 8, 30) / 1000],
    ["2025-11-20 08:30:00-0230", Date.UTC(2025, 10, 20, 11, 0) / 1000],
  ])("reads %s", (text, seconds) => {
    expect(time(text)).toBe(seconds);
  });

  it.each([["0001-01-01T00:00:00Z"], ["0001-01-01 00:00:00+00:00"], ["yesterday"], [""], [null], [1700000000]])(
    "has no time for %j",
    (value) => {
      expect(time(value)).toBeUndefined();
    },
  );
});

describe("readNetmaker's choice of layout", () => {
  // A stand-in database: each query answers with the rows given for the table it names.
  function source(tables: Record<string, Record<string, unknown>[]>): SqlSource {
    return {
      all(sql) {
        if (sql.includes("sqlite_master")) return Object.keys(tables).map((name) => ({ name }));
        const table = /FROM (\w+)/.exec(sql)![1];
        if (table === "jobs") return (tables.jobs ?? []).filter((row) => sql.includes(`'${row.id}'`));
        return tables[table] ?? [];
      },
    };
  }
  const kvUser = { key: "old", value: JSON.stringify({ username: "old", password: HASHES.bob }) };
  const newUser = { username: "new", password: HASHES.bob };

  it("reads users_v1 once the 1.5.1 migration is recorded, even if it is empty", () => {
    const read = readNetmaker(source({ users: [kvUser], users_v1: [], jobs: [{ id: "migration-v1.5.1" }] }));
    expect(read).toEqual({ layout: "relational", users: [], hosts: [] });
  });

  it("reads users_v1 when it has rows, or when the key-value table is gone", () => {
    expect(readNetmaker(source({ users: [kvUser], users_v1: [newUser] })).users.map((u) => u.username)).toEqual(["new"]);
    expect(readNetmaker(source({ users_v1: [newUser], hosts_v1: [] })).layout).toBe("relational");
  });

  it("reads the key-value tables before the migration has run", () => {
    const read = readNetmaker(source({ users: [kvUser], users_v1: [] }));
    expect(read.layout).toBe("key-value");
    expect(read.users).toEqual([{ source: "users key 'old'", username: "old", password: HASHES.bob }]);
  });

  it("refuses a database that is not Netmaker's", () => {
    expect(() => readNetmaker(source({ things: [] }))).toThrow(/not a Netmaker database/);
  });

  it("reads records that are not objects as problems, and takes the key when the username is missing", () => {
    const read = readNetmaker(
      source({ users: [{ key: "a", value: "[1]" }, { key: "b", value: null }, { key: "c", value: JSON.stringify({ password: HASHES.bob }) }] }),
    );
    expect(read.users).toEqual([
      { source: "users key 'a'", username: "a", problem: "the value is not a JSON object" },
      { source: "users key 'b'", username: "b", problem: "the value is not JSON text" },
      { source: "users key 'c'", username: "c", password: HASHES.bob },
    ]);
  });
});

describe("planImport", () => {
  it("seals a TOTP secret with the first key of the ring, bound to the username, normalising its form", async () => {
    const plan = await planImport(
      data([{ source: "s", username: "carol", password: HASHES.carol, isMfaEnabled: true, totpSecret: "hvty rgh4 a43n ft7b bskg eyyz a4ey ulc3" }]),
      await options(),
    );
    const [user] = plan.users;
    expect(user.totpSecret).toMatch(/^v1\.k2\./);
    const ring = await loadKeyRing(RING);
    expect(await openSecret(ring, user.totpSecret!, "carol")).toBe(TOTP_SECRETS.carol);
    await expect(openSecret(ring, user.totpSecret!, "mallory")).rejects.toThrow();
  });

  it("skips MFA users when there is no key ring, and says how to import them", async () => {
    const plan = await planImport(
      data([
        { source: "s", username: "carol", password: HASHES.carol, isMfaEnabled: true, totpSecret: TOTP_SECRETS.carol },
        { source: "s", username: "kate", password: HASHES.kate, isMfaEnabled: true, totpSecret: "not base32!" },
      ]),
      await options({ ring: null }),
    );
    expect(plan.users).toEqual([]);
    expect(plan.outcomes.map((o) => o.reason)).toEqual([
      "MFA is on and no TOTP_KEYS was given to seal its secret with",
      "MFA is on but the TOTP secret is not base32",
    ]);
  });

  it("reports an MFA user already in D1 as present, even without a key ring", async () => {
    const plan = await planImport(
      data([{ source: "s", username: "carol", password: HASHES.carol, isMfaEnabled: true, totpSecret: TOTP_SECRETS.carol }]),
      await options({ ring: null, existing: existingState([{ kind: "user", name: "carol", role: "platform-user" }]) }),
    );
    expect(plan).toEqual({
      users: [],
      hosts: [],
      outcomes: [{ kind: "user", name: "carol", action: "present", reason: "already in D1, left as it is", notes: [] }],
    });
  });

  it("maps Netmaker's auth types and takes an external identity as SSO when the type is missing", async () => {
    const plan = await planImport(
      data([
        { source: "s", username: "a1", password: HASHES.bob, authType: "basic_auth", externalIdentityProviderId: "x" },
        { source: "s", username: "a2", password: HASHES.bob, externalIdentityProviderId: "oidc|1" },
        { source: "s", username: "a3", password: HASHES.bob, authType: "oauth" },
      ]),
      await options(),
    );
    expect(plan.users.map((u) => [u.username, u.authType, u.passwordHash])).toEqual([
      ["a1", "basic", HASHES.bob],
      ["a2", "oauth", ""],
      ["a3", "oauth", ""],
    ]);
  });

  it("skips records without a name, with a name no client sends or too long, or twice over", async () => {
    const plan = await planImport(
      data(
        [
          { source: "users_v1 row 1", password: HASHES.bob },
          { source: "users_v1 row 2", username: "has space", password: HASHES.bob },
          { source: "users_v1 row 5", username: "é".repeat(65), password: HASHES.bob },
          { source: "users_v1 row 3", username: "bob", password: HASHES.bob },
          { source: "users_v1 row 4", username: "bob", password: HASHES.alice },
        ],
        [
          { source: "hosts_v1 row 1", hostPass: HASHES.laptop },
          { source: "hosts_v1 row 2", id: "../etc", hostPass: HASHES.laptop },
          { source: "hosts_v1 row 3", id: "h1", hostPass: "plain-text-password" },
          { source: "hosts_v1 row 4", id: "h1", problem: "the value is not valid JSON" },
        ],
      ),
      await options(),
    );
    expect(plan.outcomes.map((o) => [o.name, o.action, o.reason])).toEqual([
      ["users_v1 row 1", "skip", "the record has no username"],
      ["has space", "skip", "the username has characters no Netmaker client sends"],
      ["é".repeat(65), "skip", "the username is longer than 128 bytes"],
      ["bob", "import", undefined],
      ["bob", "skip", "a second record for the same username (users_v1 row 4)"],
      ["hosts_v1 row 1", "skip", "the record has no host id"],
      ["../etc", "skip", "the host id has characters this service does not accept"],
      ["h1", "skip", "the password is not a bcrypt hash"],
      ["h1", "skip", "unreadable record: the value is not valid JSON"],
    ]);
  });

  it("keeps a record's own times, never letting updated_at precede created_at", async () => {
    const plan = await planImport(
      data([{ source: "s", username: "bob", password: HASHES.bob, createdAt: 2000, updatedAt: 1000 }], [
        { source: "h", id: "h1", name: "line\nbreak", hostPass: HASHES.laptop, createdAt: 3000 },
      ]),
      await options(),
    );
    expect(plan.users[0]).toMatchObject({ createdAt: 2000, updatedAt: 2000 });
    expect(plan.hosts[0]).toEqual({ id: "h1", name: "line break", passwordHash: HASHES.laptop, createdAt: 3000, updatedAt: 3000 });
  });
});

describe("literal", () => {
  it("quotes text, doubling quotes, and writes integers, booleans and null as SQL", () => {
    expect(literal("o'brien")).toBe("'o''brien'");
    expect(literal("")).toBe("''");
    expect(literal(42)).toBe("42");
    expect(literal(true)).toBe("1");
    expect(literal(null)).toBe("NULL");
  });

  it("refuses what would break the one-statement-per-line file", () => {
    expect(() => literal("a\nb")).toThrow(/line break/);
    expect(() => literal("a\u0000b")).toThrow(/NUL/);
    expect(() => literal(1.5)).toThrow(/not an integer/);
  });

  it("puts a hostile username into D1's SQL as data", async () => {
    const plan = await planImport(data([{ source: "s", username: "x');DROP--", password: HASHES.bob }]), await options());
    const [insert] = importStatements(plan, NOW);
    expect(insert).toContain("VALUES ('x'');DROP--', ");
    expect(insert.endsWith(" ON CONFLICT DO NOTHING;")).toBe(true);
  });
});

describe("the report", () => {
  const outcomes = [
    { kind: "user" as const, name: "alice", action: "import" as const, notes: ["admin"] },
    { kind: "user" as const, name: "bob", action: "present" as const, reason: "already in D1, left as it is", notes: [] },
    { kind: "host" as const, name: "h1", action: "skip" as const, reason: "the password is not a bcrypt hash", notes: [] },
  ];

  it("counts and lists each record, and the rows added", () => {
    const report = buildReport({ source: "nm.db", layout: "relational", target: "DB (local)", dryRun: false, outcomes });
    expect(report).toMatchObject({ users: { imported: 1, present: 1, skipped: 0 }, hosts: { imported: 0, present: 0, skipped: 1 }, added: 1 });
    expect(formatReport(report)).toBe(
      [
        "Netmaker database: nm.db",
        "  layout: relational tables users_v1/hosts_v1 (Netmaker 1.5.1 and later)",
        "D1: DB (local)",
        "",
        "users: 1 imported, 1 already in D1, 0 skipped",
        "  + alice                    admin",
        "  = bob                      already in D1, left as it is",
        "",
        "hosts: 0 imported, 0 already in D1, 1 skipped",
        "  - h1                       skipped: the password is not a bcrypt hash",
        "",
        "Done: 1 row added to D1.",
      ].join("\n"),
    );
  });

  it("says when there is nothing to change", () => {
    const report = buildReport({ source: "nm.db", layout: "key-value", target: "DB (remote)", dryRun: false, outcomes: outcomes.slice(1) });
    expect(formatReport(report).split("\n").at(-1)).toBe("Nothing to change: every user and host that can be imported is already in D1.");
  });

  it("reports a planned insert that D1 did not take as skipped", () => {
    const settled = settleOutcomes(outcomes, existingState([{ kind: "user", name: "bob", role: "admin" }]));
    expect(settled[0]).toEqual({ ...outcomes[0], action: "skip", reason: "D1 did not take it: a conflicting row appeared meanwhile" });
    expect(settled.slice(1)).toEqual(outcomes.slice(1));
  });
});
