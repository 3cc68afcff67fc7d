import { buildSearchText, contactFieldsOf } from '../domain/contact.js';
import { unsubscribeUrlFor } from '../domain/unsubscribe-token.js';
import { newId } from '../domain/ids.js';
import { parseJson, toJson } from '../domain/json.js';
import { toError } from '../domain/errors.js';
import type { OutboundMessage, SendResult } from '../channels/channel.js';
import * as contactsRepo from '../store/engine-contact-repository.js';
import * as messagesRepo from '../store/message-repository.js';
import * as sessionsRepo from '../store/session-repository.js';
import type { NewMessageRow } from '../store/message-repository.js';
import type { SessionStepRow } from '../store/session-repository.js';
import type { Tx } from '../store/database.js';
import type { ChannelRegistry } from './channel-registry.js';
import type { Context } from './context.js';
import { advanceSession, type ContactSnapshot, type SessionState, type WebhookRequest, type WebhookResult } from './interpreter.js';
import { stopSessions } from './session-control.js';
import { applyContactChanges as applyAutomation, recheckSegments, reportEngagement, scanInactivity, type ContactChange } from './automation.js';
import { writePendingSequences } from './enrichment-service.js';
import type { VersionCache } from './version-cache.js';
import type { LocalWaker, WakeKind } from './waker.js';
import { runBroadcasts } from './broadcast-service.js';
import { nextBroadcastDueAt } from '../store/broadcast-repository.js';
import { applyPendingStatuses, settleParkedStatuses } from './message-status.js';
import { outcomeOf } from './send-outcome.js';
import { limitSendRate } from './send-rate-limit.js';
import { noteChannelHealth } from './channel-health.js';
import { attemptDiscount, settleDiscount, type PendingDiscount } from './discount-service.js';
import { mapLimit } from './map-limit.js';
import { runWebhookDeliveriesOnce } from './webhook-delivery.js';
import { emitWebhookEvents, messageStatusData, sessionData, sessionEndEvent, statusesReached, type WebhookEvent } from './webhook-emitter.js';
import * as webhooksRepo from '../store/webhook-repository.js';
import { withTrackedLinks } from './link-tracking-service.js';

export interface WorkerOptions {
  batchSize: number;
  pollIntervalMs: number;
  dispatchConcurrency: number;
  /** How long a claimed message stays leased to this worker before another may retry it. */
  leaseMs?: number;
  /** Contacts of a broadcast queued per transaction (default 1000). */
  broadcastChunkSize?: number;
}

/** Broadcast chunks one pass of the broadcast loop queues before it looks again. */
const broadcastChunksPerPass = 10;

interface PendingCall {
  sessionId: string;
  workspaceId: string;
  nodeId: string;
  visit: number;
  request: WebhookRequest;
}

/**
 * The scheduler and the dispatcher. The scheduler claims due sessions in batches and
 * runs each to its next wait, committing every effect of the batch (session updates,
 * queued messages, history, contact changes) in one transaction. The dispatcher claims
 * queued messages, sends them through their channel, and records the outcomes.
 * Everything lives in the database: a process killed at any instant loses nothing,
 * and the next one resumes where the last commit left off.
 */
export class Worker {
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly leaseMs: number;

  constructor(
    private readonly ctx: Context,
    private readonly channels: ChannelRegistry,
    private readonly cache: VersionCache,
    private readonly waker: LocalWaker | null,
    private readonly options: WorkerOptions,
  ) {
    this.leaseMs = options.leaseMs ?? 60_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = [
      this.loop('sessions', () => this.runSchedulerOnce(), this.options.batchSize),
      this.loop('messages', () => this.runDispatcherOnce(), this.options.batchSize),
      // A pass that delivered anything is followed by another: what it found due may not be all.
      this.loop('webhooks', () => this.runWebhooksOnce(), 1),
      this.loop('broadcasts', () => this.runBroadcastsOnce(), broadcastChunksPerPass),
      this.automationLoop(),
    ];
  }

  /** Stops after the batches in flight; resolves once every loop has ended. */
  async stop(): Promise<void> {
    this.running = false;
    this.waker?.sessions();
    this.waker?.messages();
    this.waker?.webhooks();
    this.waker?.broadcasts();
    await Promise.all(this.loops);
  }

