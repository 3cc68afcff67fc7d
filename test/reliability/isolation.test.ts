import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/engine/auth-service.js';
import { knownScopes } from '../../src/domain/scopes.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { changedTables, fingerprint } from './support/db-state.js';
import { populateWorkspace, sharedPathValues, type Fixture } from './support/fixtures.js';
import { fillPath, loadDocument, operationsOf, pathParameters, type Operation } from './support/openapi.js';
import { report } from './support/mode.js';

/**
 * Workspace isolation and scopes for every operation in the OpenAPI document, so a new
 * route is covered the day it is added. Two workspaces hold one of everything (see
 * fixtures.ts); the second one's token then calls every operation with the first one's
 * records — in the path and in the body — and every operation is called with tokens
 * that lack the scope it needs. Expected: 404 for a record of another workspace, 403
 * naming the missing scope, never a byte of the other workspace's data in any answer,
 * and nothing of the other workspace changed.
 * (test/api/engine-isolation.test.ts keeps its hand-written checks in the normal suite.)
 */

/** Body fields that carry a record's id, by the collection the record lives in. */
const idFields: Record<string, string> = {
  sequence_id: 'sequences',
  flow_id: 'flows',
  definition_id: 'sequences',
  contact_id: 'contacts',
  session_id: 'sessions',
  template_id: 'templates',
  list_id: 'lists',
  listId: 'lists',
  segment_id: 'segments',
  segmentId: 'segments',
  subscriberIds: 'subscriber-ids',
  variantSequenceId: 'sequences',
  contactId: 'contacts',
  contactIds: 'contacts',
  code: 'discounts',
};

/** What must go with an id field for it to be used at all (a definition's trigger). */
const companions: Record<string, Record<string, unknown>> = {
  segmentId: { trigger: 'segment_entered' },
  listId: { trigger: 'contact_added' },
};

/** An id no workspace has, well-formed: what a scope check is made with, so no handler can act. */
const nobody = '00000000-0000-7000-8000-000000000000';

function firstExample(op: Operation): unknown {
  return op.body?.examples[0];
}

/** An example body with every id field naming a record of `ids` (or `nobody`'s). */
function bodyWith(op: Operation, ids: Record<string, string> | null, example: unknown = firstExample(op)): unknown {
  if (example === undefined || example === null || typeof example !== 'object' || Array.isArray(example)) return example;
  const out: Record<string, unknown> = { ...(example as Record<string, unknown>) };
  for (const [field, collection] of Object.entries(idFields)) {
    if (!(field in out)) continue;
    const value = ids ? (ids[collection] ?? nobody) : nobody;
    out[field] = Array.isArray(out[field]) ? [value] : value;
  }
  return out;
}

function pathWith(op: Operation, ids: Record<string, string> | null): string {
  return fillPath(op.path, (collection) => sharedPathValues[collection]?.[1] ?? (ids ? (ids[collection] ?? nobody) : nobody));
}

function payloadOf(op: Operation, body: unknown): { payload?: string; headers: Record<string, string> } {
  if (body === undefined || !op.body) return { headers: {} };
  if (op.body.contentType === 'application/x-www-form-urlencoded') return { payload: new URLSearchParams(body as Record<string, string>).toString(), headers: { 'content-type': op.body.contentType } };
  return { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } };
}

