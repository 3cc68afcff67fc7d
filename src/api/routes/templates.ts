import { Type } from 'typebox';
import { templateLimits } from '../../domain/message-template.js';
import type { TemplateInput } from '../../domain/message-template.js';
import type { Context } from '../../engine/context.js';
import * as templates from '../../engine/template-service.js';
import { authErrors, errorResponses, Nullable, ok, Timestamp } from '../schemas.js';
import type { App } from '../types.js';

/*
 * WhatsApp message templates: the resource (create, list, read, delete), the actions
 * integration tools call (list-templates, get-template, send-template-message) and
 * their dropdowns. The rules live in engine/template-service.ts.
 */

const Status = Type.Union([Type.Literal('APPROVED'), Type.Literal('PENDING'), Type.Literal('REJECTED')]);
const Category = Type.Union([Type.Literal('UTILITY'), Type.Literal('MARKETING'), Type.Literal('AUTHENTICATION')]);
const Loose = Type.Object({}, { additionalProperties: true });
const TemplateIdText = Type.String({ maxLength: 36, description: 'The template id (UUID)' });

const Button = Type.Union(
  [
    Type.Object({ type: Type.Literal('QUICK_REPLY'), text: Type.String({ maxLength: templateLimits.buttonText }) }, { additionalProperties: false }),
    Type.Object(
      {
        type: Type.Literal('URL'),
        text: Type.String({ maxLength: templateLimits.buttonText }),
        url: Type.String({ maxLength: templateLimits.url, description: 'May end with {{1}}: the send fills it from variables.button_<index>' }),
        example: Type.Optional(Type.String({ maxLength: templateLimits.example, description: 'A sample suffix for Meta\u2019s review' })),
      },
      { additionalProperties: false },
    ),
    Type.Object({ type: Type.Literal('PHONE_NUMBER'), text: Type.String({ maxLength: templateLimits.buttonText }), phone_number: Type.String({ maxLength: templateLimits.phone }) }, { additionalProperties: false }),
  ],
  { description: 'QUICK_REPLY, URL (at most 2) or PHONE_NUMBER (at most 1); at most 10 buttons, texts up to 25 characters' },
);

const CreateTemplateBody = Type.Object(
  {
    name: Type.String({ maxLength: templateLimits.name, description: 'Lowercase letters, digits and underscores' }),
    language: Type.String({ maxLength: 20, description: 'WhatsApp language code: en, en_US, pt_BR…' }),
    category: Category,
    header: Type.Optional(Type.String({ maxLength: templateLimits.header, description: 'Text header, at most one placeholder {{1}}' })),
    body: Type.String({ maxLength: templateLimits.body, description: 'Placeholders {{1}}, {{2}}… numbered from 1 without gaps' }),
    footer: Type.Optional(Type.String({ maxLength: templateLimits.footer, description: 'No placeholders' })),
    buttons: Type.Optional(Type.Array(Button, { maxItems: templateLimits.buttons })),
    examples: Type.Optional(
      Type.Record(Type.String({ maxLength: 20 }), Type.String({ maxLength: templateLimits.example }), {
        description: 'Sample values for Meta\u2019s review, by variable key ("1", "header_1", "button_0"); neutral samples are used when absent',
      }),
    ),
  },
  {
    additionalProperties: false,
    examples: [
      {
        name: 'order_shipped',
        language: 'en_US',
        category: 'UTILITY',
        header: 'Order {{1}}',
        body: 'Hi {{1}}, your order {{2}} is on its way.',
        footer: 'Reply STOP to opt out',
        buttons: [{ type: 'URL', text: 'Track', url: 'https://shop.example.com/track/{{1}}' }, { type: 'QUICK_REPLY', text: 'Thanks' }],
        examples: { header_1: '#1001', '1': 'Ana', '2': '#1001', button_0: '1001' },
      },
    ],
  },
);

const TemplateSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    language: Type.String(),
    category: Type.String(),
    status: Type.String({ description: 'APPROVED, PENDING or REJECTED' }),
    header: Nullable(Type.String()),
    body: Type.String(),
    footer: Nullable(Type.String()),
    buttons: Type.Array(Loose),
    placeholders: Type.Array(Type.String(), { description: 'Keys a send must give in variables' }),
    provider_template_id: Nullable(Type.String({ description: 'Meta\u2019s template id; null on the sandbox' })),
    rejected_reason: Nullable(Type.String()),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { $id: 'Template', title: 'Template' },
);
const templateRef = { $ref: 'Template#' } as const;

const exampleTemplate = {
  id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a90',
  name: 'order_shipped',
  language: 'en_US',
  category: 'UTILITY',
  status: 'APPROVED',
  header: 'Order {{1}}',
  body: 'Hi {{1}}, your order {{2}} is on its way.',
  footer: 'Reply STOP to opt out',
  buttons: [{ type: 'URL', text: 'Track', url: 'https://shop.example.com/track/{{1}}' }],
  placeholders: ['header_1', '1', '2', 'button_0'],
  provider_template_id: null,
  rejected_reason: null,
  created_at: '2026-05-07T08:14:23.000Z',
  updated_at: '2026-05-07T08:14:23.000Z',
};

const Summary = Type.Object({ id: Type.String(), name: Type.String(), category: Type.String(), status: Type.String(), languages: Type.Array(Type.String()) });
const Option = Type.Object({ id: Type.String(), label: Type.String() });

