import { createHash, randomBytes } from 'node:crypto';
import { isoTime } from '../domain/clock.js';
import { AppError, invalidFields, type FieldErrors } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import * as sessions from '../store/user-session-repository.js';
import * as repo from '../store/workspace-repository.js';
import { hashToken, verifyPassword } from './auth-service.js';
import type { Context } from './context.js';

/**
 * Dashboard sign-in. A successful login makes a session whose random token travels
 * only in an HttpOnly cookie; the database keeps its sha256, so a copy of the database
 * signs nobody in. Sessions slide: each use (at most once an hour, to spare writes)
 * pushes the expiry to NUDGE_SESSION_DAYS from now, never past 30 days (or that many,
 * if more) after the login.
 *
 * Guessing passwords is throttled in the database, so the limit holds across every API
 * process: NUDGE_LOGIN_ATTEMPTS attempts per email and client address in 15 minutes,
 * and ten times that per email from all addresses together (someone rotating
 * addresses, or forging X-Forwarded-For, still runs into it). Every attempt counts,
 * before its password is checked, so concurrent guesses cannot slip past the count;
 * a successful login clears its own address's count.
 */

export const loginWindowMs = 15 * 60_000;
const refreshEveryMs = 3_600_000;
const absoluteLifetimeDays = 30;
const dayMs = 86_400_000;

/**
 * The hash an unknown email's password is checked against, so a wrong email takes as
 * long to refuse as a wrong password and the answer's timing does not tell which
 * accounts exist. No password has this hash (its source was random and discarded).
 */
const absentUserHash = 'scrypt$32768$8$1$k9BCOrjP3F5ND4f1xpbyUA$tcEx7DD5n0EiGbgDYmgoujxO8Kk3yNO08NvE5z3xnJ0';

export interface DashboardAuth {
  sessionId: string;
  userId: string;
  workspaceId: string;
  expiresAt: number;
  /** The expiry moved: the cookie should be sent again with the new lifetime. */
  refreshed: boolean;
}

export interface DashboardSessionView {
  success: true;
  user: { id: string; email: string; name: string; role: string };
  workspace: { id: string; name: string };
  expiresAt: string;
}

export interface LoginInput {
  email?: unknown;
  password?: unknown;
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function readLogin(input: LoginInput): { email: string; password: string } {
  const errors: FieldErrors = {};
  if (typeof input.email !== 'string' || input.email.trim() === '') errors.email = ['email is required'];
  if (typeof input.password !== 'string' || input.password === '') errors.password = ['password is required'];
  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  return { email: (input.email as string).trim().toLowerCase(), password: input.password as string };
}

async function throttle(ctx: Context, key: string, limit: number, now: number): Promise<void> {
  const { attempts, windowStart } = await sessions.countLoginAttempt(ctx.database.db, key, now, loginWindowMs);
  if (attempts <= limit) return;
  const retryAfter = Math.max(1, Math.ceil((windowStart + loginWindowMs - now) / 1000));
  throw new AppError('rate_limited', `Too many sign-in attempts; try again in ${Math.ceil(retryAfter / 60)} minute${retryAfter > 60 ? 's' : ''}`, {
    headers: { 'Retry-After': String(retryAfter) },
  });
}

/**
 * Checks the email and password and opens a session. Returns the token for the cookie
 * (it is never stored) with the session as the API shows it. A wrong email or password
 * is one 401, whichever was wrong.
 */
export async function login(ctx: Context, input: LoginInput, client: { ip: string; userAgent: string | null }): Promise<{ token: string; maxAgeSeconds: number; view: DashboardSessionView }> {
  const { email, password } = readLogin(input);
  const now = ctx.clock.now();
  const addressKey = `ip:${digest(`${email}\u0000${client.ip}`)}`;
  await throttle(ctx, addressKey, ctx.config.loginAttempts, now);
  await throttle(ctx, `email:${digest(email)}`, ctx.config.loginAttempts * 10, now);

  const db = ctx.database.db;
  const user = await repo.findUserByEmail(db, email);
  const matches = await verifyPassword(password, user?.password_hash ?? absentUserHash);
  if (!user || user.password_hash === null || !matches) throw new AppError('unauthorized', 'Email or password is incorrect');
  const workspace = await repo.findWorkspace(db, user.workspace_id);
  if (!workspace) throw new AppError('unauthorized', 'Email or password is incorrect');
  await sessions.clearLoginAttempts(db, addressKey);

  const token = randomBytes(32).toString('base64url');
  const days = ctx.config.sessionDays;
  const row = {
    id: newId(now),
    token_hash: hashToken(token),
    user_id: user.id,
    workspace_id: user.workspace_id,
    created_at: now,
    last_seen_at: now,
    expires_at: now + days * dayMs,
    absolute_expires_at: now + Math.max(absoluteLifetimeDays, days) * dayMs,
    ip: client.ip.slice(0, 100),
    user_agent: client.userAgent?.slice(0, 500) ?? null,
  };
  await sessions.insertUserSession(db, row);
  await sessions.deleteExpiredUserSessions(db, now);
  return {
    token,
    maxAgeSeconds: days * 86_400,
    view: { success: true, user: { id: user.id, email: user.email, name: user.name, role: user.role }, workspace: { id: workspace.id, name: workspace.name }, expiresAt: isoTime(row.expires_at)! },
  };
}

/** The signed-in session of a cookie's token, or null when it is unknown or has expired. */
export async function authenticateSession(ctx: Context, token: string): Promise<DashboardAuth | null> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
  const db = ctx.database.db;
  const row = await sessions.findUserSessionByHash(db, hashToken(token));
  const now = ctx.clock.now();
  if (!row || row.expires_at <= now || row.absolute_expires_at <= now) return null;
  let expiresAt = Number(row.expires_at);
  let refreshed = false;
  if (now - Number(row.last_seen_at) >= refreshEveryMs) {
    expiresAt = Math.min(now + ctx.config.sessionDays * dayMs, Number(row.absolute_expires_at));
    await sessions.touchUserSession(db, row.id, now, expiresAt);
    refreshed = true;
  }
  return { sessionId: row.id, userId: row.user_id, workspaceId: row.workspace_id, expiresAt, refreshed };
}

/** Ends the session of this token, if there is one. */
export async function logout(ctx: Context, token: string | null): Promise<void> {
  if (token === null) return;
  await sessions.deleteUserSessionByHash(ctx.database.db, hashToken(token));
}

export async function describeSession(ctx: Context, auth: DashboardAuth): Promise<DashboardSessionView> {
  const db = ctx.database.db;
  const user = await repo.findUser(db, auth.workspaceId, auth.userId);
  const workspace = await repo.findWorkspace(db, auth.workspaceId);
  if (!user || !workspace) throw new AppError('unauthorized', 'Sign in again: this account no longer exists');
  return { success: true, user: { id: user.id, email: user.email, name: user.name, role: user.role }, workspace: { id: workspace.id, name: workspace.name }, expiresAt: isoTime(auth.expiresAt)! };
}
