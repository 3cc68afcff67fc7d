import type { TemplateButton, TemplateComponents, TemplateInput } from '../domain/message-template.js';
import { placeholdersOf } from '../domain/message-template.js';
import { callGraph, defaultGraphBaseUrl, defaultGraphVersion, graphErrorOf, mapGraphError } from './whatsapp-cloud-channel.js';

/**
 * Meta's template management endpoints (`/{WABA-ID}/message_templates`): create,
 * list, delete. Like the adapter, it takes plain settings and never reads the
 * database; failures are values with Meta's code.
 */
export interface WhatsAppAccountConfig {
  businessAccountId: string;
  accessToken: string;
  graphVersion?: string;
  baseUrl?: string;
  timeoutMs?: number;
}

export type TemplateApiFailure = { ok: false; retryable: boolean; code: string; message: string; authFailure?: boolean };

/** A template as Meta lists it, mapped onto Nudge's components. */
export interface RemoteTemplate {
  id: string;
  name: string;
  language: string;
  category: string;
  /** Meta's status: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, … */
  status: string;
  rejectedReason: string | null;
  components: TemplateComponents;
}

function endpoint(config: WhatsAppAccountConfig): string {
  const base = (config.baseUrl ?? defaultGraphBaseUrl).replace(/\/+$/, '');
  return `${base}/${config.graphVersion ?? defaultGraphVersion}/${encodeURIComponent(config.businessAccountId)}/message_templates`;
}

/** Example values Meta's review needs; the caller's, else a neutral sample per placeholder. */
function exampleFor(components: TemplateComponents, key: string): string {
  return components.examples?.[key] ?? `sample_${key}`;
}

/**
 * The body of `POST /{WABA-ID}/message_templates` for a template: upper-case component
 * types, a TEXT header, and the `example` values Meta requires whenever a part has
 * placeholders.
 */
export function buildTemplateSubmission(input: TemplateInput): Record<string, unknown> {
  const placeholders = placeholdersOf(input);
  const components: Array<Record<string, unknown>> = [];
  if (input.header) {
    const header = placeholders.filter((p) => p.part === 'header');
    components.push({ type: 'HEADER', format: 'TEXT', text: input.header, ...(header.length > 0 ? { example: { header_text: header.map((p) => exampleFor(input, p.key)) } } : {}) });
  }
  const body = placeholders.filter((p) => p.part === 'body');
  components.push({ type: 'BODY', text: input.body, ...(body.length > 0 ? { example: { body_text: [body.map((p) => exampleFor(input, p.key))] } } : {}) });
  if (input.footer) components.push({ type: 'FOOTER', text: input.footer });
  if (input.buttons && input.buttons.length > 0) {
    components.push({
      type: 'BUTTONS',
      buttons: input.buttons.map((b, index) => {
        if (b.type === 'URL') {
          const dynamic = placeholders.some((p) => p.key === `button_${index}`);
          return { type: 'URL', text: b.text, url: b.url, ...(dynamic ? { example: [b.example ?? exampleFor(input, `button_${index}`)] } : {}) };
        }
        if (b.type === 'PHONE_NUMBER') return { type: 'PHONE_NUMBER', text: b.text, phone_number: b.phone_number };
        return { type: 'QUICK_REPLY', text: b.text };
      }),
    });
  }
  return { name: input.name, language: input.language, category: input.category, components };
}

/** Meta's component list read back into Nudge's shape (text headers only; media headers are left out). */
export function componentsFromMeta(list: unknown): TemplateComponents {
  const out: TemplateComponents = { body: '' };
  for (const c of Array.isArray(list) ? list : []) {
    if (!c || typeof c !== 'object') continue;
    const component = c as Record<string, unknown>;
    const type = String(component.type ?? '').toUpperCase();
    if (type === 'HEADER' && String(component.format ?? 'TEXT').toUpperCase() === 'TEXT' && typeof component.text === 'string') out.header = component.text;
    else if (type === 'BODY' && typeof component.text === 'string') out.body = component.text;
    else if (type === 'FOOTER' && typeof component.text === 'string') out.footer = component.text;
    else if (type === 'BUTTONS' && Array.isArray(component.buttons)) {
      const buttons: TemplateButton[] = [];
      for (const b of component.buttons as Array<Record<string, unknown>>) {
        const text = typeof b.text === 'string' ? b.text : '';
        if (b.type === 'URL' && typeof b.url === 'string') buttons.push({ type: 'URL', text, url: b.url });
        else if (b.type === 'PHONE_NUMBER' && typeof b.phone_number === 'string') buttons.push({ type: 'PHONE_NUMBER', text, phone_number: b.phone_number });
        else if (b.type === 'QUICK_REPLY') buttons.push({ type: 'QUICK_REPLY', text });
      }
      if (buttons.length > 0) out.buttons = buttons;
    }
  }
  return out;
}

