import { describe, expect, it } from 'vitest';
import type { DefinitionProblem } from './definition.js';
import { validateGraph, type ValidateGraphOptions } from './validate-definition.js';

const sequence: ValidateGraphOptions = { kind: 'sequence' };
const flow: ValidateGraphOptions = { kind: 'flow' };

const whatsapp = (id: string, text = 'Hi {{contact.first_name|there}}') => ({ id, type: 'send_message', channel: 'whatsapp', content: { text } });
const email = (id: string, content: Record<string, unknown> = { subject: 'Hello', html: '<p>Hi</p>' }) => ({ id, type: 'send_message', channel: 'email', content });
const delay = (id: string, duration: Record<string, unknown> = { days: 1 }) => ({ id, type: 'delay', duration });
const chain = (...ids: string[]) => ids.slice(1).map((to, i) => ({ from: ids[i]!, to }));

function codes(problems: DefinitionProblem[]): string[] {
  return problems.map((p) => p.code);
}

/** The one problem a graph has, asserting there is exactly one. */
function only(graph: unknown, options: ValidateGraphOptions = sequence): DefinitionProblem {
  const result = validateGraph(graph, options);
  expect(result.graph).toBeNull();
  expect(result.problems, JSON.stringify(result.problems, null, 2)).toHaveLength(1);
  return result.problems[0]!;
}