export function registerTemplateRoutes(app: App, ctx: Context): void {
  app.addSchema(TemplateSchema);

  app.post(
    '/api/v1/templates',
    {
      config: { scope: 'templates:write', idempotent: true },
      schema: {
        summary: 'Create a template',
        description:
          'Creates a WhatsApp template in one language. Without WhatsApp settings (sandbox) it is APPROVED at once; with them it is submitted to Meta for review ' +
          'and stored PENDING with Meta\u2019s id until the review webhook or the periodic sync updates it. Placeholders must be numbered {{1}}, {{2}}… without gaps; ' +
          'Meta\u2019s limits apply (header 60, body 1024, footer 60 characters, at most 10 buttons). A name and language that exist already is a 409.',
        tags: ['Templates'],
        operationId: 'createTemplate',
        body: CreateTemplateBody,
        response: { 201: ok(templateRef, 'The template', exampleTemplate), ...errorResponses(400, ...authErrors, 409, 413, 415, 422) },
      },
    },
    async (request, reply) => reply.code(201).send(await templates.createTemplate(ctx, request.principal!.workspaceId, request.body as TemplateInput)),
  );

  app.get(
    '/api/v1/templates',
    {
      config: { scope: 'templates:read' },
      schema: {
        summary: 'List templates',
        description: 'Every template language of the workspace, oldest first, page by page: pass `next_cursor` back as `cursor` until it is null. `status` filters.',
        tags: ['Templates'],
        operationId: 'listTemplates',
        querystring: Type.Object(
          {
            status: Type.Optional(Status),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: ok(Type.Object({ data: Type.Array(templateRef), next_cursor: Nullable(Type.String()) }), 'A page of templates', { data: [exampleTemplate], next_cursor: null }), ...errorResponses(...authErrors, 422) },
      },
    },
    async (request) => templates.listTemplatePage(ctx, request.principal!.workspaceId, request.query as { status?: string; cursor?: string; limit?: number }),
  );

  app.get(
    '/api/v1/templates/:id',
    {
      config: { scope: 'templates:read' },
      schema: {
        summary: 'Get a template',
        description: '404 when there is none, or when it belongs to another workspace.',
        tags: ['Templates'],
        operationId: 'getTemplateById',
        params: Type.Object({ id: TemplateIdText }),
        response: { 200: ok(templateRef, 'The template', exampleTemplate), ...errorResponses(...authErrors, 404) },
      },
    },
    async (request) => templates.getTemplate(ctx, request.principal!.workspaceId, (request.params as { id: string }).id),
  );

  app.delete(
    '/api/v1/templates/:id',
    {
      config: { scope: 'templates:write' },
      schema: {
        summary: 'Delete a template',
        description: 'Deletes this language of the template, at Meta too when it was submitted there.',
        tags: ['Templates'],
        operationId: 'deleteTemplate',
        params: Type.Object({ id: TemplateIdText }),
        response: { 200: ok(Type.Object({ success: Type.Boolean(), id: Type.String() }), 'Deleted', { success: true, id: exampleTemplate.id }), ...errorResponses(...authErrors, 404, 422) },
      },
    },
    async (request) => {
      const id = (request.params as { id: string }).id;
      await templates.deleteTemplate(ctx, request.principal!.workspaceId, id);
      return { success: true, id };
    },
  );

  app.post(
    '/api/v1/actions/list-templates',
    {
      config: { scope: 'templates:read' },
      schema: {
        summary: 'List templates (one per name)',
        description: 'One entry per template name with its languages; `status` keeps only the languages with that status. Alphabetical.',
        tags: ['Templates'],
        operationId: 'listTemplateSummaries',
        body: Type.Union([Type.Object({ status: Type.Optional(Status) }, { additionalProperties: false }), Type.Null()], { examples: [{}, { status: 'APPROVED' }] }),
        response: {
          200: ok(Type.Object({ data: Type.Array(Summary) }), 'The templates', { data: [{ id: exampleTemplate.id, name: 'order_shipped', category: 'UTILITY', status: 'APPROVED', languages: ['en_US', 'pt_BR'] }] }),
          ...errorResponses(400, ...authErrors, 415, 422),
        },
      },
    },
    async (request) => ({ data: await templates.listTemplateSummaries(ctx, request.principal!.workspaceId, (request.body as { status?: string } | null)?.status) }),
  );

  app.post(
    '/api/v1/actions/get-template',
    {
      config: { scope: 'templates:read' },
      schema: {
        summary: 'Get a template with its parts',
        description: 'The template language `template_id` names, with its header, body, footer, buttons and the placeholders a send must fill, and every language of the name.',
        tags: ['Templates'],
        operationId: 'getTemplate',
        body: Type.Object({ template_id: TemplateIdText }, { additionalProperties: false, examples: [{ template_id: exampleTemplate.id }] }),
        response: {
          200: ok(
            Type.Object({
              id: Type.String(),
              name: Type.String(),
              category: Type.String(),
              status: Type.String(),
              language: Type.String(),
              languages: Type.Array(Type.String()),
              header: Nullable(Type.String()),
              body: Type.String(),
              footer: Nullable(Type.String()),
              buttons: Type.Array(Loose),
              placeholders: Type.Array(Type.Object({ key: Type.String(), label: Type.String() })),
              rejected_reason: Nullable(Type.String()),
            }),
            'The template',
            {
              id: exampleTemplate.id,
              name: exampleTemplate.name,
              category: exampleTemplate.category,
              status: exampleTemplate.status,
              language: exampleTemplate.language,
              header: exampleTemplate.header,
              body: exampleTemplate.body,
              footer: exampleTemplate.footer,
              buttons: exampleTemplate.buttons,
              rejected_reason: null,
              languages: ['en_US'],
              placeholders: [
                { key: 'header_1', label: 'Header {{1}}' },
                { key: '1', label: 'Body {{1}}' },
              ],
            },
          ),
          ...errorResponses(400, ...authErrors, 404, 415, 422),
        },
      },
    },
    async (request) => templates.getTemplateDetail(ctx, request.principal!.workspaceId, (request.body as { template_id: string }).template_id),
  );

  app.get(
    '/api/v1/dropdowns/templates',
    {
      config: { scope: 'templates:read' },
      schema: {
        summary: 'Templates for a picker',
        description: 'Approved templates, one per name, as `{id, label}`.',
        tags: ['Dropdowns'],
        operationId: 'dropdownTemplates',
        response: { 200: ok(Type.Array(Option), 'Options', [{ id: exampleTemplate.id, label: 'order_shipped (en_US, pt_BR)' }]), ...errorResponses(...authErrors) },
      },
    },
    async (request) => templates.templateDropdown(ctx, request.principal!.workspaceId),
  );

  app.get(
    '/api/v1/dropdowns/template-variables',
    {
      config: { scope: 'templates:read' },
      schema: {
        summary: 'Variables of a template for a picker',
        description: 'The placeholders of the template as `{id, label}`: `id` is the key to use in `variables` of send-template-message.',
        tags: ['Dropdowns'],
        operationId: 'dropdownTemplateVariables',
        querystring: Type.Object({ template_id: TemplateIdText }, { additionalProperties: false }),
        response: { 200: ok(Type.Array(Option), 'Options', [{ id: '1', label: 'Body {{1}}' }, { id: '2', label: 'Body {{2}}' }]), ...errorResponses(...authErrors, 404, 422) },
      },
    },
    async (request) => templates.templateVariablesDropdown(ctx, request.principal!.workspaceId, (request.query as { template_id: string }).template_id),
  );

  app.post(
    '/api/v1/actions/send-template-message',
    {
      config: { scope: 'messages:send', idempotent: true },
      schema: {
        summary: 'Send a template message',
        description:
          'Sends an approved WhatsApp template to `phone`, creating the contact when new. The language is `language` when given (it must be approved), ' +
          'else the contact\u2019s language, else the workspace\u2019s, else the template\u2019s first approved language. Every placeholder must be filled: ' +
          'otherwise 422 `template_variables_missing` with `expected_placeholders` and `missing`. A template that is not approved is a 422; an unknown one a 404. ' +
          'Templates may be sent outside the 24-hour window.',
        tags: ['Messages'],
        operationId: 'sendTemplateMessage',
        body: Type.Object(
          {
            phone: Type.String({ maxLength: 40, description: 'E.164, e.g. +14155550123' }),
            template_id: TemplateIdText,
            language: Type.Optional(Type.String({ maxLength: 20 })),
            variables: Type.Optional(Type.Record(Type.String({ maxLength: 20 }), Type.String({ maxLength: templateLimits.body }), { description: 'Placeholder values by key: "1", "2", "header_1", "button_0"' })),
          },
          { additionalProperties: false, examples: [{ phone: '+14155550123', template_id: exampleTemplate.id, variables: { '1': 'Ana', '2': '#1001' } }] },
        ),
        response: {
          200: ok(
            Type.Object({
              id: Type.String({ description: 'The message id' }),
              status: Type.String(),
              whatsapp_message_id: Nullable(Type.String({ description: 'Meta\u2019s wamid once sent' })),
              contact_id: Type.String(),
              template_id: Type.String({ description: 'The template language sent' }),
              language: Type.String(),
            }),
            'Queued or sent',
            { id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a91', status: 'sent', whatsapp_message_id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI', contact_id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61', template_id: exampleTemplate.id, language: 'en_US' },
          ),
          422: {
            description: 'Validation failed, the template is not approved, or variables are missing',
            content: {
              'application/json': {
                schema: { $ref: 'Error#' },
                example: {
                  error: 'Template "order_shipped" (en_US) needs the variables 2',
                  code: 'template_variables_missing',
                  message: 'Template "order_shipped" (en_US) needs the variables 2',
                  errors: { 'variables.2': ['variables.2 is required'] },
                  expected_placeholders: ['1', '2'],
                  missing: ['2'],
                },
              },
            },
          },
          ...errorResponses(400, ...authErrors, 404, 409, 413, 415),
        },
      },
    },
    async (request) => templates.sendTemplateMessage(ctx, request.principal!.workspaceId, request.body as templates.SendTemplateInput),
  );
}