describe.each(dialects)('isolation of every operation in the OpenAPI document on %s', (dialect) => {
  let t: TestApp;
  let a: Fixture;
  let b: Fixture;
  let ops: Operation[];
  const asB = () => ({ authorization: `Bearer ${t.other.token}` });

  beforeAll(async () => {
    t = await createTestApp(dialect);
    a = await populateWorkspace(t.ctx, t.app, t.token, 'Zq7Alpha');
    b = await populateWorkspace(t.ctx, t.app, t.other.token, 'Zq7Bravo');
    ops = operationsOf(await loadDocument(t.app)).filter((op) => !op.public);
  });
  afterAll(async () => t.close());

  /** The markers of A's data that the request itself does not carry: finding one in an answer is a leak. */
  const leaks = (text: string, request: string) => a.markers.filter((m) => !request.includes(m) && text.includes(m));

  it('has a record of every collection a path names, so each route is really tried', () => {
    const unknown = ops.flatMap((op) => pathParameters(op.path).filter((p) => !(p.collection in a.ids) && !(p.collection in sharedPathValues)).map((p) => `${op.method} ${op.path} {${p.name}} (${p.collection})`));
    expect(unknown, 'add a record of these collections to test/reliability/support/fixtures.ts').toEqual([]);
  });

  it("answers 404 to another workspace's record in the path, leaks nothing and changes nothing", async () => {
    const before = await fingerprint(t.ctx.database, { workspaceId: t.workspaceId });
    const wrong: string[] = [];
    let calls = 0;
    for (const op of ops) {
      const params = pathParameters(op.path).filter((p) => p.collection in a.ids);
      if (params.length === 0) continue;
      // Only the path names A's record; the body names B's own, so the path decides.
      const url = pathWith(op, { ...b.ids, ...Object.fromEntries(params.map((p) => [p.collection, a.ids[p.collection]!])) });
      const { payload, headers } = payloadOf(op, bodyWith(op, b.ids));
      const res = await t.app.inject({ method: op.method, url, headers: { ...asB(), ...headers }, ...(payload !== undefined ? { payload } : {}) });
      calls += 1;
      if (res.statusCode !== 404) wrong.push(`${op.method} ${op.path}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      const leaked = leaks(res.body, url + (payload ?? ''));
      if (leaked.length > 0) wrong.push(`${op.method} ${op.path} leaked ${leaked.join(', ')}`);
    }
    expect(wrong).toEqual([]);
    expect(changedTables(before, await fingerprint(t.ctx.database, { workspaceId: t.workspaceId }))).toEqual([]);
    report(`isolation-path-${dialect}`, { operations: ops.length, calls });
  });

  it("refuses another workspace's record named in a request body, leaks nothing and changes nothing", async () => {
    const before = await fingerprint(t.ctx.database, { workspaceId: t.workspaceId });
    const wrong: string[] = [];
    const statuses: Record<string, number> = {};
    let cases = 0;
    const answered2xx: string[] = [];
    for (const op of ops) {
      for (const example of op.body?.examples ?? []) {
        if (!example || typeof example !== 'object' || Array.isArray(example)) continue;
        // The id fields of the example, and those the schema declares (added to it).
        const declared = Object.keys(op.body?.schema.properties ?? {});
        for (const field of Object.keys(idFields).filter((f) => f in example || declared.includes(f))) {
          const mine = bodyWith(op, b.ids, example) as Record<string, unknown>;
          const theirs = a.ids[idFields[field]!]!;
          const list = Array.isArray(mine[field]) || op.body?.schema.properties?.[field]?.type === 'array';
          const body = { ...mine, ...(declared.includes('trigger') ? (companions[field] ?? {}) : {}), [field]: list ? [theirs] : theirs };
          const url = pathWith(op, b.ids);
          const { payload, headers } = payloadOf(op, body);
          const res = await t.app.inject({ method: op.method, url, headers: { ...asB(), ...headers }, payload: payload! });
          statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
          if (res.statusCode < 300) answered2xx.push(`${op.operationId}.${field}`);
          cases += 1;
          // A list of ids may be answered 2xx, reporting which were not found; it must still change nothing of A's.
          const refused = res.statusCode === 404 || res.statusCode === 422 || (list && res.statusCode < 300);
          if (!refused) wrong.push(`${op.method} ${op.path} with A's ${field}: ${res.statusCode} ${res.body.slice(0, 200)}`);
          const leaked = leaks(res.body, url + payload);
          if (leaked.length > 0) wrong.push(`${op.method} ${op.path} with A's ${field} leaked ${leaked.join(', ')}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(changedTables(before, await fingerprint(t.ctx.database, { workspaceId: t.workspaceId }))).toEqual([]);
    report(`isolation-body-${dialect}`, { cases, statuses, answered2xx: [...new Set(answered2xx)] });
  });

  it('finds its own markers in its own answers (the leak check can see data)', async () => {
    let showing = 0;
    for (const op of ops.filter((o) => o.method === 'GET')) {
      const res = await t.app.inject({ method: op.method, url: pathWith(op, a.ids), headers: { authorization: `Bearer ${t.token}` } });
      if (a.markers.some((m) => res.body.includes(m))) showing += 1;
    }
    expect(showing).toBeGreaterThanOrEqual(10);
  });

  it("never shows another workspace's data in any answer to any operation", async () => {
    const before = await fingerprint(t.ctx.database, { workspaceId: t.workspaceId });
    const wrong: string[] = [];
    for (const op of ops) {
      const url = pathWith(op, b.ids);
      const { payload, headers } = payloadOf(op, bodyWith(op, b.ids));
      const res = await t.app.inject({ method: op.method, url, headers: { ...asB(), ...headers }, ...(payload !== undefined ? { payload } : {}) });
      const leaked = leaks(res.body, url + (payload ?? ''));
      if (leaked.length > 0) wrong.push(`${op.method} ${op.path} (${res.statusCode}) leaked ${leaked.join(', ')}`);
      if (res.statusCode >= 500) wrong.push(`${op.method} ${op.path}: ${res.statusCode}`);
    }
    expect(wrong).toEqual([]);
    expect(changedTables(before, await fingerprint(t.ctx.database, { workspaceId: t.workspaceId }))).toEqual([]);
  });

  it('answers 403 naming the scope to a token without it, for every operation', async () => {
    const tokenFor = async (scopes: string[]) => `Bearer ${(await createToken(t.ctx, { workspaceId: t.other.workspaceId, name: `scopes ${scopes.length}`, scopes, rateLimit: 1_000_000 })).token}`;
    const probes = [await tokenFor(['webhooks:read']), await tokenFor(['tokens:read'])];
    const tokens = new Map<string, string>();
    const token = async (scopes: string[]) => {
      const key = scopes.join(',');
      if (!tokens.has(key)) tokens.set(key, await tokenFor(scopes));
      return tokens.get(key)!;
    };
    const send = (op: Operation, authorization: string) => {
      // Ids no workspace has: whatever a handler would do, it finds nothing to do it to.
      const { payload, headers } = payloadOf(op, bodyWith(op, null));
      return t.app.inject({ method: op.method, url: pathWith(op, null), headers: { authorization, ...headers }, ...(payload !== undefined ? { payload } : {}) });
    };
    const wrong: string[] = [];
    const required: Record<string, string> = {};
    const unscoped: string[] = [];
    for (const op of ops) {
      let scope: string | null = null;
      for (const probe of probes) {
        const res = await send(op, probe);
        if (res.statusCode === 403) {
          scope = String(res.json().missing_scope);
          break;
        }
      }
      if (scope === null) {
        unscoped.push(op.operationId);
        continue;
      }
      required[op.operationId] = scope;
      if (!(knownScopes as readonly string[]).includes(scope)) wrong.push(`${op.operationId} asks for the unknown scope ${scope}`);
      // Every other scope: still refused, naming this one.
      const without = await send(op, await token(knownScopes.filter((s) => s !== scope)));
      if (without.statusCode !== 403 || without.json().missing_scope !== scope || !String(without.json().error).includes(scope)) {
        wrong.push(`${op.operationId} without ${scope}: ${without.statusCode} ${without.body.slice(0, 200)}`);
      }
      // That scope alone is enough to get past the check.
      const only = await send(op, await token([scope]));
      if (only.statusCode === 403 || only.statusCode === 401) wrong.push(`${op.operationId} with only ${scope}: ${only.statusCode} ${only.body.slice(0, 200)}`);
    }
    expect(wrong).toEqual([]);
    // Identity is the one operation any valid token may call.
    expect(unscoped).toEqual(['getMe']);
    report(`isolation-scopes-${dialect}`, { operations: ops.length, scoped: Object.keys(required).length, unscoped });
  });
});
