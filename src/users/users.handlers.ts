import { requireAdminOver, requireUser } from "../lib/guards";
import { ApiError, accountDisabled, envelope, forbidden, tooManyAttempts, type AppHandler } from "../lib/http";
import { hashPassword, verifyUserPassword } from "../lib/passwords";
import { checkNewUser } from "../lib/rules";
import { issuePreAuthToken, issueUserToken } from "../lib/tokens";
import { discardPendingEnrolment } from "../storage/enrolments";
import { insertEvent, insertEventIfChanged } from "../storage/events";
import { clearAttempts, countAttempt, isLocked, returnAttempt, userSubject, type Attempt } from "../storage/failures";
import {
  deleteUser,
  findUser,
  hasSuperAdmin,
  insertUser,
  isAdminRole,
  publicUser,
  selectUser,
  setDisabled,
  setPasswordHash,
  type UserRow,
} from "../storage/users";
import type * as routes from "./users.routes";

export const login: AppHandler<typeof routes.loginRoute> = async (c) => {
  const { username = "", password = "" } = c.req.valid("json");
  if (!username) throw new ApiError(400, "username can't be empty");
  if (!password) throw new ApiError(400, "password can't be empty");
  const db = c.env.DB;
  const { now, ip, config } = c.var;
  const subject = userSubject(username);

  // The attempt is counted before the password is checked, for known and unknown names alike.
  const [counted, found] = await db.batch([
    countAttempt(db, subject, now, config.maxFailedAttempts, config.lockSeconds),
    selectUser(db, username),
  ]);
  const attempt = counted.results[0] as Attempt;
  if (isLocked(attempt, now)) {
    await insertEvent(db, { kind: "user.login", subject: username, ip, outcome: "locked" }, now).run();
    throw tooManyAttempts(attempt.locked_until - now);
  }
  const user = (found.results[0] as UserRow | undefined) ?? null;
  const check = await verifyUserPassword(password, user?.password_hash ?? null);
  if (!user || !check.ok) {
    const reason = user ? "wrong password" : "unknown user";
    await insertEvent(db, { kind: "user.login", subject: username, ip, outcome: "failure", reason }, now).run();
    throw new ApiError(400, "incorrect credentials");
  }
  if (user.account_disabled) {
    const reason = "account disabled";
    await insertEvent(db, { kind: "user.login", subject: username, ip, outcome: "failure", reason }, now).run();
    throw accountDisabled();
  }

  const upgrade = check.upgradedHash ? [setPasswordHash(db, username, check.upgradedHash, now)] : [];
  if (user.mfa_enabled) {
    await db.batch([
      ...upgrade,
      returnAttempt(db, subject),
      insertEvent(db, { kind: "user.login", subject: username, ip, outcome: "success", reason: "totp required" }, now),
    ]);
    const preAuthToken = await issuePreAuthToken(c.env.JWT_SECRET, username, now, config.preAuthTokenTtl);
    return c.json(envelope(200, "W1R3: TOTP required", { user_name: username, pre_auth_token: preAuthToken }), 200);
  }
  await db.batch([
    ...upgrade,
    clearAttempts(db, subject),
    insertEvent(db, { kind: "user.login", subject: username, ip, outcome: "success" }, now),
  ]);
  const authToken = await issueUserToken(c.env.JWT_SECRET, { username, role: user.platform_role }, now, config.userTokenTtl);
  return c.json(envelope(200, `W1R3: Device ${username} Authorized`, { UserName: username, AuthToken: authToken }), 200);
};

export const hasSuperAdminHandler: AppHandler<typeof routes.hasSuperAdminRoute> = async (c) => {
  return c.json(await hasSuperAdmin(c.env.DB), 200);
};