function failure(response: Awaited<ReturnType<typeof callGraph>>): TemplateApiFailure {
  if (!response.ok) return { ok: false, retryable: true, code: response.timeout ? 'timeout' : 'network_error', message: `WhatsApp could not be reached: ${response.message}` };
  return mapGraphError(response.status, graphErrorOf(response.body), response.retryAfterMs);
}

/** Submits a template for review. Meta answers `{ id, status, category }`. */
export async function submitTemplate(config: WhatsAppAccountConfig, input: TemplateInput): Promise<{ ok: true; id: string; status: string; category: string | null } | TemplateApiFailure> {
  const response = await callGraph(endpoint(config), { method: 'POST', accessToken: config.accessToken, body: buildTemplateSubmission(input), timeoutMs: config.timeoutMs });
  if (response.ok && response.status >= 200 && response.status < 300) {
    const body = (response.body ?? {}) as { id?: unknown; status?: unknown; category?: unknown };
    if (typeof body.id === 'string' && body.id !== '') {
      return { ok: true, id: body.id, status: typeof body.status === 'string' ? body.status.toUpperCase() : 'PENDING', category: typeof body.category === 'string' ? body.category : null };
    }
    return { ok: false, retryable: false, code: 'invalid_response', message: 'WhatsApp accepted the template without returning its id' };
  }
  return failure(response);
}

/** Every template of the account, following Meta's cursor paging (at most `maxPages` pages). */
export async function fetchTemplates(config: WhatsAppAccountConfig, maxPages = 50): Promise<{ ok: true; templates: RemoteTemplate[] } | TemplateApiFailure> {
  const templates: RemoteTemplate[] = [];
  let url: string | null = `${endpoint(config)}?limit=100&fields=${encodeURIComponent('id,name,language,category,status,rejected_reason,components')}`;
  for (let page = 0; url !== null && page < maxPages; page += 1) {
    const response = await callGraph(url, { method: 'GET', accessToken: config.accessToken, timeoutMs: config.timeoutMs });
    if (!response.ok || response.status < 200 || response.status >= 300) return failure(response);
    const body = (response.body ?? {}) as { data?: unknown; paging?: { next?: unknown; cursors?: { after?: unknown } } };
    for (const t of Array.isArray(body.data) ? (body.data as Array<Record<string, unknown>>) : []) {
      if (typeof t.id !== 'string' || typeof t.name !== 'string' || typeof t.language !== 'string') continue;
      templates.push({
        id: t.id,
        name: t.name,
        language: t.language,
        category: typeof t.category === 'string' ? t.category.toUpperCase() : 'UTILITY',
        status: typeof t.status === 'string' ? t.status.toUpperCase() : 'PENDING',
        rejectedReason: typeof t.rejected_reason === 'string' && t.rejected_reason !== 'NONE' ? t.rejected_reason : null,
        components: componentsFromMeta(t.components),
      });
    }
    // `paging.next` is the full URL of the next page; it is absent on the last one.
    // Only followed on the configured host: the access token must never go anywhere else.
    const next = typeof body.paging?.next === 'string' ? body.paging.next : null;
    url = next !== null && next.startsWith(`${(config.baseUrl ?? defaultGraphBaseUrl).replace(/\/+$/, '')}/`) ? next : null;
  }
  return { ok: true, templates };
}

/** Deletes one language of a template at Meta (by name and Meta's id). */
export async function deleteRemoteTemplate(config: WhatsAppAccountConfig, name: string, id: string): Promise<{ ok: true } | TemplateApiFailure> {
  const url = `${endpoint(config)}?name=${encodeURIComponent(name)}&hsm_id=${encodeURIComponent(id)}`;
  const response = await callGraph(url, { method: 'DELETE', accessToken: config.accessToken, timeoutMs: config.timeoutMs });
  if (response.ok && response.status >= 200 && response.status < 300) return { ok: true };
  return failure(response);
}
