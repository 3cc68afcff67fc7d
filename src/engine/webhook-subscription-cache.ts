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
type Subscriptions = ReadonlyArray<{ id: string; matches: (type: string) => boolean }>;

export class WebhookSubscriptionCache {
  private readonly entries = new Map<string, { loadedAt: number; subscriptions: Subscriptions }>();

  constructor(private readonly ttlMs = 2000, private readonly capacity = 10_000) {}

  /**
   * The ids of the workspace's active subscriptions that receive `type`: an array at
   * once while the workspace's filters are fresh (the hot path, no promise), a promise
   * when they must be read.
   */
  matching(db: Db, workspaceId: string, type: string): string[] | Promise<string[]> {
    const entry = this.entries.get(workspaceId);
    if (entry && Date.now() - entry.loadedAt < this.ttlMs) return this.select(entry.subscriptions, type);
    return this.load(db, workspaceId).then((subscriptions) => this.select(subscriptions, type));
  }

  private select(subscriptions: Subscriptions, type: string): string[] {
    if (subscriptions.length === 0) return [];
    return subscriptions.filter((s) => s.matches(type)).map((s) => s.id);
  }

  private async load(db: Db, workspaceId: string): Promise<Subscriptions> {
    const rows = await listActiveSubscriptionFilters(db, workspaceId);
    const subscriptions = rows.map((r) => ({ id: r.id, matches: eventMatcher(parseJson<string[]>(r.events, [])) }));
    this.entries.delete(workspaceId);
    this.entries.set(workspaceId, { loadedAt: Date.now(), subscriptions });
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    return subscriptions;
  }

  /** Forgets a workspace's filters (after this process changed its subscriptions), or every workspace's. */
  invalidate(workspaceId?: string): void {
    if (workspaceId === undefined) this.entries.clear();
    else this.entries.delete(workspaceId);
  }
}

