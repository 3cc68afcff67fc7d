import { connect, type Socket } from 'node:net';

/**
 * A minimal Redis client (RESP2 over one TCP connection, commands pipelined), shaped
 * like Bun's built-in `RedisClient` so that BullMQ's own adapter for it
 * (`createBunRedisClient`) drives it. It exists because BullMQ 6 leaves its Redis
 * driver (ioredis, node-redis…) as an optional peer that this project does not
 * install; bench/peers/redis.ts prefers ioredis when it is present.
 *
 * Replies: simple and bulk strings as strings, integers as numbers, arrays as
 * arrays, nil as null, errors as rejected promises (as ioredis answers).
 */
export class RespClient {
  connected = false;
  onconnect: (() => void) | undefined;
  onclose: ((error?: Error) => void) | undefined;
  onerror: ((error: Error) => void) | undefined;

  private socket: Socket | null = null;
  private pending: Array<{ resolve: (value: unknown) => void; reject: (error: Error) => void }> = [];
  private buffer: Buffer = Buffer.alloc(0);
  private outgoing: Buffer[] = [];
  private flushScheduled = false;

  constructor(
    readonly host = '127.0.0.1',
    readonly port = 6379,
  ) {}

  connect(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port });
      socket.setNoDelay(true);
      this.socket = socket;
      socket.once('connect', () => {
        this.connected = true;
        this.onconnect?.();
        resolve();
      });
      socket.on('data', (chunk: Buffer) => this.receive(chunk));
      socket.on('error', (error) => {
        if (!this.connected) reject(error);
        this.onerror?.(error);
      });
      socket.on('close', () => {
        const wasConnected = this.connected;
        this.connected = false;
        this.failPending(new Error('Connection closed'));
        if (wasConnected) this.onclose?.();
      });
    });
  }

  close(): void {
    this.connected = false;
    this.socket?.destroy();
    this.failPending(new Error('Connection closed'));
  }

  async duplicate(): Promise<RespClient> {
    return new RespClient(this.host, this.port);
  }

  send(command: string, args: ReadonlyArray<string | Buffer | number>): Promise<unknown> {
    if (!this.socket || !this.connected) return Promise.reject(new Error('Connection closed'));
    const parts: Buffer[] = [Buffer.from(`*${args.length + 1}\r\n$${Buffer.byteLength(command)}\r\n${command}\r\n`)];
    for (const arg of args) {
      const value = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg));
      parts.push(Buffer.from(`$${value.length}\r\n`), value, crlf);
    }
    this.outgoing.push(...parts);
    // Commands issued in the same tick leave in one write, as a pipelining client does.
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    }
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }

  private flush(): void {
    this.flushScheduled = false;
    if (!this.socket || this.outgoing.length === 0) return;
    const data = Buffer.concat(this.outgoing);
    this.outgoing = [];
    this.socket.write(data);
  }

  private failPending(error: Error): void {
    const pending = this.pending;
    this.pending = [];
    this.outgoing = [];
    for (const p of pending) p.reject(error);
  }

  private receive(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    for (;;) {
      const parsed = parseReply(this.buffer, offset);
      if (parsed === null) break;
      offset = parsed.end;
      const waiter = this.pending.shift();
      if (!waiter) continue;
      if (parsed.value instanceof RedisReplyError) waiter.reject(parsed.value);
      else waiter.resolve(parsed.value);
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
  }
}

const crlf = Buffer.from('\r\n');

class RedisReplyError extends Error {}

/** One reply starting at `offset`, or null when the buffer does not hold all of it yet. */
function parseReply(buffer: Buffer, offset: number): { value: unknown; end: number } | null {
  if (offset >= buffer.length) return null;
  const lineEnd = buffer.indexOf(crlf, offset);
  if (lineEnd === -1) return null;
  const type = String.fromCharCode(buffer[offset]!);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RedisReplyError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return null;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: unknown[] = [];
      let end = next;
      for (let i = 0; i < count; i += 1) {
        const item = parseReply(buffer, end);
        if (item === null) return null;
        items.push(item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default:
      throw new Error(`unexpected Redis reply type ${JSON.stringify(type)}`);
  }
}
