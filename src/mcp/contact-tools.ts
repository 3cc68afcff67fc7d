import { z } from 'zod';
import { contactLimits } from '../domain/contact.js';
import * as contacts from '../engine/contact-service.js';
import type { Context } from '../engine/context.js';
import { defineTool, reads, type Tool } from './tool-kit.js';

/*
 * Contacts and tags: the same service functions as the contact routes
 * (api/routes/contacts.ts); the schemas here only describe types and sizes, the
 * service checks and normalises every value (phones to E.164, emails, time zones).
 */

const phone = z.string().max(contactLimits.phone);
const phoneHelp = 'E.164 such as +14155550123; a number without + is read in the server’s default country';
const clearable = 'An empty string clears it.';

const contactRef = {
  contact_id: z.string().max(36).optional().describe('The contact id (UUID), as returned by create_contact or list_contacts'),
  phone: phone.optional().describe(`Names the contact by phone when contact_id is absent. ${phoneHelp}`),
};

const tags = (description: string) =>
  z
    .union([z.string().max(contactLimits.tagsText), z.array(z.string().max(contactLimits.tag)).max(contactLimits.tagsPerRequest)])
    .describe(`${description} A comma-separated string ("vip, lead") or an array (["vip", "lead"]); each name 1–${contactLimits.tag} characters without a comma, matched ignoring case.`);

const editable = {
  name: z.string().max(contactLimits.name).optional().describe(`Full name; also sets first_name and last_name unless they are given. ${clearable}`),
  first_name: z.string().max(contactLimits.name).optional().describe(clearable),
  last_name: z.string().max(contactLimits.name).optional().describe(clearable),
  email: z.string().max(contactLimits.email).optional().describe(`Email address, unique per workspace. ${clearable}`),
  timezone: z.string().max(contactLimits.timezone).optional().describe(`IANA time zone such as America/New_York. ${clearable}`),
  language: z.string().max(contactLimits.language).optional().describe(`Language code such as en, pt_BR or es-419. ${clearable}`),
  metadata: z
    .record(z.string(), z.unknown())
    .optional()
    .describe(`Free attributes as a JSON object (at most ${contactLimits.metadataBytes} bytes), merged shallowly into the stored ones; a key set to "" is removed.`),
};

const contactShape =
  'A contact is {id, phone, email, name, first_name, last_name, timezone, language, source, opted_in_at, opted_out_at, last_message_at, total_messages, tags, metadata, created_at, updated_at}.';

