import type { FastifySchema, RouteOptions } from 'fastify';
import { errorResponses } from './schemas.js';

/**
 * The tags operations are grouped by, with the descriptions the reference page shows.
 * An operation whose tag is missing here fails the OpenAPI lint test: add the tag with
 * a sentence on what the group is for. Tags no operation uses are left out of the document.
 */
export const apiTags: ReadonlyArray<{ name: string; description: string }> = [
  { name: 'Identity', description: 'Who the presented token belongs to (user, workspace, scopes), and the health check.' },
  { name: 'Contacts', description: 'The people you message: created or updated by phone (E.164) or email, searched, and read with their message history counts.' },
  { name: 'Tags', description: 'Labels on contacts. Adding or removing a tag is idempotent and may start sequences.' },
  { name: 'Templates', description: 'Message templates with merge tags; WhatsApp templates carry their approval status.' },
  { name: 'Email templates', description: 'Editable emails (subject, preview text, blocks): one for every email step of a sequence or flow, kept equal to the step\u2019s draft, plus standalone ones.' },
  { name: 'Messages', description: 'Outgoing and incoming messages on every channel, with their delivery status.' },
  { name: 'Sequences', description: 'Multi-step campaigns spaced over days: drafted, published as frozen versions, and triggered for contacts.' },
  { name: 'Flows', description: 'Short branching conversations that wait for the customer to reply, with timeouts in minutes.' },
  { name: 'Sessions', description: 'One contact inside one sequence or flow: where it is, what it waits for, and how to stop it.' },
  { name: 'Subscribers', description: 'Contacts seen through the email-first API of event-driven sequences: created, merged, tagged and deleted by email.' },
  { name: 'Events', description: 'What contacts did. Events start sequences and end them through stop conditions.' },
  { name: 'Lists', description: 'Named lists of subscribers; joining one can start a sequence, leaving one can stop it.' },
  { name: 'Segments', description: 'Saved audiences defined by filters over attributes, tags, lists, events and engagement, kept current on every change.' },
  { name: 'Discounts', description: 'Discount codes created by sequence steps: connected providers (Stripe, Shopify) and Nudge’s own codes, redeemable through the API.' },
  { name: 'Triggers', description: 'Polling endpoints for integration tools: the newest items first, to be de-duplicated on id.' },
  { name: 'Dropdowns', description: 'Short {id, label} lists for form pickers in integration tools.' },
  { name: 'Broadcasts', description: 'One-off campaigns: a template sent to a tag, a segment or listed contacts, now or later.' },
  { name: 'Webhooks', description: 'Signed notifications Nudge sends to your endpoints, and the endpoints providers call.' },
  { name: 'Settings', description: 'Workspace settings: the provider credentials of each channel and of the discount integrations (secrets are write-only), and the consent keywords.' },
];

interface RouteFlags {
  public?: boolean;
  scope?: string;
  idempotent?: boolean;
}

type SchemaDocument = FastifySchema & {
  hide?: boolean;
  headers?: unknown;
  response?: Record<string, Record<string, unknown>>;
};

const rateLimitHeaders = {
  'X-RateLimit-Limit': { type: 'integer', description: 'Requests this token may make per window' },
  'X-RateLimit-Remaining': { type: 'integer', description: 'Requests left in the current window' },
};

const idempotencyHeader = {
  type: 'string',
  minLength: 1,
  maxLength: 255,
  description:
    'Optional. A key unique to this creation (e.g. a UUID). Repeating the request with the same key and body within 24 h replays ' +
    'the first response (header `Idempotent-Replayed: true`) instead of creating again; the same key with another body answers 409.',
};

function withHeader(headers: unknown, name: string, schema: object): object {
  const base = (headers && typeof headers === 'object' ? headers : {}) as { properties?: Record<string, unknown> };
  return { type: 'object', ...base, properties: { ...(base.properties ?? {}), [name]: schema } };
}

/**
 * Adds to each operation what the shared request guards do, so no route has to repeat
 * it and the document cannot drift from the behaviour: 401 and 429 (with rate-limit
 * headers) on every authenticated operation, 403 where a scope is needed, 400/413/415/422
 * where a body is read, 422 where query or path parameters are validated, and the
 * Idempotency-Key header with its 409 on creating POSTs. A route's own responses win.
 * Only the document changes: the route's schema object is never modified.
 */
export function documentRoute({ schema, url, route }: { schema: FastifySchema; url: string; route: RouteOptions }): { schema: FastifySchema; url: string } {
  const doc = (schema ?? {}) as SchemaDocument;
  if (doc.hide) return { schema, url };
  const flags = (route.config ?? {}) as RouteFlags;
  const secured = !flags.public;
  const statuses = new Set<number>();
  if (secured) [401, 429].forEach((s) => statuses.add(s));
  if (secured && flags.scope) statuses.add(403);
  if (doc.body !== undefined) [400, 413, 415, 422].forEach((s) => statuses.add(s));
  if (doc.querystring !== undefined || doc.params !== undefined) statuses.add(422);
  const idempotent = flags.idempotent === true && ([] as string[]).concat(route.method).includes('POST');
  if (idempotent) statuses.add(409);

  const generated = errorResponses(...statuses) as Record<string, Record<string, unknown>>;
  const merged: Record<string, Record<string, unknown>> = { ...generated, ...(doc.response ?? {}) };
  const ordered: Record<string, Record<string, unknown>> = {};
  for (const code of Object.keys(merged).sort((a, b) => (Number(a) || 999) - (Number(b) || 999))) {
    const response = merged[code]!;
    if (!secured) {
      ordered[code] = response;
      continue;
    }
    const extra: Record<string, unknown> = { ...rateLimitHeaders };
    if (code === '429') extra['Retry-After'] = { type: 'integer', description: 'Seconds to wait before the next request' };
    if (idempotent && /^2/.test(code)) extra['Idempotent-Replayed'] = { type: 'string', enum: ['true'], description: 'Present when this is a replay of an earlier response' };
    ordered[code] = { ...response, headers: { ...extra, ...((response.headers as object | undefined) ?? {}) } };
  }

  return {
    url,
    schema: {
      ...doc,
      response: ordered,
      ...(idempotent ? { headers: withHeader(doc.headers, 'Idempotency-Key', idempotencyHeader) } : {}),
    } as FastifySchema,
  };
}

/** Declares the tags the operations use, in the order of `apiTags`, each with its description. */
export function finishDocument<T extends { paths?: object; tags?: Array<{ name: string }> }>(document: T): T {
  const used = new Set<string>();
  for (const item of Object.values(document.paths ?? {}) as Array<Record<string, { tags?: string[] }>>) {
    for (const operation of Object.values(item)) for (const tag of operation?.tags ?? []) used.add(tag);
  }
  return { ...document, tags: apiTags.filter((t) => used.has(t.name)) };
}
