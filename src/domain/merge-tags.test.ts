import { describe, expect, it } from 'vitest';
import { compileTemplate, extractMergeTags, isKnownMergeTag, renderTemplate, resolvePath, type MergeScope } from './merge-tags.js';

const windAlert: MergeScope = {
  event: { city: 'Tel Aviv', alert: { maxSpeed: 75 }, duration: { hours: 6 } },
  contact: { first_name: 'Ana', last_name: 'Silva', metadata: { plan: 'pro' }, tier: 'gold' },
  context: { order_id: 'ORD-1042', first_name: 'Romain', items: [{ sku: 'A1' }, { sku: 'B2' }] },
  discount: { code: 'WINBACK-7Q2', percentOff: 20 },
};

describe('renderTemplate', () => {
  it('fills the event tags of the reference page, fallback unused when the value exists', () => {
    const text = '<p>Winds may reach {{event.alert.maxSpeed}} km/h for {{event.duration.hours|a few}} hours.</p>';
    expect(renderTemplate(text, windAlert)).toBe('<p>Winds may reach 75 km/h for 6 hours.</p>');
  });

  it('uses the fallback, spaces included, when the value is missing, null or empty', () => {
    const text = 'for {{event.duration.hours|a few}} hours';
    expect(renderTemplate(text, { event: {} })).toBe('for a few hours');
    expect(renderTemplate(text, { event: { duration: { hours: null } } })).toBe('for a few hours');
    expect(renderTemplate(text, { event: { duration: { hours: '' } } })).toBe('for a few hours');
    expect(renderTemplate(text, {})).toBe('for a few hours');
  });

  it('keeps a zero and false, which are values, rather than the fallback', () => {
    expect(renderTemplate('{{event.n|none}} {{event.b|none}}', { event: { n: 0, b: false } })).toBe('0 false');
  });

  it('allows whitespace inside the braces and around the fallback', () => {
    expect(renderTemplate('Hi {{ contact.first_name }}!', windAlert)).toBe('Hi Ana!');
    expect(renderTemplate('Hi {{ contact.nickname | my friend }}!', windAlert)).toBe('Hi my friend!');
  });

  it('renders a missing value with no fallback as an empty string', () => {
    expect(renderTemplate('[{{context.nothing}}]', windAlert)).toBe('[]');
  });

  it('resolves nested paths, array items, and renders objects and arrays as JSON', () => {
    expect(renderTemplate('{{context.items.1.sku}}', windAlert)).toBe('B2');
    expect(renderTemplate('{{event.alert}}', windAlert)).toBe('{"maxSpeed":75}');
    expect(renderTemplate('{{context.items}}', windAlert)).toBe('[{"sku":"A1"},{"sku":"B2"}]');
  });

  it('renders numbers and booleans as text', () => {
    expect(renderTemplate('{{discount.percentOff}}% {{context.vip}}', { discount: { percentOff: 12.5 }, context: { vip: true } })).toBe('12.5% true');
  });

  it('resolves bare aliases to the contact when the scope has no such root', () => {
    expect(renderTemplate('{{first_name}} {{lastName}}', windAlert)).toBe('Ana Silva');
    expect(renderTemplate('{{first_name}}', { ...windAlert, first_name: 'Root' })).toBe('Root');
  });

  it('leaves text that is not a tag as written', () => {
    expect(renderTemplate('{{#if x}} {{ }} {{a b}} {single}', windAlert)).toBe('{{#if x}} {{ }} {{a b}} {single}');
    expect(renderTemplate('no tags at all', windAlert)).toBe('no tags at all');
  });

  it('does not reach into prototypes', () => {
    expect(renderTemplate('[{{contact.constructor}}][{{context.toString}}]', windAlert)).toBe('[][]');
  });

  it('escapes inserted values for HTML but never the template around them', () => {
    const scope = { contact: { first_name: `<b>Tom & "Jerry"</b> 'x'` } };
    expect(renderTemplate('<p class="x">Hi {{contact.first_name}}</p>', scope, { escape: 'html' })).toBe(
      '<p class="x">Hi &lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt; &#39;x&#39;</p>',
    );
  });

  it('escapes values to be safe inside a JSON string literal', () => {
    const scope = { context: { note: 'He said "hi"\nthen \\ left', obj: { a: 'x' } } };
    const body = renderTemplate('{"note": "{{context.note}}", "obj": "{{context.obj}}"}', scope, { escape: 'json' });
    expect(JSON.parse(body)).toEqual({ note: 'He said "hi"\nthen \\ left', obj: '{"a":"x"}' });
  });

  it('renders a template many times from one compiled form', () => {
    const text = 'Order {{context.order_id}} for {{contact.first_name|there}}';
    expect(compileTemplate(text)).toBe(compileTemplate(text));
    for (let i = 0; i < 3; i++) expect(renderTemplate(text, windAlert)).toBe('Order ORD-1042 for Ana');
  });

  it('keeps its cache bounded while rendering thousands of distinct templates', () => {
    for (let i = 0; i < 3000; i++) expect(renderTemplate(`n{{context.order_id}}${i}`, windAlert)).toBe(`nORD-1042${i}`);
  });
});

describe('extractMergeTags', () => {
  it('lists tags with their fallbacks, in order', () => {
    expect(extractMergeTags('Wind alert for {{event.city}}: {{ event.duration.hours | a few }} h, {{discount.code}}')).toEqual([
      { path: 'event.city' },
      { path: 'event.duration.hours', fallback: 'a few' },
      { path: 'discount.code' },
    ]);
  });

  it('finds nothing in text without tags', () => {
    expect(extractMergeTags('plain')).toEqual([]);
  });
});

describe('isKnownMergeTag', () => {
  it('accepts every documented root', () => {
    for (const path of [
      'contact.first_name',
      'contact.metadata.plan',
      'contact.favourite_colour',
      'context.order_id',
      'event.alert.maxSpeed',
      'discount.code',
      'discount.percentOff',
      'discount.amountOff',
      'discount.currency',
      'discount.expiresAt',
      'webhook.lookup.status',
      'webhook.lookup.body.customer.tier',
      'reply.text',
      'reply.button_id',
      'session.id',
      'session.started_at',
      'unsubscribe_url',
      'workspace.name',
      'first_name',
      'last_name',
      'name',
      'email',
      'phone',
      'firstName',
      'lastName',
    ]) {
      expect(isKnownMergeTag(path), path).toBe(true);
    }
  });

  it('refuses unknown roots, bare roots and fields outside the fixed lists', () => {
    for (const path of ['contct.first_name', 'contact', 'event', 'discount.percent', 'discount.code.x', 'reply.body', 'session.contact', 'workspace.id', 'unsubscribe_url.x', 'city', 'webhook']) {
      expect(isKnownMergeTag(path), path).toBe(false);
    }
  });

  it('checks webhook names against the known ones when given', () => {
    const webhookNames = new Set(['lookup']);
    expect(isKnownMergeTag('webhook.lookup.body.x', { webhookNames })).toBe(true);
    expect(isKnownMergeTag('webhook.other.status', { webhookNames })).toBe(false);
    expect(isKnownMergeTag('webhook.lookup.headers', { webhookNames })).toBe(false);
  });
});

describe('resolvePath', () => {
  it('reads dotted paths and returns undefined for anything missing', () => {
    expect(resolvePath(windAlert, 'event.alert.maxSpeed')).toBe(75);
    expect(resolvePath(windAlert, 'event.alert.maxSpeed.deeper')).toBeUndefined();
    expect(resolvePath(windAlert, 'nothing.here')).toBeUndefined();
  });
});
