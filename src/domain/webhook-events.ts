import { refusedPortProblem } from './outbound-ports.js';

/**
 * The events Nudge sends to webhook subscriptions, in one place: adding an event is
 * adding it here (with a line in the README's table) and emitting it where it
 * happens with engine/webhook-emitter.ts `emitWebhookEvent`.
 *
 * Every delivery's body is the same envelope:
 *
 *     { "id": "<UUIDv7>", "type": "message.received", "created_at": "<ISO 8601>",
 *       "workspace_id": "<UUID>", "data": { … } }
 *
 * `id` is the event's id, the same for every subscription that receives it and for
 * every retry of it: receivers de-duplicate on it.
 */
export const webhookEventTypes = [
  'message.received',
  'message.status.sent',
  'message.status.delivered',
  'message.status.read',
  'message.status.failed',
  'session.started',
  'session.stopped',
  'sequence.finished',
  'flow.finished',
  'contact.opted_out',
  'contact.opted_in',
] as const;

export type WebhookEventType = (typeof webhookEventTypes)[number];

/** Sent to one subscription on its creation and by `POST /webhooks/{id}/test`; no filter is needed to receive it. */
export const webhookTestEvent = 'webhook.test';

export interface WebhookEnvelope {
  id: string;
  type: string;
  created_at: string;
  workspace_id: string;
  data: Record<string, unknown>;
}

export function webhookEnvelope(id: string, type: string, createdAtMs: number, workspaceId: string, data: Record<string, unknown>): WebhookEnvelope {
  return { id, type, created_at: new Date(createdAtMs).toISOString(), workspace_id: workspaceId, data };
}

const known = new Set<string>(webhookEventTypes);
/** Every dotted prefix of a known type (`message`, `message.status`): what a wildcard may stand on. */
const prefixes = new Set(webhookEventTypes.flatMap((t) => t.split('.').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('.'))));

/**
 * Whether `pattern` is a valid subscription filter: a known event type, `*` (every
 * event), or a known prefix followed by `.*` (`message.*`, `message.status.*`).
 */
export function isEventPattern(pattern: string): boolean {
  if (pattern === '*' || known.has(pattern)) return true;
  return pattern.endsWith('.*') && prefixes.has(pattern.slice(0, -2));
}

/**
 * The problems of a subscription's event list, as `field → messages` (empty when
 * valid). Names are case-sensitive; duplicates are refused so a list reads the way it
 * is stored.
 */
export function eventListProblems(value: unknown, field = 'events'): Record<string, string[]> {
  if (!Array.isArray(value) || value.length === 0) return { [field]: [`${field} must be a non-empty array of event types, e.g. ["message.received", "message.status.*"]`] };
  if (value.length > 50) return { [field]: [`${field} may list at most 50 event types`] };
  const problems: Record<string, string[]> = {};
  const seen = new Set<string>();
  value.forEach((item, i) => {
    const key = `${field}[${i}]`;
    if (typeof item !== 'string') problems[key] = [`${key} must be a string`];
    else if (!isEventPattern(item)) problems[key] = [`${key} "${item.slice(0, 60)}" is not an event type: use one of ${webhookEventTypes.join(', ')}, a prefix wildcard such as message.status.*, or *`];
    else if (seen.has(item)) problems[key] = [`${key} "${item}" is listed twice`];
    else seen.add(item);
  });
  return problems;
}

/** A compiled filter: whether a subscription with these patterns receives `type`. */
export function eventMatcher(patterns: readonly string[]): (type: string) => boolean {
  if (patterns.includes('*')) return () => true;
  const exact = new Set(patterns.filter((p) => !p.endsWith('.*')));
  const wild = patterns.filter((p) => p.endsWith('.*')).map((p) => p.slice(0, -1));
  return (type) => exact.has(type) || wild.some((w) => type.startsWith(w));
}

/**
 * The problem with a subscription URL, or null when it is acceptable: absolute http or
 * https, a host, at most 2000 characters, and no user name or password (they would sit
 * in the database and in every log line that prints the URL; the signature is how a
 * receiver knows the request is Nudge's). Private and loopback addresses are allowed:
 * a self-hosted Nudge often notifies services on its own network.
 */
export function webhookUrlProblem(value: unknown): string | null {
  if (typeof value !== 'string' || value.trim() === '') return 'url is required: the http(s) address Nudge POSTs events to';
  const text = value.trim();
  if (text.length > 2000) return 'url must be at most 2000 characters';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'url must be an absolute URL such as https://example.com/hooks/nudge';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `url must use http or https (got ${url.protocol.replace(/:$/, '')})`;
  if (url.hostname === '') return 'url must name a host';
  if (url.username !== '' || url.password !== '') return 'url must not contain a user name or password: verify the Nudge-Signature header instead';
  const port = refusedPortProblem(url);
  return port === null ? null : `url ${port}`;
}
