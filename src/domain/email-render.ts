import { DomUtils, ElementType, parseDocument } from 'htmlparser2';
import type { EmailBlock } from './definition.js';
import { htmlToBlocks } from './html-to-blocks.js';
import { escapeHtml, renderTemplate, type MergeScope } from './merge-tags.js';

/**
 * Renders email content to email-safe HTML and a plain-text part.
 *
 * Email-safe means what the clients that matter (Outlook's Word engine, Gmail, Apple
 * Mail) render alike: a 600 px table layout, inline styles only, no CSS classes, no
 * scripts, buttons as table cells with a background colour ("bulletproof"), images with
 * explicit widths and `display:block`.
 *
 * Content comes as blocks (heading, text, button, image, divider, spacer, html), as HTML
 * (converted to blocks first, by a real HTML parser, so both paths render alike), or as
 * plain text. Merge tags go through the one renderer: values are HTML-escaped in the
 * HTML part and left as they are in the text part. The text part is made from the same
 * blocks, not scraped from the finished HTML.
 *
 * With an unsubscribe link in the scope (`unsubscribe_url`, per contact) the email gets
 * a visible footer link (unless the content already shows `{{unsubscribe_url}}`) and
 * the RFC 8058 headers `List-Unsubscribe` and `List-Unsubscribe-Post`.
 *
 * @example
 * const { html, text, headers } = renderEmail(
 *   { blocks: [{ type: 'heading', content: 'Hi {{contact.first_name}}' }, { type: 'button', text: 'Open', url: 'https://example.com' }] },
 *   { contact: { first_name: 'Ana <3' }, unsubscribe_url: 'https://nudge.example.com/unsubscribe/abc.def' },
 * );
 * // html contains 'Hi Ana &lt;3', text contains 'Hi Ana <3' and 'Open: https://example.com'
 */
export interface EmailSource {
  blocks?: EmailBlock[];
  html?: string;
  text?: string;
  previewText?: string;
}

export interface RenderedEmail {
  html: string;
  text: string;
  /** List-Unsubscribe headers when the scope carries an unsubscribe link; otherwise empty. */
  headers: Record<string, string>;
}

const font = 'font-family:Arial,Helvetica,sans-serif;';
const alignments = new Set(['left', 'center', 'right']);

function str(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}

/** Only web and mail links: a `javascript:` or `data:` URL never reaches an email. */
function safeUrl(url: string): string {
  const trimmed = url.trim();
  return /^(https?:|mailto:|tel:)/i.test(trimmed) ? trimmed : '#';
}

function color(value: unknown, fallback: string): string {
  const text = str(value).trim();
  return /^#[0-9a-f]{3}([0-9a-f]{3})?$/i.test(text) ? text : fallback;
}

function align(value: unknown, fallback = 'left'): string {
  const text = str(value).toLowerCase();
  return alignments.has(text) ? text : fallback;
}

function clamp(value: unknown, min: number, max: number, fallback: number): number {
  const n = Number(value);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, Math.round(n))) : fallback;
}

const blockTags = new Set(['p', 'div', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'blockquote', 'pre', 'table', 'tr', 'hr', 'section', 'article', 'header', 'footer']);
type DomNode = ReturnType<typeof parseDocument>['children'][number];

/**
 * Plain text from HTML, through the parser: paragraphs and headings separated by blank
 * lines, list items as "- item", links as "label (url)", images by their alt text.
 */
