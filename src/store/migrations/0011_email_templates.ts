import type { Kysely } from 'kysely';
import type { Graph } from '../../domain/definition.js';
import { defaultTemplateName, emailNodesOf } from '../../domain/email-template.js';
import { newId } from '../../domain/ids.js';
import { parseJson } from '../../domain/json.js';

/**
 * Email templates: every email step of a sequence or flow gets an editable template
 * (subject, preview text, blocks), linked to its step by (definition_id, node_id), and
 * templates can stand alone in the workspace's library (both null). The unique index
 * makes "one template per step" a fact of the database; NULLs are distinct in it on both
 * engines, so library templates never collide.
 *
 * The definitions saved before this migration get their templates here, so every email
 * step has one whether it was written before or after the upgrade.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('email_templates')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('workspace_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('preview_text', 'text')
    /** The editable blocks, as JSON: the same blocks email nodes hold. */
    .addColumn('blocks', 'text', (c) => c.notNull())
    .addColumn('definition_id', 'text')
    .addColumn('node_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('email_templates_workspace').on('email_templates').columns(['workspace_id', 'id']).execute();
  await db.schema.createIndex('email_templates_step').unique().on('email_templates').columns(['definition_id', 'node_id']).execute();
  await backfill(db as Kysely<BackfillSchema>);
}

interface BackfillSchema {
  definitions: { id: string; workspace_id: string; name: string; draft: string; deleted_at: number | null };
  email_templates: {
    id: string;
    workspace_id: string;
    name: string;
    subject: string;
    preview_text: string | null;
    blocks: string;
    definition_id: string | null;
    node_id: string | null;
    created_at: number;
    updated_at: number;
  };
}

async function backfill(db: Kysely<BackfillSchema>): Promise<void> {
  const now = Date.now();
  let after = '';
  for (;;) {
    // A page at a time: a workspace with thousands of sequences must not be read whole.
    const page = await db.selectFrom('definitions').select(['id', 'workspace_id', 'name', 'draft']).where('deleted_at', 'is', null).where('id', '>', after).orderBy('id').limit(200).execute();
    if (page.length === 0) return;
    for (const definition of page) {
      const draft = parseJson<{ graph?: Graph }>(definition.draft, {});
      const nodes = Array.isArray(draft.graph?.nodes) ? emailNodesOf(draft.graph) : [];
      if (nodes.length === 0) continue;
      await db
        .insertInto('email_templates')
        .values(
          nodes.map(({ nodeId, content }, i) => ({
            id: newId(now),
            workspace_id: definition.workspace_id,
            name: defaultTemplateName(definition.name, i + 1),
            subject: content.subject,
            preview_text: content.previewText,
            blocks: JSON.stringify(content.blocks),
            definition_id: definition.id,
            node_id: nodeId,
            created_at: now,
            updated_at: now,
          })),
        )
        .execute();
    }
    after = page[page.length - 1]!.id;
  }
}

export async function down(): Promise<void> {
  throw new Error('Nudge migrations are forward-only; restore a backup to go back.');
}
