import { describe, expect, it } from 'vitest';
import { htmlToText, listUnsubscribeHeaders, renderEmail } from './email-render.js';

const scope = { contact: { first_name: 'Ana <b>&</b> "Bo"', id: 'c1' }, event: { city: 'Zürich' } };

describe('renderEmail', () => {
  it('renders every block type to table HTML and a text part', () => {
    const { html, text } = renderEmail(
      {
        blocks: [
          { type: 'heading', content: 'Hello {{contact.first_name}}', level: 2 },
          { type: 'text', content: '<p>Storm in <em>{{event.city}}</em>.</p><ul><li>Stay in</li><li>Charge phones</li></ul>' },
          { type: 'button', text: 'Read more', url: 'https://example.com/a?c={{contact.id}}' },
          { type: 'image', src: 'https://cdn.example.com/map.png', alt: 'Map of {{event.city}}', width: 300 },
          { type: 'divider' },
          { type: 'spacer', height: 40 },
        ],
      },
      scope,
    );
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain('<h2 style="margin:0;font-family:Arial,Helvetica,sans-serif;font-size:22px;');
    expect(html).toContain('Hello Ana &lt;b&gt;&amp;&lt;/b&gt; &quot;Bo&quot;</h2>');
    expect(html).toContain('<p>Storm in <em>Zürich</em>.</p>');
    expect(html).toContain('<a href="https://example.com/a?c=c1" target="_blank"');
    expect(html).toContain('bgcolor="#2563eb"');
    expect(html).toContain('<img src="https://cdn.example.com/map.png" alt="Map of Zürich" width="300"');
    expect(html).toContain('<hr style=');
    expect(html).toContain('height:40px');
    expect(html).not.toContain('<script');
    expect(text).toBe('Hello Ana <b>&</b> "Bo"\n\nStorm in Zürich.\n\n- Stay in\n- Charge phones\n\nRead more: https://example.com/a?c=c1\n\nMap of Zürich\n\n---');
  });

  it('converts HTML content to blocks and renders it the same way', () => {
    const { html, text } = renderEmail(
      { html: '<h1>Welcome {{contact.first_name}}!</h1><p>We are thrilled.</p><a href="https://example.com/start">Get Started</a>' },
      scope,
    );
    expect(html).toContain('<h1 style=');
    expect(html).toContain('Welcome Ana &lt;b&gt;&amp;&lt;/b&gt; &quot;Bo&quot;!</h1>');
    expect(html).toContain('bgcolor="#2563eb"');
    expect(text).toBe('Welcome Ana <b>&</b> "Bo"!\n\nWe are thrilled.\n\nGet Started: https://example.com/start');
  });

  it('escapes plain-text content entirely in the HTML part', () => {
    const { html, text } = renderEmail({ text: 'Hi {{contact.first_name}},\n\n1 < 2 & so on' }, scope);
    expect(html).toContain('Hi Ana &lt;b&gt;&amp;&lt;/b&gt; &quot;Bo&quot;,</p>');
    expect(html).toContain('1 &lt; 2 &amp; so on');
    expect(text).toBe('Hi Ana <b>&</b> "Bo",\n\n1 < 2 & so on');
  });

  it('refuses script URLs in buttons and images', () => {
    const { html } = renderEmail({ blocks: [{ type: 'button', text: 'x', url: 'javascript:alert(1)' }, { type: 'image', src: '{{context.src}}' }] }, { context: { src: 'data:text/html,<script>' } });
    expect(html).not.toContain('javascript:');
    expect(html).not.toContain('data:');
  });

  it('adds the unsubscribe footer and the RFC 8058 headers when the scope has a link', () => {
    const url = 'https://nudge.example.com/unsubscribe/abc.def';
    const rendered = renderEmail({ blocks: [{ type: 'text', content: '<p>Hi</p>' }] }, { unsubscribe_url: url });
    expect(rendered.headers).toEqual({ 'List-Unsubscribe': `<${url}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' });
    expect(rendered.html).toContain(`<a href="${url}"`);
    expect(rendered.text).toBe(`Hi\n\nUnsubscribe: ${url}`);
  });

  it('does not add a second unsubscribe link when the content has its own', () => {
    const url = 'https://nudge.example.com/unsubscribe/abc.def';
    const rendered = renderEmail({ html: '<p>Bye: <a href="{{unsubscribe_url}}">leave</a></p>' }, { unsubscribe_url: url });
    expect(rendered.html.split(url)).toHaveLength(2);
    expect(rendered.text).toBe(`Bye: leave (${url})`);
  });

  it('has no List-Unsubscribe headers without a link', () => {
    expect(renderEmail({ text: 'x' }, {}).headers).toEqual({});
  });

  it('adds a mailto target when one is given', () => {
    expect(listUnsubscribeHeaders('https://a.example/u/t', 'unsub@a.example')['List-Unsubscribe']).toBe('<https://a.example/u/t>, <mailto:unsub@a.example>');
  });
});

describe('htmlToText', () => {
  it('numbers ordered lists, shows links and decodes entities', () => {
    expect(htmlToText('<h2>Steps</h2><ol><li>One</li><li>Two &amp; three</li></ol><p>See <a href="https://x.example">docs</a><br>Thanks</p>')).toBe(
      'Steps\n\n1. One\n2. Two & three\n\nSee docs (https://x.example)\nThanks',
    );
  });
});
