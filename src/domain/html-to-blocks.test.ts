import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { htmlNestsDeeperThan, htmlToBlocks } from './html-to-blocks.js';

/**
 * Every `"html": "…"` and HTML block `"content": "…"` string of the create-sequence reference
 * page, verbatim (JSON-decoded), extracted into a fixture so the test runs from any clone.
 */
function referenceHtmlExamples(): string[] {
  const file = fileURLToPath(new URL('../../test/fixtures/reference/create-sequence-html-examples.json', import.meta.url));
  return JSON.parse(readFileSync(file, 'utf8')) as string[];
}

describe('htmlToBlocks on the reference page examples', () => {
  const examples = referenceHtmlExamples();

  it('finds every HTML example of the page', () => {
    expect(examples).toHaveLength(7);
  });

  it('converts the migrated welcome email: heading, paragraph and a standalone link as a button', () => {
    const html = examples.find((e) => e.startsWith('<h1>Welcome to our platform!'))!;
    expect(html).toBe('<h1>Welcome to our platform!</h1><p>We are thrilled to have you on board.</p><a href="https://example.com/start">Get Started</a>');
    expect(htmlToBlocks(html)).toEqual([
      { id: 'heading-1', type: 'heading', content: 'Welcome to our platform!', level: 1 },
      { id: 'text-1', type: 'text', content: '<p>We are thrilled to have you on board.</p>', variant: 'paragraph' },
      { id: 'button-1', type: 'button', text: 'Get Started', url: 'https://example.com/start' },
    ]);
  });

  it('converts the tips email: an h2 heading, a paragraph and the list as one text block', () => {
    const html = examples.find((e) => e.startsWith('<h2>Getting Started Guide'))!;
    expect(htmlToBlocks(html)).toEqual([
      { id: 'heading-1', type: 'heading', content: 'Getting Started Guide', level: 2 },
      { id: 'text-1', type: 'text', content: '<p>Here are some tips:</p>', variant: 'paragraph' },
      { id: 'text-2', type: 'text', content: '<ul><li>Complete your profile</li><li>Explore the dashboard</li><li>Connect your integrations</li></ul>', variant: 'ul' },
    ]);
  });

  it('keeps merge tags, including the fallback form, as written', () => {
    const discount = examples.find((e) => e.includes('{{discount.code}}'))!;
    expect(htmlToBlocks(discount)).toEqual([{ id: 'text-1', type: 'text', content: '<p>Use {{discount.code}} for {{discount.percentOff}}% off your next subscription.</p>', variant: 'paragraph' }]);
    const wind = examples.find((e) => e.includes('{{event.alert.maxSpeed}}'))!;
    expect(htmlToBlocks(wind)[0]!.content).toBe('<p>Winds may reach {{event.alert.maxSpeed}} km/h for {{event.duration.hours|a few}} hours.</p>');
    const still = examples.find((e) => e.includes('{{event.city}}. Check'))!;
    expect(htmlToBlocks(still)).toHaveLength(1);
  });

  it('turns every example into blocks that carry all of its text', () => {
    for (const html of examples) {
      const blocks = htmlToBlocks(html);
      expect(blocks.length).toBeGreaterThan(0);
      const words = html.replace(/<[^>]+>/g, ' ').split(/\s+/).filter(Boolean);
      const carried = JSON.stringify(blocks);
      for (const word of words) expect(carried).toContain(word);
    }
  });
});

describe('htmlToBlocks on other HTML', () => {
  it('maps img to image, hr to divider, and an image inside a link to a linked image', () => {
    expect(htmlToBlocks('<img src="https://cdn.example.com/a.png" alt="Logo" width="120"><hr><a href="https://example.com"><img src="https://cdn.example.com/b.png" alt="Banner"></a>')).toEqual([
      { id: 'image-1', type: 'image', src: 'https://cdn.example.com/a.png', alt: 'Logo', width: 120 },
      { id: 'divider-1', type: 'divider' },
      { id: 'image-2', type: 'image', src: 'https://cdn.example.com/b.png', alt: 'Banner', href: 'https://example.com' },
    ]);
  });

  it('keeps inline markup in paragraphs and a link among text stays a link', () => {
    expect(htmlToBlocks('<p>Hi <strong>Ana</strong>, read <a href="https://example.com/x">this</a>.</p>')).toEqual([
      { id: 'text-1', type: 'text', content: '<p>Hi <strong>Ana</strong>, read <a href="https://example.com/x">this</a>.</p>', variant: 'paragraph' },
    ]);
  });

  it('unwraps layout tables (React Email, MJML) into blocks and drops head and style', () => {
    const html =
      '<!DOCTYPE html><html><head><title>x</title><style>.a{color:red}</style></head><body><!-- preheader -->' +
      '<table role="presentation"><tbody><tr><td><h1 style="color:#111">Order shipped</h1></td></tr>' +
      '<tr><td>Your order #123 is on its way &amp; arrives soon.</td></tr>' +
      '<tr><td align="center"><a href="https://shop.example.com/track" style="background:#000;padding:12px">Track it</a></td></tr></tbody></table>' +
      '<div><blockquote>Fast shipping!</blockquote></div></body></html>';
    expect(htmlToBlocks(html)).toEqual([
      { id: 'heading-1', type: 'heading', content: 'Order shipped', level: 1 },
      { id: 'text-1', type: 'text', content: '<p>Your order #123 is on its way &amp; arrives soon.</p>', variant: 'paragraph' },
      { id: 'button-1', type: 'button', text: 'Track it', url: 'https://shop.example.com/track' },
      { id: 'text-2', type: 'text', content: '<blockquote>Fast shipping!</blockquote>', variant: 'blockquote' },
    ]);
  });

  it('keeps unknown elements as HTML in a text block', () => {
    expect(htmlToBlocks('<h4>Small</h4><custom-card data-x="1">Card</custom-card>')).toEqual([
      { id: 'text-1', type: 'text', content: '<h4>Small</h4>', variant: 'html' },
      { id: 'text-2', type: 'text', content: '<custom-card data-x="1">Card</custom-card>', variant: 'html' },
    ]);
  });

  it('survives broken HTML', () => {
    expect(htmlToBlocks('<p>One<p>Two <b>bold')).toEqual([
      { id: 'text-1', type: 'text', content: '<p>One</p>', variant: 'paragraph' },
      { id: 'text-2', type: 'text', content: '<p>Two <b>bold</b></p>', variant: 'paragraph' },
    ]);
    expect(htmlToBlocks('')).toEqual([]);
  });
});

describe('htmlNestsDeeperThan', () => {
  it('measures element depth without recursing', () => {
    expect(htmlNestsDeeperThan('<table><tr><td><p>x</p></td></tr></table>', 4)).toBe(false);
    expect(htmlNestsDeeperThan('<table><tr><td><p><b>x</b></p></td></tr></table>', 4)).toBe(true);
    expect(htmlNestsDeeperThan('<ul>' + '<li>item'.repeat(5000) + '</ul>', 4)).toBe(false); // implied closings count
    expect(htmlNestsDeeperThan('<p>a<br>b<img src="x"><hr></p>', 2)).toBe(false); // void elements close themselves
    expect(htmlNestsDeeperThan('<div>'.repeat(200_000))).toBe(true);
  });
});
