import { createConfig, lintFromString, type NormalizedProblem } from '@redocly/openapi-core';
import { Type } from 'typebox';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/api/app.js';
import { apiTags } from '../../src/api/openapi-document.js';
import { errorResponses, ok } from '../../src/api/schemas.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { dialects } from '../support/databases.js';

/**
 * The OpenAPI document is generated from whatever routes are registered, so these
 * checks hold for every route added later: lint with Redocly's recommended rules
 * (a few raised to errors), plus the house rules each operation must meet.
 */

type Json = Record<string, unknown>;
type Operation = {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: unknown[];
  parameters?: Array<{ name: string; in: string }>;
  requestBody?: Json;
  responses?: Record<string, Json>;
};

const methods = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'];

function operationsOf(document: Json): Array<{ where: string; operation: Operation }> {
  const out: Array<{ where: string; operation: Operation }> = [];
  for (const [path, item] of Object.entries((document.paths ?? {}) as Record<string, Record<string, Operation>>)) {
    for (const method of methods) {
      const operation = item[method];
      if (operation) out.push({ where: `${method.toUpperCase()} ${path}`, operation });
    }
  }
  return out;
}

async function lint(document: Json): Promise<NormalizedProblem[]> {
  const config = await createConfig({
    extends: ['recommended'],
    rules: {
      // Raised from warnings: each is a requirement of our document, not a matter of taste.
      'operation-operationId': 'error',
      'operation-2xx-response': 'error',
      'operation-tag-defined': 'error',
      'tag-description': 'error',
      'no-invalid-media-type-examples': 'error',
      'no-invalid-parameter-examples': 'error',
      'no-invalid-schema-examples': 'error',
    },
  });
  return lintFromString({ source: JSON.stringify(document), absoluteRef: 'openapi.json', config });
}

/** One line per problem (the problem objects themselves carry the whole document). */
function describeProblems(problems: NormalizedProblem[]): string[] {
  return problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location.map((l) => l.pointer ?? '').join(', ')}`);
}

function resolvePointer(document: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = document;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = node && typeof node === 'object' ? (node as Json)[key] : undefined;
  }
  return node;
}

function refsOf(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => refsOf(n, found));
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') found.push(value);
      else refsOf(value, found);
    }
  }
  return found;
}

function hasExample(response: Json | undefined): boolean {
  const content = (response?.content ?? {}) as Record<string, Json>;
  return Object.values(content).some((media) => media.example !== undefined || (media.examples !== undefined && Object.keys(media.examples as Json).length > 0));
}

/** A route that reads a body, a path parameter and Idempotency-Key, for the shared responses it must get. */
function addDocumentedTestRoute(app: App): void {
  app.post(
    '/api/v1/test-widgets/:group',
    {
      config: { scope: 'contacts:write', idempotent: true },
      schema: {
        summary: 'Create a widget (test only)',
        tags: ['Contacts'],
        operationId: 'createTestWidget',
        params: Type.Object({ group: Type.String({ maxLength: 20 }) }),
        body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 50 }) }, { additionalProperties: false }),
        response: {
          201: ok(Type.Object({ id: Type.String(), name: Type.String() }), 'The widget', { id: 'w1', name: 'Blue' }),
          ...errorResponses(404),
        },
      },
    },
    async (request, reply) => reply.code(201).send({ id: 'w1', name: request.body.name }),
  );
}

// The document does not depend on the database engine, but the app runs on each.
describe.each(dialects)('OpenAPI document on %s', (dialect) => {
  let t: TestApp;
  let document: Json;

  beforeAll(async () => {
    t = await createTestApp(dialect);
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    document = res.json();
  });
  afterAll(async () => t.close());

  it('is served without a token as OpenAPI 3.1', async () => {
    expect(document.openapi).toBe('3.1.0');
    expect(operationsOf(document).length).toBeGreaterThan(0);
  });

  it('lints without errors', async () => {
    const problems = await lint(document);
    const errors = problems.filter((p) => p.severity === 'error');
    const warnings = problems.filter((p) => p.severity === 'warn');
    if (warnings.length > 0) console.log(`OpenAPI lint warnings:\n${describeProblems(warnings).join('\n')}`);
    expect(describeProblems(errors)).toEqual([]);
  });

  it('gives every operation a summary, an operationId, a declared tag and a success response with an example', () => {
    const declared = new Map(((document.tags ?? []) as Array<{ name: string; description?: string }>).map((tag) => [tag.name, tag.description]));
    const problems: string[] = [];
    for (const { where, operation } of operationsOf(document)) {
      if (!operation.summary?.trim()) problems.push(`${where}: no summary`);
      if (!operation.operationId) problems.push(`${where}: no operationId`);
      if (!operation.tags?.length) problems.push(`${where}: no tags`);
      for (const tag of operation.tags ?? []) if (!declared.get(tag)) problems.push(`${where}: tag ${tag} is not declared with a description (add it to apiTags)`);
      const success = Object.entries(operation.responses ?? {}).filter(([code]) => /^2/.test(code));
      if (success.length === 0) problems.push(`${where}: no 2xx response`);
      for (const [code, response] of success) {
        if (code !== '204' && !hasExample(response)) problems.push(`${where}: response ${code} has no example`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('documents the error responses each operation can give, with the shared Error body and an example', () => {
    const problems: string[] = [];
    for (const { where, operation } of operationsOf(document)) {
      const codes = Object.keys(operation.responses ?? {});
      const secured = !(Array.isArray(operation.security) && operation.security.length === 0);
      const needed = [
        ...(secured ? ['401', '429'] : []),
        ...(operation.requestBody ? ['400', '413', '415', '422'] : []),
        ...((operation.parameters ?? []).some((p) => p.in === 'query' || p.in === 'path') ? ['422'] : []),
        ...((operation.parameters ?? []).some((p) => p.name === 'Idempotency-Key') ? ['409'] : []),
      ];
      for (const code of needed) if (!codes.includes(code)) problems.push(`${where}: no ${code} response`);
      for (const [code, response] of Object.entries(operation.responses ?? {})) {
        if (!/^[45]/.test(code)) continue;
        const media = ((response.content ?? {}) as Record<string, Json>)['application/json'];
        if ((media?.schema as Json | undefined)?.$ref !== '#/components/schemas/Error') problems.push(`${where}: ${code} does not use the Error schema`);
        if (!hasExample(response)) problems.push(`${where}: ${code} has no example`);
      }
      if (secured && !(operation.responses?.['429']?.headers as Json | undefined)?.['Retry-After']) problems.push(`${where}: 429 does not document Retry-After`);
    }
    expect(problems).toEqual([]);
  });

  it('emits the Error schema under components.schemas and every $ref resolves', () => {
    const schemas = (document.components as Json).schemas as Json;
    expect(schemas.Error).toMatchObject({ type: 'object', required: ['error', 'code', 'message'] });
    const refs = refsOf(document);
    expect(refs).toContain('#/components/schemas/Error');
    const unresolved = refs.filter((ref) => resolvePointer(document, ref) === undefined);
    expect(unresolved).toEqual([]);
    // A schema $id such as "Error" must not leak into the document as a bare reference.
    expect(refs.filter((ref) => !ref.startsWith('#/'))).toEqual([]);
  });

  it('declares only tags that operations use, each with a description', () => {
    const used = new Set(operationsOf(document).flatMap(({ operation }) => operation.tags ?? []));
    const declared = (document.tags ?? []) as Array<{ name: string; description: string }>;
    expect(declared.map((tag) => tag.name).sort()).toEqual([...used].sort());
    for (const tag of declared) expect(tag.description.length).toBeGreaterThan(10);
    expect(new Set(apiTags.map((tag) => tag.name)).size).toBe(apiTags.length);
  });

  it("keeps the dashboard's internal routes and the click redirect out of the document, and documents execute and A/B tests", () => {
    const paths = Object.keys(document.paths as Json);
    expect(paths.filter((p) => (p.startsWith('/api/') && !p.startsWith('/api/v1/')) || p.startsWith('/t/'))).toEqual([]);
    for (const path of ['/api/v1/sequences/{id}/execute', '/api/v1/sequences/{id}/ab-test', '/api/v1/sequences/{id}/ab-test/results']) expect(paths).toContain(path);
  });

  it('serves the same document as YAML', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/openapi.yaml' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/yaml/);
    expect(parseYaml(res.body)).toEqual(document);
  });

  it('serves the reference page at /docs from local assets only', async () => {
    for (const url of ['/docs', '/docs/']) {
      const page = await t.app.inject({ method: 'GET', url });
      expect(page.statusCode, url).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      expect(page.body).toContain('<title>Nudge API reference</title>');
      const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
      expect(assets.length).toBeGreaterThan(2);
      // No CDN: every asset is a path on this server.
      expect(assets.filter((asset) => /^(?:https?:)?\/\//.test(asset))).toEqual([]);
      for (const asset of assets) {
        const resolved = new URL(asset, `http://nudge.local${url.endsWith('/') ? url : `${url}/`}`).pathname;
        const res = await t.app.inject({ method: 'GET', url: resolved });
        expect(res.statusCode, resolved).toBe(200);
        expect(res.body.length, resolved).toBeGreaterThan(100);
      }
    }
    const spec = await t.app.inject({ method: 'GET', url: '/docs/json' });
    expect(spec.statusCode).toBe(200);
    expect(spec.json().paths).toEqual(document.paths);
  });
});

