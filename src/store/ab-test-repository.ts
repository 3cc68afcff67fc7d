import { sql } from 'kysely';
import type { Db, Dialect } from './database.js';
import type { DefinitionRow } from './schema.js';

/**
 * The queries of A/B tests between sequences: the configuration lives on sequence A
 * (`ab_variant_id`, `ab_split_percent`), and every session started through A carries
 * `ab_parent_id` = A and its side in `ab_variant`, so the results are read through
 * the (ab_parent_id, ab_variant) index whatever else the two sequences ran.
 */

/**
 * The workspace's live sequences with these ids, locked for the caller's transaction
 * on PostgreSQL (SQLite's writer lock already excludes everyone), so two concurrent
 * configurations cannot make A the variant of B while B becomes the variant of A.
 */
export async function lockSequences(db: Db, dialect: Dialect, workspaceId: string, ids: readonly string[]): Promise<DefinitionRow[]> {
  if (ids.length === 0) return [];
  const lock = dialect === 'postgres' ? sql` for update` : sql``;
  const result = await sql<DefinitionRow>`select * from definitions where workspace_id = ${workspaceId} and kind = 'sequence' and deleted_at is null and id in (${sql.join([...ids])}) order by id${lock}`.execute(db);
  return result.rows;
}

/** The live sequences whose variant is `variantId` (the tests it is B of). */
export async function testsUsingVariant(db: Db, workspaceId: string, variantId: string): Promise<Array<Pick<DefinitionRow, 'id' | 'name'>>> {
  return db
    .selectFrom('definitions')
    .select(['id', 'name'])
    .where('workspace_id', '=', workspaceId)
    .where('ab_variant_id', '=', variantId)
    .where('deleted_at', 'is', null)
    .execute();
}

export async function setAbTest(db: Db, workspaceId: string, sequenceId: string, variantId: string | null, splitPercent: number | null, now: number): Promise<void> {
  await db
    .updateTable('definitions')
    .set({ ab_variant_id: variantId, ab_split_percent: splitPercent, updated_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', sequenceId)
    .execute();
}

/** Ends the tests whose variant is being deleted: a test with no B would refuse every enrollment of A. */
export async function clearTestsUsingVariant(db: Db, workspaceId: string, variantId: string, now: number): Promise<void> {
  await db
    .updateTable('definitions')
    .set({ ab_variant_id: null, ab_split_percent: null, updated_at: now })
    .where('workspace_id', '=', workspaceId)
    .where('ab_variant_id', '=', variantId)
    .execute();
}

/** Per side and per sequence run, counts of enrollments (sessions) and of those that reached each stage. */
export interface AbSideCounts {
  variant: 'A' | 'B';
  definitionId: string;
  enrolled: number;
  /** Sessions with at least one outbound message sent, delivered, read, clicked or replied to. */
  sent: number;
  delivered: number;
  read: number;
  clicked: number;
  replied: number;
  /** Sessions that passed a goal node (ended there, or went on with `exit: false`). */
  goalReached: number;
  /** Outbound messages in those states. */
  messages: { sent: number; delivered: number; read: number; clicked: number; replied: number };
}

interface CountRow {
  variant: string;
  definition_id: string;
  enrolled: number | string;
  goal_reached: number | string | null;
  s_sent: number | string | null;
  s_delivered: number | string | null;
  s_read: number | string | null;
  s_clicked: number | string | null;
  s_replied: number | string | null;
  m_sent: number | string | null;
  m_delivered: number | string | null;
  m_read: number | string | null;
  m_clicked: number | string | null;
  m_replied: number | string | null;
}

/**
 * The counts of every session started through A, by side. One pass: the sessions come
 * from the (ab_parent_id, ab_variant) index, their messages from (session_id, id), their
 * goal steps from session_steps (session_id, id). PostgreSQL returns sums as text;
 * they are numbers here.
 */
export async function countAbSides(db: Db, workspaceId: string, sequenceAId: string): Promise<AbSideCounts[]> {
  const result = await sql<CountRow>`
    select s.ab_variant as variant, s.definition_id as definition_id, count(*) as enrolled,
      sum(case when exists (select 1 from session_steps st where st.session_id = s.id and st.node_type = 'goal') then 1 else 0 end) as goal_reached,
      sum(case when m.sent > 0 then 1 else 0 end) as s_sent,
      sum(case when m.delivered > 0 then 1 else 0 end) as s_delivered,
      sum(case when m.read_n > 0 then 1 else 0 end) as s_read,
      sum(case when m.clicked > 0 then 1 else 0 end) as s_clicked,
      sum(case when m.replied > 0 then 1 else 0 end) as s_replied,
      sum(m.sent) as m_sent, sum(m.delivered) as m_delivered, sum(m.read_n) as m_read, sum(m.clicked) as m_clicked, sum(m.replied) as m_replied
    from sessions s
    left join (
      select ms.session_id as session_id,
        sum(case when ms.sent_at is not null then 1 else 0 end) as sent,
        sum(case when ms.delivered_at is not null then 1 else 0 end) as delivered,
        sum(case when ms.read_at is not null then 1 else 0 end) as read_n,
        sum(case when ms.clicked_at is not null then 1 else 0 end) as clicked,
        sum(case when ms.replied_at is not null then 1 else 0 end) as replied
      from messages ms
      where ms.direction = 'outbound'
        and ms.session_id in (select p.id from sessions p where p.ab_parent_id = ${sequenceAId} and p.workspace_id = ${workspaceId})
      group by ms.session_id
    ) m on m.session_id = s.id
    where s.ab_parent_id = ${sequenceAId} and s.workspace_id = ${workspaceId} and s.ab_variant in ('A', 'B')
    group by s.ab_variant, s.definition_id
    order by s.ab_variant, s.definition_id`.execute(db);
  const n = (value: number | string | null) => Number(value ?? 0);
  return result.rows.map((row) => ({
    variant: row.variant as 'A' | 'B',
    definitionId: row.definition_id,
    enrolled: n(row.enrolled),
    sent: n(row.s_sent),
    delivered: n(row.s_delivered),
    read: n(row.s_read),
    clicked: n(row.s_clicked),
    replied: n(row.s_replied),
    goalReached: n(row.goal_reached),
    messages: { sent: n(row.m_sent), delivered: n(row.m_delivered), read: n(row.m_read), clicked: n(row.m_clicked), replied: n(row.m_replied) },
  }));
}
