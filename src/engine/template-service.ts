import type { RenderedContent } from '../channels/channel.js';
import { validateWhatsAppContent } from '../channels/whatsapp-cloud-channel.js';
import type { TemplateStatusEvent } from '../channels/whatsapp-webhooks.js';
import { deleteRemoteTemplate, fetchTemplates, submitTemplate, type TemplateApiFailure, type WhatsAppAccountConfig } from '../channels/whatsapp-template-api.js';
import { isoTime } from '../domain/clock.js';
import { decodeCursor, encodeCursor } from '../domain/cursor.js';
import { AppError, invalid, invalidFields, notFound, toError } from '../domain/errors.js';
import { isUuid, newId } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import {
  fillTemplate,
  placeholdersOf,
  statusOfMetaEvent,
  templateStatuses,
  validateTemplateInput,
  type TemplateButton,
  type TemplateComponents,
  type TemplateInput,
  type TemplateStatus,
} from '../domain/message-template.js';
import { listProviderSettingsByChannel } from '../store/provider-settings-repository.js';
import * as templates from '../store/template-repository.js';
import type { TemplateRow } from '../store/template-repository.js';
import type { Db } from '../store/database.js';
import { findWorkspace } from '../store/workspace-repository.js';
import { findOrCreateContactByPhone } from './contact-service.js';
import type { Context } from './context.js';
import { queueDirectMessage } from './messaging-service.js';
import { getProviderSettings, recordChannelStatus } from './provider-settings-service.js';

/**
 * WhatsApp message templates: created through the API (approved at once on the
 * sandbox, submitted to Meta for review when WhatsApp is configured), kept in sync
 * with Meta by webhook and by a periodic fetch, listed, and sent.
 *
 * A template is one row per name and language, as Meta keeps them; the actions
 * (`list-templates`, the dropdowns) show one entry per name with its languages.
 */

export interface TemplateView {
  id: string;
  name: string;
  language: string;
  category: string;
  status: string;
  header: string | null;
  body: string;
  footer: string | null;
  buttons: TemplateButton[];
  /** The keys a send must give in `variables`: "1", "2" for the body, "header_1", "button_<index>". */
  placeholders: string[];
  provider_template_id: string | null;
  rejected_reason: string | null;
  created_at: string;
  updated_at: string;
}

export function componentsOf(row: TemplateRow): TemplateComponents {
  const parsed = parseJson<Partial<TemplateComponents>>(row.components, {});
  return { ...parsed, body: typeof parsed.body === 'string' ? parsed.body : '' };
}

export function toTemplateView(row: TemplateRow): TemplateView {
  const c = componentsOf(row);
  return {
    id: row.id,
    name: row.name,
    language: row.language,
    category: row.category,
    status: row.status,
    header: c.header ?? null,
    body: c.body,
    footer: c.footer ?? null,
    buttons: c.buttons ?? [],
    placeholders: placeholdersOf(c).map((p) => p.key),
    provider_template_id: row.provider_template_id,
    rejected_reason: row.rejected_reason,
    created_at: isoTime(row.created_at),
    updated_at: isoTime(row.updated_at),
  };
}

/** The parts in one key order, so stored JSON compares equal whenever the parts do. */
function canonical(c: TemplateComponents): TemplateComponents {
  return {
    ...(c.header ? { header: c.header } : {}),
    body: c.body,
    ...(c.footer ? { footer: c.footer } : {}),
    ...(c.buttons && c.buttons.length > 0 ? { buttons: c.buttons } : {}),
    ...(c.examples && Object.keys(c.examples).length > 0 ? { examples: c.examples } : {}),
  };
}

const canonicalJson = (c: TemplateComponents) => toJson(canonical(c));

/** The account settings Meta's template endpoints need, or null when WhatsApp is not configured (sandbox). */
async function accountOf(ctx: Context, workspaceId: string): Promise<WhatsAppAccountConfig | null> {
  const settings = await getProviderSettings(ctx, workspaceId, 'whatsapp');
  if (!settings) return null;
  const businessAccountId = settings.config.business_account_id;
  const accessToken = settings.secrets.access_token;
  if (typeof businessAccountId !== 'string' || businessAccountId === '') {
    throw new AppError('provider_not_connected', 'The WhatsApp settings lack business_account_id, which Meta needs to manage templates; add it to the WhatsApp settings', {
      errors: { business_account_id: ['business_account_id is required to manage templates'] },
    });
  }
  if (typeof accessToken !== 'string' || accessToken === '') throw new AppError('provider_not_connected', 'The WhatsApp settings lack an access token');
  return {
    businessAccountId,
    accessToken,
    ...(typeof settings.config.graph_version === 'string' ? { graphVersion: settings.config.graph_version } : {}),
    ...(typeof settings.config.base_url === 'string' ? { baseUrl: settings.config.base_url } : {}),
    timeoutMs: ctx.config.webhookTimeoutMs,
  };
}

