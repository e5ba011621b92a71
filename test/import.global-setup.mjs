// Vitest global setup, run once in Node before the workerd tests: writes the two Netmaker fixture databases
// (netmaker-records.ts) as real SQLite files, reads them back with the import's reader, and provides what it
// read to the tests (inject("netmaker")), which plan the import, run its SQL against D1 and log in.
// node:sqlite exists only in Node, hence the split; test/import.test.ts declares the provided types.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readNetmaker } from "../scripts/import/netmaker.ts";
import { loadSqlite, writeNetmakerDb } from "./fixtures/netmaker-db.mjs";
import { keyValueFixture, relationalFixture } from "./fixtures/netmaker-records.ts";

export default async function setup(project) {
  const DatabaseSync = await loadSqlite();
  const dir = mkdtempSync(join(tmpdir(), "netmaker-fixtures-"));
  try {
    const read = async (name, fixture) => {
      const path = join(dir, name);
      await writeNetmakerDb(path, fixture);
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        return readNetmaker({ all: (sql) => db.prepare(sql).all() });
      } finally {
        db.close();
      }
    };
    project.provide("netmaker", {
      keyValue: await read("netmaker-1.4.db", keyValueFixture),
      relational: await read("netmaker-1.5.1.db", relationalFixture),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
