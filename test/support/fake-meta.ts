import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signBody } from '../../src/channels/whatsapp-webhooks.js';

/**
 * A local stand-in for Meta's Graph API that speaks its wire format: bearer-token
 * checks, `POST /{version}/{phone-number-id}/messages` answered with a `wamid`,
 * `/{version}/{waba-id}/message_templates` (create, list with cursor paging, delete),
 * error bodies `{ error: { message, type, code, error_subcode, fbtrace_id } }`, and
 * signed webhooks to send back to Nudge. Every request is recorded.
 */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  contentType: string | undefined;
  body: unknown;
}

export interface ScriptedResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer after this many ms (longer than the client's timeout: a timeout). */
  delayMs?: number;
  /** Drop the connection without answering (a network error). */
  destroy?: boolean;
}

export interface FakeTemplate {
  id: string;
  name: string;
  language: string;
  category: string;
  status: string;
  rejected_reason?: string;
  components: unknown[];
}

export function metaError(status: number, code: number, message: string, extra: { type?: string; error_subcode?: number; details?: string } = {}): ScriptedResponse {
  return {
    status,
    body: {
      error: {
        message,
        type: extra.type ?? (code === 190 ? 'OAuthException' : 'OAuthException'),
        code,
        ...(extra.error_subcode !== undefined ? { error_subcode: extra.error_subcode } : {}),
        ...(extra.details ? { error_data: { messaging_product: 'whatsapp', details: extra.details } } : {}),
        fbtrace_id: 'AbCdEfGhIjKlMnOpQrStUv',
      },
    },
  };
}

export class FakeMeta {
  readonly requests: RecordedRequest[] = [];
  /** Answers for the next `/messages` calls, in order; then the default 200. */
  readonly messageResponses: ScriptedResponse[] = [];
  /** Answers for the next template creations; then 200 `{ id, status: PENDING, category }`. */
  readonly templateCreateResponses: ScriptedResponse[] = [];
  /** What `GET message_templates` lists, `pageSize` per page. */
  templates: FakeTemplate[] = [];
  pageSize = 2;
  accessToken = 'EAAG-test-access-token';
  readonly appSecret: string;
  private server: Server | null = null;
  private counter = 0;
  url = '';

  constructor(options: { appSecret?: string } = {}) {
    this.appSecret = options.appSecret ?? 'fake-meta-app-secret';
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Recorded requests whose path ends with `suffix` (e.g. '/messages'). */
  calls(suffix: string, method = 'POST'): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path.endsWith(suffix));
  }

  nextWamid(): string {
    this.counter += 1;
    return `wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI${String(this.counter).padStart(6, '0')}`;
  }

  /** A webhook as Meta sends it: the exact bytes and the X-Hub-Signature-256 header. */
  signedWebhook(payload: unknown, secret = this.appSecret): { raw: Buffer; headers: Record<string, string> } {
    const raw = Buffer.from(JSON.stringify(payload), 'utf8');
    return { raw, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(raw, secret), 'user-agent': 'facebookexternalua' } };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.url);
    let body: unknown = null;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch {
      body = text;
    }
    const recorded: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, authorization: req.headers.authorization, contentType: req.headers['content-type'], body };
    this.requests.push(recorded);

    const send = async (response: ScriptedResponse) => {
      if (response.destroy) {
        req.socket.destroy();
        return;
      }
      if (response.delayMs) await new Promise((r) => setTimeout(r, response.delayMs));
      if (res.destroyed) return;
      res.writeHead(response.status, { 'content-type': 'application/json; charset=UTF-8', ...(response.headers ?? {}) });
      res.end(response.body === undefined ? '' : JSON.stringify(response.body));
    };

    if (req.headers.authorization !== `Bearer ${this.accessToken}`) {
      return send(metaError(401, 190, 'Invalid OAuth access token - Cannot parse access token'));
    }
    const parts = url.pathname.split('/').filter((p) => p !== '');
    // /{version}/{id}/{edge}
    if (parts.length !== 3 || !/^v\d+\.\d+$/.test(parts[0]!)) return send(metaError(400, 100, 'Unsupported request'));
    const edge = parts[2];
    if (edge === 'messages' && req.method === 'POST') {
      const scripted = this.messageResponses.shift();
      if (scripted) return send(scripted);
      const to = (body as { to?: string } | null)?.to ?? '';
      return send({ status: 200, body: { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: to }], messages: [{ id: this.nextWamid() }] } });
    }
    if (edge === 'message_templates') {
      if (req.method === 'POST') {
        const scripted = this.templateCreateResponses.shift();
        if (scripted) return send(scripted);
        const b = body as { name: string; language: string; category: string; components: unknown[] };
        this.counter += 1;
        const id = String(900000000000000 + this.counter);
        this.templates.push({ id, name: b.name, language: b.language, category: b.category, status: 'PENDING', components: b.components });
        return send({ status: 200, body: { id, status: 'PENDING', category: b.category } });
      }
      if (req.method === 'GET') {
        const after = Number(url.searchParams.get('after') ?? '0');
        const page = this.templates.slice(after, after + this.pageSize);
        const nextAfter = after + this.pageSize;
        const paging: Record<string, unknown> = { cursors: { before: String(after), after: String(nextAfter) } };
        if (nextAfter < this.templates.length) {
          const next = new URL(url.toString());
          next.searchParams.set('after', String(nextAfter));
          paging.next = next.toString();
        }
        return send({ status: 200, body: { data: page, paging } });
      }
      if (req.method === 'DELETE') {
        const id = url.searchParams.get('hsm_id');
        const before = this.templates.length;
        this.templates = this.templates.filter((t) => t.id !== id);
        if (this.templates.length === before) return send(metaError(400, 100, 'Invalid parameter', { error_subcode: 2593002 }));
        return send({ status: 200, body: { success: true } });
      }
    }
    return send(metaError(400, 100, `Unsupported ${req.method} request to ${url.pathname}`));
  }
}
