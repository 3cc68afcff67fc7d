import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { isoTime } from '../domain/clock.js';
import { AppError, invalid } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import { isValidScope } from '../domain/scopes.js';
import * as repo from '../store/workspace-repository.js';
import type { Context } from './context.js';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number, options: object) => Promise<Buffer>;

// scrypt is memory-hard: N=2^15, r=8 needs 32 MiB per hash, which makes GPU guessing costly.
const scryptParams = { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, 32, scryptParams);
  return `scrypt$${scryptParams.N}$${scryptParams.r}$${scryptParams.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scryptAsync(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: 64 * 1024 * 1024,
  });
  return timingSafeEqual(expected, actual);
}

/** Tokens carry 256 random bits, so a fast hash is enough to store them: there is nothing to guess. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

const tokenPattern = /^nudge_[A-Za-z0-9_-]{43}$/;

export function looksLikeToken(value: string): boolean {
  return tokenPattern.test(value);
}

export interface Workspace {
  id: string;
  name: string;
  created_at: string;
}

export async function createWorkspace(ctx: Context, name: string): Promise<Workspace> {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > 200) throw invalid('name', 'must be 1 to 200 characters');
  const row = { id: newId(), name: trimmed, settings: '{}', created_at: ctx.clock.now() };
  await repo.insertWorkspace(ctx.database.db, row);
  return { id: row.id, name: row.name, created_at: isoTime(row.created_at) };
}

export async function resolveWorkspace(ctx: Context, idOrName: string | undefined): Promise<repo.WorkspaceRow> {
  const db = ctx.database.db;
  if (idOrName === undefined) {
    const all = await repo.listWorkspaces(db);
    if (all.length === 0) throw new AppError('not_found', 'There is no workspace yet; create one with `nudge workspace create NAME`');
    if (all.length > 1) throw new AppError('bad_request', 'There are several workspaces; name one with --workspace');
    return all[0]!;
  }
  const found = (await repo.findWorkspace(db, idOrName)) ?? (await repo.findWorkspaceByName(db, idOrName));
  if (!found) throw new AppError('not_found', `Workspace "${idOrName}" not found`);
  return found;
}

export interface CreatedToken {
  id: string;
  name: string;
  token: string;
  prefix: string;
  scopes: string[];
  workspace_id: string;
  rate_limit: number | null;
  created_at: string;
}

export async function createToken(
  ctx: Context,
  input: { workspaceId: string; name: string; scopes?: string[]; userId?: string | null; rateLimit?: number | null },
): Promise<CreatedToken> {
  const scopes = input.scopes && input.scopes.length > 0 ? input.scopes : ['*'];
  const bad = scopes.filter((s) => !isValidScope(s));
  if (bad.length > 0) throw invalid('scopes', `contains unknown scopes: ${bad.join(', ')}`);
  if (input.name.trim().length === 0 || input.name.length > 200) throw invalid('name', 'must be 1 to 200 characters');
  const token = `nudge_${randomBytes(32).toString('base64url')}`;
  const row = {
    id: newId(),
    workspace_id: input.workspaceId,
    user_id: input.userId ?? null,
    name: input.name.trim(),
    token_hash: hashToken(token),
    prefix: token.slice(0, 14),
    scopes: toJson(scopes),
    rate_limit: input.rateLimit ?? null,
    created_at: ctx.clock.now(),
    last_used_at: null,
    revoked_at: null,
  };
  await repo.insertToken(ctx.database.db, row);
  return {
    id: row.id,
    name: row.name,
    token,
    prefix: row.prefix,
    scopes,
    workspace_id: row.workspace_id,
    rate_limit: row.rate_limit,
    created_at: isoTime(row.created_at),
  };
}

export interface Principal {
  tokenId: string;
  workspaceId: string;
  userId: string | null;
  scopes: string[];
  rateLimit: number | null;
}

/** How precisely a token's `last_used_at` follows its use. */
export const tokenUseResolutionMs = 60_000;

/** Resolves a presented token, or null when it is unknown or revoked. */
export async function authenticateToken(ctx: Context, token: string): Promise<Principal | null> {
  if (!looksLikeToken(token)) return null;
  const hash = hashToken(token);
  const row = await ctx.lookups.token(hash, () => repo.findTokenByHash(ctx.database.db, hash));
  if (!row || row.revoked_at !== null) return null;
  const now = ctx.clock.now();
  if (row.last_used_at === null || now - row.last_used_at >= tokenUseResolutionMs) {
    // Recorded at most once a minute per token, off the request's path: the write changes
    // api_tokens, so the kept row is read again with its new time by the next request.
    repo.touchToken(ctx.database.db, row.id, now, now - tokenUseResolutionMs).catch((error: unknown) => ctx.log.debug({ err: error }, 'recording when a token was last used failed'));
  }
  return {
    tokenId: row.id,
    workspaceId: row.workspace_id,
    userId: row.user_id,
    scopes: parseJson<string[]>(row.scopes, []),
    rateLimit: row.rate_limit,
  };
}

export async function listTokens(ctx: Context, workspaceId: string | null) {
  const rows = await repo.listTokens(ctx.database.db, workspaceId);
  return rows.map((row) => ({
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    workspace_id: row.workspace_id,
    scopes: parseJson<string[]>(row.scopes, []),
    rate_limit: row.rate_limit,
    created_at: isoTime(row.created_at),
    last_used_at: isoTime(row.last_used_at),
    revoked_at: isoTime(row.revoked_at),
  }));
}

export async function revokeToken(ctx: Context, idOrPrefix: string): Promise<void> {
  const count = await repo.revokeToken(ctx.database.db, idOrPrefix, ctx.clock.now());
  if (count === 0) throw new AppError('not_found', `No active token "${idOrPrefix}"`);
}

export async function createUser(ctx: Context, input: { workspaceId: string; email: string; name: string; password: string | null }) {
  const row = {
    id: newId(),
    workspace_id: input.workspaceId,
    email: input.email.trim().toLowerCase(),
    name: input.name,
    password_hash: input.password === null ? null : await hashPassword(input.password),
    role: 'admin',
    created_at: ctx.clock.now(),
  };
  await repo.insertUser(ctx.database.db, row);
  return { id: row.id, email: row.email, name: row.name };
}

export async function describeIdentity(ctx: Context, principal: Principal) {
  const db = ctx.database.db;
  const workspace = await repo.findWorkspace(db, principal.workspaceId);
  if (!workspace) throw new AppError('unauthorized', 'The token belongs to no workspace');
  const user = principal.userId ? await repo.findUser(db, principal.workspaceId, principal.userId) : undefined;
  return {
    id: user?.id ?? principal.tokenId,
    email: user?.email ?? null,
    name: user?.name ?? 'API token',
    tenant: { id: workspace.id, name: workspace.name },
    scopes: principal.scopes,
  };
}

/**
 * On the first start with an empty database: a default workspace, an admin user
 * and an admin token. Returns the token (shown once) or null when the database was not empty.
 */
export async function bootstrapIfEmpty(ctx: Context): Promise<{ token: string; workspace: Workspace; password: string } | null> {
  if ((await repo.countWorkspaces(ctx.database.db)) > 0) return null;
  const workspace = await createWorkspace(ctx, 'Default workspace');
  const password = randomBytes(12).toString('base64url');
  const user = await createUser(ctx, { workspaceId: workspace.id, email: 'admin@localhost', name: 'Admin', password });
  const token = await createToken(ctx, { workspaceId: workspace.id, name: 'admin', scopes: ['*'], userId: user.id });
  return { token: token.token, workspace, password };
}