/** A flow using every node type, valid as it stands. */
function fullFlow() {
  return {
    entry: 'welcome',
    nodes: [
      {
        id: 'welcome',
        type: 'send_message',
        name: 'Welcome',
        channel: 'whatsapp',
        content: { text: 'Hi {{first_name|there}}! Order {{context.order_id}}?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }] },
      },
      {
        id: 'ask',
        type: 'wait_for_reply',
        timeout: { minutes: 10 },
        branches: [
          { id: 'yes', match: { type: 'button', button_id: 'yes' } },
          { id: 'no', match: { type: 'keyword', keywords: ['no', 'stop'] } },
          { id: 'number', match: { type: 'regex', pattern: '^\\d+$' } },
          { id: 'other', match: { type: 'any' } },
        ],
      },
      { id: 'check', type: 'condition', condition: { match: 'any', rules: [{ field: 'reply.button_id', op: 'eq', value: 'yes' }, { op: 'has_tag', value: 'vip' }] } },
      { id: 'ab', type: 'split', branches: [{ id: 'a', percent: 50, label: 'Short' }, { id: 'b', percent: 50 }] },
      { id: 'tag', type: 'add_tag', tag: 'interested' },
      { id: 'untag', type: 'remove_tag', tag: 'cold' },
      { id: 'update', type: 'update_contact', set: { 'metadata.answer': '{{reply.text}}', timezone: 'Europe/Paris', last_name: null } },
      {
        id: 'notify',
        type: 'webhook',
        url: 'https://hooks.example.com/orders/{{context.order_id}}',
        method: 'POST',
        headers: { Authorization: 'Bearer abc', 'X-Contact': '{{contact.email}}' },
        body: '{"reply": "{{reply.text}}"}',
        save_as: 'crm',
      },
      { id: 'followup', type: 'send_message', channel: 'sms', content: { text: 'Tier {{webhook.crm.body.tier|unknown}}' } },
      { id: 'wait', type: 'delay', until: { time: '09:00', timezone: 'America/New_York' } },
      { id: 'coupon', type: 'create_discount', discount: { discountType: 'percent', percentOff: 20, duration: 'once', codePrefix: 'WINBACK' } },
      { id: 'mail', type: 'send_message', channel: 'email', content: { subject: 'Your code {{discount.code}}', blocks: [{ id: 'h', type: 'heading', content: 'Hi {{contact.first_name}}' }] } },
      { id: 'done', type: 'goal', exit: false },
      { id: 'bye', type: 'exit' },
    ],
    edges: [
      { from: 'welcome', to: 'ask' },
      { from: 'ask', to: 'check', branch: 'yes' },
      { from: 'ask', to: 'bye', branch: 'no' },
      { from: 'ask', to: 'check', branch: 'number' },
      { from: 'ask', to: 'check', branch: 'other' },
      { from: 'ask', to: 'bye', branch: 'timeout' },
      { from: 'check', to: 'ab', branch: 'true' },
      { from: 'check', to: 'bye', branch: 'false' },
      { from: 'ab', to: 'tag', branch: 'a' },
      { from: 'ab', to: 'untag', branch: 'b' },
      { from: 'tag', to: 'update' },
      { from: 'untag', to: 'update' },
      { from: 'update', to: 'notify' },
      { from: 'notify', to: 'followup' },
      { from: 'notify', to: 'bye', branch: 'failure' },
      { from: 'followup', to: 'wait' },
      { from: 'wait', to: 'coupon' },
      { from: 'coupon', to: 'mail' },
      { from: 'mail', to: 'done' },
      { from: 'done', to: 'bye' },
    ],
  };
}

describe('validateGraph: a sound graph', () => {
  it('accepts a flow using every node type and returns it typed', () => {
    const input = fullFlow();
    const result = validateGraph(input, { ...flow, templateExists: () => true });
    expect(result.problems).toEqual([]);
    expect(result.graph).toEqual(input);
    expect(result.graph).not.toBe(input);
  });

  it('finds the entry node when it is the only one nothing points to', () => {
    const result = validateGraph({ nodes: [whatsapp('a'), delay('b'), whatsapp('c')], edges: chain('a', 'b', 'c') }, sequence);
    expect(result.problems).toEqual([]);
  });

  it('accepts a graph with no nodes only when allowEmpty', () => {
    expect(validateGraph({ nodes: [], edges: [] }, { ...sequence, allowEmpty: true })).toEqual({ graph: { nodes: [], edges: [] }, problems: [] });
    expect(only({ nodes: [], edges: [] }).code).toBe('no_entry_node');
  });

  it('accepts a loop that goes through a wait', () => {
    const graph = {
      nodes: [whatsapp('ask'), { id: 'wait', type: 'wait_for_reply', timeout: { minutes: 5 }, branches: [{ id: 'any', match: { type: 'any' } }] }, whatsapp('again')],
      edges: [{ from: 'ask', to: 'wait' }, { from: 'wait', to: 'again', branch: 'any' }, { from: 'wait', to: 'ask', branch: 'timeout' }, { from: 'again', to: 'wait' }],
      entry: 'ask',
    };
    expect(validateGraph(graph, flow).problems).toEqual([]);
  });

  it('lets a sequence wait for a reply without a timeout', () => {
    const graph = { nodes: [{ id: 'w', type: 'wait_for_reply', branches: [{ id: 'any', match: { type: 'any' } }] }], edges: [] };
    expect(validateGraph(graph, sequence).problems).toEqual([]);
  });
});

describe('validateGraph: each problem on its own', () => {
  it('no_entry_node when several nodes have no incoming edge', () => {
    const problem = only({ nodes: [whatsapp('a'), whatsapp('b')], edges: [] });
    expect(problem).toMatchObject({ code: 'no_entry_node', path: 'entry' });
    expect(problem.message).toContain('"a", "b"');
  });

  it('no_entry_node when every node has an incoming edge', () => {
    const graph = { nodes: [whatsapp('a'), delay('b')], edges: [...chain('a', 'b'), { from: 'b', to: 'a' }] };
    expect(only(graph).code).toBe('no_entry_node');
  });

  it('unknown_entry_node when entry names no node', () => {
    const problem = only({ entry: 'start', nodes: [whatsapp('a')], edges: [] });
    expect(problem).toEqual({ code: 'unknown_entry_node', message: 'entry "start" is not a node', path: 'entry' });
  });

  it('duplicate_node_id names the node and the earlier one', () => {
    const problem = only({ entry: 'a', nodes: [whatsapp('a'), whatsapp('a')], edges: [] });
    expect(problem).toEqual({ code: 'duplicate_node_id', node: 'a', path: 'nodes.1.id', message: 'node "a": id is already used by nodes[0]' });
  });

  it('unknown_node_type names the type', () => {
    const problem = only({ nodes: [{ id: 'x', type: 'send_fax' }], edges: [] });
    expect(problem.code).toBe('unknown_node_type');
    expect(problem.message).toMatch(/^node "x": type "send_fax" is not a node type/);
    expect(problem.path).toBe('nodes.0.type');
  });

  it('dangling_edge for an edge from or to a node that does not exist', () => {
    const from = validateGraph({ nodes: [whatsapp('a')], edges: [{ from: 'ghost', to: 'a' }], entry: 'a' }, sequence);
    expect(from.problems).toEqual([{ code: 'dangling_edge', message: 'edges[0].from comes from "ghost", which is not a node', path: 'edges.0.from' }]);
    const to = only({ nodes: [whatsapp('a')], edges: [{ from: 'a', to: 'ghost' }] });
    expect(to).toEqual({ code: 'dangling_edge', message: 'edges[0].to goes to "ghost", which is not a node', path: 'edges.0.to' });
  });

  it('unknown_branch for a condition edge other than true and false', () => {
    const graph = {
      nodes: [{ id: 'c', type: 'condition', condition: { rules: [{ field: 'contact.email', op: 'exists' }] } }, whatsapp('a')],
      edges: [{ from: 'c', to: 'a', branch: 'maybe' }],
    };
    const problem = only(graph);
    expect(problem).toMatchObject({ code: 'unknown_branch', node: 'c', path: 'edges.0.branch' });
    expect(problem.message).toBe('node "c" has edges[0] leaving by unknown branch "maybe" (its branches: true, false)');
  });

  it('unknown_branch for a condition edge with no branch (it would mean next)', () => {
    const graph = { nodes: [{ id: 'c', type: 'condition', condition: { rules: [{ op: 'has_tag', value: 'x' }] } }, whatsapp('a')], edges: [{ from: 'c', to: 'a' }] };
    expect(only(graph).code).toBe('unknown_branch');
  });

  it('unknown_branch for wait_for_reply and split edges outside their branch ids', () => {
    const wait = {
      nodes: [{ id: 'w', type: 'wait_for_reply', timeout: { hours: 1 }, branches: [{ id: 'yes', match: { type: 'any' } }] }, whatsapp('a'), whatsapp('b'), whatsapp('c')],
      edges: [
        { from: 'w', to: 'a', branch: 'yes' },
        { from: 'w', to: 'b', branch: 'no_match' },
        { from: 'w', to: 'c', branch: 'no' },
      ],
    };
    expect(only(wait, flow).message).toBe('node "w" has edges[2] leaving by unknown branch "no" (its branches: yes, timeout, no_match)');
    const split = {
      nodes: [{ id: 's', type: 'split', branches: [{ id: 'a', percent: 30 }, { id: 'b', percent: 70 }] }, whatsapp('x'), whatsapp('y')],
      edges: [
        { from: 's', to: 'x', branch: 'a' },
        { from: 's', to: 'y', branch: 'timeout' },
      ],
    };
    expect(only(split).message).toBe('node "s" has edges[1] leaving by unknown branch "timeout" (its branches: a, b)');
  });

  it('unknown_branch for any edge out of an exit node', () => {
    const problem = only({ nodes: [{ id: 'end', type: 'exit' }, whatsapp('a')], edges: [{ from: 'end', to: 'a' }] });
    expect(problem.message).toBe('node "end" has edges[0] leaving by unknown branch "next" (an exit node has no way out)');
  });

  it('duplicate_edge for two edges leaving by the same branch', () => {
    const problem = only({ nodes: [whatsapp('a'), whatsapp('b'), whatsapp('c')], edges: [{ from: 'a', to: 'b' }, { from: 'a', to: 'c', branch: 'next' }] });
    expect(problem).toEqual({ code: 'duplicate_edge', node: 'a', path: 'edges.1', message: 'node "a" has two edges for branch "next" (edges[0] and edges[1])' });
  });

  it('unreachable_node for a node the entry never leads to', () => {
    const problem = only({ entry: 'a', nodes: [whatsapp('a'), whatsapp('island')], edges: [] });
    expect(problem).toEqual({ code: 'unreachable_node', node: 'island', path: 'nodes.1', message: 'node "island" is never reached from the entry node "a"' });
  });

  it('loop_without_wait for a self-edge', () => {
    const problem = only({ entry: 'a', nodes: [{ id: 'a', type: 'add_tag', tag: 'x' }], edges: [{ from: 'a', to: 'a' }] });
    expect(problem.code).toBe('loop_without_wait');
    expect(problem.message).toBe('node "a" is in a loop with no delay or wait_for_reply ("a"); add a wait to the loop');
  });

  it('loop_without_wait for a cycle through several nodes', () => {
    const graph = {
      entry: 'start',
      nodes: [whatsapp('start'), { id: 'c', type: 'condition', condition: { rules: [{ op: 'has_tag', value: 'x' }] } }, whatsapp('nag'), { id: 'hook', type: 'webhook', url: 'https://x.test' }],
      edges: [
        { from: 'start', to: 'c' },
        { from: 'c', to: 'nag', branch: 'false' },
        { from: 'nag', to: 'hook' },
        { from: 'hook', to: 'c' },
      ],
    };
    const problem = only(graph);
    expect(problem).toMatchObject({ code: 'loop_without_wait', node: 'c' });
    expect(problem.message).toContain('("c", "nag", "hook")');
  });

  it('loop_without_wait for an inner cycle even when a wait sits elsewhere in the same tangle', () => {
    const graph = {
      entry: 'a',
      nodes: [
        { id: 'a', type: 'condition', condition: { rules: [{ op: 'has_tag', value: 'x' }] } },
        { id: 'b', type: 'add_tag', tag: 'y' },
        delay('d'),
      ],
      edges: [
        { from: 'a', to: 'b', branch: 'true' },
        { from: 'b', to: 'a' },
        { from: 'a', to: 'd', branch: 'false' },
        { from: 'd', to: 'a' },
      ],
    };
    expect(codes(validateGraph(graph, sequence).problems)).toEqual(['loop_without_wait']);
  });

  it('invalid_node when a flow waits for a reply without a timeout', () => {
    const graph = { nodes: [{ id: 'w', type: 'wait_for_reply', branches: [{ id: 'any', match: { type: 'any' } }] }], edges: [] };
    const problem = only(graph, flow);
    expect(problem.code).toBe('invalid_node');
    expect(problem.message).toMatch(/^node "w": timeout is required in a flow/);
  });

  it('unknown_template when the template lookup does not know it', () => {
    const graph = { nodes: [{ id: 't', type: 'send_message', channel: 'whatsapp', template: { name: 'order_update', language: 'en' } }], edges: [] };
    const seen: Array<[string, string | undefined]> = [];
    const problem = only(graph, { ...sequence, templateExists: (name, language) => (seen.push([name, language]), false) });
    expect(problem).toEqual({ code: 'unknown_template', node: 't', path: 'nodes.0.template.name', message: 'node "t": template.name "order_update" (language "en") is not a known template' });
    expect(seen).toEqual([['order_update', 'en']]);
    expect(validateGraph(graph, { ...sequence, templateExists: () => true }).problems).toEqual([]);
    expect(validateGraph(graph, sequence).problems).toEqual([]);
  });

  it('unknown_merge_tag names the node, the field and the tag', () => {
    const problem = only({ nodes: [whatsapp('welcome', 'Hi {{contct.first_name}}')], edges: [] });
    expect(problem).toEqual({
      code: 'unknown_merge_tag',
      node: 'welcome',
      path: 'nodes.0.content.text',
      message: 'node "welcome": content.text uses unknown merge tag {{contct.first_name}}',
    });
  });
});

describe('validateGraph: merge tags in every templated string', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['email subject', email('n', { subject: 'Hi {{nope.x}}', html: '<p>x</p>' }), 'content.subject'],
    ['email preview text', email('n', { subject: 'Hi', preview_text: '{{nope.x}}', html: '<p>x</p>' }), 'content.preview_text'],
    ['email html', email('n', { subject: 'Hi', html: '<p>{{nope.x}}</p>' }), 'content.html'],
    ['a string inside a block', email('n', { subject: 'Hi', blocks: [{ type: 'button', text: 'Go', url: 'https://x.test/{{nope.x}}' }] }), 'content.blocks[0].url'],
    ['a button title', { id: 'n', type: 'send_message', channel: 'whatsapp', content: { text: 'Pick', buttons: [{ id: 'a', title: '{{nope.x}}' }] } }, 'content.buttons[0].title'],
    ['a template variable', { id: 'n', type: 'send_message', channel: 'whatsapp', template: { name: 't', variables: { '1': '{{nope.x}}' } } }, 'template.variables.1'],
    ['an update_contact value', { id: 'n', type: 'update_contact', set: { 'metadata.x': '{{nope.x}}' } }, 'set.metadata.x'],
    ['a webhook url', { id: 'n', type: 'webhook', url: 'https://x.test/{{nope.x}}' }, 'url'],
    ['a webhook body', { id: 'n', type: 'webhook', url: 'https://x.test', body: '{"a": "{{nope.x}}"}' }, 'body'],
    ['a webhook header', { id: 'n', type: 'webhook', url: 'https://x.test', headers: { 'X-A': '{{nope.x}}' } }, 'headers.X-A'],
  ];
  for (const [what, node, field] of cases) {
    it(`finds an unknown tag in ${what}`, () => {
      const problem = only({ nodes: [node], edges: [] });
      expect(problem.code).toBe('unknown_merge_tag');
      expect(problem.message).toBe(`node "n": ${field} uses unknown merge tag {{nope.x}}`);
    });
  }

  it('refuses a discount field that does not exist and a webhook name no node saves', () => {
    const graph = {
      nodes: [whatsapp('a', '{{discount.percent}} {{webhook.crm.status}}'), { id: 'hook', type: 'webhook', url: 'https://x.test', save_as: 'lookup' }],
      edges: chain('a', 'hook'),
    };
    const { problems } = validateGraph(graph, sequence);
    expect(codes(problems)).toEqual(['unknown_merge_tag', 'unknown_merge_tag']);
    expect(problems[0]!.message).toMatch(/^node "a": content.text uses unknown merge tag \{\{discount.percent\}\} \(discount tags are/);
    expect(problems[1]!.message).toBe('node "a": content.text uses unknown merge tag {{webhook.crm.status}} (no webhook node saves its result as "crm")');
  });

  it('knows a webhook by its node id when it has no save_as', () => {
    const graph = { nodes: [{ id: 'lookup', type: 'webhook', url: 'https://x.test' }, whatsapp('a', '{{webhook.lookup.body.tier}}')], edges: chain('lookup', 'a') };
    expect(validateGraph(graph, sequence).problems).toEqual([]);
  });
});