export function contactTools(ctx: Context): Tool[] {
  return [
    defineTool({
      name: 'list_contacts',
      title: 'List contacts',
      description:
        'Lists the workspace’s contacts, oldest first, a page at a time, optionally filtered. Use it to find contacts by words of their name, phone or email ' +
        '(query), by tag, or by exact email or phone. Returns {data: [contact], next_cursor}; pass next_cursor back as cursor for the next page (null on the last). ' +
        contactShape,
      scope: 'contacts:read',
      input: {
        query: z.string().max(contactLimits.query).optional().describe('Words that must all occur in the name, phone or email (ignoring case and accents)'),
        tag: z.string().max(contactLimits.tag).optional().describe('Only contacts with this tag (ignoring case)'),
        email: z.string().max(contactLimits.email).optional().describe('Only the contact with this email (exact, ignoring case)'),
        phone: phone.optional().describe(`Only the contact with this phone. ${phoneHelp}`),
        opted_out: z.boolean().optional().describe('true: only contacts who opted out; false: only those who did not'),
        created_after: z.string().max(40).optional().describe('ISO 8601 time, exclusive, e.g. 2026-05-01T00:00:00Z'),
        created_before: z.string().max(40).optional().describe('ISO 8601 time, exclusive'),
        limit: z.number().int().min(1).max(contactLimits.pageSize).optional().describe(`Page size, 1 to ${contactLimits.pageSize} (default ${contactLimits.defaultPageSize})`),
        cursor: z.string().max(200).optional().describe('next_cursor of the previous page'),
      },
      annotations: reads,
      run: (args, workspaceId) => contacts.listContacts(ctx, workspaceId, args),
    }),
    defineTool({
      name: 'get_contact',
      title: 'Get a contact',
      description:
        'Reads one contact with its tags and metadata, named by contact_id, else phone, else email. Returns the contact, or an error with code not_found. ' + contactShape,
      scope: 'contacts:read',
      input: {
        ...contactRef,
        email: z.string().max(contactLimits.email).optional().describe('Names the contact by email when contact_id and phone are absent'),
      },
      annotations: reads,
      run: (args, workspaceId) => contacts.getContact(ctx, workspaceId, args),
    }),
    defineTool({
      name: 'create_contact',
      title: 'Create or update a contact by phone',
      description:
        'Creates a contact, or updates the one that already has this phone (the phone is the key). On an existing contact the given fields overwrite, ' +
        'metadata merges and tags are added (use update_contact to replace tags). A new contact is recorded as opted in now. Sends no message. ' +
        'Returns {contact, created}: created is false when the phone existed. An email used by another contact is an error naming email.',
      scope: 'contacts:write',
      input: {
        phone: phone.describe(`The contact’s phone (required). ${phoneHelp}`),
        ...editable,
        tags: tags('Tags to add to the contact.').optional(),
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      run: (args, workspaceId) => contacts.createOrUpsertContact(ctx, workspaceId, args),
    }),
    defineTool({
      name: 'update_contact',
      title: 'Update a contact',
      description:
        'Changes an existing contact named by contact_id or phone. Given fields overwrite and "" clears one; metadata merges shallowly; ' +
        'tags REPLACES all the contact’s tags ("" or [] removes them all; use tag_contact/untag_contact to change one). With contact_id, phone sets a new phone. ' +
        'Adding or removing tags may start or stop sequences that are triggered by tags. Returns the updated contact.',
      scope: 'contacts:write',
      input: {
        contact_id: contactRef.contact_id,
        phone: phone.optional().describe(`Names the contact when contact_id is absent; with contact_id it is the new phone. ${phoneHelp}`),
        ...editable,
        tags: tags('Replaces every tag of the contact.').optional(),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      run: (args, workspaceId) => contacts.updateContact(ctx, workspaceId, args),
    }),
    defineTool({
      name: 'tag_contact',
      title: 'Tag a contact',
      description:
        'Adds a tag to the contact named by contact_id or phone, creating the tag when the workspace has none of that name. Adding a tag the contact has already is harmless. ' +
        'A new tag may start sequences triggered by it (tag_added). Returns {contact_id, tag, tags} with every tag the contact now has.',
      scope: 'contacts:write',
      input: { ...contactRef, tag: z.string().max(contactLimits.tag).describe('The tag name: 1–100 characters, no comma') },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      run: (args, workspaceId) => contacts.addTag(ctx, workspaceId, args),
    }),
    defineTool({
      name: 'untag_contact',
      title: 'Untag a contact',
      description:
        'Removes a tag from the contact named by contact_id or phone. Removing a tag the contact lacks is harmless; the tag stays in the workspace. ' +
        'May stop sequences whose stop condition is that tag. Returns {contact_id, tag, tags} with the tags the contact still has.',
      scope: 'contacts:write',
      input: { ...contactRef, tag: z.string().max(contactLimits.tag).describe('The tag name') },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
      run: (args, workspaceId) => contacts.removeTag(ctx, workspaceId, args),
    }),
    defineTool({
      name: 'list_tags',
      title: 'List tags',
      description: 'Lists every tag of the workspace with how many contacts carry it, alphabetical. Returns {data: [{id, name, contacts_count, created_at}]}.',
      scope: 'contacts:read',
      input: {},
      annotations: reads,
      run: async (_args, workspaceId) => ({ data: await contacts.listTags(ctx, workspaceId) }),
    }),
  ];
}
