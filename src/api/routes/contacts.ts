import { Type } from 'typebox';
import { contactLimits } from '../../domain/contact.js';
import * as contacts from '../../engine/contact-service.js';
import type { Context } from '../../engine/context.js';
import { authErrors, errorResponses, Nullable, ok, Timestamp } from '../schemas.js';
import type { App } from '../types.js';

/*
 * The contacts and tags surface: the actions (POST, snake_case, like the reference
 * products) and the resource-style list and read. Every rule lives in
 * engine/contact-service.ts, which the MCP tools call too; these handlers only pick
 * the workspace from the token and choose the status code.
 */

const clearable = 'An empty string clears it.';

const Phone = Type.String({ maxLength: contactLimits.phone, description: 'E.164 (+14155550123); numbers without + are read in the default country (NUDGE_DEFAULT_COUNTRY)' });
const Email = Type.String({ maxLength: contactLimits.email, description: `Email address, stored lowercased; unique per workspace. ${clearable}` });
const tagsSchema = (description: string) =>
  Type.Union(
    [
      Type.String({ maxLength: contactLimits.tagsText, description: 'Comma-separated tag names: "vip, lead"' }),
      Type.Array(Type.String({ maxLength: contactLimits.tag }), { maxItems: contactLimits.tagsPerRequest, description: 'Tag names: ["vip", "lead"]' }),
    ],
    { description: `${description} Each name is 1–${contactLimits.tag} characters without a comma, matched ignoring case, and created when new.` },
  );
const Metadata = Type.Object(
  {},
  {
    additionalProperties: true,
    description: `Free attributes (JSON object, at most ${contactLimits.metadataBytes} bytes serialised). Merged shallowly into the stored ones; a key set to "" is removed.`,
  },
);

/** Fields create-contact and update-contact share. */
const editableFields = {
  name: Type.Optional(Type.String({ maxLength: contactLimits.name, description: `Full name; also sets first_name and last_name unless they are given. ${clearable}` })),
  first_name: Type.Optional(Type.String({ maxLength: contactLimits.name, description: clearable })),
  last_name: Type.Optional(Type.String({ maxLength: contactLimits.name, description: clearable })),
  email: Type.Optional(Email),
  timezone: Type.Optional(Type.String({ maxLength: contactLimits.timezone, description: `IANA time zone, e.g. America/New_York. ${clearable}` })),
  language: Type.Optional(Type.String({ maxLength: contactLimits.language, description: `Language code, e.g. en, pt_BR. ${clearable}` })),
  metadata: Type.Optional(Metadata),
};

const ContactId = Type.String({ maxLength: 36, description: 'The contact id (UUID)' });

export const ContactSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    phone: Nullable(Type.String()),
    email: Nullable(Type.String()),
    name: Nullable(Type.String()),
    first_name: Nullable(Type.String()),
    last_name: Nullable(Type.String()),
    timezone: Nullable(Type.String()),
    language: Nullable(Type.String()),
    source: Type.String({ description: 'How the contact arrived: api (create-contact), or the engine action that created it' }),
    opted_in_at: Nullable(Timestamp),
    opted_out_at: Nullable(Timestamp),
    last_message_at: Nullable(Timestamp),
    total_messages: Type.Integer({ minimum: 0 }),
    tags: Type.Array(Type.String(), { description: 'Tag names, alphabetical' }),
    metadata: Type.Object({}, { additionalProperties: true }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'Contact', title: 'Contact' },
);

const contactRef = { $ref: 'Contact#' } as const;

const exampleContact = {
  id: '01936f3e-8a5c-7b2e-9c1d-2f3a4b5c6d7e',
  phone: '+14155550123',
  email: 'ana@example.com',
  name: 'Ana Silva',
  first_name: 'Ana',
  last_name: 'Silva',
  timezone: 'America/Los_Angeles',
  language: 'en',
  source: 'api',
  opted_in_at: '2026-05-07T08:14:23.000Z',
  opted_out_at: null,
  last_message_at: null,
  total_messages: 0,
  tags: ['lead', 'vip'],
  metadata: { plan: 'pro' },
  created_at: '2026-05-07T08:14:23.000Z',
  updated_at: '2026-05-07T08:14:23.000Z',
};

