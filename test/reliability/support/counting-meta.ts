import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { signBody } from '../../../src/channels/whatsapp-webhooks.js';
import { metaError } from '../../support/fake-meta.js';

/**
 * A stand-in for Meta's Graph API and its webhooks, for the reliability suites. It
 * speaks the same wire format as test/support/fake-meta.ts (bearer token,
 * `POST /{version}/{phone-number-id}/messages` answered with a wamid, template
 * creation, Meta's error bodies), and adds what those suites need:
 *
 * - every send that reached it is counted, by recipient and content, so a message
 *   sent twice shows up here whatever ids Nudge gave it;
 * - a fault plan answers chosen attempts with 500, 429 + Retry-After, a hang past the
 *   client's timeout or a reset connection, either before or after accepting;
 * - like Meta, it calls back promptly: a signed status webhook (`sent`, then
 *   `delivered`) for every accepted send, echoing `biz_opaque_callback_data`, posted
 *   round-robin to the webhook targets (the API processes, as behind a load balancer)
 *   and retried until one answers 2xx, as Meta retries undelivered webhooks;
 * - inbound customer messages, signed the same way.
 */

export type Fault =
  | { kind: 'accept' }
  | { kind: 'status'; status: number; retryAfterSeconds?: number; code?: number }
  /** Answers only after `ms` (past the client's timeout). `accept`: Meta took the message and calls back. */
  | { kind: 'hang'; ms: number; accept: boolean }
  /** Drops the connection. `accept`: after Meta took the message (it calls back), else before. */
  | { kind: 'reset'; accept: boolean };

export interface AttemptInfo {
  to: string;
  /** What the customer would read: the template name and its parameters, or the text. */
  text: string;
  /** Nudge's message id from `biz_opaque_callback_data`, or null. */
  messageId: string | null;
  /** 1 for the first request naming this message id (or this recipient and text without one). */
  attempt: number;
}

export interface SendAttempt extends AttemptInfo {
  arrivedAt: number;
  /** When the answer (or the reset) went out; null while hanging. */
  answeredAt: number | null;
  /**
   * The same two instants on the monotonic clock. Nudge schedules retries on the wall
   * clock, which a virtual machine may step: a gap is checked on both (see \`elapsedMs\`).
   */
  arrivedMono: number;
  answeredMono: number | null;
  fault: Fault;
  accepted: boolean;
  wamid: string | null;
  /** The Retry-After this answer asked for, in ms. */
  retryAfterMs?: number;
}

/**
 * The time between two instants the fake recorded, as the longer of the wall-clock and
 * the monotonic reading. Nudge stores a retry's due time as a wall-clock instant. If the
 * machine's clock is stepped back, the wall gap understates how long Nudge really
 * waited; if it is stepped forward, Nudge waits less real time but the wall gap still
 * shows the full wait. A retry that really came early is short on both.
 */
export function elapsedMs(from: { wall: number; mono: number }, to: { wall: number; mono: number }): number {
  return Math.floor(Math.max(to.wall - from.wall, to.mono - from.mono));
}

export interface InboundMessage {
  from: string;
  text: string;
  wamid: string;
}

interface QueuedWebhook {
  kind: 'status' | 'inbound';
  /** One `value` of a `messages` change: `statuses` or `messages` (+ `contacts`). */
  value: Record<string, unknown>;
  queuedAt: number;
  /** The send it reports, for the latency figures and the follow-up `delivered`. */
  send?: SendAttempt;
  status?: 'sent' | 'delivered';
  done: () => void;
}

export interface CallbackFigures {
  /** Webhook POSTs answered 2xx. */
  delivered: number;
  /** POSTs that failed (connection refused or reset, 5xx) and were retried. */
  retried: number;
  /** POSTs answered 4xx: Nudge refused a genuine webhook (a bug). */
  refused: Array<{ status: number; body: string }>;
  /** Longest time from accepting a send to its `sent` status being taken by Nudge. */
  maxSentLatencyMs: number;
  /** That time for every accepted send, in order. */
  sentLatenciesMs: number[];
}

let instance = 0;

