import { Type } from 'typebox';
import { emailTemplateLimits } from '../../domain/email-template.js';
import type { Context } from '../../engine/context.js';
import * as emailTemplates from '../../engine/email-template-service.js';
import { authErrors, errorResponses, Nullable, ok, Timestamp, Uuid } from '../schemas.js';
import type { App } from '../types.js';

/*
 * Email templates: the editable emails of sequence and flow steps, and standalone ones.
 * camelCase like the sequences API they belong to. Not the WhatsApp templates of
 * /api/v1/templates. The rules live in engine/email-template-service.ts.
 */

const Block = Type.Object({ type: Type.String({ maxLength: 50 }), id: Type.Optional(Type.String({ maxLength: 100 })) }, { additionalProperties: true, description: 'A content block: heading, text, button, image, divider, spacer or html' });

const contentFields = {
  subject: Type.String({ maxLength: emailTemplateLimits.subject, description: 'The subject line; merge tags allowed' }),
  previewText: Type.Optional(Nullable(Type.String({ maxLength: emailTemplateLimits.previewText, description: 'The preview line inbox lists show; null removes it' }))),
  blocks: Type.Optional(Type.Array(Block, { maxItems: 500, description: 'The content as blocks (give blocks or html)' })),
  html: Type.Optional(Type.String({ maxLength: emailTemplateLimits.html, description: 'The content as HTML, converted to blocks as steps\u2019 HTML is (give blocks or html)' })),
};

const CreateBody = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: emailTemplateLimits.name, description: 'Shown in the library; the subject when absent' })),
    ...contentFields,
  },
  {
    additionalProperties: false,
    examples: [
      {
        name: 'Spring sale announcement',
        subject: 'Spring sale: {{contact.first_name|friend}}, 20% off this week',
        previewText: 'Our biggest sale of the season',
        html: '<h1>Spring sale</h1><p>Everything is 20% off until Sunday.</p><a href="https://shop.example.com/sale">Shop the sale</a>',
      },
    ],
  },
);

const UpdateBody = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: emailTemplateLimits.name })),
    subject: Type.Optional(contentFields.subject),
    previewText: contentFields.previewText,
    blocks: contentFields.blocks,
    html: contentFields.html,
  },
  {
    additionalProperties: false,
    examples: [{ subject: 'Welcome aboard, {{contact.first_name|friend}}!', blocks: [{ id: 'heading-1', type: 'heading', content: 'Welcome!', level: 1 }] }],
  },
);

const EmailTemplate = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    subject: Type.String(),
    previewText: Nullable(Type.String()),
    blocks: Type.Array(Type.Object({}, { additionalProperties: true })),
    sequenceId: Nullable(Type.String({ description: 'The sequence whose email step this template is; null for a library template or a flow\u2019s step' })),
    flowId: Nullable(Type.String({ description: 'The flow whose email step this template is' })),
    nodeId: Nullable(Type.String({ description: 'The step\u2019s node id in the definition\u2019s graph, such as step-2' })),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'EmailTemplate', title: 'EmailTemplate' },
);
const templateRef = { $ref: 'EmailTemplate#' } as const;

const example = {
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4aa0',
  name: 'Welcome Sequence \u2013 Email 1',
  subject: 'Welcome to our product!',
  previewText: null,
  blocks: [
    { id: 'heading-1', type: 'heading', content: 'Welcome!', level: 1 },
    { id: 'text-1', type: 'text', content: '<p>Thanks for signing up. We are excited to have you.</p>', variant: 'paragraph' },
  ],
  sequenceId: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  flowId: null,
  nodeId: 'step-1',
  createdAt: '2026-05-01T10:00:00.000Z',
  updatedAt: '2026-05-01T10:00:00.000Z',
};
const libraryExample = { ...example, id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4aa1', name: 'Spring sale announcement', sequenceId: null, nodeId: null };

const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });

const editedMessage = 'Email template updated. The step it belongs to changed in the draft: enable (publish) the sequence to send the new email. Subscribers already in the sequence keep the version they started on.';

