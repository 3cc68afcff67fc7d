import { describe, expect, it } from 'vitest';
import { compileSteps, graphToSteps } from './compile-steps.js';
import type { Graph } from './definition.js';

// The request bodies of the examples on spec/sequenzy-create-sequence.txt, copied verbatim.
const blocksExample = String.raw`{
    "name": "Welcome Sequence",
    "trigger": "contact_added",
    "steps": [
      {
        "subject": "Welcome to our product!",
        "blocks": [
          {
            "id": "heading-1",
            "type": "heading",
            "content": "Welcome!",
            "level": 1
          },
          {
            "id": "text-1",
            "type": "text",
            "content": "<p>Thanks for signing up. We are excited to have you.</p>",
            "variant": "paragraph"
          }
        ]
      },
      {
        "subject": "Getting started guide",
        "delay": { "days": 1 },
        "blocks": [
          {
            "id": "heading-2",
            "type": "heading",
            "content": "Getting Started",
            "level": 1
          },
          {
            "id": "text-2",
            "type": "text",
            "content": "<p>Here is everything you need to get started...</p>",
            "variant": "paragraph"
          }
        ]
      }
    ]
  }`;

const htmlExample = String.raw`{
    "name": "Migrated Sequence",
    "trigger": "contact_added",
    "steps": [
      {
        "subject": "Welcome!",
        "html": "<h1>Welcome to our platform!</h1><p>We are thrilled to have you on board.</p><a href=\"https://example.com/start\">Get Started</a>"
      },
      {
        "subject": "Quick tips to get started",
        "delay": { "days": 2 },
        "html": "<h2>Getting Started Guide</h2><p>Here are some tips:</p><ul><li>Complete your profile</li><li>Explore the dashboard</li><li>Connect your integrations</li></ul>"
      }
    ]
}`;

const discountExample = String.raw`{
    "name": "Win-back Discount",
    "trigger": "tag_added",
    "tagName": "cancelled",
    "steps": [
      {
        "type": "create_discount",
        "discount": {
          "label": "Create win-back discount",
          "discountType": "percent",
          "percentOff": 20,
          "duration": "once",
          "appliesToAllPlans": true,
          "maxRedemptions": 1,
          "lockToSubscriber": true,
          "codePrefix": "WINBACK"
        }
      },
      {
        "subject": "Come back with {{discount.code}}",
        "delay": { "days": 1 },
        "html": "<p>Use {{discount.code}} for {{discount.percentOff}}% off your next subscription.</p>"
      }
    ]
  }`;

const eventExample = String.raw`{
    "name": "Wind Alert Follow-up",
    "trigger": "event_received",
    "eventName": "weather.wind_alert",
    "steps": [
      {
        "subject": "Wind alert for {{event.city}}",
        "html": "<p>Winds may reach {{event.alert.maxSpeed}} km/h for {{event.duration.hours|a few}} hours.</p>"
      },
      {
        "subject": "Stay safe in {{event.city}}",
        "delay": { "hours": 12 },
        "html": "<p>The original alert is still active for {{event.city}}. Check local guidance if conditions change.</p>"
      }
    ]
  }`;

// The schema sketch at the top of the page: placeholders, not a usable body.
const schemaSketchStep = String.raw`{
      "type": "<string>",
      "subject": "<string>",
      "previewText": "<string>",
      "blocks": [
        {}
      ],
      "html": "<string>",
      "delay": {
        "days": 123,
        "hours": 123,
        "minutes": 123
      },
      "name": "<string>"
    }`;

const stepsOf = (body: string) => (JSON.parse(body) as { steps: unknown[] }).steps;
const email = { defaultChannel: 'email' } as const;