/** A refusal from Meta as an API error; an auth failure is also recorded in the channel status. */
async function providerError(ctx: Context, workspaceId: string, failure: TemplateApiFailure): Promise<AppError> {
  if (failure.authFailure) await recordChannelStatus(ctx, workspaceId, 'whatsapp', 'error', failure.message);
  if (failure.retryable) return new AppError('unavailable', `WhatsApp is unavailable, try again later: ${failure.message}`, { extra: { provider_code: failure.code } });
  return new AppError('business_rule', `WhatsApp refused the template: ${failure.message}`, { extra: { provider_code: failure.code } });
}

function storedStatus(metaStatus: string): TemplateStatus {
  return statusOfMetaEvent(metaStatus) ?? 'PENDING';
}

/**
 * Creates a template in one language. On the sandbox it is APPROVED at once; with
 * WhatsApp configured it is submitted to Meta and stored with Meta's id and status
 * (PENDING until the review's webhook or the next sync). A name and language the
 * workspace has already is a 409.
 *
 * @example
 * await createTemplate(ctx, workspaceId, { name: 'order_update', language: 'en_US', category: 'UTILITY', body: 'Hi {{1}}, your order {{2}} shipped.' });
 */
export async function createTemplate(ctx: Context, workspaceId: string, input: TemplateInput): Promise<TemplateView> {
  const errors = validateTemplateInput(input);
  if (Object.keys(errors).length > 0) throw invalidFields(errors);
  const db = ctx.database.db;
  if (await templates.findTemplateByNameLanguage(db, workspaceId, input.name, input.language)) {
    throw new AppError('conflict', `A template named "${input.name}" in language ${input.language} exists already`);
  }
  const components = canonical(input);
  let status: TemplateStatus = 'APPROVED';
  let providerId: string | null = null;
  let category = input.category;
  const account = await accountOf(ctx, workspaceId);
  if (account) {
    const submitted = await submitTemplate(account, { ...input, ...components });
    if (!submitted.ok) throw await providerError(ctx, workspaceId, submitted);
    status = storedStatus(submitted.status);
    providerId = submitted.id;
    // Meta may recategorise (e.g. a "utility" text that reads as marketing).
    category = submitted.category ?? category;
  }
  const now = ctx.clock.now();
  const id = newId(now);
  const inserted = await templates.insertTemplate(db, {
    id,
    workspace_id: workspaceId,
    name: input.name,
    language: input.language,
    category,
    status,
    components: toJson(components),
    provider_template_id: providerId,
    rejected_reason: null,
    created_at: now,
    updated_at: now,
  });
  if (!inserted) throw new AppError('conflict', `A template named "${input.name}" in language ${input.language} exists already`);
  return toTemplateView((await templates.findTemplate(db, workspaceId, id))!);
}

async function requireTemplate(ctx: Context, workspaceId: string, id: string): Promise<TemplateRow> {
  const row = isUuid(id) ? await templates.findTemplate(ctx.database.db, workspaceId, id.toLowerCase()) : undefined;
  if (!row) throw notFound('Template');
  return row;
}

export async function getTemplate(ctx: Context, workspaceId: string, id: string): Promise<TemplateView> {
  return toTemplateView(await requireTemplate(ctx, workspaceId, id));
}

export async function listTemplatePage(
  ctx: Context,
  workspaceId: string,
  query: { status?: string; cursor?: string; limit?: number },
): Promise<{ data: TemplateView[]; next_cursor: string | null }> {
  const limit = query.limit ?? 50;
  const rows = await templates.listTemplates(ctx.database.db, workspaceId, {
    status: query.status,
    afterId: query.cursor ? decodeCursor(query.cursor) : undefined,
    limit: limit + 1,
  });
  const page = rows.slice(0, limit);
  return { data: page.map(toTemplateView), next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null };
}