describe('validateGraph: shapes and bounds', () => {
  const shapeCases: Array<[string, Record<string, unknown>, string]> = [
    ['an id with spaces', { ...whatsapp('a'), id: 'has space' }, 'id must be 1–100'],
    ['an id over 100 characters', { ...whatsapp('a'), id: 'x'.repeat(101) }, 'id must be 1–100'],
    ['a name over 200 characters', { ...whatsapp('n'), name: 'x'.repeat(201) }, 'name must be at most 200 characters'],
    ['a text over 4096 characters', whatsapp('n', 'x'.repeat(4097)), 'content.text must be at most 4096 characters'],
    ['an unknown field (a typo)', { ...whatsapp('n'), chanel: 'sms' }, 'chanel is not a field of send_message'],
    ['a message with neither template nor content', { id: 'n', type: 'send_message', channel: 'sms' }, 'needs either template or content'],
    ['an unknown channel', { ...whatsapp('n'), channel: 'fax' }, 'channel must be one of whatsapp, sms, email'],
    ['an email with no subject', email('n', { html: '<p>x</p>' }), 'content.subject is required for an email'],
    ['an email with no body', email('n', { subject: 'x' }), 'content needs blocks, html or text'],
    ['an SMS with buttons', { id: 'n', type: 'send_message', channel: 'sms', content: { text: 'x', buttons: [{ id: 'a', title: 'A' }] } }, 'content.buttons is only for WhatsApp'],
    ['four buttons', { id: 'n', type: 'send_message', channel: 'whatsapp', content: { text: 'x', buttons: [1, 2, 3, 4].map((i) => ({ id: `b${i}`, title: 'B' })) } }, 'content.buttons must be an array of 1 to 3'],
    ['a negative duration', delay('n', { days: -1 }), 'duration.days must be a non-negative integer'],
    ['a fractional duration', delay('n', { hours: 1.5 }), 'duration.hours must be a non-negative integer'],
    ['a zero duration', delay('n', { days: 0, hours: 0 }), 'duration must be longer than zero'],
    ['a misspelt duration unit', delay('n', { day: 1 }), 'duration.day is not a duration field'],
    ['a delay with neither duration nor until', { id: 'n', type: 'delay' }, 'needs duration or until'],
    ['a bad time of day', { id: 'n', type: 'delay', until: { time: '9:00' } }, 'until.time must be a 24-hour time HH:MM'],
    ['an unknown time zone', { id: 'n', type: 'delay', until: { time: '09:00', timezone: 'Europe/Atlantis' } }, 'until.timezone must be an IANA time zone'],
    ['a regex that does not compile', { id: 'n', type: 'wait_for_reply', timeout: { minutes: 1 }, branches: [{ id: 'r', match: { type: 'regex', pattern: '([a-z' } }] }, 'branches[0].match.pattern is not a valid regular expression'],
    ['a zero timeout', { id: 'n', type: 'wait_for_reply', timeout: { minutes: 0 }, branches: [{ id: 'r', match: { type: 'any' } }] }, 'timeout must be longer than zero'],
    ['a reply branch named timeout', { id: 'n', type: 'wait_for_reply', timeout: { minutes: 1 }, branches: [{ id: 'timeout', match: { type: 'any' } }] }, 'branches[0].id must not be "timeout"'],
    ['split percents not adding up to 100', { id: 'n', type: 'split', branches: [{ id: 'a', percent: 50 }, { id: 'b', percent: 40 }] }, 'branches percents must add up to 100 (they add up to 90)'],
    ['a fractional split percent', { id: 'n', type: 'split', branches: [{ id: 'a', percent: 50.5 }, { id: 'b', percent: 50 }] }, 'branches[0].percent must be an integer from 0 to 100'],
    ['repeated split branch ids', { id: 'n', type: 'split', branches: [{ id: 'a', percent: 50 }, { id: 'a', percent: 50 }] }, 'branches[1].id repeats the branch id "a"'],
    ['a condition on an unknown field', { id: 'n', type: 'condition', condition: { rules: [{ field: 'plan', op: 'eq', value: 'pro' }] } }, 'condition.rules[0].field is not a known field: "plan"'],
    ['an unknown condition operator', { id: 'n', type: 'condition', condition: { rules: [{ field: 'contact.plan', op: 'like', value: 'pro' }] } }, 'condition.rules[0].op must be one of'],
    ['in without a list', { id: 'n', type: 'condition', condition: { rules: [{ field: 'contact.plan', op: 'in', value: 'pro' }] } }, 'condition.rules[0].value must be an array'],
    ['an empty tag', { id: 'n', type: 'add_tag', tag: '  ' }, 'tag must not be empty'],
    ['an update of a field that cannot be set', { id: 'n', type: 'update_contact', set: { id: 'x' } }, 'set.id is not a contact field that can be set'],
    ['an update with a bad literal time zone', { id: 'n', type: 'update_contact', set: { timezone: 'Paris' } }, 'set.timezone must be an IANA time zone'],
    ['a webhook to a non-HTTP URL', { id: 'n', type: 'webhook', url: 'ftp://x.test/file' }, 'url must be an http:// or https:// URL'],
    ['a webhook URL that is only a merge tag', { id: 'n', type: 'webhook', url: '{{context.url}}' }, 'url must be an http:// or https:// URL'],
    ['a GET webhook with a body', { id: 'n', type: 'webhook', url: 'https://x.test', method: 'GET', body: '{}' }, 'body must be absent for a GET request'],
    ['a header value with a line break', { id: 'n', type: 'webhook', url: 'https://x.test', headers: { 'X-A': 'a\r\nB: c' } }, 'headers.X-A must be a single-line string'],
    ['a discount with no amount', { id: 'n', type: 'create_discount', discount: { duration: 'once' } }, 'discount needs percentOff'],
    ['a discount over 100 %', { id: 'n', type: 'create_discount', discount: { percentOff: 120 } }, 'discount.percentOff must be a number above 0 and at most 100'],
  ];
  for (const [what, node, message] of shapeCases) {
    it(`reports ${what} as invalid_node, naming node and field`, () => {
      const problem = only({ nodes: [node], edges: [] });
      expect(problem.code).toBe('invalid_node');
      expect(problem.message).toContain(message);
      expect(problem.message).toMatch(/^node "[^"]+"|^nodes\[0\]/);
    });
  }

  it('refuses more than 500 nodes', () => {
    const nodes = Array.from({ length: 501 }, (_, i) => whatsapp(`n${i}`));
    expect(only({ nodes, edges: [] })).toMatchObject({ code: 'invalid_node', path: 'nodes', message: 'nodes must have at most 500 nodes (got 501)' });
  });

  it('refuses what is not a graph at all', () => {
    expect(only('nodes').message).toMatch(/^the graph must be an object/);
    expect(only({ edges: [] })).toMatchObject({ code: 'invalid_node', path: 'nodes' });
    expect(only({ nodes: [], edges: {} })).toMatchObject({ code: 'invalid_node', path: 'edges' });
  });

  it('refuses a node that is not an object, naming its position', () => {
    expect(only({ nodes: ['hello'], edges: [] })).toMatchObject({ code: 'invalid_node', path: 'nodes.0', message: 'nodes[0] must be an object with id and type, got "hello"' });
  });
});

