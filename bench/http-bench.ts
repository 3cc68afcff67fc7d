import { createToken } from '../src/engine/auth-service.js';
import { LocalWaker } from '../src/engine/waker.js';
import type { Dialect } from '../src/store/database.js';
import { benchContext, createBenchDatabase, publishDrip } from './engine-bench.js';
import type { LoadConfig, LoadResult } from './load.js';
import { runNodeScript } from './support/child.js';
import { sampleProcessRss } from './support/memory.js';
import { startNudge } from './support/nudge-process.js';

export interface HttpFigures {
  dialect: Dialect;
  endpoint: string;
  role: string;
  connections: number;
  contactsPerRequest: number;
  seconds: number;
  requestsPerSecond: number;
  enrolledPerSecond: number;
  latencyP50Ms: number;
  latencyP97_5Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  errors: number;
  serverPeakRssBytes: number;
  failure: string | null;
}

export interface HttpOptions {
  connections: number;
  seconds: number;
  warmupSeconds: number;
  /** `api` (the API alone) or `start` (API and worker in one process). */
  role: 'api' | 'start';
}

/** The outcome of a scenario whose route this build lacks. */
export interface Unavailable {
  unavailable: string;
}

/**
 * An API endpoint under load from a separate process (bench/load.ts, autocannon):
 * `nudge api` (or `nudge start`) started as its own process on a fresh database, a
 * token with a rate limit high enough never to answer 429, a warm-up, then the
 * measured run; every request enrolls a contact never seen before. The server's RSS
 * is read from /proc while it serves. Checked: no non-2xx and no errors, and the
 * database holds exactly the sessions the responses reported.
 *
 * `trigger`: POST /api/v1/actions/trigger-sequence, one contact per request.
 * `execute`: POST /api/v1/sequences/{id}/execute, `batch` contacts per request.
 */
export async function runHttpBench(kind: 'trigger' | 'execute', dialect: Dialect, adminUrl: string, options: HttpOptions, batch = 100): Promise<HttpFigures | Unavailable> {
  const bench = await createBenchDatabase(dialect, adminUrl, 2);
  const ctx = benchContext(bench.database, new LocalWaker());
  try {
    const { workspaceId, sequence } = await publishDrip(ctx);
    const token = (await createToken(ctx, { workspaceId, name: 'bench load', rateLimit: 100_000_000 })).token;
    const server = await startNudge(options.role, { databaseUrl: bench.url, dataDir: bench.dataDir });
    const endpoint = kind === 'trigger' ? 'POST /api/v1/actions/trigger-sequence' : `POST /api/v1/sequences/{id}/execute (${batch} contacts)`;
    try {
      let probed = 0;
      if (kind === 'execute') {
        const response = await fetch(`${server.baseUrl}/api/v1/sequences/${sequence.id}/execute`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ contacts: [{ email: 'probe@bench.example', firstName: 'Probe', lastName: 'Contact', phone: '+14159999999' }] }),
        });
        const answer = (await response.json()) as { code?: string; queued?: number };
        if (response.status === 404 && answer.code === 'route_not_found') return { unavailable: 'execute: not available in this build' };
        if (response.status !== 200) return { unavailable: `execute: the probe answered ${response.status} ${JSON.stringify(answer)}` };
        probed = Number(answer.queued ?? 0);
      }
      const rss = sampleProcessRss(server.pid);
      const config: LoadConfig = {
        url: server.baseUrl,
        token,
        kind,
        sequenceId: sequence.id,
        connections: options.connections,
        seconds: options.seconds,
        warmupSeconds: options.warmupSeconds,
        batch,
      };
      const load = await runNodeScript<LoadResult>('load.js', [JSON.stringify(config)]);
      // Requests in flight when a run's time is up go on in the server though their client has
      // gone: wait until they have written, so the count below is final and the stop is clean.
      const count = async () => Number((await bench.database.db.selectFrom('sessions').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      let sessions = await count();
      for (let stable = 0; stable < 3; ) {
        await new Promise((r) => setTimeout(r, 200));
        const now = await count();
        stable = now === sessions ? stable + 1 : 0;
        sessions = now;
      }
      const serverPeakRssBytes = rss.stop();
      await server.stop();

      const contacts = Number((await bench.database.db.selectFrom('contacts').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      const expected = load.enrolled + load.warmupEnrolled + probed;
      const perRequest = kind === 'trigger' ? 1 : batch;
      // At most one request per connection was cut off at the end of the warm-up and of the run.
      const cutOff = 2 * options.connections * perRequest;
      const problems = [
        load.non2xx > 0 ? `${load.non2xx} non-2xx responses (${JSON.stringify(load.statusCodes)})` : null,
        load.errors > 0 ? `${load.errors} connection errors or timeouts` : null,
        sessions < expected || sessions > expected + cutOff ? `the database holds ${sessions} sessions, the responses reported ${expected} (+ up to ${cutOff} cut off)` : null,
        contacts !== sessions ? `${sessions} sessions for ${contacts} contacts: each request was a new contact` : null,
        load.enrolled !== load.requests * perRequest ? `${load.requests} requests enrolled ${load.enrolled} contacts, expected ${load.requests * perRequest}` : null,
      ].filter((p): p is string => p !== null);
      return {
        dialect,
        endpoint,
        role: `nudge ${options.role}`,
        connections: options.connections,
        contactsPerRequest: perRequest,
        seconds: load.seconds,
        requestsPerSecond: load.requestsPerSecond,
        enrolledPerSecond: Math.round(load.enrolled / load.seconds),
        latencyP50Ms: load.latencyP50Ms,
        latencyP97_5Ms: load.latencyP97_5Ms,
        latencyP99Ms: load.latencyP99Ms,
        non2xx: load.non2xx,
        errors: load.errors,
        serverPeakRssBytes,
        failure: problems.length > 0 ? problems.join('; ') : null,
      };
    } finally {
      await server.stop();
    }
  } finally {
    await bench.drop();
  }
}
