import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the receiver does with the next request. */
export type ReceiverAnswer =
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Never answers (the sender's timeout fires). */
  | 'hang'
  /** Closes the connection without an answer. */
  | 'reset';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: Buffer;
  answer: ReceiverAnswer;
}

/**
 * A real HTTP endpoint on 127.0.0.1 for webhook deliveries: it records every request
 * (raw bytes and headers) and answers as `behave` says, so a test can make it fail in
 * each way a real endpoint does (5xx, 429 with Retry-After, no answer, a reset).
 */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  behave: (request: { index: number; headers: IncomingHttpHeaders; rawBody: Buffer }) => ReceiverAnswer = () => ({ status: 204 });
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();
  url = '';

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const rawBody = Buffer.concat(chunks);
        const answer = this.behave({ index: this.requests.length, headers: req.headers, rawBody });
        this.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, rawBody, answer });
        if (answer === 'hang') {
          this.hanging.add(res);
          return;
        }
        if (answer === 'reset') {
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.status, answer.headers ?? {});
        res.end(answer.body ?? '');
      });
    });
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/nudge`;
    return this;
  }

  /** The requests it answered with a 2xx. */
  accepted(): ReceivedRequest[] {
    return this.requests.filter((r) => typeof r.answer === 'object' && r.answer.status >= 200 && r.answer.status < 300);
  }

  /** The parsed bodies of accepted requests. */
  acceptedEvents(): Array<{ id: string; type: string; created_at: string; workspace_id: string; data: Record<string, unknown> }> {
    return this.accepted().map((r) => JSON.parse(r.rawBody.toString('utf8')));
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/**
 * Checks a Nudge-Signature header the way the README tells receivers to, written here
 * from the documented algorithm rather than with Nudge's own verify function:
 * `t=<seconds>,v1=<hex>[,v1=<hex>]`, each v1 the HMAC-SHA256 of "<t>.<raw body>" keyed
 * with the secret's UTF-8 bytes. Returns how many v1 values the secret matches.
 */
export function signatureMatches(secret: string, header: string | string[] | undefined, rawBody: Buffer): { timestamp: number; matches: number; signatures: number } {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  const parts = text.split(',').map((p) => p.split('='));
  const t = parts.filter(([k]) => k === 't').map(([, v]) => v!);
  const v1 = parts.filter(([k]) => k === 'v1').map(([, v]) => v!);
  if (t.length !== 1) return { timestamp: Number.NaN, matches: 0, signatures: v1.length };
  const expected = createHmac('sha256', secret).update(Buffer.concat([Buffer.from(`${t[0]}.`), rawBody])).digest();
  const matches = v1.filter((v) => /^[0-9a-f]{64}$/.test(v) && timingSafeEqual(Buffer.from(v, 'hex'), expected)).length;
  return { timestamp: Number(t[0]), matches, signatures: v1.length };
}