describe('validateGraph: many problems at once', () => {
  it('names every problem, not just the first', () => {
    const graph = {
      entry: 'welcome',
      nodes: [
        whatsapp('welcome', 'Hi {{contct.first_name}}'),
        { id: 'check', type: 'condition', condition: { rules: [{ field: 'contact.email', op: 'exists' }] } },
        { id: 'spin', type: 'add_tag', tag: 'x' },
        { id: 'spin2', type: 'remove_tag', tag: 'x' },
        { id: 'ask', type: 'wait_for_reply', branches: [{ id: 'yes', match: { type: 'any' } }] },
        { id: 'mystery', type: 'teleport' },
        delay('pause', { days: -2 }),
        whatsapp('welcome'),
        { id: 'orphan', type: 'send_message', channel: 'whatsapp', template: { name: 'missing_template' } },
        { id: 'island', type: 'exit' },
      ],
      edges: [
        { from: 'welcome', to: 'check' },
        { from: 'welcome', to: 'orphan' },
        { from: 'check', to: 'spin', branch: 'true' },
        { from: 'check', to: 'ask', branch: 'perhaps' },
        { from: 'spin', to: 'spin2' },
        { from: 'spin2', to: 'spin' },
        { from: 'check', to: 'pause', branch: 'false' },
        { from: 'pause', to: 'nowhere' },
        { from: 'ask', to: 'mystery', branch: 'yes' },
      ],
    };
    const { graph: typed, problems } = validateGraph(graph, { kind: 'flow', templateExists: () => false });
    expect(typed).toBeNull();
    expect(codes(problems)).toEqual([
      'unknown_merge_tag',
      'invalid_node',
      'unknown_node_type',
      'invalid_node',
      'duplicate_node_id',
      'unknown_template',
      'duplicate_edge',
      'unknown_branch',
      'dangling_edge',
      'unreachable_node',
      'loop_without_wait',
    ]);
    const byCode = (code: string) => problems.filter((p) => p.code === code);
    expect(byCode('invalid_node').map((p) => p.message)).toEqual([
      'node "ask": timeout is required in a flow (how long to wait before taking the timeout branch)',
      'node "pause": duration.days must be a non-negative integer, got -2',
    ]);
    expect(byCode('unreachable_node').map((p) => p.message)).toEqual(['node "island" is never reached from the entry node "welcome"']);
    expect(byCode('duplicate_edge')[0]!.message).toBe('node "welcome" has two edges for branch "next" (edges[0] and edges[1])');
    expect(byCode('dangling_edge')[0]!.message).toBe('edges[7].to goes to "nowhere", which is not a node');
    expect(byCode('unknown_template')[0]!.message).toBe('node "orphan": template.name "missing_template" is not a known template');
    expect(byCode('loop_without_wait')[0]!.message).toBe('node "spin" is in a loop with no delay or wait_for_reply ("spin", "spin2"); add a wait to the loop');
    for (const problem of problems) expect(problem.message.length).toBeGreaterThan(10);
  });
});

describe('nesting limits', () => {
  const email = (content: object) => ({ entry: 'm', nodes: [{ id: 'm', type: 'send_message', channel: 'email', content: { subject: 'x', ...content } }], edges: [] });
  it('refuses email HTML and blocks nested past what the converter and renderer can walk, naming the field', () => {
    let deep: unknown = 'leaf';
    for (let i = 0; i < 3000; i++) deep = { a: deep };
    const problems = (graph: object) => validateGraph(graph, { kind: 'sequence' }).problems.map((p) => p.path);
    expect(problems(email({ html: '<div>'.repeat(50_000) }))).toEqual(['nodes.0.content.html']);
    expect(problems(email({ blocks: [{ type: 'text', content: deep }] }))).toEqual(['nodes.0.content.blocks.0']);
    expect(problems(email({ blocks: [{ type: 'text', content: '<i>'.repeat(5000) }] }))).toEqual(['nodes.0.content.blocks.0.content']);
    expect(problems(email({ html: '<table><tr><td><p>Fine</p></td></tr></table>' }))).toEqual([]);
  });
});
