import { compileGraph, type Channel, type CompiledGraph, type DefinitionSettings, type Graph } from '../domain/definition.js';
import { parseJson } from '../domain/json.js';
import type { Db } from '../store/database.js';
import { findVersions } from '../store/definition-repository.js';

export interface VersionBody {
  name: string;
  kind: 'sequence' | 'flow';
  graph: Graph;
  settings: DefinitionSettings;
  trigger: Record<string, unknown> | null;
}

export interface LoadedVersion {
  id: string;
  definitionId: string;
  body: VersionBody;
  graph: CompiledGraph;
  /** Whether any node is a condition (which may read the last message's status). */
  hasConditions: boolean;
  /** Whether any node sends email (which needs the contact's signed unsubscribe link). */
  hasEmail: boolean;
  /** The channels its send nodes use. */
  channels: ReadonlySet<Channel>;
}

/**
 * Published versions never change, so each is parsed and compiled once per process.
 * Bounded: the least recently used are dropped past `capacity`.
 */
export class VersionCache {
  private readonly entries = new Map<string, LoadedVersion>();
  constructor(private readonly capacity = 2000) {}

  async load(db: Db, ids: Iterable<string>): Promise<Map<string, LoadedVersion>> {
    const out = new Map<string, LoadedVersion>();
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const hit = this.entries.get(id);
      if (hit) {
        this.entries.delete(id);
        this.entries.set(id, hit);
        out.set(id, hit);
      } else {
        missing.push(id);
      }
    }
    if (missing.length > 0) {
      for (const row of await findVersions(db, missing)) {
        const body = parseJson<VersionBody>(row.body, { name: '', kind: 'sequence', graph: { nodes: [], edges: [] }, settings: {}, trigger: null });
        const channels = new Set(body.graph.nodes.flatMap((n) => (n.type === 'send_message' ? [n.channel] : [])));
        const loaded: LoadedVersion = {
          id: row.id,
          definitionId: row.definition_id,
          body,
          graph: compileGraph(body.graph),
          hasConditions: body.graph.nodes.some((n) => n.type === 'condition'),
          hasEmail: channels.has('email'),
          channels,
        };
        this.entries.set(row.id, loaded);
        out.set(row.id, loaded);
      }
      while (this.entries.size > this.capacity) {
        const oldest = this.entries.keys().next().value as string;
        this.entries.delete(oldest);
      }
    }
    return out;
  }
}
