/**
 * Load for the crash and soak suites: concurrent HTTP calls spread round-robin over
 * the API processes (as a load balancer would), each outcome recorded. Nothing is
 * retried: a request that got no answer is what the suites then look for in the
 * database ("may or may not exist, but if it exists it is complete").
 */

export type Outcome =
  /** The API answered with this status. */
  | { kind: 'answered'; status: number; body: unknown }
  /** The connection was refused: the request never reached a process. */
  | { kind: 'refused'; error: string }
  /** The connection failed after the request was sent (a killed process): it may have been applied. */
  | { kind: 'lost'; error: string };

export interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export async function call(baseUrl: string, token: string, c: Call, timeoutMs = 15_000): Promise<Outcome> {
  try {
    const response = await fetch(`${baseUrl}${c.path}`, {
      method: c.method,
      headers: { authorization: `Bearer ${token}`, ...(c.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(c.headers ?? {}) },
      body: c.body === undefined ? undefined : JSON.stringify(c.body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: keep the text.
    }
    return { kind: 'answered', status: response.status, body };
  } catch (error) {
    const e = error as Error & { cause?: { code?: string; message?: string } };
    const code = e.cause?.code ?? e.cause?.message ?? e.message;
    return /ECONNREFUSED/.test(code) ? { kind: 'refused', error: code } : { kind: 'lost', error: code };
  }
}

export interface LoadStats {
  requests: number;
  byStatus: Record<string, number>;
  refused: number;
  lost: number;
  /** Answers of 500 and above, with what was asked. */
  serverErrors: Array<{ call: Call; status: number; body: unknown }>;
}

export function emptyStats(): LoadStats {
  return { requests: 0, byStatus: {}, refused: 0, lost: 0, serverErrors: [] };
}

export function count(stats: LoadStats, c: Call, outcome: Outcome): void {
  stats.requests += 1;
  if (outcome.kind === 'refused') stats.refused += 1;
  else if (outcome.kind === 'lost') stats.lost += 1;
  else {
    stats.byStatus[outcome.status] = (stats.byStatus[outcome.status] ?? 0) + 1;
    if (outcome.status >= 500) stats.serverErrors.push({ call: c, status: outcome.status, body: outcome.body });
  }
}

/**
 * Runs `concurrency` loops that each call `next(i)` for a fresh sequence number and
 * send what it returns to the next URL in turn, until `stop()`; `record` sees every
 * outcome. `pauseMs` between calls of one loop keeps the rate steady in the soak.
 */
export function runLoad(options: {
  urls: () => string[];
  token: string;
  concurrency: number;
  next: (i: number) => Call | Promise<Call>;
  record: (i: number, call: Call, outcome: Outcome) => void | Promise<void>;
  pauseMs?: number;
  /** While this returns true no new call starts (backpressure, e.g. a webhook backlog). */
  hold?: () => boolean;
}): { stop: () => Promise<void>; sent: () => number } {
  let running = true;
  let i = 0;
  let rr = 0;
  // Like a load balancer: a URL that refused a connection gets no calls for a moment.
  const refusedAt = new Map<string, number>();
  const loops = Array.from({ length: options.concurrency }, async () => {
    while (running) {
      if (options.hold?.()) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const n = i++;
      const c = await options.next(n);
      const all = options.urls();
      const up = all.filter((u) => Date.now() - (refusedAt.get(u) ?? 0) > 300);
      const urls = up.length > 0 ? up : all;
      const url = urls[rr++ % urls.length]!;
      const outcome = await call(url, options.token, c);
      if (outcome.kind === 'refused') refusedAt.set(url, Date.now());
      await options.record(n, c, outcome);
      // A refused connection means no process is up there right now: do not spin.
      if (outcome.kind === 'refused') await new Promise((r) => setTimeout(r, 20));
      else if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
    sent: () => i,
  };
}

/** The i-th test phone number: valid US numbers, unique up to 8 million per prefix. */
export function phoneNumber(i: number, area = 415): string {
  return `+1${area}${200 + Math.floor(i / 10_000)}${String(i % 10_000).padStart(4, '0')}`;
}
