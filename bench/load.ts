import autocannon, { type RawRequest, type Result } from 'autocannon';
import { reportToParent } from './support/child.js';
import { cloneId } from './support/clone-ids.js';

/**
 * The load generator, a process of its own so the server's figures are not the
 * client's: `node dist/bench/load.js '<json LoadConfig>'`. A warm-up run, then the
 * measured run, each request with a phone number (and email) never used before.
 */
export interface LoadConfig {
  url: string;
  token: string;
  kind: 'trigger' | 'execute' | 'add-tag';
  sequenceId: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  /** Contacts per request (execute). */
  batch: number;
  /** add-tag: tag contacts firstIndex … firstIndex + amount - 1 of the stop scenario, one request each, no warm-up. */
  firstIndex?: number;
  amount?: number;
}

export interface LoadResult {
  requestsPerSecond: number;
  requests: number;
  latencyP50Ms: number;
  latencyP97_5Ms: number;
  latencyP99Ms: number;
  latencyMeanMs: number;
  non2xx: number;
  errors: number;
  statusCodes: Record<string, number>;
  /** Enrollments the responses reported (201 started for trigger; the sum of `queued` for execute). */
  enrolled: number;
  /** The measured run's length: autocannon's for a timed run; for an `amount` run, from its start to the last answer. */
  seconds: number;
  /** 2xx responses and enrollments of the warm-up, which the database holds too. */
  warmup2xx: number;
  warmupEnrolled: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as LoadConfig;
let next = 0;

function body(): string {
  if (config.kind === 'add-tag') return JSON.stringify({ contact_id: cloneId(1, (config.firstIndex ?? 0) + next++), tag: 'customer' });
  if (config.kind === 'trigger') {
    const n = next++;
    return JSON.stringify({ sequence_id: config.sequenceId, phone: phoneOf(n), context: { first_name: `Load ${n}` } });
  }
  const contacts = Array.from({ length: config.batch }, () => {
    const n = next++;
    return { email: `load-${n}@bench.example`, firstName: 'Load', lastName: `Contact ${n}`, phone: phoneOf(n) };
  });
  return JSON.stringify({ contacts });
}

function phoneOf(n: number): string {
  return `+1415${String(5000000 + n).padStart(7, '0')}`;
}

const paths = { trigger: '/api/v1/actions/trigger-sequence', execute: `/api/v1/sequences/${config.sequenceId}/execute`, 'add-tag': '/api/v1/actions/add-tag' };

async function run(seconds: number, amount?: number): Promise<{ result: Result; enrolled: number; lastAnswerSeconds: number }> {
  let enrolled = 0;
  const path = paths[config.kind];
  // autocannon ends an `amount` run at its next one-second sample, so its duration is
  // rounded up to whole seconds: the run is taken from autocannon's start to the last
  // answer instead.
  let lastAnswerAt = Date.now();
  const result = await autocannon({
    url: config.url,
    connections: config.connections,
    ...(amount === undefined ? { duration: seconds } : { amount }),
    timeout: 30,
    requests: [
      {
        method: 'POST',
        path,
        headers: { authorization: `Bearer ${config.token}`, 'content-type': 'application/json' },
        setupRequest: (request: RawRequest) => ({ ...request, body: body() }),
        onResponse: (status: number, text: string) => {
          lastAnswerAt = Date.now();
          if (config.kind === 'add-tag') {
            if (status === 200) enrolled += 1;
          } else if (config.kind === 'trigger') {
            if (status === 201) enrolled += 1;
          } else if (status === 200) {
            enrolled += Number((JSON.parse(text) as { queued?: number }).queued ?? 0);
          }
        },
      },
    ],
  });
  return { result, enrolled, lastAnswerSeconds: (lastAnswerAt - result.start.getTime()) / 1000 };
}

const warmup = config.warmupSeconds > 0 ? await run(config.warmupSeconds) : { result: null, enrolled: 0 };
const measured = await run(config.seconds, config.amount);
const r = measured.result;
const statusCodes = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, Number(s.count)]));
const result: LoadResult = {
  requestsPerSecond: Math.round(r.requests.average),
  requests: Object.values(statusCodes).reduce((a, b) => a + b, 0),
  latencyP50Ms: r.latency.p50,
  latencyP97_5Ms: r.latency.p97_5,
  latencyP99Ms: r.latency.p99,
  latencyMeanMs: Math.round(r.latency.mean * 10) / 10,
  non2xx: r.non2xx,
  errors: r.errors,
  statusCodes,
  enrolled: measured.enrolled,
  // A request that errored or timed out has no answer to time: then autocannon's own figure.
  seconds: config.amount === undefined || r.errors + r.timeouts > 0 || measured.lastAnswerSeconds <= 0 ? r.duration : Math.round(measured.lastAnswerSeconds * 1000) / 1000,
  warmup2xx: warmup.result?.['2xx'] ?? 0,
  warmupEnrolled: warmup.enrolled,
};
await reportToParent(result);
process.exit(0);