export const createSuperAdmin: AppHandler<typeof routes.createSuperAdminRoute> = async (c) => {
  const { username = "", password = "" } = c.req.valid("json");
  const db = c.env.DB;
  const now = c.get("now");
  if (await hasSuperAdmin(db)) throw new ApiError(400, "superadmin user already exists");
  checkNewUser(username, password);
  const passwordHash = await hashPassword(password);
  // The unique index on the super-admin role makes a racing second bootstrap insert nothing.
  const [inserted] = await db.batch([
    insertUser(db, { username, passwordHash, role: "super-admin" }, now),
    insertEventIfChanged(db, { kind: "admin.superadmin.create", subject: username, ip: c.get("ip"), outcome: "success" }, now),
  ]);
  const user = inserted.results[0] as UserRow | undefined;
  if (!user) throw new ApiError(400, (await hasSuperAdmin(db)) ? "superadmin user already exists" : "user already exists");
  return c.json(publicUser(user), 200);
};

export const createUser: AppHandler<typeof routes.createUserRoute> = async (c) => {
  const actor = c.get("user");
  const { username: pathName } = c.req.valid("param");
  const { username = pathName, password = "", platform_role_id: role = "platform-user" } = c.req.valid("json");
  if (username !== pathName) throw new ApiError(400, "username in the path and the body differ");
  checkNewUser(username, password);
  if (isAdminRole(role) && actor.platform_role !== "super-admin") throw forbidden();
  const db = c.env.DB;
  const now = c.get("now");
  const passwordHash = await hashPassword(password);
  const event = { kind: "admin.user.create", subject: username, actor: actor.username, ip: c.get("ip"), reason: role };
  const [inserted] = await db.batch([
    insertUser(db, { username, passwordHash, role }, now),
    insertEventIfChanged(db, { ...event, outcome: "success" }, now),
  ]);
  const user = inserted.results[0] as UserRow | undefined;
  if (!user) throw new ApiError(400, "user already exists");
  return c.json(publicUser(user), 200);
};

export const getUser: AppHandler<typeof routes.getUserRoute> = async (c) => {
  const caller = await requireUser(c);
  const { username } = c.req.valid("param");
  if (caller.username === username) return c.json(publicUser(caller), 200);
  if (!isAdminRole(caller.platform_role)) throw forbidden();
  const user = await findUser(c.env.DB, username);
  if (!user) throw new ApiError(404, "user not found");
  return c.json(publicUser(user), 200);
};

function setAccountDisabled(disabled: boolean): AppHandler<typeof routes.disableUserRoute> {
  return async (c) => {
    const { username } = c.req.valid("param");
    const { actor } = await requireAdminOver(c, username);
    const db = c.env.DB;
    const now = c.get("now");
    const kind = disabled ? "admin.user.disable" : "admin.user.enable";
    const [updated] = await db.batch([
      setDisabled(db, username, disabled, now),
      insertEvent(db, { kind, subject: username, actor: actor.username, ip: c.get("ip"), outcome: "success" }, now),
    ]);
    const user = updated.results[0] as UserRow | undefined;
    if (!user) throw new ApiError(404, "user not found"); // deleted since it was read
    return c.json(envelope(200, `user ${username} ${disabled ? "disabled" : "enabled"}`, publicUser(user)), 200);
  };
}

export const disableUser = setAccountDisabled(true);
export const enableUser = setAccountDisabled(false);

export const removeUser: AppHandler<typeof routes.deleteUserRoute> = async (c) => {
  const { username } = c.req.valid("param");
  const { actor } = await requireAdminOver(c, username);
  const db = c.env.DB;
  const now = c.get("now");
  await db.batch([
    clearAttempts(db, userSubject(username)),
    deleteUser(db, username),
    insertEventIfChanged(db, { kind: "admin.user.delete", subject: username, actor: actor.username, ip: c.get("ip"), outcome: "success" }, now),
  ]);
  await discardPendingEnrolment(c.env.ENROLMENTS, username);
  return c.json(envelope(200, `user ${username} deleted`, null), 200);
};