export function registerEmailTemplateRoutes(app: App, ctx: Context): void {
  app.addSchema(EmailTemplate);

  app.get(
    '/api/v1/email-templates',
    {
      config: { scope: 'templates:read' },
      schema: {
        summary: 'List email templates',
        description:
          'The workspace\u2019s email templates, oldest first, a page at a time: pass `nextCursor` as `cursor` for the next page. ' +
          'Every email step of a sequence or flow has one; `sequenceId` (a sequence\u2019s or a flow\u2019s id) keeps only its steps\u2019 templates.',
        tags: ['Email templates'],
        operationId: 'listEmailTemplates',
        querystring: Type.Object(
          {
            sequenceId: Type.Optional(Type.String({ maxLength: 36, description: 'Only the templates of this sequence\u2019s (or flow\u2019s) steps' })),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: ok(Type.Object({ data: Type.Array(templateRef), nextCursor: Nullable(Type.String()) }), 'A page of email templates', { data: [example], nextCursor: null }),
          ...errorResponses(...authErrors, 422),
        },
      },
    },
    async (request) => emailTemplates.listEmailTemplates(ctx, request.principal!.workspaceId, request.query as emailTemplates.ListEmailTemplatesQuery),
  );

  app.get(
    '/api/v1/email-templates/:id',
    {
      config: { scope: 'templates:read' },
      schema: {
        summary: 'Get an email template',
        description: 'The template with its subject, preview text and blocks, and the step it belongs to, if any. 404 for another workspace\u2019s id.',
        tags: ['Email templates'],
        operationId: 'getEmailTemplate',
        params: IdParams,
        response: { 200: ok(Type.Object({ success: Type.Boolean(), template: templateRef }), 'The email template', { success: true, template: example }), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => ({ success: true, template: await emailTemplates.getEmailTemplate(ctx, request.principal!.workspaceId, (request.params as { id: string }).id) }),
  );

  app.post(
    '/api/v1/email-templates',
    {
      config: { scope: 'templates:write', idempotent: true },
      schema: {
        summary: 'Create an email template',
        description:
          'A standalone template in the library: a `subject`, an optional `previewText`, and the content as `blocks` or as `html` (converted to blocks, as a step\u2019s HTML is). ' +
          'A step can start from it with `{"templateId": "<id>"}` in a sequence\u2019s `steps`.',
        tags: ['Email templates'],
        operationId: 'createEmailTemplate',
        body: CreateBody,
        response: {
          201: ok(Type.Object({ success: Type.Boolean(), template: templateRef }), 'The email template', { success: true, template: libraryExample }),
          ...errorResponses(400, ...authErrors, 409, 413, 415, 422),
        },
      },
    },
    async (request, reply) => reply.code(201).send({ success: true, template: await emailTemplates.createEmailTemplate(ctx, request.principal!.workspaceId, request.body as emailTemplates.EmailTemplateInput) }),
  );

  app.put(
    '/api/v1/email-templates/:id',
    {
      config: { scope: 'templates:write' },
      schema: {
        summary: 'Update an email template',
        description:
          'Changes the fields given: `name`, `subject`, `previewText`, and the content as `blocks` or `html`. ' +
          'When the template is a step\u2019s, that step changes in the sequence\u2019s draft in the same transaction (`hasUnpublishedChanges` becomes true): ' +
          'the next enable (publish) sends the new email. Published versions never change, so subscribers already in the sequence keep the email of the version they started on.',
        tags: ['Email templates'],
        operationId: 'updateEmailTemplate',
        params: IdParams,
        body: UpdateBody,
        response: {
          200: ok(
            Type.Object({
              success: Type.Boolean(),
              template: templateRef,
              draftChanged: Type.Boolean({ description: 'Whether a sequence\u2019s or flow\u2019s draft changed with it' }),
              message: Type.String(),
            }),
            'The updated email template',
            { success: true, template: { ...example, subject: 'Welcome aboard!', updatedAt: '2026-05-07T08:14:23.000Z' }, draftChanged: true, message: editedMessage },
          ),
          ...errorResponses(400, ...authErrors, 404, 409, 413, 415, 422),
        },
      },
    },
    async (request) => {
      const updated = await emailTemplates.updateEmailTemplate(ctx, request.principal!.workspaceId, (request.params as { id: string }).id, request.body as emailTemplates.EmailTemplateInput);
      const what = updated.draftChanged?.kind ?? 'sequence';
      return {
        success: true,
        template: updated.template,
        draftChanged: updated.draftChanged !== null,
        message: updated.draftChanged !== null ? editedMessage.replace(/sequence/g, what) : 'Email template updated.',
      };
    },
  );

  app.delete(
    '/api/v1/email-templates/:id',
    {
      config: { scope: 'templates:write' },
      schema: {
        summary: 'Delete an email template',
        description:
          'Deletes a library template, or the template of a step of an archived sequence. ' +
          'While it is the email of a step of a sequence or flow that is not archived, the answer is 422: remove the step (PUT the sequence) or archive the sequence first.',
        tags: ['Email templates'],
        operationId: 'deleteEmailTemplate',
        params: IdParams,
        response: { 200: ok(Type.Object({ success: Type.Boolean(), id: Type.String() }), 'Deleted', { success: true, id: libraryExample.id }), ...errorResponses(...authErrors, 404, 422) },
      },
    },
    async (request) => {
      const id = (request.params as { id: string }).id;
      await emailTemplates.deleteEmailTemplate(ctx, request.principal!.workspaceId, id);
      return { success: true, id: id.toLowerCase() };
    },
  );
}
