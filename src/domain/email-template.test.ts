import { describe, expect, it } from 'vitest';
import type { Graph } from './definition.js';
import { checkEmailContent, defaultTemplateName, emailContentOfNode, nodeWithContent, planTemplateSync, stepWithContent, textToBlocks, type EmailContent, type TemplateLink } from './email-template.js';

const content = (subject: string): EmailContent => ({ subject, previewText: null, blocks: [{ type: 'text', content: `<p>${subject}</p>` }] });
const link = (id: string, definitionId: string | null, nodeId: string | null, subject = id): TemplateLink => ({ id, definitionId, nodeId, content: content(subject) });

describe('planTemplateSync', () => {
  it('keeps the template of each node id, updating only the changed ones, and creates the missing ones numbered by email position', () => {
    const plan = planTemplateSync('d1', [{ nodeId: 'step-1', content: content('a') }, { nodeId: 'step-2', content: content('new') }, { nodeId: 'step-3', content: content('c') }], [link('t1', 'd1', 'step-1', 'a'), link('t2', 'd1', 'step-2', 'b')], new Map());
    expect(plan).toEqual({
      assign: [
        { id: 't1', nodeId: 'step-1', content: content('a'), relink: false, changed: false },
        { id: 't2', nodeId: 'step-2', content: content('new'), relink: false, changed: true },
      ],
      create: [{ nodeId: 'step-3', content: content('c'), position: 3 }],
      unlink: [],
    });
  });

  it('unlinks the templates of nodes that are gone', () => {
    const plan = planTemplateSync('d1', [{ nodeId: 'step-1', content: content('a') }], [link('t1', 'd1', 'step-1', 'a'), link('t2', 'd1', 'step-2')], new Map());
    expect(plan.unlink).toEqual(['t2']);
    expect(plan.create).toEqual([]);
  });

  it('moves a named template of the same definition to its new node; the node it left gets a new one and the displaced template goes to the library', () => {
    const named = new Map([['step-1', link('t2', 'd1', 'step-2', 'b')]]);
    const plan = planTemplateSync('d1', [{ nodeId: 'step-1', content: content('b') }, { nodeId: 'step-2', content: content('x') }], [link('t1', 'd1', 'step-1', 'a'), link('t2', 'd1', 'step-2', 'b')], named);
    expect(plan.assign).toEqual([{ id: 't2', nodeId: 'step-1', content: content('b'), relink: true, changed: false }]);
    expect(plan.create).toEqual([{ nodeId: 'step-2', content: content('x'), position: 2 }]);
    expect(plan.unlink).toEqual(['t1']);
  });

  it('takes a library template once; another definition\u2019s template, or one already taken, is left where it is', () => {
    const named = new Map([
      ['step-1', link('lib', null, null)],
      ['step-2', link('lib', null, null)],
      ['step-3', link('theirs', 'd2', 'step-1')],
    ]);
    const plan = planTemplateSync('d1', [{ nodeId: 'step-1', content: content('lib') }, { nodeId: 'step-2', content: content('lib') }, { nodeId: 'step-3', content: content('theirs') }], [], named);
    expect(plan.assign).toEqual([{ id: 'lib', nodeId: 'step-1', content: content('lib'), relink: true, changed: false }]);
    expect(plan.create.map((c) => c.nodeId)).toEqual(['step-2', 'step-3']);
  });
});

describe('checkEmailContent', () => {
  it('names the template\u2019s fields: subject, previewText and blocks paths, or html for converted content', () => {
    expect(checkEmailContent({ subject: ' ', previewText: null, blocks: [{ type: 'text', content: '<p>{{nope}}</p>' }] }, 'blocks')).toEqual({
      subject: ['subject is required: 1 to 998 characters'],
      'blocks.0.content': ['blocks[0].content uses unknown merge tag {{nope}}'],
    });
    expect(Object.keys(checkEmailContent({ subject: 'Hi {{contact.first_name}}', previewText: 'x'.repeat(1001), blocks: [{ type: 'text', content: '<p>{{nope}}</p>' }] }, 'html'))).toEqual(['previewText', 'html']);
    expect(checkEmailContent({ subject: 'Hi', previewText: null, blocks: [] }, 'html')).toEqual({ html: ['html has nothing an email can show (no text, link, image or divider)'] });
    expect(checkEmailContent(content('fine'), 'blocks')).toEqual({});
  });

  it('judges webhook merge tags against the graph the node is in, and accepts any webhook name on a lone email', () => {
    const tagged: EmailContent = { subject: 'Order {{webhook.order.status}}', previewText: null, blocks: [{ type: 'text', content: '<p>x</p>' }] };
    expect(checkEmailContent(tagged, 'blocks')).toEqual({});
    const graph: Graph = { entry: 'mail', nodes: [{ id: 'mail', type: 'send_message', channel: 'email', content: { subject: 'x', blocks: [{ type: 'text', content: 'x' }] } }], edges: [] };
    expect(Object.keys(checkEmailContent(tagged, 'blocks', { graph, nodeId: 'mail', kind: 'sequence' }))).toEqual(['subject']);
    const withWebhook: Graph = { entry: 'call', nodes: [{ id: 'call', type: 'webhook', url: 'https://example.com', save_as: 'order' }, graph.nodes[0]!], edges: [{ from: 'call', to: 'mail' }] };
    expect(checkEmailContent(tagged, 'blocks', { graph: withWebhook, nodeId: 'mail', kind: 'sequence' })).toEqual({});
  });
});

describe('email content of nodes and steps', () => {
  it('reads blocks, HTML or plain text as blocks', () => {
    expect(emailContentOfNode({ id: 'a', type: 'send_message', channel: 'email', content: { subject: 'S', preview_text: 'P', html: '<h2>T</h2>' } })).toEqual({ subject: 'S', previewText: 'P', blocks: [{ id: 'heading-1', type: 'heading', content: 'T', level: 2 }] });
    expect(emailContentOfNode({ id: 'a', type: 'send_message', channel: 'sms', content: { text: 'x' } })).toBeNull();
    expect(textToBlocks('Hi <you>,\nline two\n\n\nBye')).toEqual([
      { id: 'text-1', type: 'text', content: '<p>Hi &lt;you&gt;,<br />line two</p>', variant: 'paragraph' },
      { id: 'text-2', type: 'text', content: '<p>Bye</p>', variant: 'paragraph' },
    ]);
  });

  it('writes content into a node and a step, dropping the HTML and text it replaces and keeping the rest', () => {
    const next: EmailContent = { subject: 'New', previewText: null, blocks: [{ type: 'divider' }] };
    expect(nodeWithContent({ id: 'a', type: 'send_message', channel: 'email', marketing: false, content: { subject: 'Old', preview_text: 'P', html: '<p>x</p>', text: 'x' } }, next)).toEqual({
      id: 'a',
      type: 'send_message',
      channel: 'email',
      marketing: false,
      content: { subject: 'New', blocks: [{ type: 'divider' }] },
    });
    expect(stepWithContent({ subject: 'Old', previewText: 'P', html: '<p>x</p>', delay: { days: 1 }, templateId: 't' }, { ...next, previewText: 'Q' })).toEqual({ delay: { days: 1 }, subject: 'New', previewText: 'Q', blocks: [{ type: 'divider' }] });
  });

  it('names generated templates after the definition, within the name limit', () => {
    expect(defaultTemplateName('Welcome', 2)).toBe('Welcome \u2013 Email 2');
    expect(defaultTemplateName('x'.repeat(300), 10)).toHaveLength(250);
  });
});