/** Deletes one language of a template, at Meta too when it was submitted there. */
export async function deleteTemplate(ctx: Context, workspaceId: string, id: string): Promise<void> {
  const row = await requireTemplate(ctx, workspaceId, id);
  if (row.provider_template_id) {
    const account = await accountOf(ctx, workspaceId);
    if (account) {
      const deleted = await deleteRemoteTemplate(account, row.name, row.provider_template_id);
      // Already gone at Meta (deleted in WhatsApp Manager): deleting it here is what the caller wants.
      if (!deleted.ok && deleted.code !== '100') throw await providerError(ctx, workspaceId, deleted);
    }
  }
  await templates.deleteTemplate(ctx.database.db, workspaceId, row.id);
}

const statusOrder: Record<string, number> = { APPROVED: 0, PENDING: 1, REJECTED: 2 };

export interface TemplateSummary {
  id: string;
  name: string;
  category: string;
  /** The best status among its languages: APPROVED when any is. */
  status: string;
  languages: string[];
}

function summarize(rows: TemplateRow[]): TemplateSummary[] {
  const byName = new Map<string, TemplateRow[]>();
  for (const row of rows) byName.set(row.name, [...(byName.get(row.name) ?? []), row]);
  return [...byName.values()].map((group) => {
    const best = [...group].sort((a, b) => (statusOrder[a.status] ?? 9) - (statusOrder[b.status] ?? 9) || a.id.localeCompare(b.id))[0]!;
    return { id: group[0]!.id, name: best.name, category: best.category, status: best.status, languages: group.map((r) => r.language) };
  });
}

/** list-templates: one entry per name, its languages aggregated, optionally only those with `status`. */
export async function listTemplateSummaries(ctx: Context, workspaceId: string, status?: string): Promise<TemplateSummary[]> {
  if (status !== undefined && !templateStatuses.includes(status as TemplateStatus)) throw invalid('status', `must be one of ${templateStatuses.join(', ')}`);
  const rows = await templates.listTemplates(ctx.database.db, workspaceId, { status });
  return summarize(rows).sort((a, b) => a.name.localeCompare(b.name));
}

/** get-template: the summary plus this language's parts and placeholders. */
export async function getTemplateDetail(ctx: Context, workspaceId: string, templateId: string) {
  const row = await requireTemplate(ctx, workspaceId, templateId);
  const siblings = await templates.listTemplateLanguages(ctx.database.db, workspaceId, row.name);
  const view = toTemplateView(row);
  return {
    id: row.id,
    name: row.name,
    category: row.category,
    status: row.status,
    language: row.language,
    languages: siblings.map((r) => r.language),
    header: view.header,
    body: view.body,
    footer: view.footer,
    buttons: view.buttons,
    placeholders: placeholdersOf(componentsOf(row)).map((p) => ({ key: p.key, label: p.label })),
    rejected_reason: row.rejected_reason,
  };
}

/** The dropdown of templates one can send: approved ones, one entry per name. */
export async function templateDropdown(ctx: Context, workspaceId: string): Promise<Array<{ id: string; label: string }>> {
  const summaries = await listTemplateSummaries(ctx, workspaceId, 'APPROVED');
  return summaries.map((s) => ({ id: s.id, label: `${s.name} (${s.languages.join(', ')})` }));
}

export async function templateVariablesDropdown(ctx: Context, workspaceId: string, templateId: string): Promise<Array<{ id: string; label: string }>> {
  const row = await requireTemplate(ctx, workspaceId, templateId);
  return placeholdersOf(componentsOf(row)).map((p) => ({ id: p.key, label: p.label }));
}

/**
 * Reads every template of the workspace's WhatsApp account from Meta and brings the
 * local rows in line: status, category, parts and Meta's id; templates made in
 * WhatsApp Manager are added. Local templates Meta does not list are left alone.
 * Does nothing on the sandbox.
 */
