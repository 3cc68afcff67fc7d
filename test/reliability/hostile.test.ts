import fc from 'fast-check';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, createWorkspace } from '../../src/engine/auth-service.js';
import { createTestApp, createTestContext, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';
import { edgeStrings, hostileValue, rawBodies, serialize, wrongContentTypes } from '../support/hostile.js';
import { FakeMeta } from '../support/fake-meta.js';
import { startFakeTwilio, type FakeTwilio } from '../support/fake-twilio.js';
import { Cluster } from './support/cluster.js';
import { changedTables, fingerprint } from './support/db-state.js';
import { fixtureSmsCredentials, populateWorkspace, sharedPathValues, type Fixture } from './support/fixtures.js';
import { figure, report, sleep } from './support/mode.js';
import { fillPath, loadDocument, operationsOf, pathParameters, type Operation } from './support/openapi.js';

/**
 * Hostile input, generated with fast-check for every operation of the OpenAPI document:
 * wrong types, missing and extra fields, huge and deeply nested values, invalid UTF-8,
 * bad JSON, wrong content types, huge numbers, unicode edge cases, path parameters that
 * are not ids or are another workspace's, odd query strings and auth headers. Expected
 * for every request: no 5xx, the process keeps answering, every 4xx carries the error
 * body, and a request answered 4xx wrote nothing (no table changed; see db-state.ts for
 * the bookkeeping tables that refused requests do write). Requests answered 2xx may
 * write. Through `app.inject` on both engines for speed, then over real sockets against
 * a `nudge start` child for what only a real server sees.
 */

const runs = figure('hostile_runs', 20, 150);
const seed = Number(process.env.NUDGE_RELIABILITY_SEED ?? Date.now() % 2_147_483_647);

interface HostileRequest {
  method: Operation['method'];
  url: string;
  headers: Record<string, string>;
  payload?: Buffer;
}

/** Dotted paths to the values inside an example (up to 4 levels), where a mutation may land. */
function leafPaths(value: unknown, prefix: string[] = [], depth = 0): string[][] {
  if (depth >= 4 || value === null || typeof value !== 'object') return prefix.length > 0 ? [prefix] : [];
  const entries = Array.isArray(value) ? value.slice(0, 3).map((v, i) => [String(i), v] as const) : Object.entries(value as Record<string, unknown>);
  const inner = entries.flatMap(([k, v]) => leafPaths(v, [...prefix, k], depth + 1));
  return prefix.length > 0 ? [prefix, ...inner] : inner;
}

function setAt(root: unknown, path: string[], value: unknown): unknown {
  const copy: unknown = structuredClone(root);
  let node = copy as Record<string, unknown>;
  for (const key of path.slice(0, -1)) {
    if (node[key] === null || typeof node[key] !== 'object') return copy;
    node = node[key] as Record<string, unknown>;
  }
  node[path.at(-1)!] = value;
  return copy;
}

function deleteAt(root: unknown, path: string[]): unknown {
  const copy: unknown = structuredClone(root);
  let node = copy as Record<string, unknown>;
  for (const key of path.slice(0, -1)) {
    if (node[key] === null || typeof node[key] !== 'object') return copy;
    node = node[key] as Record<string, unknown>;
  }
  if (Array.isArray(node)) node.splice(Number(path.at(-1)), 1);
  else delete node[path.at(-1)!];
  return copy;
}

const nobody = '00000000-0000-7000-8000-000000000000';

/** Everything a request to `op` may be, as a fast-check arbitrary. `providerUrl`: where accepted channel settings point. */
function requestsFor(op: Operation, own: Fixture, foreign: Fixture, token: string, providerUrl = 'http://127.0.0.1:2'): fc.Arbitrary<HostileRequest> {
  const params = pathParameters(op.path);
  const pathValue = (collection: string) =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...edgeStrings.filter((s) => s !== '' && s.length < 300)) },
      { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 40 }) },
      { weight: 1, arbitrary: fc.uuid() },
      // Percent-encodings of invalid UTF-8, a NUL, a slash and dot segments, sent as they are.
      { weight: 1, arbitrary: fc.constantFrom('%ED%A0%80', '%FF%FE', '%C0%AF', '%00', '%2F..%2F', '..', '.', '%25', '%').map((raw) => ({ raw })) },
      { weight: 2, arbitrary: fc.constant(foreign.ids[collection] ?? nobody) },
      // Our own records take the handlers deeper; deleting them would starve the later runs.
      { weight: op.method === 'DELETE' ? 0 : 2, arbitrary: fc.constant(own.ids[collection] ?? sharedPathValues[collection]?.[0] ?? nobody) },
    );
  const path = fc.tuple(...params.map((p) => pathValue(p.collection))).map((values) => {
    let i = 0;
    return fillPath(op.path, () => values[i++] as string | { raw: string });
  });

  const queryNames = op.parameters.filter((p) => p.in === 'query').map((p) => p.name);
  const queryValue = fc.oneof(hostileValue.map((v) => (typeof v === 'string' ? v : serialize(v))), fc.constantFrom('1', '0', '-1', '201', '1e309', 'true', 'yes', ''));
  const query = fc.array(fc.tuple(queryNames.length > 0 ? fc.oneof(fc.constantFrom(...queryNames), fc.string({ maxLength: 8 })) : fc.string({ maxLength: 8 }), queryValue), { maxLength: 4 }).map((pairs) => {
    if (pairs.length === 0) return '';
    const search = new URLSearchParams();
    for (const [k, v] of pairs) search.append(k, v.slice(0, 3000));
    return `?${search.toString()}`;
  });

  // Provider settings that are accepted must not point the workspace at the real providers.
  const example = op.operationId === 'setChannelSettings' ? { ...(op.body?.examples[0] as object), base_url: providerUrl } : (op.body?.examples[0] ?? {});
  const form = op.body?.contentType === 'application/x-www-form-urlencoded';
  const keys = [...new Set([...Object.keys(op.body?.schema.properties ?? {}), ...(example && typeof example === 'object' ? Object.keys(example) : [])])];
  const paths = leafPaths(example).filter((p) => !(op.operationId === 'setChannelSettings' && p[0] === 'base_url'));
  const mutation = fc.oneof(
    fc.tuple(fc.constant('set' as const), paths.length > 0 ? fc.constantFrom(...paths) : fc.constant<string[]>(['x']), hostileValue),
    fc.tuple(fc.constant('set' as const), fc.oneof(fc.constantFrom(...(keys.length > 0 ? keys : ['x'])), fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor')).map((k) => [k]), hostileValue),
    fc.tuple(fc.constant('drop' as const), paths.length > 0 ? fc.constantFrom(...paths) : fc.constant<string[]>(['x']), fc.constant(null)),
  );
  const mutated = fc.array(mutation, { minLength: 1, maxLength: 4 }).map((ms) => {
    let body: unknown = example;
    for (const [kind, at, value] of ms) body = kind === 'set' ? setAt(body, at, value) : deleteAt(body, at);
    return body;
  });
  const asForm = (body: unknown) =>
    Buffer.from(new URLSearchParams(Object.entries(body && typeof body === 'object' ? (body as Record<string, unknown>) : { body }).map(([k, v]): [string, string] => [k, typeof v === 'string' ? v : serialize(v)])).toString());
  const contentType = op.body?.contentType ?? 'application/json';
  const body: fc.Arbitrary<{ payload?: Buffer; contentType?: string }> = fc.oneof(
    { weight: 5, arbitrary: mutated.map((b) => ({ payload: form ? asForm(b) : Buffer.from(serialize(b)), contentType })) },
    { weight: 2, arbitrary: fc.constantFrom(...rawBodies(example)).map((payload) => ({ payload, contentType })) },
    { weight: 1, arbitrary: fc.constantFrom(...wrongContentTypes).map((ct) => ({ payload: Buffer.from(serialize(example)), contentType: ct })) },
    { weight: 1, arbitrary: fc.constantFrom({}, { payload: Buffer.alloc(0), contentType }, { payload: Buffer.from(serialize(example)) }) },
  );

  const auth = fc.oneof(
    { weight: 12, arbitrary: fc.constant({ authorization: `Bearer ${token}` }) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Record<string, string>>(
        {},
        { authorization: 'Bearer' },
        { authorization: 'Bearer nudge_not-a-token' },
        { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
        { authorization: `Bearer ${'x'.repeat(5000)}` },
        { 'x-api-key': `${token}x` },
        { authorization: `Bearer ${token} extra` },
      ),
    },
  );
  const extra = fc.oneof(
    { weight: 4, arbitrary: fc.constant<Record<string, string>>({}) },
    { weight: 1, arbitrary: fc.string({ minLength: 0, maxLength: 300, unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) }).map((k) => ({ 'idempotency-key': k })) },
    { weight: 1, arbitrary: fc.constantFrom<Record<string, string>>({ 'x-request-id': '../../x' }, { accept: 'text/html' }, { 'x-forwarded-for': '1.2.3.4, ::1, garbage' }, { 'content-encoding': 'gzip' }) },
  );

  return fc.record({ path, query, body: op.body || op.method !== 'GET' ? body : fc.constant<{ payload?: Buffer; contentType?: string }>({}), auth, extra }).map(({ path: p, query: q, body: b, auth: a, extra: e }) => ({
    method: op.method,
    url: `${p}${q}`,
    headers: { ...a, ...e, ...(b.contentType ? { 'content-type': b.contentType } : {}) },
    ...(b.payload !== undefined ? { payload: b.payload } : {}),
  }));
}

/** A stack trace, a source path or a driver's message in an answer: internals leaking out. */
const internals = /\bat [\w.<>]+ \(|node_modules|\.ts:\d+|SQLITE_|syntax error at or near|duplicate key value/;

describe.each(dialects)('hostile input to every operation on %s', (dialect) => {
  let t: TestApp;
  let own: Fixture;
  let foreign: Fixture;
  let ops: Operation[];
  // Providers that answer: a 503 for an unreachable provider is right, but not what this suite looks for.
  const meta = new FakeMeta();
  let twilio: FakeTwilio;

  beforeAll(async () => {
    await meta.start();
    const sms = fixtureSmsCredentials('Zq7Alpha');
    twilio = await startFakeTwilio(sms.accountSid, sms.authToken);
    t = await createTestApp(dialect);
    own = await populateWorkspace(t.ctx, t.app, t.token, 'Zq7Alpha', { smsBaseUrl: twilio.baseUrl });
    foreign = await populateWorkspace(t.ctx, t.app, t.other.token, 'Zq7Bravo');
    ops = operationsOf(await loadDocument(t.app));
  });
  afterAll(async () => {
    await t.close();
    await meta.stop();
    await twilio.close();
  });

  it('never answers 5xx, always with the error body, and writes nothing when it refuses', async () => {
    const statuses: Record<string, number> = {};
    const failures: string[] = [];
    const counterexamples: unknown[] = [];
    let requests = 0;
    const started = Date.now();
    for (const op of ops) {
      let before = await fingerprint(t.ctx.database);
      const property = fc.asyncProperty(requestsFor(op, own, foreign, t.token, meta.url), async (req) => {
        const res = await t.app.inject({ method: req.method, url: req.url, headers: req.headers, ...(req.payload !== undefined ? { payload: req.payload } : {}) });
        requests += 1;
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        const after = await fingerprint(t.ctx.database);
        const changed = changedTables(before, after);
        before = after;
        const label = `${res.statusCode} for ${req.method} ${req.url.slice(0, 200)}`;
        if (res.statusCode >= 500) throw new Error(`${label}: ${res.body.slice(0, 300)}`);
        if (internals.test(res.body)) throw new Error(`${label} shows internals: ${res.body.slice(0, 300)}`);
        if (res.statusCode >= 400) {
          if (String(res.headers['content-type']).startsWith('application/json')) {
            const body = res.json() as { code?: unknown; error?: unknown };
            if (typeof body.code !== 'string' || typeof body.error !== 'string' || body.error !== (body as { message?: unknown }).message) throw new Error(`${label} without the error body: ${res.body.slice(0, 300)}`);
          }
          if (changed.length > 0) throw new Error(`${label} changed ${changed.join(', ')}`);
        }
      });
      const result = await fc.check(property, { numRuns: runs, seed, endOnFailure: true });
      if (result.failed) {
        const request = result.counterexample?.[0] as HostileRequest | undefined;
        counterexamples.push({ operation: op.operationId, method: request?.method, url: request?.url, headers: request?.headers, payload: request?.payload?.toString('base64') });
        failures.push(`${op.operationId} (seed ${seed}, path ${result.counterexamplePath}): ${String((result.errorInstance as Error | undefined)?.message ?? result.errorInstance)}\n  payload: ${request?.payload?.toString('utf8').slice(0, 300)}\n  headers: ${JSON.stringify(request?.headers)}`);
      }
      const health = await t.app.inject({ method: 'GET', url: '/health' });
      if (health.statusCode !== 200) failures.push(`after ${op.operationId}: /health answered ${health.statusCode}`);
    }
    report(`hostile-${dialect}`, { operations: ops.length, requests, runsPerOperation: runs, seed, statuses, failures: failures.length, seconds: (Date.now() - started) / 1000 });
    // The shrunk failing requests in full (payload in base64), to replay them.
    if (counterexamples.length > 0) report(`hostile-${dialect}-counterexamples`, { seed, counterexamples });
    expect(failures).toEqual([]);
  });
});

/**
 * What only a real server sees: malformed HTTP, oversized headers, lying
 * Content-Length, bodies cut off mid-way, connections dropped half-way, and a burst of
 * the generated requests over real sockets. The process must stay up and keep answering.
 */
describe('hostile traffic to a real nudge start process', () => {
  let cluster: Cluster;
  let token = '';
  let url = '';
  let close: () => Promise<void> = async () => undefined;
  // As above: generated channel settings point at a provider that answers, since a 503
  // for an unreachable one (a template created through it, say) is the right answer.
  const meta = new FakeMeta();

  beforeAll(async () => {
    await meta.start();
    const ctx = await createTestContext('sqlite');
    const workspace = await createWorkspace(ctx, 'Hostile');
    token = (await createToken(ctx, { workspaceId: workspace.id, name: 'hostile', rateLimit: 10_000_000 })).token;
    cluster = new Cluster({ NUDGE_DATA_DIR: ctx.database.dataDir, NUDGE_SECRET_KEY: ctx.secretKey, LOG_LEVEL: 'warn' });
    const member = await cluster.add('start');
    await cluster.waitReady(member);
    url = member.url!;
    close = async () => {
      await cluster.stop();
      await ctx.database.close();
      await meta.stop();
    };
  });
  afterAll(async () => close());

  /** Writes raw bytes on a fresh connection and returns what came back before it closed (or after `waitMs`). */
  const raw = (bytes: Buffer | string, waitMs = 1500) =>
    new Promise<string>((resolve) => {
      const { port } = new URL(url);
      const socket = connect(Number(port), '127.0.0.1');
      const chunks: Buffer[] = [];
      const done = () => {
        socket.destroy();
        resolve(Buffer.concat(chunks).toString('latin1'));
      };
      socket.on('data', (d) => chunks.push(d));
      socket.on('error', done);
      socket.on('close', done);
      socket.on('connect', () => socket.write(bytes));
      setTimeout(done, waitMs);
    });

  it('stays up and keeps answering whatever arrives on the wire', async () => {
    const auth = `Authorization: Bearer ${token}\r\n`;
    const cases: Array<[string, Buffer | string]> = [
      ['garbage request line', 'HELLO\r\n\r\n'],
      ['unknown method', `BREW /api/v1/contacts HTTP/1.1\r\nHost: x\r\n\r\n`],
      ['HTTP/0.9', 'GET /\r\n'],
      ['header without colon', `GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n`],
      ['huge header', `GET /api/v1/me HTTP/1.1\r\nHost: x\r\n${auth}X-Big: ${'a'.repeat(100_000)}\r\n\r\n`],
      ['10 000 headers', `GET /api/v1/me HTTP/1.1\r\nHost: x\r\n${auth}${Array.from({ length: 10_000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`],
      ['NUL in the URL', Buffer.concat([Buffer.from('GET /api/v1/contacts?q='), Buffer.from([0]), Buffer.from(` HTTP/1.1\r\nHost: x\r\n${auth}\r\n`)])],
      ['invalid UTF-8 in the URL', Buffer.concat([Buffer.from('GET /api/v1/sequences/'), Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from(` HTTP/1.1\r\nHost: x\r\n${auth}\r\n`)])],
      ['invalid UTF-8 in a header', Buffer.concat([Buffer.from(`GET /api/v1/me HTTP/1.1\r\nHost: x\r\n${auth}X-Name: `), Buffer.from([0xff, 0xfe]), Buffer.from('\r\n\r\n')])],
      ['Content-Length larger than the body', `POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"phone":`],
      ['Content-Length smaller than the body', `POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{"phone":"+14155550123"}GARBAGE`],
      ['negative Content-Length', `POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`],
      ['two Content-Lengths', `POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}`],
      ['chunked and Content-Length', `POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`],
      ['bad chunk size', `POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`],
      ['body over the limit, streamed', `POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 3000000\r\n\r\n${'{"a":"'.padEnd(1_500_000, 'x')}`],
      ['invalid UTF-8 body', Buffer.concat([Buffer.from(`POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 17\r\n\r\n{"name":"`), Buffer.from([0xff, 0xfe, 0xfd, 0xfc, 0xc0, 0x80]), Buffer.from('"}')])],
      ['deep JSON', `POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 200000\r\n\r\n${'['.repeat(100_000)}${']'.repeat(100_000)}`],
      ['pipelined requests', `GET /health HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(200)],
      ['headers never finished', `GET /api/v1/me HTTP/1.1\r\nHost: x\r\n${auth}X-Slow: `],
    ];
    const answers: Record<string, string> = {};
    for (const [name, bytes] of cases) {
      const answer = await raw(bytes);
      answers[name] = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? (answer === '' ? 'closed' : answer.slice(0, 20));
      expect(answer, name).not.toMatch(/^HTTP\/1\.1 5\d\d/);
      const health = await fetch(`${url}/health`);
      expect(health.status, `after ${name}`).toBe(200);
    }

    // 300 connections opened at once and dropped half-way through a request.
    await Promise.all(Array.from({ length: 300 }, (_, i) => raw(`POST /api/v1/actions/create-contact HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"phone":"+1415555${String(i).padStart(4, '0')}`, 200)));

    // The generated requests over real sockets (a sample), aborted at random.
    const app = await createTestApp('sqlite');
    const ops = operationsOf(await loadDocument(app.app)).filter((op) => !op.path.startsWith('/webhooks'));
    await app.close();
    const empty: Fixture = { ids: {}, markers: [] };
    let sent = 0;
    let fiveXx = 0;
    const fiveXxSeen: string[] = [];
    for (const op of ops) {
      for (const req of fc.sample(requestsFor(op, empty, empty, token, meta.url), { numRuns: figure('hostile_socket_runs', 3, 10), seed })) {
        let answer = '';
        const status = await new Promise<number>((resolve) => {
          const u = new URL(req.url, url);
          const r = httpRequest({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: req.method, headers: req.headers }, (res) => {
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              if (answer.length < 500) answer += chunk;
            });
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          r.on('error', () => resolve(0));
          if (sent % 7 === 0) setTimeout(() => r.destroy(), 1);
          r.end(req.payload);
        });
        sent += 1;
        if (status >= 500) {
          fiveXx += 1;
          fiveXxSeen.push(`${status} ${req.method} ${req.url.slice(0, 200)} → ${answer.slice(0, 500)}`);
        }
      }
    }
    await sleep(500);
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(fiveXxSeen, `seed ${seed}`).toEqual([]);
    expect(cluster.crashes).toEqual([]);
    report('hostile-socket', { wireCases: cases.length, answers, droppedConnections: 300, generatedRequests: sent, fiveXx });
  });
});
