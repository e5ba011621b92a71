// Named limits, read from Worker variables (wrangler.toml [vars]) with the defaults listed in README.md.

export interface Config {
  corsOrigin: string;
  userTokenTtl: number;
  preAuthTokenTtl: number;
  hostTokenTtl: number;
  enrolmentTtl: number;
  maxFailedAttempts: number;
  lockSeconds: number;
  preAuthMaxFailures: number;
  maxBodyBytes: number;
  ipThrottle: boolean;
  auditRetentionDays: number;
  passThrough: boolean;
}

// KV refuses an expirationTtl under 60 s; API.md caps a pending enrolment at 15 min.
const ENROLMENT_TTL_RANGE = [60, 900] as const;

function positive(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return value !== undefined && value !== "" && Number.isInteger(parsed) && parsed > 0 ? parsed : fallback;
}

export function readConfig(env: Partial<Record<keyof Env, unknown>>): Config {
  const text = (name: keyof Env) => (typeof env[name] === "string" ? (env[name] as string) : undefined);
  const [minTtl, maxTtl] = ENROLMENT_TTL_RANGE;
  return {
    corsOrigin: text("CORS_ORIGIN") || "*",
    userTokenTtl: positive(text("USER_TOKEN_TTL_SECONDS"), 12 * 3600),
    preAuthTokenTtl: positive(text("PREAUTH_TOKEN_TTL_SECONDS"), 300),
    hostTokenTtl: positive(text("HOST_TOKEN_TTL_SECONDS"), 900),
    enrolmentTtl: Math.min(maxTtl, Math.max(minTtl, positive(text("ENROLMENT_TTL_SECONDS"), 600))),
    maxFailedAttempts: positive(text("MAX_FAILED_ATTEMPTS"), 10),
    lockSeconds: positive(text("LOCK_SECONDS"), 900),
    preAuthMaxFailures: positive(text("PREAUTH_MAX_FAILURES"), 5),
    maxBodyBytes: positive(text("MAX_BODY_BYTES"), 16 * 1024),
    ipThrottle: text("IP_THROTTLE") !== "off",
    auditRetentionDays: positive(text("AUDIT_RETENTION_DAYS"), 90),
    passThrough: text("PASS_THROUGH") === "on",
  };
}
