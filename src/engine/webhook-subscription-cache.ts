import { parseJson } from '../domain/json.js';
import { eventMatcher } from '../domain/webhook-events.js';
import type { Db } from '../store/database.js';
import { listActiveSubscriptionFilters } from '../store/webhook-repository.js';

/**
 * Which active subscriptions each workspace has, and the events they listen to. The
 * engine emits on its hot path (every send, every session end), so which
 * subscriptions a workspace has is read once per `ttlMs` per process and kept in
 * memory: a workspace without subscriptions costs a map lookup per event, not a
 * query. Changes made through this process invalidate at once; another process sees
 * a new, changed or deleted subscription within `ttlMs` (events in between follow the
 * old filters).
 */
export class WebhookSubscriptionCache {
  private readonly entries = new Map<string, { loadedAt: number; subscriptions: ReadonlyArray<{ id: string; matches: (type: string) => boolean }> }>();

  constructor(private readonly ttlMs = 2000, private readonly capacity = 10_000) {}

  /** The ids of the workspace's active subscriptions that receive `type`. */
  async matching(db: Db, workspaceId: string, type: string): Promise<string[]> {
    const now = Date.now();
    let entry = this.entries.get(workspaceId);
    if (!entry || now - entry.loadedAt >= this.ttlMs) {
      const rows = await listActiveSubscriptionFilters(db, workspaceId);
      entry = { loadedAt: now, subscriptions: rows.map((r) => ({ id: r.id, matches: eventMatcher(parseJson<string[]>(r.events, [])) })) };
      this.entries.delete(workspaceId);
      this.entries.set(workspaceId, entry);
      while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    }
    if (entry.subscriptions.length === 0) return [];
    return entry.subscriptions.filter((s) => s.matches(type)).map((s) => s.id);
  }

  /** Forgets a workspace's filters (after this process changed its subscriptions), or every workspace's. */
  invalidate(workspaceId?: string): void {
    if (workspaceId === undefined) this.entries.clear();
    else this.entries.delete(workspaceId);
  }
}