  /** Runs `runOnce` until stopped; a pass that handled `full` items or more is followed by another at once. */
  private async loop(what: WakeKind, runOnce: () => Promise<number>, full: number): Promise<void> {
    let failures = 0;
    while (this.running) {
      let processed = 0;
      try {
        processed = await runOnce();
        failures = 0;
      } catch (error) {
        failures += 1;
        this.ctx.log.error({ err: toError(error), loop: what }, 'worker batch failed; it will be retried');
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** failures)));
        continue;
      }
      if (!this.running) break;
      if (processed >= full) continue;
      const delay = await this.sleepFor(what);
      if (delay > 0) {
        if (this.waker) await this.waker.sleep(what, delay);
        else await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** The periodic work: inactivity triggers, time-window segment changes, AI writing, parked delivery statuses. */
  private async automationLoop(): Promise<void> {
    const every = this.ctx.config.automationIntervalMs;
    while (this.running) {
      try {
        await this.runAutomationOnce();
      } catch (error) {
        this.ctx.log.error({ err: toError(error), loop: 'automation' }, 'automation pass failed; it will run again');
      }
      const until = Date.now() + every;
      while (this.running && Date.now() < until) await new Promise((r) => setTimeout(r, Math.min(200, until - Date.now())));
    }
  }

  /** One pass of the periodic work. Returns how many items it handled. */
  async runAutomationOnce(): Promise<number> {
    const started = await scanInactivity(this.ctx);
    const rechecked = await recheckSegments(this.ctx);
    const written = await writePendingSequences(this.ctx);
    const settled = await settleParkedStatuses(this.ctx);
    return started + rechecked + written + settled;
  }

  /** Sleeps until the next due item (read from the index), at most the poll interval. */
  private async sleepFor(what: WakeKind): Promise<number> {
    const db = this.ctx.database.db;
    const next =
      what === 'sessions'
        ? await sessionsRepo.nextWakeAt(db)
        : what === 'messages'
          ? await messagesRepo.nextMessageDueAt(db)
          : what === 'webhooks'
            ? await webhooksRepo.nextDeliveryDueAt(db)
            : await nextBroadcastDueAt(db);
    const poll = this.options.pollIntervalMs;
    if (next === null) return poll;
    return Math.max(0, Math.min(poll, next - this.ctx.clock.now()));
  }

  /** One scheduler batch. Returns how many sessions it advanced. */
  async runSchedulerOnce(): Promise<number> {
    const ctx = this.ctx;
    const { db, dialect } = ctx.database;
    const now = ctx.clock.now();
    const calls: PendingCall[] = [];
    const discounts: PendingDiscount[] = [];
    let queued = 0;
    let enrolledByAutomation = false;
    await this.channels.refresh?.();
    const advanced = await db.transaction().execute(async (trx) => {
      const due = await sessionsRepo.claimDueSessions(trx, dialect, now, this.options.batchSize, ctx.database.sqlite);
      if (due.length === 0) return 0;
      const versions = await this.cache.load(trx, due.map((s) => s.version_id));
      const contactIds = [...new Set(due.map((s) => s.contact_id))];
      const reads = { db: trx, raw: ctx.database.sqlite };
      const contacts = await contactsRepo.loadContactSnapshots(reads, contactIds);
      const tags = await contactsRepo.loadTagNamesOf(reads, contactIds);
      const states = new Map(due.map((s) => [s.id, parseJson<SessionState>(s.state, { visits: {} })]));
      // The last message's status matters only to condition nodes; skip the lookup otherwise.
      const lastIds = due
        .filter((s) => versions.get(s.version_id)?.hasConditions)
        .map((s) => states.get(s.id)?.last_message_id)
        .filter((id): id is string => typeof id === 'string');
      const lastStatus = new Map((await messagesRepo.findMessagesByIds(trx, lastIds)).map((m) => [m.id, m.status]));

      const updates: sessionsRepo.SessionUpdate[] = [];
      const messages: NewMessageRow[] = [];
      const steps: SessionStepRow[] = [];
      const stopped: string[] = [];
      const sentCounts = new Map<string, { count: number; at: number }>();
      const automationChanges = new Map<string, ContactChange[]>();
      const webhookEvents: WebhookEvent[] = [];
      const ended = (session: sessionsRepo.DueSession, status: string, endReason: string | null) =>
        webhookEvents.push({
          workspaceId: session.workspace_id,
          type: sessionEndEvent(session.kind, status),
          data: () => sessionData({ ...session, status, end_reason: endReason, ended_at: now }),
        });
      for (const session of due) {
        const version = versions.get(session.version_id);
        const contactRow = contacts.get(session.contact_id);
        if (!version || !contactRow) {
          const reason = !version ? 'version_missing' : 'contact_missing';
          updates.push(endUpdate(session.id, session.steps_run, session.state, now, 'failed', reason));
          ended(session, 'failed', reason);
          continue;
        }
        const state = states.get(session.id)!;
        const contact = toSnapshot(contactRow);
        let stopNow: string | null = null;
        const result = advanceSession(version.graph, {
          id: session.id,
          workspace_id: session.workspace_id,
          definition_id: session.definition_id,
          contact_id: session.contact_id,
          kind: session.kind,
          current_node: session.current_node,
          expires_at: session.expires_at,
          created_at: session.created_at,
          steps_run: session.steps_run,
          context: parseJson(session.context, {}),
          event: parseJson(session.event, null),
          state,
        }, contact, {
          now,
          tags: new Set(tags.get(session.contact_id) ?? []),
          lastMessageStatus: state.last_message_id ? (lastStatus.get(state.last_message_id) ?? null) : null,
          defaultTimezone: 'UTC',
          callTimeoutMs: ctx.config.webhookTimeoutMs,
          // Signing the link costs an HMAC: only for definitions that send email.
          unsubscribeUrl: version.hasEmail ? unsubscribeUrlFor(ctx.config.publicUrl, ctx.secretKey, session.workspace_id, session.contact_id) : '',
          whatsappWindowApplies: this.channels.providerFor(session.workspace_id, 'whatsapp') !== 'sandbox',
        });

        for (const m of result.messages) {
          const id = newId(now);
          result.state.last_message_id = id;
          // Email links are rewritten under this message's id, so each click is credited to it.
          const content = m.failed ? m.content : withTrackedLinks(ctx, m.content, id);
          const provider = m.failed ? 'none' : this.channels.providerFor(session.workspace_id, m.channel);
          const row: NewMessageRow = {
            id,
            workspace_id: session.workspace_id,
            contact_id: session.contact_id,
            session_id: session.id,
            definition_id: session.definition_id,
            node_id: m.node_id,
            dedupe_key: `${session.id}:${m.node_id}:${m.visit}`,
            direction: 'outbound',
            channel: m.channel,
            provider,
            recipient: m.recipient,
            kind: m.kind,
            content: toJson(content),
            marketing: m.marketing ? 1 : 0,
            status: m.failed ? m.failed.status : 'queued',
            provider_message_id: null,
            error_code: m.failed?.code ?? null,
            error_message: m.failed?.message ?? null,
            attempts: 0,
            next_attempt_at: m.failed ? null : now,
            lease_until: null,
            on_failure: m.on_failure,
            created_at: now,
            updated_at: now,
            sent_at: null,
            delivered_at: null,
            read_at: null,
            failed_at: m.failed?.status === 'failed' ? now : null,
          };
          if (!m.failed) {
            // An inline channel (the sandbox) sends inside this transaction: the message is
            // queued and dispatched in one commit, exactly once, with no lease to expire.
            const adapter = this.channels.adapterFor(session.workspace_id, m.channel, provider);
            if (adapter.inline) {
              const sent = await adapter.send({ id, workspaceId: session.workspace_id, channel: m.channel, to: m.recipient ?? '', content });
              const outcome = outcomeOf({ id, attempts: 1 }, sent, now);
              Object.assign(row, outcome, { attempts: 1 });
              if (outcome.sent_at !== null) {
                const c = sentCounts.get(session.contact_id) ?? { count: 0, at: now };
                c.count += 1;
                sentCounts.set(session.contact_id, c);
              } else if (outcome.status === 'failed' && m.on_failure === 'stop' && result.status !== 'completed') {
                stopNow = `send_failed:${outcome.error_code ?? 'unknown'}`;
              }
            }
            if (row.status === 'queued') queued += 1;
          }
          for (const status of statusesReached('queued', row.status as string)) {
            webhookEvents.push({ workspaceId: session.workspace_id, type: `message.status.${status}`, data: () => messageStatusData(row as messagesRepo.MessageRow, status, now) });
          }
          messages.push(row);
        }
        if (stopNow !== null) {
          result.status = 'stopped';
          result.end_reason = stopNow;
          result.current_node = null;
          result.wake_at = null;
          result.call = null;
          result.discount = null;
        }
        for (const s of result.steps) {
          steps.push({
            id: newId(now),
            workspace_id: session.workspace_id,
            session_id: session.id,
            node_id: s.node_id,
            node_type: s.node_type,
            visit: s.visit,
            outcome: s.outcome,
            detail: s.detail ? toJson(s.detail) : null,
            at: now,
          });
        }
        const isEnd = result.status === 'completed' || result.status === 'stopped' || result.status === 'expired' || result.status === 'failed';
        if (isEnd && result.status === 'stopped') stopped.push(session.id);
        if (isEnd) ended(session, result.status, result.end_reason);
        updates.push({
          id: session.id,
          status: result.status,
          active: isEnd ? 0 : 1,
          current_node: result.current_node,
          wake_at: isEnd ? null : result.wake_at,
          state: toJson(result.state),
          end_reason: result.end_reason,
          steps_run: session.steps_run + result.nodes_run,
          updated_at: now,
          ended_at: isEnd ? now : null,
        });
        const changed = await this.applyContactChanges(trx, session.workspace_id, session.contact_id, result.contact, now);
        if (changed !== null) {
          const list = automationChanges.get(session.workspace_id) ?? [];
          list.push(changed);
          automationChanges.set(session.workspace_id, list);
        }
        if (result.call) {
          calls.push({ sessionId: session.id, workspaceId: session.workspace_id, nodeId: result.call.node_id, visit: result.call.visit, request: result.call.request });
        }
        if (result.discount) {
          discounts.push({ ...result.discount, sessionId: session.id, workspaceId: session.workspace_id, definitionId: session.definition_id, contactId: session.contact_id });
        }
      }
      const bulk = { db: trx, raw: ctx.database.sqlite };
      await messagesRepo.insertMessages(bulk, messages);
      await sessionsRepo.saveSessions(bulk, updates);
      await sessionsRepo.insertSteps(bulk, steps);
      await messagesRepo.countMessagesOnContacts(bulk, sentCounts);
      if (stopped.length > 0) await messagesRepo.cancelQueuedForSessions(trx, stopped, now, 'send_failed');
      // Messages that are already sent, delivered or failed count for engagement segments.
      for (const [workspaceId, contactIds] of groupByWorkspace(messages.filter((m) => m.status !== 'queued'))) {
        if (await reportEngagement(ctx, trx, workspaceId, contactIds)) enrolledByAutomation = true;
      }
      await emitWebhookEvents(ctx, trx, webhookEvents);
      // Triggers and stop conditions of the tags this batch changed: after the session
      // writes, so a stop condition is never overwritten by the batch's own update.
      for (const [workspaceId, changes] of automationChanges) {
        const outcome = await applyAutomation(ctx, trx, workspaceId, changes, 'engine');
        if (outcome.enrollments.some((e) => e.status === 'enrolled')) enrolledByAutomation = true;
      }
      return due.length;
    });
    if (queued > 0) ctx.wake.messages();
    if (enrolledByAutomation) ctx.wake.sessions();
    if (calls.length > 0) await this.performCalls(calls);
    if (discounts.length > 0) await this.performDiscounts(discounts);
    return advanced;
  }

  private async applyContactChanges(
    trx: Tx,
    workspaceId: string,
    contactId: string,
    change: { addTags: string[]; removeTags: string[]; set: Record<string, string | null> },
    now: number,
  ): Promise<ContactChange | null> {
    const tagsAdded: string[] = [];
    const tagsRemoved: string[] = [];
    for (const raw of change.addTags) {
      const tag = raw.normalize('NFC').replace(/\s+/g, ' ').trim();
      if (tag === '' || tag.length > 100 || tag.includes(',')) continue;
      const tagId = await contactsRepo.ensureTag(trx, workspaceId, tag, newId(now), now);
      if (await contactsRepo.tagContact(trx, workspaceId, contactId, tagId, now)) tagsAdded.push(tag);
    }
    for (const tag of change.removeTags) if (await contactsRepo.untagContact(trx, workspaceId, contactId, tag)) tagsRemoved.push(tag);
    const entries = Object.entries(change.set);
    const changed = (attributes: boolean): ContactChange | null =>
      tagsAdded.length + tagsRemoved.length > 0 || attributes ? { contactId, tagsAdded, tagsRemoved, attributes } : null;
    if (entries.length === 0) return changed(false);
    const row = (await contactsRepo.loadContacts(trx, [contactId])).get(contactId);
    if (!row) return changed(false);
    const metadata = parseJson<Record<string, unknown>>(row.metadata, {});
    const patch: Record<string, unknown> = { updated_at: now };
    const allowed = new Set(['first_name', 'last_name', 'name', 'email', 'timezone', 'language']);
    for (const [field, value] of entries) {
      if (field.startsWith('metadata.')) {
        const key = field.slice(9);
        if (value === null || value === '') delete metadata[key];
        else metadata[key] = value;
      } else if (allowed.has(field)) {
        patch[field] = value === '' ? null : value;
      }
    }
    patch.metadata = toJson(metadata);
    const merged = { ...row, ...patch } as contactsRepo.EngineContactRow;
    patch.search_text = buildSearchText(merged);
    await contactsRepo.updateContactFields(trx, contactId, patch);
    return changed(true);
  }

  /** Webhook nodes: the HTTP call happens outside any transaction; its result is committed after. */
  private async performCalls(calls: PendingCall[]): Promise<void> {
    const results = await Promise.all(calls.map(async (call) => ({ call, result: await callWebhook(call.request, this.ctx.config.webhookTimeoutMs) })));
    const { db, dialect } = this.ctx.database;
    const now = this.ctx.clock.now();
    await db.transaction().execute(async (trx) => {
      for (const { call, result } of results) {
        const session = await sessionsRepo.findSessionForUpdate(trx, dialect, call.workspaceId, call.sessionId);
        if (!session || session.active !== 1 || session.current_node !== call.nodeId) continue;
        const state = parseJson<SessionState>(session.state, { visits: {} });
        if ((state.visits[call.nodeId] ?? 0) !== call.visit) continue;
        state.calls = { ...(state.calls ?? {}), [`${call.nodeId}:${call.visit}`]: result };
        await sessionsRepo.updateSession(trx, session.id, { state: toJson(state), wake_at: now, updated_at: now });
      }
    });
    this.ctx.wake.sessions();
  }

  /**
   * Discount steps: the provider is called outside any transaction, then each result is
   * committed in its own (discount-service.ts explains why a crash anywhere is harmless).
   * A settle that fails leaves its session waiting; the step is tried again when the wait
   * runs out, with the same code.
   */
  private async performDiscounts(calls: PendingDiscount[]): Promise<void> {
    const attempts = await mapLimit(calls, this.options.dispatchConcurrency, (call) => attemptDiscount(this.ctx, call));
    let changed = false;
    for (const [i, call] of calls.entries()) {
      try {
        if (await this.ctx.database.db.transaction().execute((trx) => settleDiscount(this.ctx, trx, call, attempts[i]!))) changed = true;
      } catch (error) {
        this.ctx.log.error({ err: toError(error), sessionId: call.sessionId, nodeId: call.node_id }, 'recording a discount step failed; the step will be tried again');
      }
    }
    if (changed) this.ctx.wake.sessions();
  }

  /** One dispatcher batch. Returns how many messages it attempted. */
  async runDispatcherOnce(): Promise<number> {
    const ctx = this.ctx;
    const { db, dialect } = ctx.database;
    const now = ctx.clock.now();
    await this.channels.refresh?.();
    // Per-sender throughput limits (WhatsApp per phone number): what is over goes back to the queue.
    const claimed = await limitSendRate(ctx, this.channels, await db.transaction().execute((trx) => messagesRepo.claimDueMessages(trx, ctx.database.sqlite, dialect, now, this.options.batchSize, this.leaseMs, ctx.config.sendConfirmWindowMs)));
    if (claimed.length === 0) return 0;

    const results = await mapLimit(claimed, this.options.dispatchConcurrency, async (message): Promise<SendResult> => {
      const outbound: OutboundMessage = {
        id: message.id,
        workspaceId: message.workspace_id,
        channel: message.channel,
        to: message.recipient ?? '',
        content: parseJson(message.content, { kind: 'text', text: '' }),
      };
      try {
        return await this.channels.adapterFor(message.workspace_id, message.channel, message.provider).send(outbound);
      } catch (error) {
        // Adapters return expected failures as values; a throw is a bug or an outage: retry it.
        return { ok: false, retryable: true, code: 'adapter_error', message: toError(error).message };
      }
    });

    const done = ctx.clock.now();
    let enrolledByAutomation = false;
    const outcomes: messagesRepo.MessageOutcome[] = [];
    const counts = new Map<string, { count: number; at: number }>();
    const stopSessionIds: string[] = [];
    claimed.forEach((message, i) => {
      const outcome = outcomeOf(message, results[i]!, done, ctx.config.sendConfirmWindowMs);
      outcomes.push(outcome);
      if (outcome.sent_at !== null) {
        const c = counts.get(message.contact_id) ?? { count: 0, at: done };
        c.count += 1;
        counts.set(message.contact_id, c);
      } else if (outcome.status === 'failed' && message.on_failure === 'stop' && message.session_id) {
        stopSessionIds.push(message.session_id);
      }
    });

    await db.transaction().execute(async (trx) => {
      const bulk = { db: trx, raw: ctx.database.sqlite };
      await messagesRepo.saveOutcomes(bulk, outcomes);
      await messagesRepo.countMessagesOnContacts(bulk, counts);
      await emitWebhookEvents(
        ctx,
        trx,
        claimed.flatMap((m, i) => {
          const outcome = outcomes[i]!;
          return statusesReached('sending', outcome.status).map((status) => ({
            workspaceId: m.workspace_id,
            type: `message.status.${status}` as const,
            data: () => messageStatusData({ ...m, ...outcome }, status, done),
          }));
        }),
      );
      // Statuses the provider sent before this batch's results were recorded.
      if (await applyPendingStatuses(ctx, trx, claimed.map((m, i) => ({ workspace_id: m.workspace_id, provider: m.provider, provider_message_id: outcomes[i]!.provider_message_id })))) enrolledByAutomation = true;
      for (const [workspaceId, contactIds] of groupByWorkspace(claimed.filter((_, i) => outcomes[i]!.status !== 'queued'))) {
        if (await reportEngagement(ctx, trx, workspaceId, contactIds)) enrolledByAutomation = true;
      }
      if (stopSessionIds.length > 0) {
        const byWorkspace = new Map<string, string[]>();
        for (const m of claimed) if (m.session_id && stopSessionIds.includes(m.session_id)) byWorkspace.set(m.workspace_id, [...(byWorkspace.get(m.workspace_id) ?? []), m.session_id]);
        for (const [workspaceId, ids] of byWorkspace) await stopSessions(ctx, trx, { workspaceId, sessionIds: ids }, 'send_failed');
      }
    });
    await noteChannelHealth(ctx, this.channels, claimed, results);
    if (enrolledByAutomation) ctx.wake.sessions();
    return claimed.length;
  }

  /** One webhook delivery batch (see webhook-delivery.ts). Returns how many deliveries it attempted. */
  async runWebhooksOnce(): Promise<number> {
    return runWebhookDeliveriesOnce(this.ctx);
  }

  /**
   * One pass of the broadcast loop: queues up to a few chunks of the broadcasts that
   * are due (see broadcast-service.ts). Returns how many chunks it queued.
   */
  async runBroadcastsOnce(): Promise<number> {
    return runBroadcasts(this.ctx, this.channels, { chunkSize: this.options.broadcastChunkSize ?? 1000, maxChunks: broadcastChunksPerPass });
  }

  /** Tests: runs every loop's pass until none finds due work. */
  async drain(maxRounds = 1000): Promise<void> {
    for (let i = 0; i < maxRounds; i += 1) {
      const a = await this.runSchedulerOnce();
      const d = await this.runBroadcastsOnce();
      const b = await this.runDispatcherOnce();
      const c = await this.runAutomationOnce();
      const e = await this.runWebhooksOnce();
      if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0) return;
    }
    throw new Error('drain did not settle');
  }
}