export async function syncTemplates(ctx: Context, workspaceId: string): Promise<{ created: number; updated: number }> {
  const account = await accountOf(ctx, workspaceId);
  if (!account) return { created: 0, updated: 0 };
  const fetched = await fetchTemplates(account);
  if (!fetched.ok) throw await providerError(ctx, workspaceId, fetched);
  const db = ctx.database.db;
  let created = 0;
  let updated = 0;
  for (const remote of fetched.templates) {
    const now = ctx.clock.now();
    const status = storedStatus(remote.status);
    const rejected = status === 'REJECTED' ? (remote.rejectedReason ?? remote.status) : null;
    const local = (await templates.findTemplateByProviderId(db, workspaceId, remote.id)) ?? (await templates.findTemplateByNameLanguage(db, workspaceId, remote.name, remote.language));
    if (!local) {
      const inserted = await templates.insertTemplate(db, {
        id: newId(now),
        workspace_id: workspaceId,
        name: remote.name,
        language: remote.language,
        category: remote.category,
        status,
        components: canonicalJson(remote.components),
        provider_template_id: remote.id,
        rejected_reason: rejected,
        created_at: now,
        updated_at: now,
      });
      if (inserted) created += 1;
      continue;
    }
    const current = componentsOf(local);
    // Our examples are not listed back by Meta; keep them.
    const components = canonicalJson({ ...remote.components, ...(current.examples ? { examples: current.examples } : {}) });
    if (local.status === status && local.category === remote.category && local.provider_template_id === remote.id && local.rejected_reason === rejected && local.components === components) continue;
    await templates.updateTemplate(db, workspaceId, local.id, { status, category: remote.category, provider_template_id: remote.id, rejected_reason: rejected, components, updated_at: now });
    updated += 1;
  }
  return { created, updated };
}

const templateSyncEveryMs = 10 * 60_000;

/**
 * The maintenance loop's hook: every workspace with WhatsApp settings is synced when
 * this run crosses a 10-minute boundary, so no state is kept between runs. Failures
 * are logged per workspace and retried at the next boundary.
 */
export async function syncTemplatesWhenDue(ctx: Context, now: number, runEveryMs: number): Promise<void> {
  if (Math.floor(now / templateSyncEveryMs) === Math.floor((now - runEveryMs) / templateSyncEveryMs)) return;
  for (const row of await listProviderSettingsByChannel(ctx.database.db, 'whatsapp')) {
    try {
      await syncTemplates(ctx, row.workspace_id);
    } catch (error) {
      ctx.log.warn({ err: toError(error), workspace_id: row.workspace_id }, 'template sync failed; it will run again');
    }
  }
}

/** Applies Meta's `message_template_status_update` to the template it names. Returns whether anything changed. */
export async function applyTemplateStatusEvent(ctx: Context, workspaceId: string, event: TemplateStatusEvent): Promise<boolean> {
  const status = statusOfMetaEvent(event.event);
  if (!status) return false;
  const db = ctx.database.db;
  const row =
    (await templates.findTemplateByProviderId(db, workspaceId, event.templateId)) ??
    (event.name && event.language ? await templates.findTemplateByNameLanguage(db, workspaceId, event.name, event.language) : undefined);
  if (!row) return false;
  const reason = status === 'REJECTED' ? (event.reason && event.reason !== 'NONE' ? event.reason : event.event) : null;
  if (row.status === status && row.rejected_reason === reason && row.provider_template_id === event.templateId) return false;
  await templates.updateTemplate(db, workspaceId, row.id, { status, rejected_reason: reason, provider_template_id: event.templateId, updated_at: ctx.clock.now() });
  return true;
}

export interface SendTemplateInput {
  phone: string;
  template_id: string;
  language?: string;
  variables?: Record<string, string>;
}

/** `en_US` and `en` share the base language `en`. */
const baseLanguage = (code: string) => code.toLowerCase().split(/[_-]/)[0]!;

/** The first approved language matching one of `wanted`, exactly, then by base language. */
export function pickLanguage(approved: TemplateRow[], wanted: Array<string | null | undefined>): TemplateRow | undefined {
  for (const code of wanted) {
    if (!code) continue;
    const exact = approved.find((r) => r.language.toLowerCase() === code.toLowerCase().replace('-', '_'));
    if (exact) return exact;
    const base = approved.find((r) => baseLanguage(r.language) === baseLanguage(code));
    if (base) return base;
  }
  return undefined;
}

/**
 * The approved languages among a template's, and the one `language` asks for when
 * given. Refused, naming the field: a template with no approved language (422
 * `business_rule`, `template_status`), and a language that is not approved (422).
 */