describe('compileSteps: the reference page examples', () => {
  it('compiles the blocks example into two emails with a one-day delay before the second', () => {
    const steps = stepsOf(blocksExample);
    const { graph, problems } = compileSteps(steps, email);
    expect(problems).toEqual([]);
    expect(graph).toEqual({
      entry: 'step-1',
      nodes: [
        { id: 'step-1', type: 'send_message', channel: 'email', content: { subject: 'Welcome to our product!', blocks: (steps[0] as { blocks: unknown }).blocks } },
        { id: 'step-2-delay', type: 'delay', duration: { days: 1 } },
        { id: 'step-2', type: 'send_message', channel: 'email', content: { subject: 'Getting started guide', blocks: (steps[1] as { blocks: unknown }).blocks } },
      ],
      edges: [
        { from: 'step-1', to: 'step-2-delay' },
        { from: 'step-2-delay', to: 'step-2' },
      ],
    });
  });

  it('keeps the html example as content.html for the channel work to convert', () => {
    const { graph, problems } = compileSteps(stepsOf(htmlExample), email);
    expect(problems).toEqual([]);
    expect(graph!.nodes.map((n) => n.id)).toEqual(['step-1', 'step-2-delay', 'step-2']);
    expect(graph!.nodes[0]).toEqual({
      id: 'step-1',
      type: 'send_message',
      channel: 'email',
      content: {
        subject: 'Welcome!',
        html: '<h1>Welcome to our platform!</h1><p>We are thrilled to have you on board.</p><a href="https://example.com/start">Get Started</a>',
      },
    });
    expect(graph!.nodes[1]).toEqual({ id: 'step-2-delay', type: 'delay', duration: { days: 2 } });
  });

  it('compiles the discount example into a create_discount node before the email that uses its code', () => {
    const { graph, problems } = compileSteps(stepsOf(discountExample), email);
    expect(problems).toEqual([]);
    expect(graph!.nodes[0]).toEqual({
      id: 'step-1',
      type: 'create_discount',
      discount: {
        label: 'Create win-back discount',
        discountType: 'percent',
        percentOff: 20,
        duration: 'once',
        appliesToAllPlans: true,
        maxRedemptions: 1,
        lockToSubscriber: true,
        codePrefix: 'WINBACK',
      },
    });
    expect(graph!.nodes.slice(1).map((n) => [n.id, n.type])).toEqual([
      ['step-2-delay', 'delay'],
      ['step-2', 'send_message'],
    ]);
  });

  it('compiles the event example, its {{event.*}} tags and fallback accepted, with a 12-hour delay', () => {
    const { graph, problems } = compileSteps(stepsOf(eventExample), email);
    expect(problems).toEqual([]);
    expect(graph!.nodes[1]).toEqual({ id: 'step-2-delay', type: 'delay', duration: { hours: 12 } });
    expect(graph!.nodes[0]).toMatchObject({ content: { subject: 'Wind alert for {{event.city}}' } });
  });

  it('refuses the schema sketch step, naming its placeholder type', () => {
    const { graph, problems } = compileSteps([JSON.parse(schemaSketchStep)], email);
    expect(graph).toBeNull();
    expect(problems).toEqual([
      { code: 'unknown_node_type', path: '0.type', message: expect.stringMatching(/^steps\[0\]: type "<string>" is not a step type/) },
    ]);
  });
});