export function htmlToText(html: string): string {
  const out: string[] = [];
  const breakLine = (lines: number) => {
    const joined = out.join('');
    const trailing = /\n*$/.exec(joined)![0].length;
    if (joined.length > 0 && trailing < lines) out.push('\n'.repeat(lines - trailing));
  };
  const walk = (node: DomNode, pre: boolean): void => {
    if (node.type === ElementType.Text) {
      const data = pre ? node.data : node.data.replace(/\s+/g, ' ');
      const joined = out.join('');
      out.push(joined === '' || /[\s]$/.test(joined) ? data.replace(/^ /, '') : data);
      return;
    }
    if (node.type !== ElementType.Tag) return;
    const name = node.name;
    if (name === 'head' || name === 'style' || name === 'script' || name === 'title') return;
    if (name === 'br') {
      out.push('\n');
      return;
    }
    if (name === 'hr') {
      breakLine(2);
      out.push('---');
      breakLine(2);
      return;
    }
    if (name === 'img') {
      const alt = (node.attribs.alt ?? '').trim();
      if (alt) out.push(alt);
      return;
    }
    if (name === 'li') {
      breakLine(1);
      out.push(node.parent && 'name' in node.parent && node.parent.name === 'ol' ? `${node.parent.children.filter((c) => c.type === ElementType.Tag && c.name === 'li').indexOf(node) + 1}. ` : '- ');
    }
    const isBlock = blockTags.has(name);
    if (isBlock) breakLine(name === 'tr' ? 1 : 2);
    for (const child of node.children) walk(child, pre || name === 'pre');
    if (name === 'a') {
      const href = (node.attribs.href ?? '').trim();
      const label = DomUtils.textContent(node).replace(/\s+/g, ' ').trim();
      if (href && !href.startsWith('#') && href !== label && `mailto:${label}` !== href) out.push(` (${href})`);
    }
    if (isBlock) breakLine(name === 'tr' ? 1 : 2);
  };
  for (const node of parseDocument(html, { decodeEntities: true }).children) walk(node, false);
  return out
    .join('')
    .replace(/\u00a0/g, ' ')
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

interface RenderedBlock {
  html: string;
  text: string;
}

function row(inner: string, padding = '8px 24px'): string {
  return `<tr><td style="padding:${padding};">${inner}</td></tr>`;
}

function renderBlock(block: EmailBlock, scope: MergeScope): RenderedBlock {
  // HTML-bearing fields: the template is the author's HTML; inserted values are escaped.
  const asHtml = (template: string) => renderTemplate(template, scope, { escape: 'html' });
  // Their text version: the template's HTML made text first, then values inserted as they are.
  const asText = (template: string) => renderTemplate(htmlToText(template), scope);
  // Plain fields (a URL, a label, alt text): rendered raw, escaped once where they go into HTML.
  const plain = (template: string) => renderTemplate(template, scope);

  switch (block.type) {
    case 'heading': {
      const level = clamp(block.level, 1, 3, 1);
      const size = [28, 22, 18][level - 1];
      const content = str(block.content);
      return {
        html: row(`<h${level} style="margin:0;${font}font-size:${size}px;line-height:1.3;font-weight:bold;color:${color(block.color, '#111111')};text-align:${align(block.align)};">${asHtml(content)}</h${level}>`, '16px 24px 8px'),
        text: asText(content),
      };
    }
    case 'text': {
      const content = str(block.content);
      return {
        html: row(`<div style="${font}font-size:16px;line-height:1.5;color:${color(block.color, '#333333')};text-align:${align(block.align)};">${asHtml(content)}</div>`),
        text: asText(content),
      };
    }
    case 'button': {
      const label = plain(str(block.text ?? block.label ?? block.content));
      const href = safeUrl(plain(str(block.url ?? block.href)));
      const background = color(block.color ?? block.backgroundColor, '#2563eb');
      const foreground = color(block.textColor, '#ffffff');
      const position = align(block.align);
      return {
        html: row(
          `<table role="presentation" cellpadding="0" cellspacing="0" border="0" align="${position}"><tr>` +
            `<td align="center" bgcolor="${background}" style="border-radius:6px;background:${background};">` +
            `<a href="${escapeHtml(href)}" target="_blank" style="display:inline-block;padding:12px 24px;${font}font-size:16px;font-weight:bold;line-height:1.2;color:${foreground};text-decoration:none;border-radius:6px;">${escapeHtml(label)}</a>` +
            '</td></tr></table>',
          '16px 24px',
        ),
        text: href === '#' ? label : `${label}: ${href}`,
      };
    }
    case 'image': {
      const src = safeUrl(plain(str(block.src ?? block.url)));
      const alt = plain(str(block.alt));
      const width = clamp(block.width, 1, 552, 552);
      const img = `<img src="${escapeHtml(src)}" alt="${escapeHtml(alt)}" width="${width}" style="display:block;width:100%;max-width:${width}px;height:auto;border:0;outline:none;text-decoration:none;" />`;
      const href = block.href === undefined ? null : safeUrl(plain(str(block.href)));
      const position = align(block.align, 'center');
      return {
        html: row(`<div style="text-align:${position};">${href && href !== '#' ? `<a href="${escapeHtml(href)}" target="_blank">${img}</a>` : img}</div>`),
        text: alt ? (href && href !== '#' ? `${alt} (${href})` : alt) : '',
      };
    }
    case 'divider':
      return { html: row(`<hr style="border:0;border-top:1px solid ${color(block.color, '#e5e7eb')};margin:0;" />`, '16px 24px'), text: '---' };
    case 'spacer': {
      const height = clamp(block.height, 0, 200, 24);
      return { html: `<tr><td style="height:${height}px;line-height:${height}px;font-size:0;">&nbsp;</td></tr>`, text: '' };
    }
    default: {
      // `html` blocks and unknown types with content: the author's HTML as it is.
      const content = str(block.content ?? block.html);
      return content === '' ? { html: '', text: '' } : { html: row(`<div style="${font}font-size:16px;line-height:1.5;color:#333333;">${asHtml(content)}</div>`), text: asText(content) };
    }
  }
}

/** The RFC 8058 one-click headers for an unsubscribe link (and an optional mailto address). */
export function listUnsubscribeHeaders(url: string, mailto?: string): Record<string, string> {
  const targets = [`<${url}>`, ...(mailto ? [`<mailto:${mailto.replace(/^mailto:/i, '')}>`] : [])];
  return { 'List-Unsubscribe': targets.join(', '), 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' };
}

function mentionsUnsubscribe(source: EmailSource): boolean {
  const pattern = /\{\{\s*unsubscribe_url\s*(\|[^}]*)?\}\}/;
  return [source.html, source.text, ...(source.blocks ?? []).map((b) => JSON.stringify(b))].some((part) => typeof part === 'string' && pattern.test(part));
}

export function renderEmail(source: EmailSource, scope: MergeScope): RenderedEmail {
  let parts: RenderedBlock[];
  if (source.blocks && source.blocks.length > 0) {
    parts = source.blocks.map((b) => renderBlock(b, scope));
  } else if (source.html && source.html.trim() !== '') {
    parts = htmlToBlocks(source.html).map((b) => renderBlock(b, scope));
  } else {
    // Plain text: the author's text is not HTML, so all of it is escaped, not just the values.
    const text = renderTemplate(source.text ?? '', scope);
    parts = text
      .split(/\n{2,}/)
      .filter((p) => p.trim() !== '')
      .map((p) => ({ html: row(`<p style="margin:0;${font}font-size:16px;line-height:1.5;color:#333333;">${escapeHtml(p).replace(/\n/g, '<br />')}</p>`), text: p }));
  }

  const unsubscribeUrl = str(scope.unsubscribe_url);
  const hasLink = /^https?:\/\//i.test(unsubscribeUrl);
  if (hasLink && !mentionsUnsubscribe(source)) {
    parts.push({
      html: row(`<p style="margin:0;${font}font-size:12px;line-height:1.5;color:#6b7280;text-align:center;">Don't want these emails? <a href="${escapeHtml(unsubscribeUrl)}" target="_blank" style="color:#6b7280;text-decoration:underline;">Unsubscribe</a></p>`, '24px 24px 16px'),
      text: `Unsubscribe: ${unsubscribeUrl}`,
    });
  }

  const preview = source.previewText
    ? `<div style="display:none;max-height:0;max-width:0;overflow:hidden;opacity:0;mso-hide:all;">${escapeHtml(renderTemplate(source.previewText, scope))}</div>`
    : '';
  const html =
    '<!DOCTYPE html><html lang="en"><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8" />' +
    '<meta name="viewport" content="width=device-width,initial-scale=1" /><meta name="x-apple-disable-message-reformatting" /></head>' +
    `<body style="margin:0;padding:0;background:#f4f4f5;">${preview}` +
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background:#f4f4f5;"><tr><td align="center" style="padding:24px 0;">' +
    `<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" style="max-width:600px;width:100%;background:#ffffff;border-radius:8px;">${parts.map((p) => p.html).join('')}</table>` +
    '</td></tr></table></body></html>';
  const text = parts
    .map((p) => p.text.trim())
    .filter((t) => t !== '')
    .join('\n\n');
  return { html, text, headers: hasLink ? listUnsubscribeHeaders(unsubscribeUrl) : {} };
}