export function sendableLanguages(row: TemplateRow, languages: TemplateRow[], language?: string): { approved: TemplateRow[]; chosen: TemplateRow | undefined } {
  const approved = languages.filter((r) => r.status === 'APPROVED');
  if (approved.length === 0) {
    const message = `Template "${row.name}" is not approved (status ${row.status}); only APPROVED templates can be sent`;
    throw new AppError('business_rule', message, { errors: { template_id: [message] }, extra: { template_status: row.status } });
  }
  if (language === undefined || language === '') return { approved, chosen: undefined };
  const chosen = pickLanguage(approved, [language]);
  if (chosen) return { approved, chosen };
  const pending = languages.find((r) => r.language.toLowerCase() === language.toLowerCase());
  if (pending) {
    const message = `Template "${row.name}" is not approved in ${pending.language} (status ${pending.status})`;
    throw new AppError('business_rule', message, { errors: { language: [message] }, extra: { template_status: pending.status } });
  }
  throw invalid('language', `has no approved translation of "${row.name}"; approved languages: ${approved.map((r) => r.language).join(', ')}`);
}

/** The workspace's own language setting (`language` or `default_language`), if it has one. */
export async function workspaceLanguage(db: Db, workspaceId: string): Promise<string | null> {
  const workspace = await findWorkspace(db, workspaceId);
  const settings = parseJson<Record<string, unknown>>(workspace?.settings, {});
  return typeof settings.language === 'string' ? settings.language : typeof settings.default_language === 'string' ? settings.default_language : null;
}

/**
 * The content of a send of this template language with these placeholder values:
 * every placeholder filled (else 422 `template_variables_missing` with
 * `expected_placeholders` and `missing`), every value within WhatsApp's limits (else
 * 422 naming the variable the caller gave, not the wire field).
 */
export function templateContent(chosen: TemplateRow, variables: Record<string, string>): RenderedContent {
  const components = componentsOf(chosen);
  const filled = fillTemplate(components, variables);
  if (!filled.ok) {
    throw new AppError('template_variables_missing', `Template "${chosen.name}" (${chosen.language}) needs the variables ${filled.missing.join(', ')}`, {
      errors: Object.fromEntries(filled.missing.map((key) => [`variables.${key}`, [`variables.${key} is required`]])),
      extra: { expected_placeholders: filled.expected, missing: filled.missing },
    });
  }
  const content: RenderedContent = { kind: 'template', name: chosen.name, language: chosen.language, components: filled.values };
  const problems = validateWhatsAppContent(content);
  if (problems.length > 0) {
    // components.body.0 is variables["1"]: name what the caller gave.
    const placeholders = placeholdersOf(components);
    const field = (wire: string) => {
      const [, part, index] = /^components\.(header|body|buttons)\.(\d+)/.exec(wire) ?? [];
      const list = placeholders.filter((p) => p.part === (part === 'buttons' ? 'button' : part));
      const key = index !== undefined ? list[Number(index)]?.key : undefined;
      return key !== undefined ? `variables.${key}` : wire;
    };
    throw invalidFields(Object.fromEntries(problems.map((p) => [field(p.field), [`${field(p.field)} ${p.problem}`]])));
  }
  return content;
}

/**
 * send-template-message: upserts the contact by phone, picks the language (the one
 * asked for; else the contact's, then the workspace's; else the template's first
 * approved one), checks every placeholder is filled, and queues the message.
 * Templates may be sent outside the 24-hour window.
 */
export async function sendTemplateMessage(ctx: Context, workspaceId: string, input: SendTemplateInput) {
  const db = ctx.database.db;
  const row = await requireTemplate(ctx, workspaceId, input.template_id);
  const { approved, chosen: asked } = sendableLanguages(row, await templates.listTemplateLanguages(db, workspaceId, row.name), input.language);
  const contact = (await findOrCreateContactByPhone(ctx, workspaceId, input.phone, { source: 'api', optedIn: true })).contact;
  const chosen = asked ?? pickLanguage(approved, [contact.language, await workspaceLanguage(db, workspaceId)]) ?? approved[0]!;
  const content = templateContent(chosen, input.variables ?? {});
  const queued = await queueDirectMessage(ctx, {
    workspaceId,
    contactId: contact.id,
    channel: 'whatsapp',
    content,
    marketing: chosen.category === 'MARKETING',
  });
  return { id: queued.messageId, status: queued.status, whatsapp_message_id: queued.providerMessageId, contact_id: contact.id, template_id: chosen.id, language: chosen.language };
}
