import { toBase64Url, randomBytes } from "../lib/encoding";
import { requireAdmin } from "../lib/guards";
import { ApiError, envelope, tooManyAttempts, unauthorized, type AppHandler } from "../lib/http";
import { hashHostPassword, verifyHostPassword } from "../lib/passwords";
import { checkNewHost } from "../lib/rules";
import { issueHostToken } from "../lib/tokens";
import { insertEvent, insertEventIfChanged } from "../storage/events";
import { clearAttempts, countHostAttempt, hostSubject, isLocked, type Attempt } from "../storage/failures";
import { deleteHost, insertHost, listHosts, publicHost, selectHost, setHostPasswordHash, type HostRow } from "../storage/hosts";
import type * as routes from "./hosts.routes";

export const hostLogin: AppHandler<typeof routes.hostLoginRoute> = async (c) => {
  const { id = "", password = "", macaddress = "" } = c.req.valid("json");
  if (!id) throw new ApiError(400, "W1R3: ID can't be empty");
  if (!password) throw new ApiError(400, "W1R3: Password can't be empty");
  const db = c.env.DB;
  const { now, ip, config } = c.var;
  const [found, counted] = await db.batch([
    selectHost(db, id),
    countHostAttempt(db, id, now, config.maxFailedAttempts, config.lockSeconds),
  ]);
  const host = found.results[0] as HostRow | undefined;
  if (!host) {
    await insertEvent(db, { kind: "host.login", subject: id, ip, outcome: "failure", reason: "unknown host" }, now).run();
    throw new ApiError(400, "no result found");
  }

  const subject = hostSubject(id);
  const attempt = counted.results[0] as Attempt;
  if (isLocked(attempt, now)) {
    await insertEvent(db, { kind: "host.login", subject: id, ip, outcome: "locked" }, now).run();
    throw tooManyAttempts(attempt.locked_until - now); // never 401: netclient wipes its state on a 401
  }
  const check = await verifyHostPassword(password, host.password_hash, c.env.HOST_KEY);
  if (!check.ok) {
    await insertEvent(db, { kind: "host.login", subject: id, ip, outcome: "failure", reason: "wrong password" }, now).run();
    throw unauthorized();
  }
  await db.batch([
    ...(check.upgradedHash ? [setHostPasswordHash(db, id, check.upgradedHash, now)] : []),
    clearAttempts(db, subject),
    insertEvent(db, { kind: "host.login", subject: id, ip, outcome: "success" }, now),
  ]);
  const authToken = await issueHostToken(c.env.JWT_SECRET, { id, macAddress: macaddress }, now, config.hostTokenTtl);
  return c.json(envelope(200, `W1R3: Host ${id} Authorized`, { ID: id, AuthToken: authToken }), 200);
};

export const createHost: AppHandler<typeof routes.createHostRoute> = async (c) => {
  const actor = c.get("user");
  const body = c.req.valid("json");
  const id = body.id || crypto.randomUUID();
  checkNewHost(id, body.password);
  const generatedPassword = body.password === undefined ? toBase64Url(randomBytes(24)) : undefined;
  const db = c.env.DB;
  const now = c.get("now");
  const passwordHash = await hashHostPassword(body.password ?? generatedPassword!, c.env.HOST_KEY);
  const [inserted] = await db.batch([
    insertHost(db, { id, name: body.name ?? "", passwordHash }, now),
    insertEventIfChanged(db, { kind: "admin.host.create", subject: id, actor: actor.username, ip: c.get("ip"), outcome: "success" }, now),
  ]);
  const host = inserted.results[0] as HostRow | undefined;
  if (!host) throw new ApiError(400, `host ${id} already exists`);
  return c.json(envelope(200, `host ${id} created`, { ...publicHost(host), password: generatedPassword }), 200);
};

export const listHostsHandler: AppHandler<typeof routes.listHostsRoute> = async (c) => {
  await requireAdmin(c);
  return c.json((await listHosts(c.env.DB)).map(publicHost), 200);
};

export const removeHost: AppHandler<typeof routes.deleteHostRoute> = async (c) => {
  const actor = await requireAdmin(c);
  const { id } = c.req.valid("param");
  const db = c.env.DB;
  const now = c.get("now");
  const [, deleted] = await db.batch([
    clearAttempts(db, hostSubject(id)),
    deleteHost(db, id),
    insertEventIfChanged(db, { kind: "admin.host.delete", subject: id, actor: actor.username, ip: c.get("ip"), outcome: "success" }, now),
  ]);
  if (deleted.meta.changes === 0) throw new ApiError(404, "host not found");
  return c.json(envelope(200, `host ${id} deleted`, null), 200);
};