export class CountingMeta {
  readonly accessToken = 'EAAG-reliability-access-token';
  readonly appSecret = 'reliability-meta-app-secret';
  readonly phoneNumberId: string;
  readonly businessAccountId: string;
  readonly attempts: SendAttempt[] = [];
  /** Accepted sends by `to|text`: more than one entry is a duplicate the customer received. */
  readonly accepted = new Map<string, SendAttempt[]>();
  readonly inbound: InboundMessage[] = [];
  readonly figures: CallbackFigures = { delivered: 0, retried: 0, refused: [], maxSentLatencyMs: 0, sentLatenciesMs: [] };
  /** Decides the answer to each `/messages` request; default: accept. */
  faultPlan: (attempt: AttemptInfo) => Fault = () => ({ kind: 'accept' });
  /** Runs after a send is counted and before it is answered (the crash suite kills its sender here). */
  onAccepted: ((attempt: SendAttempt, socket: Socket) => Promise<void> | void) | null = null;
  /** A customer's answer to an accepted send, delivered after its `delivered` status (flows in the soak). */
  autoReply: ((attempt: SendAttempt) => string | null) | null = null;
  /** Base URLs of the processes that take webhooks (`…/webhooks/whatsapp` is appended). */
  webhookTargets: string[] = [];
  /** Statuses batched into one webhook POST, as Meta sometimes does. */
  batchSize = 20;
  deliverers = 8;
  retryDelayMs = 200;
  url = '';

  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();
  private readonly queue: QueuedWebhook[] = [];
  private inFlight = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  private wake: (() => void) | null = null;
  private next = 0;
  /** When each target last failed: like a load balancer, the next POSTs go to the others for a while. */
  private readonly failedAt = new Map<string, number>();
  private counter = 0;
  private readonly attemptsById = new Map<string, number>();
  private readonly templates: Array<{ id: string; name: string; language: string; category: string; components: unknown[] }> = [];

  constructor() {
    instance += 1;
    this.phoneNumberId = `10654035224${String(instance).padStart(4, '0')}`;
    this.businessAccountId = `10229012934${String(instance).padStart(4, '0')}`;
  }