describe('OpenAPI document with a route that reads a body', () => {
  let t: TestApp;
  let document: Json;

  beforeAll(async () => {
    t = await createTestApp('sqlite', { beforeReady: addDocumentedTestRoute });
    document = (await t.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
  });
  afterAll(async () => t.close());

  it('adds the shared error responses and the Idempotency-Key header, and still lints clean', async () => {
    const operation = (document.paths as Record<string, Record<string, Operation>>)['/api/v1/test-widgets/{group}']!.post!;
    expect(Object.keys(operation.responses!)).toEqual(['201', '400', '401', '403', '404', '409', '413', '415', '422', '429']);
    expect(operation.parameters?.map((p) => `${p.in}:${p.name}`).sort()).toEqual(['header:Idempotency-Key', 'path:group']);
    expect(operation.requestBody).toBeDefined();
    expect(operation.responses!['201']!.headers).toHaveProperty('Idempotent-Replayed');
    expect(operation.responses!['429']!.headers).toHaveProperty('Retry-After');
    const errors = (await lint(document)).filter((p) => p.severity === 'error');
    expect(describeProblems(errors)).toEqual([]);
  });

  it('documents what the route really does', async () => {
    const headers = { ...t.auth, 'content-type': 'application/json' };
    const created = await t.app.inject({ method: 'POST', url: '/api/v1/test-widgets/g1', headers, payload: '{"name":"Blue"}' });
    expect(created.statusCode).toBe(201);
    const invalid = await t.app.inject({ method: 'POST', url: '/api/v1/test-widgets/g1', headers, payload: '{"name":""}' });
    expect(invalid.statusCode).toBe(422);
    const notJson = await t.app.inject({ method: 'POST', url: '/api/v1/test-widgets/g1', headers: { ...t.auth, 'content-type': 'text/plain' }, payload: 'Blue' });
    expect(notJson.statusCode).toBe(415);
  });
});
