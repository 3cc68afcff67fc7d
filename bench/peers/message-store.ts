import pg from 'pg';
import { renderTemplate } from '../../src/domain/merge-tags.js';

/**
 * The application database a developer would pair with a job queue: a fresh
 * PostgreSQL database holding one row per message sent, written by the jobs.
 */
export interface PeerDatabase {
  url: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createPeerDatabase(adminUrl: string, label: string, poolSize: number): Promise<PeerDatabase> {
  const name = `nudge_bench_${label}_${process.pid}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: poolSize });
  // An idle client losing its server (the drop at the end) must not crash the run.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  await pool.query(`create table messages (
    id bigserial primary key,
    contact_id integer not null,
    step integer not null,
    body text not null,
    due_at bigint not null,
    ran_at bigint not null,
    recorded_at bigint not null
  )`);
  return {
    url: url.toString(),
    pool,
    drop: async () => {
      await pool.end();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`drop database if exists "${name}" with (force)`);
      await a.end();
    },
  };
}

/** What a drip job carries: the contact and the step it is to run. */
export interface DripPayload {
  contactId: number;
  firstName: string;
  step: number;
  /** When this step was due (ms); 0 for the first step, due at enrollment. */
  dueAt: number;
}

export const dripTexts = ['Hello {{context.first_name}}', 'Day two, {{context.first_name}}', 'Last one, {{context.first_name}}'];
export const dripDelayMs = 1000;

/** Renders the step's text with the same merge-tag renderer Nudge uses. */
export function renderStep(payload: DripPayload): string {
  return renderTemplate(dripTexts[payload.step - 1]!, { context: { first_name: payload.firstName } });
}

interface PendingRow {
  payload: DripPayload;
  body: string;
  ranAt: number;
  next: DripPayload | null;
  done: (error?: Error) => void;
}

/** Work done in the same transaction as a batch of message inserts (e.g. enqueueing the next steps). */
export type InTransaction = (client: pg.PoolClient, next: DripPayload[]) => Promise<void>;

/**
 * Groups the message inserts of concurrently running jobs into one multi-row insert
 * (as a developer batching writes would, since neither peer batches job execution
 * itself): a job's promise resolves once its row has committed. With `inTransaction`,
 * each batch is one transaction that also runs it with the batch's next steps.
 */
export class MessageWriter {
  private queue: PendingRow[] = [];
  private flushing = 0;
  recorded = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly inTransaction: InTransaction | null = null,
    private readonly maxBatch = 500,
    private readonly maxInFlight = 4,
  ) {}

  record(payload: DripPayload, body: string, ranAt: number, next: DripPayload | null = null): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ payload, body, ranAt, next, done: (error) => (error ? reject(error) : resolve()) });
      if (this.flushing < this.maxInFlight) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    if (this.queue.length === 0 || this.flushing >= this.maxInFlight) return;
    const rows = this.queue.splice(0, this.maxBatch);
    this.flushing += 1;
    const client = await this.pool.connect();
    try {
      const now = Date.now();
      if (this.inTransaction) await client.query('begin');
      await client.query(
        `insert into messages (contact_id, step, body, due_at, ran_at, recorded_at)
         select * from unnest($1::int[], $2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])`,
        [
          rows.map((r) => r.payload.contactId),
          rows.map((r) => r.payload.step),
          rows.map((r) => r.body),
          rows.map((r) => r.payload.dueAt),
          rows.map((r) => r.ranAt),
          rows.map(() => now),
        ],
      );
      if (this.inTransaction) {
        const next = rows.flatMap((r) => (r.next ? [r.next] : []));
        if (next.length > 0) await this.inTransaction(client, next);
        await client.query('commit');
      }
      this.recorded += rows.length;
      for (const r of rows) r.done();
    } catch (error) {
      if (this.inTransaction) await client.query('rollback').catch(() => undefined);
      for (const r of rows) r.done(error as Error);
    } finally {
      client.release();
      this.flushing -= 1;
      if (this.queue.length > 0) setImmediate(() => void this.flush());
    }
  }
}

export interface PeerVerdict {
  ok: boolean;
  problem: string | null;
  timerLateness: number[];
}

/**
 * The peer's own check of its result: exactly 3 × contacts messages, none twice for
 * the same (contact, step), and every contact's three steps; then the timer lateness
 * of steps 2 and 3 (when each ran minus when it was due), sorted.
 */
export async function verifyMessages(pool: pg.Pool, contacts: number): Promise<PeerVerdict> {
  const counts = await pool.query<{ total: string; distinct_steps: string; contacts: string }>(
    'select count(*) as total, count(distinct (contact_id, step)) as distinct_steps, count(distinct contact_id) as contacts from messages',
  );
  const row = counts.rows[0]!;
  const expected = contacts * 3;
  let problem: string | null = null;
  if (Number(row.total) !== expected) problem = `expected ${expected} messages, found ${row.total}`;
  else if (Number(row.distinct_steps) !== expected) problem = `${expected - Number(row.distinct_steps)} duplicate (contact, step) messages`;
  else if (Number(row.contacts) !== contacts) problem = `messages for ${row.contacts} contacts, expected ${contacts}`;
  const late = await pool.query<{ late: string }>('select ran_at - due_at as late from messages where step > 1 order by 1');
  return { ok: problem === null, problem, timerLateness: late.rows.map((r) => Number(r.late)) };
}