  /** The provider settings that point a workspace's WhatsApp channel at this fake. */
  settings(): Record<string, string> {
    return { phone_number_id: this.phoneNumberId, business_account_id: this.businessAccountId, base_url: this.url, access_token: this.accessToken, app_secret: this.appSecret, verify_token: 'reliability-verify-token' };
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        // The client went away mid-request (a killed worker): nothing was accepted.
        if (!res.destroyed) res.destroy();
      });
    });
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    this.running = true;
    this.loops = Array.from({ length: this.deliverers }, () => this.deliverLoop());
    return this;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    for (const res of this.hanging) res.destroy();
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all(this.loops);
  }

  /** Sends counted per `to|text` more than once: what a customer would have received twice. */
  duplicates(): Array<{ key: string; count: number; messageIds: Array<string | null> }> {
    return [...this.accepted.entries()].filter(([, list]) => list.length > 1).map(([key, list]) => ({ key, count: list.length, messageIds: list.map((a) => a.messageId) }));
  }

  /** Percentiles of the time from accepting a send to Nudge taking its `sent` status. */
  callbackLatency(): { p50: number; p99: number; max: number } {
    const sorted = [...this.figures.sentLatenciesMs].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
  }

  acceptedCount(): number {
    let n = 0;
    for (const list of this.accepted.values()) n += list.length;
    return n;
  }

  /** Webhooks still to be delivered (queued or in flight). */
  pendingWebhooks(): number {
    return this.queue.length + this.inFlight;
  }

  /** A customer writes to the business: a signed inbound webhook, delivered (and retried) like the statuses. */
  sendInbound(from: string, text: string): Promise<void> {
    const wamid = this.nextWamid();
    const waId = from.replace(/^\+/, '');
    this.inbound.push({ from, text, wamid });
    return new Promise((resolve) => {
      this.enqueue({
        kind: 'inbound',
        value: { contacts: [{ profile: { name: 'Reliability Customer' }, wa_id: waId }], messages: [{ from: waId, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }] },
        queuedAt: Date.now(),
        done: resolve,
      });
    });
  }

  /** The bytes and headers of a webhook carrying `value`, signed as Meta signs it. */
  signedWebhook(value: Record<string, unknown>, secret = this.appSecret): { raw: Buffer; headers: Record<string, string> } {
    const payload = {
      object: 'whatsapp_business_account',
      entry: [{ id: this.businessAccountId, changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: this.phoneNumberId }, ...value } }] }],
    };
    const raw = Buffer.from(JSON.stringify(payload), 'utf8');
    return { raw, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(raw, secret), 'user-agent': 'facebookexternalua' } };
  }

  /** A `message_template_status_update` webhook for a template this fake created. */
  templateReview(name: string, event: 'APPROVED' | 'REJECTED'): { raw: Buffer; headers: Record<string, string> } {
    const template = this.templates.find((t) => t.name === name);
    if (!template) throw new Error(`no template ${name} was created at the fake`);
    const payload = {
      object: 'whatsapp_business_account',
      entry: [{ id: this.businessAccountId, time: Math.floor(Date.now() / 1000), changes: [{ field: 'message_template_status_update', value: { event, message_template_id: Number(template.id), message_template_name: name, message_template_language: template.language, reason: null } }] }],
    };
    const raw = Buffer.from(JSON.stringify(payload), 'utf8');
    return { raw, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(raw, this.appSecret) } };
  }

  private nextWamid(): string {
    this.counter += 1;
    return `wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJ${String(instance).padStart(3, '0')}${String(this.counter).padStart(9, '0')}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: Record<string, unknown> | null = null;
    try {
      body = text === '' ? null : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      body = null;
    }
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
      res.end(JSON.stringify(payload));
    };
    if (req.headers.authorization !== `Bearer ${this.accessToken}`) {
      const e = metaError(401, 190, 'Invalid OAuth access token - Cannot parse access token');
      return answer(e.status, e.body);
    }
    const url = new URL(req.url ?? '/', this.url);
    const parts = url.pathname.split('/').filter((p) => p !== '');
    if (parts.length !== 3 || !/^v\d+\.\d+$/.test(parts[0]!)) {
      const e = metaError(400, 100, 'Unsupported request');
      return answer(e.status, e.body);
    }
    const [, node, edge] = parts as [string, string, string];
    if (edge === 'messages' && req.method === 'POST' && node === this.phoneNumberId && body) return this.handleSend(body, req, res, answer);
    if (edge === 'message_templates' && node === this.businessAccountId) {
      if (req.method === 'POST' && body) {
        this.counter += 1;
        const id = String(900000000000000 + this.counter);
        this.templates.push({ id, name: String(body.name), language: String(body.language), category: String(body.category), components: (body.components as unknown[]) ?? [] });
        return answer(200, { id, status: 'PENDING', category: body.category });
      }
      if (req.method === 'GET') {
        // Every template this fake made, approved: a sync from the maintenance loop changes nothing.
        return answer(200, { data: this.templates.map((t) => ({ ...t, status: 'APPROVED' })), paging: { cursors: { before: '0', after: '0' } } });
      }
    }
    const e = metaError(400, 100, `Unsupported ${req.method} request to ${url.pathname}`);
    return answer(e.status, e.body);
  }

  private async handleSend(body: Record<string, unknown>, req: IncomingMessage, res: ServerResponse, answer: (status: number, payload: unknown, headers?: Record<string, string>) => void): Promise<void> {
    const to = `+${String(body.to ?? '')}`;
    const reference = typeof body.biz_opaque_callback_data === 'string' ? body.biz_opaque_callback_data : null;
    const messageId = reference?.startsWith('nudge:') ? reference.slice(6) : null;
    const content = describeContent(body);
    const idKey = messageId ?? `${to}|${content}`;
    const attemptNo = (this.attemptsById.get(idKey) ?? 0) + 1;
    this.attemptsById.set(idKey, attemptNo);
    const info: AttemptInfo = { to, text: content, messageId, attempt: attemptNo };
    const fault = this.faultPlan(info);
    const attempt: SendAttempt = { ...info, arrivedAt: Date.now(), answeredAt: null, arrivedMono: performance.now(), answeredMono: null, fault, accepted: false, wamid: null };
    this.attempts.push(attempt);

    const accept = fault.kind === 'accept' || ((fault.kind === 'hang' || fault.kind === 'reset') && fault.accept);
    if (accept) {
      attempt.accepted = true;
      attempt.wamid = this.nextWamid();
      const key = `${to}|${content}`;
      const list = this.accepted.get(key) ?? [];
      list.push(attempt);
      this.accepted.set(key, list);
      this.queueStatus(attempt, 'sent');
      if (this.onAccepted) await this.onAccepted(attempt, req.socket);
    }
    const ok = { messaging_product: 'whatsapp', contacts: [{ input: String(body.to), wa_id: String(body.to) }], messages: [{ id: attempt.wamid }] };
    switch (fault.kind) {
      case 'accept':
        attempt.answeredAt = Date.now();
        attempt.answeredMono = performance.now();
        return answer(200, ok);
      case 'status': {
        const e = fault.status === 429 ? metaError(429, fault.code ?? 130429, 'Rate limit hit') : metaError(fault.status, fault.code ?? 131000, 'Something went wrong');
        attempt.answeredAt = Date.now();
        attempt.answeredMono = performance.now();
        if (fault.retryAfterSeconds !== undefined) attempt.retryAfterMs = fault.retryAfterSeconds * 1000;
        return answer(e.status, e.body, fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {});
      }
      case 'hang':
        this.hanging.add(res);
        await new Promise((r) => setTimeout(r, fault.ms));
        this.hanging.delete(res);
        attempt.answeredAt = Date.now();
        attempt.answeredMono = performance.now();
        return fault.accept ? answer(200, ok) : answer(500, metaError(500, 131000, 'Something went wrong').body);
      case 'reset':
        attempt.answeredAt = Date.now();
        attempt.answeredMono = performance.now();
        req.socket.destroy();
        return;
    }
  }

  private queueStatus(send: SendAttempt, status: 'sent' | 'delivered'): void {
    this.enqueue({
      kind: 'status',
      status,
      send,
      value: {
        statuses: [
          {
            id: send.wamid,
            status,
            timestamp: String(Math.floor(Date.now() / 1000)),
            recipient_id: send.to.replace(/^\+/, ''),
            ...(send.messageId ? { biz_opaque_callback_data: `nudge:${send.messageId}` } : {}),
            pricing: { billable: true, pricing_model: 'PMP', category: 'utility' },
          },
        ],
      },
      queuedAt: Date.now(),
      done: () => undefined,
    });
  }

  private enqueue(item: QueuedWebhook): void {
    this.queue.push(item);
    this.wake?.();
  }

  private async deliverLoop(): Promise<void> {
    while (this.running) {
      const batch = this.takeBatch();
      if (batch.length === 0) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 50);
        });
        continue;
      }
      this.inFlight += batch.length;
      const ok = await this.post(batch);
      this.inFlight -= batch.length;
      if (!ok) {
        this.figures.retried += 1;
        // Back to the front of the queue, after a pause (Meta retries with a backoff).
        await new Promise((r) => setTimeout(r, this.retryDelayMs));
        this.queue.unshift(...batch);
        continue;
      }
      for (const item of batch) this.settle(item);
    }
  }

  /** Statuses share a POST; an inbound message travels alone, as Meta sends them. */
  private takeBatch(): QueuedWebhook[] {
    const first = this.queue.shift();
    if (!first) return [];
    if (first.kind === 'inbound') return [first];
    const batch = [first];
    while (batch.length < this.batchSize && this.queue[0]?.kind === 'status') batch.push(this.queue.shift()!);
    return batch;
  }

  private async post(batch: QueuedWebhook[]): Promise<boolean> {
    if (this.webhookTargets.length === 0) return false;
    const healthy = this.webhookTargets.filter((t) => Date.now() - (this.failedAt.get(t) ?? 0) > 500);
    const targets = healthy.length > 0 ? healthy : this.webhookTargets;
    const target = targets[this.next++ % targets.length]!;
    const value = batch[0]!.kind === 'inbound' ? batch[0]!.value : { statuses: batch.flatMap((b) => b.value.statuses as unknown[]) };
    const { raw, headers } = this.signedWebhook(value);
    try {
      const response = await fetch(`${target}/webhooks/whatsapp`, { method: 'POST', headers, body: raw, signal: AbortSignal.timeout(10_000) });
      const text = await response.text();
      if (response.status >= 200 && response.status < 300) {
        this.figures.delivered += 1;
        return true;
      }
      if (response.status >= 400 && response.status < 500) {
        // A genuine webhook refused: recorded for the test to fail on, and not retried.
        this.figures.refused.push({ status: response.status, body: text.slice(0, 500) });
        return true;
      }
      this.failedAt.set(target, Date.now());
      return false;
    } catch {
      this.failedAt.set(target, Date.now());
      return false;
    }
  }

  private settle(item: QueuedWebhook): void {
    if (item.kind === 'status' && item.send) {
      if (item.status === 'sent') {
        const latency = Date.now() - item.send.arrivedAt;
        this.figures.maxSentLatencyMs = Math.max(this.figures.maxSentLatencyMs, latency);
        this.figures.sentLatenciesMs.push(latency);
        this.queueStatus(item.send, 'delivered');
      } else if (this.autoReply) {
        const reply = this.autoReply(item.send);
        if (reply !== null) void this.sendInbound(item.send.to, reply);
      }
    }
    item.done();
  }
}

/** What a customer reads in a send: `template:<name>:<parameters>` or the text. */
export function describeContent(body: Record<string, unknown>): string {
  if (body.type === 'template') {
    const template = body.template as { name?: string; components?: Array<{ parameters?: Array<{ text?: string }> }> };
    const params = (template.components ?? []).flatMap((c) => (c.parameters ?? []).map((p) => p.text ?? ''));
    return `template:${template.name ?? ''}:${params.join('|')}`;
  }
  if (body.type === 'text') return `text:${(body.text as { body?: string }).body ?? ''}`;
  if (body.type === 'interactive') return `interactive:${(body.interactive as { body?: { text?: string } }).body?.text ?? ''}`;
  return `${String(body.type)}:${JSON.stringify(body).slice(0, 200)}`;
}
