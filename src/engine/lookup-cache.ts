import type BetterSqlite3 from 'better-sqlite3';
import type { Database } from '../store/database.js';
import type { DefinitionRow } from '../store/definition-repository.js';

/**
 * What a trigger request needs of its definition: not the draft or the AI writer's
 * state, which can be large, so ten thousand kept definitions stay small.
 */
export type KeptDefinition = Pick<DefinitionRow, 'id' | 'workspace_id' | 'kind' | 'name' | 'status' | 'current_version_id' | 'enrollments_paused' | 'stop_type' | 'stop_key' | 'ab_variant_id' | 'ab_split_percent'>;

export function keptDefinition(row: DefinitionRow | undefined): KeptDefinition | undefined {
  if (!row) return undefined;
  const { id, workspace_id, kind, name, status, current_version_id, enrollments_paused, stop_type, stop_key, ab_variant_id, ab_split_percent } = row;
  return { id, workspace_id, kind, name, status, current_version_id, enrollments_paused, stop_type, stop_key, ab_variant_id, ab_split_percent };
}

/**
 * The API tokens and definitions every `trigger-sequence` and `trigger-flow` request looks
 * up, kept in the process for as long as the database says neither table changed.
 * Without it those two reads were a third of the statements of a request; with it the
 * request runs only its own transaction (see BENCHMARKS.md).
 *
 * The database reports every change itself, from triggers (migration
 * 0013_lookup_generations), whichever process or tool made it:
 *
 * - SQLite: the triggers count changes in `lookup_generations`. Each lookup reads the
 *   counters first (one prepared statement, about a microsecond) and drops everything
 *   kept when they moved, so a token revoked from the command line is refused by the
 *   next request.
 * - PostgreSQL: the triggers send a NOTIFY at commit, and the process's listener
 *   (`PostgresWakeListener`) calls `changed()`. A change reaches the cache a few
 *   milliseconds after its commit, as a read made just before the commit would have
 *   missed it anyway. Nothing is kept while no listener is connected: a process without
 *   one, or whose listener lost its connection, reads the database on every request.
 *
 * A value read from the database is kept only if no change was reported while it was
 * being read, so a read that raced a change cannot stay behind it. Only what exists is
 * kept (an unknown token is not), and each map holds at most `capacity` entries.
 */
export class LookupCache<Token, Definition> {
  private readonly tokens = new Map<string, Token>();
  private readonly definitions = new Map<string, Definition>();
  /** Moves on every reported change; what a lookup keeps is tagged with it. */
  private generation = 0;
  /** SQLite: the counters as last read. */
  private stored: number | null = null;
  private listening = false;
  private generationStatement: BetterSqlite3.Statement | null = null;
  /** Lookups answered from memory and from the database, for tests and diagnostics. */
  readonly stats = { hits: 0, misses: 0 };

  constructor(private readonly database: Pick<Database, 'dialect' | 'sqlite'>, private readonly capacity = 10_000) {}

  /** A token by the hash of its secret; `load` reads it when it is not kept. */
  token(hash: string, load: () => Promise<Token | undefined>): Promise<Token | undefined> {
    return this.lookup(this.tokens, hash, load);
  }

  /** A definition by workspace, kind and id; `load` reads it when it is not kept. */
  definition(key: string, load: () => Promise<Definition | undefined>): Promise<Definition | undefined> {
    return this.lookup(this.definitions, key, load);
  }

  /** PostgreSQL: a change to api_tokens or definitions was committed. */
  changed(): void {
    this.forget();
  }

  /** PostgreSQL: the listener is connected and listening; what is kept from now on will hear of changes. */
  listen(): void {
    this.forget();
    this.listening = true;
  }

  /** PostgreSQL: the listener lost its connection or stopped; keep nothing until it is back. */
  deafen(): void {
    this.listening = false;
    this.forget();
  }

  private forget(): void {
    this.generation += 1;
    this.tokens.clear();
    this.definitions.clear();
  }

  /** Whether what is kept may be trusted now, after reading SQLite's counters. */
  private fresh(): boolean {
    const raw = this.database.sqlite;
    if (raw === null) return this.listening;
    this.generationStatement ??= raw.prepare('select sum(generation) as g from lookup_generations').pluck();
    const stored = Number(this.generationStatement.get());
    if (stored !== this.stored) {
      this.stored = stored;
      this.forget();
    }
    return true;
  }

  private async lookup<V>(map: Map<string, V>, key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    if (!this.fresh()) {
      this.stats.misses += 1;
      return load();
    }
    const kept = map.get(key);
    if (kept !== undefined) {
      this.stats.hits += 1;
      return kept;
    }
    this.stats.misses += 1;
    const generation = this.generation;
    const value = await load();
    if (value !== undefined && generation === this.generation && (this.database.sqlite === null ? this.listening : this.unchangedSince())) {
      if (map.size >= this.capacity) map.delete(map.keys().next().value as string);
      map.set(key, value);
    }
    return value;
  }

  /** SQLite: no change was committed while the value was read. */
  private unchangedSince(): boolean {
    const before = this.stored;
    this.fresh();
    return this.stored === before;
  }
}
