import { parseJson } from '../domain/json.js';
import { segmentDependsOn, type SegmentFilter } from '../domain/segment-filter.js';
import * as audience from '../store/audience-repository.js';
import type { AutomationRule } from '../store/audience-repository.js';
import { rawIn, type Database, type Db, type Tx } from '../store/database.js';
import { readAutomationVersion } from '../store/definition-repository.js';
import type { Context } from './context.js';

export interface LoadedSegment {
  id: string;
  filter: SegmentFilter;
  depends: ReturnType<typeof segmentDependsOn>;
}

/** What every contact change of a workspace is checked against. */
export interface WorkspaceRules {
  version: number;
  /** Published definitions with an automatic trigger or a stop condition. */
  rules: AutomationRule[];
  segments: LoadedSegment[];
  /** Whether any segment counts messages (sent, delivered, read, replied, failed). */
  engagement: boolean;
}

export function loadSegment(row: { id: string; filter: string }): LoadedSegment {
  const filter = parseJson<SegmentFilter>(row.filter, { match: 'all', conditions: [] });
  return { id: row.id, filter, depends: segmentDependsOn(filter) };
}

const capacity = 1000;
// Per database handle, like the prepared-statement cache in store/batch.ts: a process
// that opens two databases (the tests) keeps their rules apart.
const caches = new WeakMap<Database, Map<string, WorkspaceRules>>();

/**
 * The workspace's rules and segments, read from the database only when its
 * automation_version has moved since this process last read them. Reading the counter
 * inside the caller's transaction makes the answer as current as the transaction: a
 * rule published in another process is seen by the next change after its commit.
 */
export async function workspaceRules(ctx: Context, trx: Tx | Db, workspaceId: string): Promise<WorkspaceRules> {
  let cache = caches.get(ctx.database);
  if (!cache) {
    cache = new Map();
    caches.set(ctx.database, cache);
  }
  const version = await readAutomationVersion(trx, workspaceId, rawIn(ctx.database, trx));
  const hit = cache.get(workspaceId);
  if (hit && hit.version === version) {
    cache.delete(workspaceId);
    cache.set(workspaceId, hit);
    return hit;
  }
  const [rules, segmentRows] = await Promise.all([audience.automationRules(trx, workspaceId), audience.segmentsOf(trx, workspaceId)]);
  const segments = segmentRows.map(loadSegment);
  const loaded: WorkspaceRules = { version, rules, segments, engagement: segments.some((s) => s.depends.engagement) };
  cache.delete(workspaceId);
  cache.set(workspaceId, loaded);
  if (cache.size > capacity) cache.delete(cache.keys().next().value as string);
  return loaded;
}