const ContactList = Type.Object({ data: Type.Array(contactRef) });
const ContactPage = Type.Object({
  data: Type.Array(contactRef),
  next_cursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null on the last page' })),
});
const ContactTags = Type.Object({
  contact_id: Type.String({ format: 'uuid' }),
  tag: Type.String({ description: 'The tag as stored (its first spelling)' }),
  tags: Type.Array(Type.String(), { description: "The contact's tags after the change, alphabetical" }),
});
const TagSchema = Type.Object({ id: Type.String({ format: 'uuid' }), name: Type.String(), contacts_count: Type.Integer({ minimum: 0 }), created_at: Timestamp }, { title: 'Tag' });

const CreateContactBody = Type.Object(
  {
    phone: Phone,
    ...editableFields,
    tags: Type.Optional(tagsSchema('Tags to add to the contact.')),
  },
  {
    additionalProperties: false,
    examples: [
      { phone: '+14155550123', name: 'Ana Silva', email: 'ana@example.com', tags: 'vip, lead', metadata: { plan: 'pro' } },
      { phone: '(415) 555-0199', tags: ['newsletter'] },
    ],
  },
);

const UpdateContactBody = Type.Object(
  {
    contact_id: Type.Optional(ContactId),
    phone: Type.Optional(
      Type.String({
        maxLength: contactLimits.phone,
        description: 'Names the contact when contact_id is absent; with contact_id it is the new phone. E.164, or read in the default country without +.',
      }),
    ),
    ...editableFields,
    tags: Type.Optional(tagsSchema('Replaces every tag of the contact; "" or [] removes them all.')),
  },
  {
    additionalProperties: false,
    examples: [
      { contact_id: '01936f3e-8a5c-7b2e-9c1d-2f3a4b5c6d7e', name: 'Ana Souza', tags: 'vip', metadata: { plan: 'enterprise', trial: '' } },
      { phone: '+14155550123', email: '' },
    ],
  },
);

const GetContactBody = Type.Object(
  {
    contact_id: Type.Optional(ContactId),
    phone: Type.Optional(Phone),
    email: Type.Optional(Type.String({ maxLength: contactLimits.email })),
  },
  { additionalProperties: false, examples: [{ contact_id: '01936f3e-8a5c-7b2e-9c1d-2f3a4b5c6d7e' }, { phone: '+14155550123' }, { email: 'ana@example.com' }] },
);

const SearchContactsBody = Type.Object(
  {
    query: Type.Optional(Type.String({ maxLength: contactLimits.query, description: 'Words that must all occur in the name, phone or email (ignoring case and accents)' })),
    tag: Type.Optional(Type.String({ maxLength: contactLimits.tag, description: 'Only contacts with this tag (ignoring case)' })),
    email: Type.Optional(Type.String({ maxLength: contactLimits.email, description: 'Only the contact with this email (exact, ignoring case)' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: contactLimits.searchResults, description: `At most this many (default and maximum ${contactLimits.searchResults})` })),
  },
  { additionalProperties: false, examples: [{ query: 'ana silva' }, { query: '415', tag: 'vip' }, { email: 'ana@example.com' }] },
);

const TagChangeBody = Type.Object(
  {
    contact_id: Type.Optional(ContactId),
    phone: Type.Optional(Phone),
    tag: Type.String({ maxLength: contactLimits.tag, description: 'The tag name (1–100 characters, no comma)' }),
  },
  { additionalProperties: false, examples: [{ contact_id: '01936f3e-8a5c-7b2e-9c1d-2f3a4b5c6d7e', tag: 'vip' }, { phone: '+14155550123', tag: 'newsletter' }] },
);

// No fields. Null admits a request without a body, which the app hands to validation as null.
const ListTagsBody = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()], {
  description: 'No fields: send {} or no body at all',
  examples: [{}],
});

const ListContactsQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: contactLimits.pageSize, default: contactLimits.defaultPageSize })),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' })),
    tag: Type.Optional(Type.String({ maxLength: contactLimits.tag })),
    email: Type.Optional(Type.String({ maxLength: contactLimits.email })),
    phone: Type.Optional(Type.String({ maxLength: contactLimits.phone })),
    query: Type.Optional(Type.String({ maxLength: contactLimits.query })),
    opted_out: Type.Optional(Type.Boolean()),
    created_after: Type.Optional(Type.String({ format: 'date-time', maxLength: 40 })),
    created_before: Type.Optional(Type.String({ format: 'date-time', maxLength: 40 })),
  },
  { additionalProperties: false },
);

type CreateInput = contacts.ContactInput & { phone: string };
type TagChange = contacts.TagChangeInput;

export function registerContactRoutes(app: App, ctx: Context): void {
  app.addSchema(ContactSchema);
  const actions = '/api/v1/actions';

  app.post(
    `${actions}/create-contact`,
    {
      config: { scope: 'contacts:write', idempotent: true },
      schema: {
        summary: 'Create or update a contact by phone',
        description:
          'Upserts by phone: creates the contact, or updates the one that has this phone (normalised to E.164). ' +
          'Answers **201 in both cases** (as the reference API does) with the contact; compare `created_at` with `updated_at` to tell them apart. ' +
          'On an existing contact the given fields overwrite, `metadata` merges shallowly and `tags` are added. ' +
          'A new contact gets `source: "api"` and `opted_in_at` = now. An email used by another contact is a 422 naming `email`. ' +
          'Send an `Idempotency-Key` header to make retries safe.',
        tags: ['Contacts'],
        operationId: 'createContact',
        body: CreateContactBody,
        response: {
          201: ok(contactRef, 'The created or updated contact', exampleContact),
          ...errorResponses(400, ...authErrors, 409, 413, 415, 422),
        },
      },
    },
    async (request, reply) => {
      const result = await contacts.createOrUpsertContact(ctx, request.principal!.workspaceId, request.body as CreateInput, { source: 'api' });
      return reply.code(201).send(result.contact);
    },
  );

  app.post(
    `${actions}/update-contact`,
    {
      config: { scope: 'contacts:write' },
      schema: {
        summary: 'Update a contact',
        description:
          'Names the contact by `contact_id` or `phone`. Given fields overwrite and `""` clears one; `metadata` merges shallowly ' +
          '(a key set to `""` is removed); `tags` replaces all the contact\'s tags. With `contact_id`, `phone` sets a new phone. ' +
          'A contact must keep a phone or an email.',
        tags: ['Contacts'],
        operationId: 'updateContact',
        body: UpdateContactBody,
        response: { 200: ok(contactRef, 'The updated contact', exampleContact), ...errorResponses(400, ...authErrors, 404, 413, 415, 422) },
      },
    },
    async (request) => contacts.updateContact(ctx, request.principal!.workspaceId, request.body as contacts.UpdateContactInput),
  );

  app.post(
    `${actions}/get-contact`,
    {
      config: { scope: 'contacts:read' },
      schema: {
        summary: 'Get a contact',
        description:
          'Finds the contact by `contact_id`, else `phone`, else `email` (empty strings count as absent). ' +
          '404 when there is none, or when it belongs to another workspace.',
        tags: ['Contacts'],
        operationId: 'getContact',
        body: GetContactBody,
        response: { 200: ok(contactRef, 'The contact', exampleContact), ...errorResponses(400, ...authErrors, 404, 415, 422) },
      },
    },
    async (request) => contacts.getContact(ctx, request.principal!.workspaceId, request.body as contacts.ContactRef),
  );

  app.post(
    `${actions}/search-contacts`,
    {
      config: { scope: 'contacts:read' },
      schema: {
        summary: 'Search contacts',
        description:
          'Every word of `query` must occur in the name, phone or email (ignoring case and accents; phone fragments match however they are formatted). ' +
          '`tag` and `email` narrow the result. At most 50 contacts, most recently messaged first, never-messaged last, then newest first. ' +
          'To walk every contact use `GET /api/v1/contacts`.',
        tags: ['Contacts'],
        operationId: 'searchContacts',
        body: SearchContactsBody,
        response: { 200: ok(ContactList, 'Matching contacts', { data: [exampleContact] }), ...errorResponses(400, ...authErrors, 415, 422) },
      },
    },
    async (request) => ({ data: await contacts.searchContacts(ctx, request.principal!.workspaceId, request.body as contacts.SearchContactsInput) }),
  );

  app.post(
    `${actions}/add-tag`,
    {
      config: { scope: 'contacts:write' },
      schema: {
        summary: 'Tag a contact',
        description:
          'Adds the tag to the contact named by `contact_id` or `phone`, creating the tag when the workspace has none of that name (ignoring case). ' +
          'Adding a tag the contact has already is harmless.',
        tags: ['Tags'],
        operationId: 'addTag',
        body: TagChangeBody,
        response: {
          200: ok(ContactTags, "The contact's tags", { contact_id: exampleContact.id, tag: 'vip', tags: ['lead', 'vip'] }),
          ...errorResponses(400, ...authErrors, 404, 415, 422),
        },
      },
    },
    async (request) => contacts.addTag(ctx, request.principal!.workspaceId, request.body as TagChange),
  );

  app.post(
    `${actions}/remove-tag`,
    {
      config: { scope: 'contacts:write' },
      schema: {
        summary: 'Untag a contact',
        description: 'Removes the tag from the contact. Removing a tag the contact lacks is harmless; the tag itself stays in the workspace.',
        tags: ['Tags'],
        operationId: 'removeTag',
        body: TagChangeBody,
        response: {
          200: ok(ContactTags, "The contact's tags", { contact_id: exampleContact.id, tag: 'vip', tags: ['lead'] }),
          ...errorResponses(400, ...authErrors, 404, 415, 422),
        },
      },
    },
    async (request) => contacts.removeTag(ctx, request.principal!.workspaceId, request.body as TagChange),
  );

  app.post(
    `${actions}/list-tags`,
    {
      config: { scope: 'contacts:read' },
      schema: {
        summary: 'List tags',
        description: 'Every tag of the workspace with how many contacts carry it, alphabetical.',
        tags: ['Tags'],
        operationId: 'listTags',
        body: ListTagsBody,
        response: {
          200: ok(Type.Object({ data: Type.Array(TagSchema) }), 'The tags', {
            data: [{ id: '01936f3e-8a5c-7b2e-9c1d-2f3a4b5c6d80', name: 'vip', contacts_count: 12, created_at: '2026-05-07T08:14:23.000Z' }],
          }),
          ...errorResponses(400, ...authErrors, 415, 422),
        },
      },
    },
    async (request) => ({ data: await contacts.listTags(ctx, request.principal!.workspaceId) }),
  );

  app.get(
    '/api/v1/contacts',
    {
      config: { scope: 'contacts:read' },
      schema: {
        summary: 'List contacts',
        description:
          'Every contact of the workspace, page by page in creation order. Pass `next_cursor` back as `cursor` until it is null. ' +
          'Filters: `tag`, `email` (exact), `phone` (normalised like create-contact), `query` (words, as in search-contacts), ' +
          '`opted_out`, `created_after` and `created_before` (ISO 8601, exclusive).',
        tags: ['Contacts'],
        operationId: 'listContacts',
        querystring: ListContactsQuery,
        response: { 200: ok(ContactPage, 'A page of contacts', { data: [exampleContact], next_cursor: null }), ...errorResponses(...authErrors, 422) },
      },
    },
    async (request) => contacts.listContacts(ctx, request.principal!.workspaceId, request.query as contacts.ListContactsInput),
  );

  app.get(
    '/api/v1/contacts/:id',
    {
      config: { scope: 'contacts:read' },
      schema: {
        summary: 'Get a contact by id',
        description: '404 when there is none, or when it belongs to another workspace.',
        tags: ['Contacts'],
        operationId: 'getContactById',
        params: Type.Object({ id: ContactId }),
        response: { 200: ok(contactRef, 'The contact', exampleContact), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => contacts.getContact(ctx, request.principal!.workspaceId, { contact_id: (request.params as { id: string }).id }),
  );
}
