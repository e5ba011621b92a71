-- Users, hosts, failure counters and the audit trail. docs/storage.md describes every column.

CREATE TABLE users (
  username         TEXT PRIMARY KEY,
  password_hash    TEXT NOT NULL DEFAULT '',       -- '' = no usable password (e.g. an imported SSO user)
  platform_role    TEXT NOT NULL DEFAULT 'platform-user'
                   CHECK (platform_role IN ('super-admin', 'admin', 'platform-user', 'service-user', 'auditor')),
  account_disabled INTEGER NOT NULL DEFAULT 0,
  auth_type        TEXT NOT NULL DEFAULT 'basic',   -- 'basic' or 'oauth' (imported SSO users)
  mfa_enabled      INTEGER NOT NULL DEFAULT 0,
  totp_secret      TEXT,                            -- AES-GCM ciphertext "v1.<key id>.<iv>.<ciphertext>", never plain
  last_totp_step   INTEGER,                         -- last accepted RFC 6238 time step; replays are refused
  totp_enrolment   TEXT,                            -- id of the last completed enrolment (single use)
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
);

-- At most one super admin, enforced by the database so that racing bootstraps cannot make two.
CREATE UNIQUE INDEX users_one_super_admin ON users (platform_role) WHERE platform_role = 'super-admin';

CREATE TABLE hosts (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL DEFAULT '',
  password_hash TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

-- Consecutive failures per login subject ('user:<name>' or 'host:<id>'), and the lock they lead to.
CREATE TABLE login_failures (
  subject      TEXT PRIMARY KEY,
  failures     INTEGER NOT NULL,
  locked_until INTEGER NOT NULL DEFAULT 0,           -- unix seconds; 0 = not locked
  updated_at   INTEGER NOT NULL
);

-- Wrong codes per pre-auth token (its jti); a token that reaches the limit, or has been used, is dead.
CREATE TABLE preauth_tokens (
  jti        TEXT PRIMARY KEY,
  failures   INTEGER NOT NULL DEFAULT 0,
  used       INTEGER NOT NULL DEFAULT 0,
  expires_at INTEGER NOT NULL
);

CREATE TABLE auth_events (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  at       INTEGER NOT NULL,                         -- unix seconds
  kind     TEXT NOT NULL,                            -- e.g. 'user.login', 'host.login', 'totp.enrol', 'admin.user.create'
  subject  TEXT NOT NULL,                            -- username or host id acted on
  actor    TEXT,                                     -- admin who made an admin change
  ip       TEXT,
  outcome  TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'locked')),
  reason   TEXT
);
CREATE INDEX auth_events_at ON auth_events (at);
