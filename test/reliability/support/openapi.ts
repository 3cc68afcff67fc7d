import type { App } from '../../../src/api/app.js';

/**
 * The operations of Nudge's own OpenAPI document (GET /api/v1/openapi.json), as the
 * hostile-input and isolation suites walk them: a route added with a schema is covered
 * without anyone editing those suites.
 */

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  maxItems?: number;
  additionalProperties?: boolean | JsonSchema;
  $ref?: string;
  examples?: unknown[];
  example?: unknown;
  default?: unknown;
};

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: JsonSchema;
}

export interface Operation {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** The templated path, e.g. `/api/v1/sequences/{id}`. */
  path: string;
  operationId: string;
  /** No API token (provider webhooks, unsubscribe pages, health). */
  public: boolean;
  parameters: Parameter[];
  body: { required: boolean; contentType: string; schema: JsonSchema; examples: unknown[] } | null;
  responses: string[];
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

export async function loadDocument(app: App): Promise<OpenApiDocument> {
  const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
  if (res.statusCode !== 200) throw new Error(`openapi.json answered ${res.statusCode}`);
  return res.json() as OpenApiDocument;
}

/** Follows `$ref`s into components (the document uses `#/components/schemas/X` and bare `X#`). */
export function resolve(doc: OpenApiDocument, schema: JsonSchema | undefined, depth = 0): JsonSchema {
  if (!schema || depth > 20) return {};
  if (schema.$ref) {
    const name = schema.$ref.replace(/^#\/components\/schemas\//, '').replace(/#$/, '');
    return resolve(doc, doc.components?.schemas?.[name], depth + 1);
  }
  return schema;
}

function examplesOf(media: Record<string, unknown>, schema: JsonSchema): unknown[] {
  const out: unknown[] = [];
  if ('example' in media) out.push(media.example);
  const named = media.examples as Record<string, { value?: unknown }> | undefined;
  if (named && typeof named === 'object') for (const e of Object.values(named)) if (e && 'value' in e) out.push(e.value);
  if (out.length === 0 && Array.isArray(schema.examples)) out.push(...schema.examples);
  return out;
}

export function operationsOf(doc: OpenApiDocument): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, raw] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      const op = raw as { operationId?: string; security?: unknown[]; parameters?: Array<Record<string, unknown>>; requestBody?: { required?: boolean; content?: Record<string, Record<string, unknown>> }; responses?: Record<string, unknown> };
      const content = op.requestBody?.content ?? {};
      const contentType = Object.keys(content)[0];
      const media = contentType ? content[contentType]! : null;
      const schema = media ? resolve(doc, media.schema as JsonSchema) : {};
      out.push({
        method: method.toUpperCase() as Operation['method'],
        path,
        operationId: op.operationId ?? `${method} ${path}`,
        public: Array.isArray(op.security) && op.security.length === 0,
        parameters: (op.parameters ?? []).map((p) => ({ name: String(p.name), in: p.in as Parameter['in'], required: p.required === true, schema: resolve(doc, p.schema as JsonSchema) })),
        body: media && contentType ? { required: op.requestBody?.required === true, contentType, schema, examples: examplesOf(media, schema) } : null,
        responses: Object.keys(op.responses ?? {}),
      });
    }
  }
  return out;
}

/** `/api/v1/lists/{listId}/subscribers/{email}` → [['lists', 'listId'], ['subscribers', 'email']]: each parameter with the collection it names. */
export function pathParameters(path: string): Array<{ collection: string; name: string }> {
  const parts = path.split('/');
  const out: Array<{ collection: string; name: string }> = [];
  parts.forEach((part, i) => {
    const m = /^\{(.+)\}$/.exec(part);
    if (m) out.push({ collection: parts[i - 1] ?? '', name: m[1]! });
  });
  return out;
}

/** Percent-encoding that survives lone surrogates (sent as the bytes of U+FFFD, as a client would). */
function encodeSegment(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return [...Buffer.from(value, 'utf8')].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  }
}

/**
 * The path with each parameter replaced by `value(collection, name)`, percent-encoded;
 * a value given as `{ raw }` goes in as it is (already encoded, possibly invalid on purpose).
 */
export function fillPath(path: string, value: (collection: string, name: string) => string | { raw: string }): string {
  const parts = path.split('/');
  return parts
    .map((part, i) => {
      const m = /^\{(.+)\}$/.exec(part);
      if (!m) return part;
      const v = value(parts[i - 1] ?? '', m[1]!);
      return typeof v === 'string' ? encodeSegment(v) : v.raw;
    })
    .join('/');
}
