import type { EmailBlock } from './definition.js';
import { renderTemplate, type MergeScope } from './merge-tags.js';

/**
 * Renders email content to email-safe HTML (tables, inline styles) and a plain-text
 * part. Merge tags are HTML-escaped in the HTML and left raw in the text part.
 * Block types: heading, text (its content is HTML), button, image, divider, spacer.
 */
export interface EmailSource {
  blocks?: EmailBlock[];
  html?: string;
  text?: string;
  previewText?: string;
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

export function htmlToText(html: string): string {
  return html
    .replace(/<\s*(br|\/p|\/h[1-6]|\/li|\/tr|\/div)\s*\/?>/gi, '\n')
    .replace(/<li[^>]*>/gi, '- ')
    .replace(/<a [^>]*href="([^"]*)"[^>]*>([\s\S]*?)<\/a>/gi, '$2 ($1)')
    .replace(/<[^>]+>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : '';
}

function safeUrl(url: string): string {
  return /^(https?:|mailto:)/i.test(url.trim()) ? url.trim() : '#';
}

function renderBlock(block: EmailBlock, scope: MergeScope): string {
  const html = (t: string) => renderTemplate(t, scope, { escape: 'html' });
  switch (block.type) {
    case 'heading': {
      const level = Math.min(3, Math.max(1, Number(block.level ?? 1)));
      const size = [28, 22, 18][level - 1];
      return `<tr><td style="padding:8px 24px;"><h${level} style="margin:0;font-family:Arial,Helvetica,sans-serif;font-size:${size}px;line-height:1.3;color:#111111;">${html(str(block.content))}</h${level}></td></tr>`;
    }
    case 'text':
      return `<tr><td style="padding:8px 24px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#333333;">${html(str(block.content))}</td></tr>`;
    case 'button': {
      const href = safeUrl(renderTemplate(str(block.url ?? block.href), scope));
      return `<tr><td style="padding:16px 24px;"><a href="${escapeHtml(href)}" style="display:inline-block;padding:12px 24px;background:#2563eb;color:#ffffff;border-radius:6px;font-family:Arial,Helvetica,sans-serif;font-size:16px;text-decoration:none;">${html(str(block.text ?? block.content ?? block.label))}</a></td></tr>`;
    }
    case 'image': {
      const src = safeUrl(renderTemplate(str(block.src ?? block.url), scope));
      return `<tr><td style="padding:8px 24px;"><img src="${escapeHtml(src)}" alt="${escapeHtml(renderTemplate(str(block.alt), scope))}" style="display:block;max-width:100%;height:auto;border:0;" /></td></tr>`;
    }
    case 'divider':
      return '<tr><td style="padding:16px 24px;"><hr style="border:0;border-top:1px solid #e5e7eb;margin:0;" /></td></tr>';
    case 'spacer':
      return `<tr><td style="height:${Math.min(200, Math.max(0, Number(block.height ?? 24)))}px;line-height:0;font-size:0;">&nbsp;</td></tr>`;
    default:
      return block.content !== undefined ? `<tr><td style="padding:8px 24px;">${html(str(block.content))}</td></tr>` : '';
  }
}

export function renderEmail(source: EmailSource, scope: MergeScope): { html: string; text: string } {
  let body: string;
  if (source.blocks && source.blocks.length > 0) {
    body = source.blocks.map((b) => renderBlock(b, scope)).join('');
  } else if (source.html) {
    body = `<tr><td style="padding:8px 24px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#333333;">${renderTemplate(source.html, scope, { escape: 'html' })}</td></tr>`;
  } else {
    const text = renderTemplate(source.text ?? '', scope, { escape: 'html' });
    body = `<tr><td style="padding:8px 24px;font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#333333;">${text.replace(/\n/g, '<br />')}</td></tr>`;
  }
  const preview = source.previewText
    ? `<div style="display:none;max-height:0;overflow:hidden;">${renderTemplate(source.previewText, scope, { escape: 'html' })}</div>`
    : '';
  const html =
    '<!DOCTYPE html><html><head><meta charset="utf-8" /><meta name="viewport" content="width=device-width,initial-scale=1" /></head>' +
    `<body style="margin:0;padding:0;background:#f4f4f5;">${preview}<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f4f4f5;"><tr><td align="center" style="padding:24px 0;">` +
    `<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="max-width:600px;width:100%;background:#ffffff;border-radius:8px;">${body}</table>` +
    '</td></tr></table></body></html>';
  const text = source.text && !(source.blocks?.length || source.html) ? renderTemplate(source.text, scope) : htmlToText(body.replace(/<\/tr>/g, '</tr>\n'));
  return { html, text };
}