describe('compileSteps: our own step forms', () => {
  it('compiles every typed step into its node, in order, chained by next edges', () => {
    const steps = [
      { type: 'whatsapp', text: 'Hi {{contact.first_name|there}}, order {{context.order_id}}' },
      { type: 'sms', text: 'Reminder', delay: { minutes: 30, seconds: 15 } },
      { type: 'send_message', template: { name: 'order_update', language: 'en', variables: { '1': '{{context.order_id}}' } } },
      { type: 'email', subject: 'Receipt', html: '<p>Thanks</p>', previewText: 'Your receipt' },
      { type: 'add_tag', tag: 'customer' },
      { type: 'remove_tag', tag: 'lead' },
      { type: 'update_contact', set: { 'metadata.stage': 'won' } },
      { type: 'webhook', url: 'https://crm.example.com/hook', method: 'POST', body: '{"id": "{{contact.email}}"}', save_as: 'crm' },
      { type: 'delay', delay: { days: 3 } },
      { type: 'goal' },
      { type: 'exit', name: 'Done' },
    ];
    const { graph, problems } = compileSteps(steps, { defaultChannel: 'whatsapp', templateExists: () => true });
    expect(problems).toEqual([]);
    expect(graph!.nodes).toEqual([
      { id: 'step-1', type: 'send_message', channel: 'whatsapp', content: { text: 'Hi {{contact.first_name|there}}, order {{context.order_id}}' } },
      { id: 'step-2-delay', type: 'delay', duration: { minutes: 30, seconds: 15 } },
      { id: 'step-2', type: 'send_message', channel: 'sms', content: { text: 'Reminder' } },
      { id: 'step-3', type: 'send_message', channel: 'whatsapp', template: { name: 'order_update', language: 'en', variables: { '1': '{{context.order_id}}' } } },
      { id: 'step-4', type: 'send_message', channel: 'email', content: { subject: 'Receipt', preview_text: 'Your receipt', html: '<p>Thanks</p>' } },
      { id: 'step-5', type: 'add_tag', tag: 'customer' },
      { id: 'step-6', type: 'remove_tag', tag: 'lead' },
      { id: 'step-7', type: 'update_contact', set: { 'metadata.stage': 'won' } },
      { id: 'step-8', type: 'webhook', url: 'https://crm.example.com/hook', method: 'POST', body: '{"id": "{{contact.email}}"}', save_as: 'crm' },
      { id: 'step-9', type: 'delay', duration: { days: 3 } },
      { id: 'step-10', type: 'goal' },
      { id: 'step-11', type: 'exit', name: 'Done' },
    ]);
    expect(graph!.edges).toHaveLength(graph!.nodes.length - 1);
    expect(graph!.edges.every((e) => e.branch === undefined)).toBe(true);
  });

  it('skips a delay of all zeros', () => {
    const { graph } = compileSteps([{ type: 'whatsapp', text: 'a', delay: { days: 0, hours: 0 } }, { type: 'whatsapp', text: 'b', delay: {} }], { defaultChannel: 'whatsapp' });
    expect(graph!.nodes.map((n) => n.id)).toEqual(['step-1', 'step-2']);
  });

  it('sends a send_message step without channel on the default channel', () => {
    const { graph } = compileSteps([{ type: 'send_message', text: 'Hello' }], { defaultChannel: 'sms' });
    expect(graph!.nodes[0]).toMatchObject({ channel: 'sms' });
  });

  it('gives the same ids to the same steps, and keeps them when a text changes', () => {
    const steps = stepsOf(eventExample);
    const first = compileSteps(steps, email).graph!;
    const edited = structuredClone(steps) as Array<Record<string, unknown>>;
    edited[1]!.html = '<p>Updated text</p>';
    const second = compileSteps(edited, email).graph!;
    expect(second.nodes.map((n) => n.id)).toEqual(first.nodes.map((n) => n.id));
    expect(second.edges).toEqual(first.edges);
  });

  it('compiles an empty list to an empty graph (a draft)', () => {
    expect(compileSteps([], email)).toEqual({ graph: { nodes: [], edges: [] }, problems: [] });
    expect(compileSteps([], { ...email, allowEmpty: false }).problems.map((p) => p.code)).toEqual(['no_entry_node']);
  });
});

describe('compileSteps: problems named by step', () => {
  it('requires blocks or html in an email step', () => {
    const { graph, problems } = compileSteps([{ subject: 'Hello' }], email);
    expect(graph).toBeNull();
    expect(problems).toEqual([{ code: 'invalid_node', path: '0', message: 'steps[0] is an email step and needs blocks or html' }]);
  });

  it('words graph problems in terms of the step fields', () => {
    const steps = [
      { subject: 'Hi {{contct.first_name}}', html: '<p>x</p>' },
      { subject: 'Later', delay: { days: -1 }, html: '<p>{{discount.percent}}</p>', previewText: '{{nope.x}}' },
    ];
    const { graph, problems } = compileSteps(steps, email);
    expect(graph).toBeNull();
    expect(problems).toEqual([
      { code: 'unknown_merge_tag', node: 'step-1', path: '0.subject', message: 'steps[0]: subject uses unknown merge tag {{contct.first_name}}' },
      { code: 'invalid_node', node: 'step-2-delay', path: '1.delay.days', message: 'steps[1]: delay.days must be a non-negative integer, got -1' },
      { code: 'unknown_merge_tag', node: 'step-2', path: '1.previewText', message: 'steps[1]: previewText uses unknown merge tag {{nope.x}}' },
      { code: 'unknown_merge_tag', node: 'step-2', path: '1.html', message: expect.stringMatching(/^steps\[1\]: html uses unknown merge tag \{\{discount.percent\}\}/) },
    ]);
  });

  it('names an unknown field, such as a misspelt delay', () => {
    const { problems } = compileSteps([{ subject: 'x', html: '<p>x</p>', dealy: { days: 1 } }], email);
    expect(problems).toEqual([{ code: 'invalid_node', path: '0.dealy', message: expect.stringMatching(/^steps\[0\]: dealy is not a field of a email step/) }]);
  });

  it('names a step that is not an object and an unknown step type, and carries on', () => {
    const { problems } = compileSteps(['hello', { type: 'fax', text: 'x' }, { type: 'whatsapp', text: 'ok' }], { defaultChannel: 'whatsapp' });
    expect(problems.map((p) => [p.code, p.path])).toEqual([
      ['invalid_node', '0'],
      ['unknown_node_type', '1.type'],
    ]);
  });

  it('reports steps after an exit step as never reached', () => {
    const { problems } = compileSteps([{ type: 'exit' }, { type: 'whatsapp', text: 'late' }], { defaultChannel: 'whatsapp' });
    expect(problems).toEqual([{ code: 'unreachable_node', node: 'step-2', path: '1', message: 'steps[1] is never reached: an exit step before it ends the sequence' }]);
  });

  it('checks templates when given a lookup, naming the step field', () => {
    const { problems } = compileSteps([{ type: 'whatsapp', template: { name: 'nope' } }], { defaultChannel: 'whatsapp', templateExists: () => false });
    expect(problems).toEqual([{ code: 'unknown_template', node: 'step-1', path: '0.template.name', message: 'steps[0]: template.name "nope" is not a known template' }]);
  });

  it('refuses a channel that contradicts the step type', () => {
    const { problems } = compileSteps([{ type: 'sms', channel: 'email', text: 'x' }], { defaultChannel: 'whatsapp' });
    expect(problems.map((p) => p.path)).toEqual(['0.channel']);
  });
});

