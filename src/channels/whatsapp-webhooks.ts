import { createHmac, timingSafeEqual } from 'node:crypto';
import { messageIdFromReference } from './channel.js';

/**
 * Meta's WhatsApp webhooks, as pure functions: the signature, the subscription
 * handshake, and the payload parsed into what Nudge acts on. The route and the
 * service around them do the I/O.
 */

/**
 * Checks `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw request bytes
 * with the app secret. Always over the bytes as received: Meta signs its own
 * serialisation (non-ASCII escaped as \uXXXX), which re-serialising parsed JSON does
 * not reproduce. The comparison is timing-safe.
 */
export function verifySignature(rawBody: Buffer, header: string | undefined, appSecret: string): boolean {
  if (typeof header !== 'string' || appSecret === '') return false;
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!match) return false;
  const expected = createHmac('sha256', appSecret).update(rawBody).digest();
  const given = Buffer.from(match[1]!, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The header Meta would send for this body: for tests and fakes. */
export function signBody(rawBody: Buffer | string, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}

export type HandshakeResult = { ok: true; challenge: string } | { ok: false; reason: string };

/**
 * The subscription handshake: `hub.mode=subscribe`, `hub.verify_token` equal to the
 * token configured in Meta's app dashboard, and `hub.challenge` echoed back.
 */
export function verifyHandshake(query: Record<string, unknown>, verifyToken: string): HandshakeResult {
  const mode = query['hub.mode'];
  const token = query['hub.verify_token'];
  const challenge = query['hub.challenge'];
  if (mode !== 'subscribe') return { ok: false, reason: 'hub.mode must be "subscribe"' };
  if (typeof challenge !== 'string' || challenge === '') return { ok: false, reason: 'hub.challenge is missing' };
  if (typeof token !== 'string' || !sameSecret(token, verifyToken)) return { ok: false, reason: 'hub.verify_token does not match' };
  return { ok: true, challenge };
}

/** Timing-safe string equality (lengths leak, contents do not). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return b !== '' && x.length === y.length && timingSafeEqual(x, y);
}

export interface InboundEvent {
  /** Our phone number that received it (`metadata.phone_number_id`). */
  phoneNumberId: string;
  /** Meta's message id (`wamid.…`): the idempotency key of the inbound message. */
  wamid: string;
  /** The customer in E.164 (`+` and Meta's `from`). */
  from: string;
  profileName: string | null;
  /** Unix milliseconds. */
  timestamp: number;
  /** Meta's message type: text, button, interactive, image, reaction, … */
  type: string;
  /** The text, a reply's title, or a summary such as `[image] caption` for other types. */
  text: string | null;
  /** A reply button or list row id, or a template quick-reply payload. */
  buttonId: string | null;
  /** False for types Nudge does not act on beyond recording them (media, location, …). */
  supported: boolean;
  /** The message this one replies to, when Meta says. */
  contextId: string | null;
}

export interface StatusEvent {
  phoneNumberId: string;
  wamid: string;
  status: 'sent' | 'delivered' | 'read' | 'failed';
  timestamp: number;
  recipient: string | null;
  /** Nudge's message id, echoed by Meta from the send's biz_opaque_callback_data. */
  nudgeMessageId: string | null;
  errorCode: string | null;
  errorMessage: string | null;
}

export interface TemplateStatusEvent {
  /** The WhatsApp Business Account id (`entry[].id`). */
  businessAccountId: string;
  /** Meta's event: APPROVED, REJECTED, PENDING, DISABLED, PAUSED, … */
  event: string;
  templateId: string;
  name: string | null;
  language: string | null;
  reason: string | null;
}

export interface ParsedWebhook {
  inbound: InboundEvent[];
  statuses: StatusEvent[];
  templateUpdates: TemplateStatusEvent[];
  /** Changes Nudge does not act on (group updates, account alerts, system messages), by field. */
  ignored: string[];
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : null);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const seconds = (v: unknown): number => {
  const n = Number(str(v));
  return Number.isFinite(n) && n > 0 ? n * 1000 : 0;
};

/**
 * Who a payload concerns, hence whose app secret signs it: the phone number ids of its
 * changes and, for entries whose changes name no phone number (template reviews), the
 * business account id of the entry.
 */
export function webhookAccounts(body: unknown): { phoneNumberIds: string[]; businessAccountIds: string[] } {
  const phones = new Set<string>();
  const accounts = new Set<string>();
  for (const entry of arr(isObject(body) ? body.entry : undefined)) {
    if (!isObject(entry)) continue;
    let named = false;
    for (const change of arr(entry.changes)) {
      const value = isObject(change) && isObject(change.value) ? change.value : undefined;
      const phone = value && isObject(value.metadata) ? str(value.metadata.phone_number_id) : null;
      if (phone) {
        phones.add(phone);
        named = true;
      }
    }
    const id = str(entry.id);
    if (id && !named) accounts.add(id);
  }
  return { phoneNumberIds: [...phones], businessAccountIds: [...accounts] };
}

/**
 * Reads a webhook payload (`object: whatsapp_business_account`) into inbound messages,
 * delivery statuses and template status updates. Never throws: anything it does not
 * understand goes to `ignored`.
 */
