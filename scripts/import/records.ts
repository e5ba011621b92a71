// Turns Netmaker users and hosts into rows of our users and hosts tables, and says for each record whether it
// is imported, already in D1 (left as it is) or skipped, and why. Pure apart from the sealing of TOTP
// secrets, which uses the Worker's own secretbox with the key ring it is given.
import { isBcryptHash } from "../../src/lib/passwords";
import { sealSecret, type KeyRing } from "../../src/lib/secretbox";
import type { PlatformRole } from "../../src/storage/users";
import type { NetmakerData, NetmakerHost, NetmakerUser } from "./netmaker";

export interface UserRecord {
  username: string;
  /** Netmaker's bcrypt hash as it is (upgraded at the next login), or '' for no usable password. */
  passwordHash: string;
  role: PlatformRole;
  accountDisabled: boolean;
  authType: "basic" | "oauth";
  mfaEnabled: boolean;
  /** Sealed "v1.<key id>.<iv>.<ciphertext>", never the plain secret; null when MFA is off. */
  totpSecret: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface HostRecord {
  id: string;
  name: string;
  passwordHash: string;
  createdAt: number;
  updatedAt: number;
}

export type Action = "import" | "present" | "skip";

export interface Outcome {
  kind: "user" | "host";
  /** Username or host id (or, when the record has none, where it came from). */
  name: string;
  action: Action;
  /** Why it is skipped or left as it is. */
  reason?: string;
  /** What the import did to it on the way (role derived, password dropped, secret sealed). */
  notes: string[];
}

export interface ImportPlan {
  users: UserRecord[];
  hosts: HostRecord[];
  outcomes: Outcome[];
}

/** What D1 holds already: username → platform role, and host ids. */
export interface ExistingState {
  users: Map<string, string>;
  hosts: Set<string>;
}

export interface PlanOptions {
  /** The Worker's TOTP_KEYS ring; without it, users with MFA on cannot be imported. */
  ring: KeyRing | null;
  /** Unix seconds, for records without their own times. */
  now: number;
  existing: ExistingState;
}

const ROLES: readonly PlatformRole[] = ["super-admin", "admin", "platform-user", "service-user", "auditor"];
// Whatever Netmaker accepted (its in_charset rule or an email address), short of spaces and control characters.
const USERNAME = /^[^\x00-\x20\x7f]+$/u;
// The service's own limit, in bytes here: a pending enrolment's KV key (at most 512 bytes) holds the name.
const USERNAME_MAX_BYTES = 128;
const HOST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const BASE32 = /^[A-Z2-7]+$/;

class Skip extends Error {}

export async function planImport(data: NetmakerData, options: PlanOptions): Promise<ImportPlan> {
  const plan: ImportPlan = { users: [], hosts: [], outcomes: [] };
  const seenUsers = new Set<string>();
  let superAdmin = [...options.existing.users].find(([, role]) => role === "super-admin")?.[0];
  const superAdminInD1 = superAdmin !== undefined;

  for (const user of data.users) {
    const name = user.username || user.source;
    const notes: string[] = [];
    try {
      // A user already in D1 is left as it is before anything else is looked at (its secret is not sealed again).
      if (user.username && !user.problem) {
        if (seenUsers.has(user.username)) throw new Skip(`a second record for the same username (${user.source})`);
        seenUsers.add(user.username);
        if (options.existing.users.has(user.username)) {
          plan.outcomes.push({ kind: "user", name, action: "present", reason: "already in D1, left as it is", notes: [] });
          continue;
        }
      }
      const record = await userRecord(user, options, notes);
      if (record.role === "super-admin") {
        if (superAdmin !== undefined) {
          throw new Skip(
            superAdminInD1
              ? `D1 already has a super admin (${superAdmin}); there is only one`
              : `there is only one super admin, and ${superAdmin} is imported as it`,
          );
        }
        superAdmin = record.username;
      }
      plan.users.push(record);
      plan.outcomes.push({ kind: "user", name, action: "import", notes: [record.role, ...notes] });
    } catch (error) {
      if (!(error instanceof Skip)) throw error;
      plan.outcomes.push({ kind: "user", name, action: "skip", reason: error.message, notes: [] });
    }
  }

  const seenHosts = new Set<string>();
  for (const host of data.hosts) {
    const name = host.id || host.source;
    try {
      if (host.id && !host.problem) {
        if (seenHosts.has(host.id)) throw new Skip(`a second record for the same host id (${host.source})`);
        seenHosts.add(host.id);
        if (options.existing.hosts.has(host.id)) {
          plan.outcomes.push({ kind: "host", name, action: "present", reason: "already in D1, left as it is", notes: [] });
          continue;
        }
      }
      const record = hostRecord(host, options.now);
      plan.hosts.push(record);
      plan.outcomes.push({ kind: "host", name, action: "import", notes: record.name ? [record.name] : [] });
    } catch (error) {
      if (!(error instanceof Skip)) throw error;
      plan.outcomes.push({ kind: "host", name, action: "skip", reason: error.message, notes: [] });
    }
  }
  return plan;
}

async function userRecord(user: NetmakerUser, options: PlanOptions, notes: string[]): Promise<UserRecord> {
  if (user.problem) throw new Skip(`unreadable record: ${user.problem}`);
  const username = user.username ?? "";
  if (!username) throw new Skip("the record has no username");
  if (!USERNAME.test(username)) throw new Skip("the username has characters no Netmaker client sends");
  if (new TextEncoder().encode(username).length > USERNAME_MAX_BYTES) {
    throw new Skip(`the username is longer than ${USERNAME_MAX_BYTES} bytes`);
  }

  const role = platformRole(user, notes);
  // Netmaker's own rule: an SSO user's password is a bcrypt hash of a server-side secret, not the person's.
  const sso = user.authType === "oauth" || (user.authType === undefined && Boolean(user.externalIdentityProviderId));
  let passwordHash = "";
  if (sso) {
    notes.push("SSO user: imported without a usable password");
  } else if (!user.password) {
    notes.push("no password in Netmaker: imported without a usable password");
  } else if (isBcryptHash(user.password)) {
    passwordHash = user.password;
  } else {
    throw new Skip("the password is not a bcrypt hash");
  }

  let totpSecret: string | null = null;
  if (user.isMfaEnabled) {
    const secret = (user.totpSecret ?? "").replace(/[\s=]/g, "").toUpperCase();
    if (!secret) throw new Skip("MFA is on but the record has no TOTP secret");
    if (!BASE32.test(secret)) throw new Skip("MFA is on but the TOTP secret is not base32");
    if (!options.ring) throw new Skip("MFA is on and no TOTP_KEYS was given to seal its secret with");
    totpSecret = await sealSecret(options.ring, secret, username);
    notes.push(`MFA on: TOTP secret sealed with key '${options.ring.currentId}'`);
  }

  const createdAt = user.createdAt ?? options.now;
  return {
    username,
    passwordHash,
    role,
    accountDisabled: user.accountDisabled === true,
    authType: sso ? "oauth" : "basic",
    mfaEnabled: totpSecret !== null,
    totpSecret,
    createdAt,
    updatedAt: Math.max(user.updatedAt ?? createdAt, createdAt),
  };
}

/** platform_role_id if set, else the deprecated flags, as Netmaker's own migrations (syncUsers, 1.5.1) do. */
function platformRole(user: NetmakerUser, notes: string[]): PlatformRole {
  if (user.platformRoleId) {
    const role = ROLES.find((known) => known === user.platformRoleId);
    if (!role) throw new Skip(`unknown platform role '${user.platformRoleId}'`);
    return role;
  }
  const role = user.isSuperAdmin ? "super-admin" : user.isAdmin ? "admin" : "service-user";
  notes.push(`no platform_role_id: ${role} from the issuperadmin/isadmin flags`);
  return role;
}

function hostRecord(host: NetmakerHost, now: number): HostRecord {
  if (host.problem) throw new Skip(`unreadable record: ${host.problem}`);
  const id = host.id ?? "";
  if (!id) throw new Skip("the record has no host id");
  if (!HOST_ID.test(id)) throw new Skip("the host id has characters this service does not accept");
  if (!host.hostPass) throw new Skip("no password in Netmaker: the host cannot log in; register it again");
  if (!isBcryptHash(host.hostPass)) throw new Skip("the password is not a bcrypt hash");
  const createdAt = host.createdAt ?? now;
  return {
    id,
    name: (host.name ?? "").replace(/[\x00-\x1f\x7f]/g, " "),
    passwordHash: host.hostPass,
    createdAt,
    updatedAt: Math.max(host.updatedAt ?? createdAt, createdAt),
  };
}

export function countOutcomes(outcomes: Outcome[], kind: Outcome["kind"]): Record<Action, number> {
  const counts: Record<Action, number> = { import: 0, present: 0, skip: 0 };
  for (const outcome of outcomes) if (outcome.kind === kind) counts[outcome.action]++;
  return counts;
}

/** ExistingState from the rows of EXISTING_STATE_QUERY (sql.ts). */
export function existingState(rows: { kind: string; name: string; role: string | null }[]): ExistingState {
  const state: ExistingState = { users: new Map(), hosts: new Set() };
  for (const row of rows) {
    if (row.kind === "user") state.users.set(row.name, row.role ?? "");
    else state.hosts.add(row.name);
  }
  return state;
}

/**
 * The outcomes as D1 shows them after the import ran: a planned insert that D1 does not hold (a row that
 * conflicts with it appeared in between) is reported as skipped.
 */
export function settleOutcomes(outcomes: Outcome[], after: ExistingState): Outcome[] {
  return outcomes.map((outcome) => {
    if (outcome.action !== "import") return outcome;
    const present = outcome.kind === "user" ? after.users.has(outcome.name) : after.hosts.has(outcome.name);
    return present ? outcome : { ...outcome, action: "skip", reason: "D1 did not take it: a conflicting row appeared meanwhile" };
  });
}
