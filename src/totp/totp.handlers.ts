import { enabledAccount, refusedPreAuthToken, requireAdminOver } from "../lib/guards";
import { ApiError, envelope, tooManyAttempts, type AppHandler } from "../lib/http";
import { qrPngDataUrl } from "../lib/qr";
import { loadKeyRing, openSecret, sealSecret } from "../lib/secretbox";
import { issueUserToken } from "../lib/tokens";
import { generateTotpSecret, matchTotpStep, otpAuthUrl, otpAuthUrlSignatureMatches, signOtpAuthUrl } from "../lib/totp";
import { discardPendingEnrolment, findPendingEnrolment, savePendingEnrolment } from "../storage/enrolments";
import { insertEvent, insertEventIfChanged } from "../storage/events";
import {
  clearAttempts,
  countAttempt,
  countPreAuthAttempt,
  isLocked,
  usePreAuthToken,
  userSubject,
  type Attempt,
} from "../storage/failures";
import { acceptTotpStep, disableTotp, enableTotp, publicUser, type UserRow } from "../storage/users";
import type * as routes from "./totp.routes";

export const initTotp: AppHandler<typeof routes.initTotpRoute> = async (c) => {
  const { username } = c.get("user");
  const secret = generateTotpSecret();
  const url = otpAuthUrl(username, secret);
  const [signature, qrCode, sealedSecret] = await Promise.all([
    signOtpAuthUrl(url, c.env.JWT_SECRET),
    qrPngDataUrl(url),
    loadKeyRing(c.env.TOTP_KEYS).then((ring) => sealSecret(ring, secret, username)),
  ]);
  const enrolment = { id: crypto.randomUUID(), sealedSecret };
  await savePendingEnrolment(c.env.ENROLMENTS, username, enrolment, c.get("config").enrolmentTtl);
  return c.json(
    envelope(200, "totp setup initiated", { otp_auth_url: url, otp_auth_url_signature: signature, qr_code: qrCode }),
    200,
  );
};

export const completeTotp: AppHandler<typeof routes.completeTotpRoute> = async (c) => {
  const { username } = c.get("user");
  const { otp_auth_url: url = "", otp_auth_url_signature: signature = "", totp = "" } = c.req.valid("json");
  const db = c.env.DB;
  const { now, ip } = c.var;
  if (!(await otpAuthUrlSignatureMatches(url, signature, c.env.JWT_SECRET))) {
    throw new ApiError(400, "otp auth url signature mismatch");
  }
  const expired = () => new ApiError(400, "totp setup expired, initiate it again");
  const pending = await findPendingEnrolment(c.env.ENROLMENTS, username);
  if (!pending) throw expired();
  const ring = await loadKeyRing(c.env.TOTP_KEYS);
  // A pending secret sealed under a key that has since left the ring can only be started again.
  const secret = await openSecret(ring, pending.sealedSecret, username).catch(() => null);
  // The URL of this user's pending secret, rebuilt: a URL of an earlier or another user's enrolment differs.
  if (secret === null || otpAuthUrl(username, secret) !== url) throw expired();

  const step = matchTotpStep(secret, totp, now);
  if (step === null) {
    await insertEvent(db, { kind: "totp.enrol", subject: username, ip, outcome: "failure", reason: "wrong code" }, now).run();
    throw new ApiError(400, `cannot setup totp for user ${username}: invalid otp`);
  }
  // enableTotp changes the row once per enrolment id: of two racing completions, one wins.
  const [enabled] = await db.batch([
    enableTotp(db, username, { id: pending.id, sealedSecret: pending.sealedSecret, step }, now),
    insertEventIfChanged(db, { kind: "totp.enrol", subject: username, ip, outcome: "success" }, now),
  ]);
  if (enabled.meta.changes !== 1) throw expired();
  await discardPendingEnrolment(c.env.ENROLMENTS, username);
  return c.json(envelope(200, `totp setup complete for user ${username}`, null), 200);
};

export const verifyTotp: AppHandler<typeof routes.verifyTotpRoute> = async (c) => {
  const token = c.get("token");
  const { username } = token;
  const { totp = "" } = c.req.valid("json");
  const user = enabledAccount(c.get("account"));
  if (!user.mfa_enabled || !user.totp_secret) {
    throw new ApiError(400, `mfa is disabled for user(${username}), cannot process totp verification`);
  }
  const db = c.env.DB;
  const { now, ip, config } = c.var;
  const subject = userSubject(username);
  // Both limits are counted before the code is checked, so that parallel guesses cannot slip past either.
  const [counted, tokenCounted] = await db.batch([
    countAttempt(db, subject, now, config.maxFailedAttempts, config.lockSeconds),
    ...(token.kind === "preauth" ? [countPreAuthAttempt(db, token.jti, token.exp)] : []),
  ]);
  const attempt = counted.results[0] as Attempt;
  if (isLocked(attempt, now)) {
    await insertEvent(db, { kind: "user.totp", subject: username, ip, outcome: "locked" }, now).run();
    throw tooManyAttempts(attempt.locked_until - now);
  }
  const tokenAttempts = (tokenCounted?.results[0] as { failures: number } | undefined)?.failures ?? 0;
  if (tokenAttempts > config.preAuthMaxFailures) throw await refusedPreAuthToken(c, username); // died since the guard

  const secret = await openSecret(await loadKeyRing(c.env.TOTP_KEYS), user.totp_secret, username);
  const step = matchTotpStep(secret, totp, now);
  // Check and record in one transaction: a code whose step is not later than the last accepted one fails,
  // and so does any code once the pre-auth token has let its user in.
  const preAuthJti = token.kind === "preauth" ? token.jti : null;
  const [acceptance] =
    step === null
      ? [null]
      : await db.batch([
          acceptTotpStep(db, username, step, preAuthJti),
          ...(token.kind === "preauth" ? [usePreAuthToken(db, token.jti, token.exp)] : []),
        ]);
  if (acceptance?.meta.changes !== 1) {
    const reason = step === null ? "wrong code" : "code already used";
    await insertEvent(db, { kind: "user.totp", subject: username, ip, outcome: "failure", reason }, now).run();
    throw new ApiError(401, "invalid otp");
  }
  await db.batch([
    clearAttempts(db, subject),
    insertEvent(db, { kind: "user.totp", subject: username, ip, outcome: "success" }, now),
  ]);
  const authToken = await issueUserToken(c.env.JWT_SECRET, { username, role: user.platform_role }, now, config.userTokenTtl);
  return c.json(envelope(200, `W1R3: User ${username} Authorized`, { UserName: username, AuthToken: authToken }), 200);
};

export const resetTotp: AppHandler<typeof routes.resetTotpRoute> = async (c) => {
  const { username } = c.req.valid("param");
  const { actor, target } = await requireAdminOver(c, username);
  const db = c.env.DB;
  const now = c.get("now");
  const event = { kind: "admin.totp.reset", subject: username, actor: actor.username, ip: c.get("ip") };
  await db.batch([disableTotp(db, username, now), insertEvent(db, { ...event, outcome: "success" }, now)]);
  await discardPendingEnrolment(c.env.ENROLMENTS, username);
  const user = { ...target, mfa_enabled: 0, totp_secret: null } satisfies UserRow;
  return c.json(envelope(200, `totp reset for user ${username}`, publicUser(user)), 200);
};