export function parseWebhook(body: unknown): ParsedWebhook {
  const out: ParsedWebhook = { inbound: [], statuses: [], templateUpdates: [], ignored: [] };
  if (!isObject(body)) return out;
  for (const entry of arr(body.entry)) {
    if (!isObject(entry)) continue;
    const accountId = str(entry.id) ?? '';
    for (const change of arr(entry.changes)) {
      if (!isObject(change) || !isObject(change.value)) continue;
      const field = str(change.field) ?? 'unknown';
      const value = change.value;
      if (field === 'message_template_status_update') {
        const templateId = str(value.message_template_id);
        const event = str(value.event);
        if (templateId && event) {
          out.templateUpdates.push({
            businessAccountId: accountId,
            event: event.toUpperCase(),
            templateId,
            name: str(value.message_template_name),
            language: str(value.message_template_language),
            reason: str(value.reason),
          });
        } else out.ignored.push(field);
        continue;
      }
      if (field !== 'messages') {
        out.ignored.push(field);
        continue;
      }
      const phoneNumberId = isObject(value.metadata) ? (str(value.metadata.phone_number_id) ?? '') : '';
      const names = new Map<string, string>();
      for (const c of arr(value.contacts)) {
        if (isObject(c) && isObject(c.profile)) {
          const waId = str(c.wa_id);
          const name = str(c.profile.name);
          if (waId && name) names.set(waId, name);
        }
      }
      for (const m of arr(value.messages)) {
        if (!isObject(m)) continue;
        const parsed = parseMessage(m, phoneNumberId, names);
        if (parsed === 'system') out.ignored.push('messages.system');
        else if (parsed) out.inbound.push(parsed);
      }
      for (const s of arr(value.statuses)) {
        if (!isObject(s)) continue;
        const status = str(s.status);
        const wamid = str(s.id);
        if (!wamid || (status !== 'sent' && status !== 'delivered' && status !== 'read' && status !== 'failed')) {
          out.ignored.push(`messages.statuses.${status ?? 'unknown'}`);
          continue;
        }
        const error = arr(s.errors).find(isObject);
        const details = error && isObject(error.error_data) ? str(error.error_data.details) : null;
        out.statuses.push({
          phoneNumberId,
          wamid,
          status,
          timestamp: seconds(s.timestamp),
          recipient: str(s.recipient_id),
          nudgeMessageId: messageIdFromReference(str(s.biz_opaque_callback_data)),
          errorCode: error ? str(error.code) : null,
          errorMessage: error ? [str(error.title) ?? str(error.message), details].filter((x): x is string => x !== null && x !== '').join(': ') || null : null,
        });
      }
    }
  }
  return out;
}

function parseMessage(m: Json, phoneNumberId: string, names: Map<string, string>): InboundEvent | 'system' | null {
  const wamid = str(m.id);
  const from = str(m.from);
  const type = str(m.type) ?? 'unknown';
  if (!wamid || !from) return null;
  // A system message (the customer changed number) is not something the customer said.
  if (type === 'system') return 'system';
  const base = {
    phoneNumberId,
    wamid,
    from: `+${from.replace(/^\+/, '')}`,
    profileName: names.get(from) ?? null,
    timestamp: seconds(m.timestamp),
    type,
    contextId: isObject(m.context) ? str(m.context.id) : null,
  };
  const sub = isObject(m[type]) ? (m[type] as Json) : {};
  switch (type) {
    case 'text':
      return { ...base, text: str(sub.body) ?? '', buttonId: null, supported: true };
    case 'button':
      // A template's quick-reply button: the payload is what the template was sent with (or its text).
      return { ...base, text: str(sub.text), buttonId: str(sub.payload) ?? str(sub.text), supported: true };
    case 'interactive': {
      const kind = str(sub.type);
      const reply = kind && isObject(sub[kind]) ? (sub[kind] as Json) : null;
      if ((kind === 'button_reply' || kind === 'list_reply') && reply) {
        return { ...base, text: str(reply.title), buttonId: str(reply.id), supported: true };
      }
      return { ...base, text: `[interactive ${kind ?? 'reply'}]`, buttonId: null, supported: false };
    }
    default:
      return { ...base, text: summarize(type, sub, m), buttonId: null, supported: false };
  }
}

/** A one-line stand-in for a message type Nudge records but does not interpret. */
function summarize(type: string, sub: Json, message: Json): string {
  const parts = [`[${type}]`];
  switch (type) {
    case 'image':
    case 'video':
    case 'document':
      if (str(sub.caption)) parts.push(str(sub.caption)!);
      if (type === 'document' && str(sub.filename)) parts.push(str(sub.filename)!);
      break;
    case 'location':
      parts.push(...[str(sub.name), str(sub.address)].filter((s): s is string => s !== null && s !== ''));
      if (sub.latitude !== undefined && sub.longitude !== undefined) parts.push(`(${str(sub.latitude)}, ${str(sub.longitude)})`);
      break;
    case 'reaction':
      if (str(sub.emoji)) parts.push(str(sub.emoji)!);
      break;
    case 'contacts': {
      const first = arr(message.contacts).find(isObject);
      const name = first && isObject(first.name) ? str(first.name.formatted_name) : null;
      if (name) parts.push(name);
      break;
    }
    case 'order':
      parts.push(`${arr(sub.product_items).length} item(s)`);
      break;
    default:
      break;
  }
  return parts.filter((p) => p !== '').join(' ');
}