function groupByWorkspace(messages: ReadonlyArray<{ workspace_id: string; contact_id: string }>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of messages) {
    const list = out.get(m.workspace_id);
    if (list) list.push(m.contact_id);
    else out.set(m.workspace_id, [m.contact_id]);
  }
  return out;
}

function endUpdate(id: string, stepsRun: number, state: string, now: number, status: string, reason: string): sessionsRepo.SessionUpdate {
  return { id, status, active: 0, current_node: null, wake_at: null, state, end_reason: reason, steps_run: stepsRun, updated_at: now, ended_at: now };
}

function toSnapshot(row: contactsRepo.SnapshotRow): ContactSnapshot {
  return {
    id: row.id,
    ...contactFieldsOf(row),
    whatsapp_opted_out_at: row.whatsapp_opted_out_at,
    sms_opted_out_at: row.sms_opted_out_at,
    email_opted_out_at: row.email_opted_out_at,
    whatsapp_last_inbound_at: row.whatsapp_last_inbound_at,
  };
}

async function callWebhook(request: WebhookRequest, timeoutMs: number): Promise<WebhookResult> {
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.method === 'GET' || request.method === 'DELETE' ? undefined : (request.body ?? undefined),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'follow',
    });
    const text = (await response.text()).slice(0, 65_536);
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: keep the text.
    }
    return { ok: response.ok, status: response.status, body };
  } catch (error) {
    return { ok: false, status: 0, body: null, error: toError(error).message };
  }
}