describe('graphToSteps', () => {
  it('gives back the steps of each reference example, which compile to the same graph', () => {
    for (const body of [blocksExample, htmlExample, discountExample, eventExample]) {
      const graph = compileSteps(stepsOf(body), email).graph!;
      const steps = graphToSteps(graph)!;
      expect(steps).toHaveLength(stepsOf(body).length);
      expect(compileSteps(steps, email).graph).toEqual(graph);
    }
  });

  it('shows an email step in the reference page form', () => {
    const graph = compileSteps(stepsOf(eventExample), email).graph!;
    expect(graphToSteps(graph)![1]).toEqual({
      type: 'email',
      subject: 'Stay safe in {{event.city}}',
      html: '<p>The original alert is still active for {{event.city}}. Check local guidance if conditions change.</p>',
      delay: { hours: 12 },
    });
  });

  it('keeps a delay step of its own as a delay step', () => {
    const steps = [{ type: 'delay', delay: { hours: 1 } }, { type: 'whatsapp', text: 'x' }];
    const graph = compileSteps(steps, { defaultChannel: 'whatsapp' }).graph!;
    expect(graphToSteps(graph)).toEqual(steps);
  });

  it('folds a delay written as a graph into the next step', () => {
    const graph: Graph = {
      nodes: [
        { id: 'wait', type: 'delay', duration: { days: 2, hours: 0 } },
        { id: 'ping', type: 'send_message', channel: 'sms', content: { text: 'Ping' } },
      ],
      edges: [{ from: 'wait', to: 'ping' }],
    };
    expect(graphToSteps(graph)).toEqual([{ type: 'sms', text: 'Ping', delay: { days: 2 } }]);
  });

  it('returns null for a graph that branches', () => {
    const graph: Graph = {
      nodes: [
        { id: 'c', type: 'condition', condition: { rules: [{ op: 'has_tag', value: 'x' }] } },
        { id: 'a', type: 'exit' },
      ],
      edges: [{ from: 'c', to: 'a', branch: 'true' }],
    };
    expect(graphToSteps(graph)).toBeNull();
    const webhookWithFailurePath: Graph = {
      nodes: [
        { id: 'w', type: 'webhook', url: 'https://x.test' },
        { id: 'a', type: 'exit' },
        { id: 'b', type: 'exit' },
      ],
      edges: [
        { from: 'w', to: 'a' },
        { from: 'w', to: 'b', branch: 'failure' },
      ],
    };
    expect(graphToSteps(webhookWithFailurePath)).toBeNull();
  });

  it('returns an empty list for an empty graph', () => {
    expect(graphToSteps({ nodes: [], edges: [] })).toEqual([]);
  });
});
