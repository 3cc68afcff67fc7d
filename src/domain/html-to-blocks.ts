import { DomUtils, ElementType, Parser, parseDocument } from 'htmlparser2';
import type { EmailBlock } from './definition.js';

/**
 * Converts email HTML (hand-written, or exported from React Email, MJML and other
 * builders) into the editor's blocks, so content given as HTML stays editable. It uses
 * a real HTML parser (htmlparser2), never regular expressions: real-world email HTML
 * has unclosed tags, attributes in any quoting and tables nested ten deep.
 *
 * - h1, h2, h3 → heading (level 1–3), keeping inline markup;
 * - p, ul, ol, blockquote, pre → text, with the element's own HTML (inline markup kept);
 * - a link standing alone in its block (at the top level, in a paragraph or table cell
 *   of its own) → button; an anchor around a lone image → image with a link;
 * - img → image; hr → divider;
 * - layout containers (div, table, td, section, center…) are unwrapped: their content
 *   becomes blocks, and loose inline text inside them becomes a paragraph;
 * - head, style, script, comments and doctype are dropped;
 * - any other element keeps its HTML in a text block, so nothing is lost.
 *
 * Merge tags (`{{contact.first_name}}`) are plain text to the parser and pass through.
 *
 * @example
 * htmlToBlocks('<h1>Hi</h1><p>Welcome.</p><a href="https://example.com/start">Start</a>')
 * // [{ id: 'heading-1', type: 'heading', level: 1, content: 'Hi' },
 * //  { id: 'text-1', type: 'text', variant: 'paragraph', content: '<p>Welcome.</p>' },
 * //  { id: 'button-1', type: 'button', text: 'Start', url: 'https://example.com/start' }]
 */

type DomDocument = ReturnType<typeof parseDocument>;
type DomNode = DomDocument['children'][number];
type DomElement = Extract<DomNode, { attribs: Record<string, string> }>;

const inlineTags = new Set([
  'a', 'abbr', 'b', 'bdi', 'bdo', 'br', 'cite', 'code', 'data', 'del', 'dfn', 'em', 'font', 'i', 'ins', 'kbd', 'mark', 'q', 's', 'samp', 'small',
  'span', 'strike', 'strong', 'sub', 'sup', 'time', 'tt', 'u', 'var', 'wbr', 'img',
]);
const textTags = new Set(['p', 'ul', 'ol', 'blockquote', 'pre']);
const containerTags = new Set([
  'html', 'body', 'div', 'section', 'article', 'main', 'header', 'footer', 'nav', 'aside', 'center', 'table', 'tbody', 'thead', 'tfoot', 'tr', 'td', 'th',
]);
const droppedTags = new Set(['head', 'style', 'script', 'title', 'meta', 'link', 'base', 'template', 'noscript']);

// Serialise as UTF-8 text: only &, <, > (and quotes in attributes) become entities.
const serializeOptions = { encodeEntities: 'utf8' as const };

function isElement(node: DomNode): node is DomElement {
  return node.type === ElementType.Tag || node.type === ElementType.Script || node.type === ElementType.Style;
}

function outerHtml(node: DomNode | DomNode[]): string {
  return DomUtils.getOuterHTML(node, serializeOptions);
}

function innerHtml(node: DomElement): string {
  return DomUtils.getInnerHTML(node, serializeOptions);
}

function text(node: DomNode): string {
  return DomUtils.textContent(node).replace(/\s+/g, ' ').trim();
}

/** Nodes that show something: elements, and text that is not only whitespace. */
function meaningful(nodes: readonly DomNode[]): DomNode[] {
  return nodes.filter((n) => (n.type === ElementType.Text ? n.data.trim() !== '' : isElement(n)));
}

function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+(px)?$/.test(value.trim())) return undefined;
  const n = parseInt(value, 10);
  return n > 0 ? n : undefined;
}

class BlockBuilder {
  readonly blocks: EmailBlock[] = [];
  private readonly counters = new Map<string, number>();
  private run: DomNode[] = [];

  private push(type: string, fields: Record<string, unknown>): void {
    const n = (this.counters.get(type) ?? 0) + 1;
    this.counters.set(type, n);
    this.blocks.push({ id: `${type}-${n}`, type, ...fields });
  }

  private image(img: DomElement, href?: string): void {
    const width = positiveInt(img.attribs.width);
    this.push('image', {
      src: img.attribs.src ?? '',
      alt: img.attribs.alt ?? '',
      ...(width ? { width } : {}),
      ...(href ? { href } : {}),
    });
  }

  /** A lone anchor or image becomes a button or an image block; returns false for anything else. */
  private standalone(nodes: readonly DomNode[]): boolean {
    const shown = meaningful(nodes);
    if (shown.length !== 1 || !isElement(shown[0]!)) return false;
    const only = shown[0];
    if (only.name === 'img') {
      this.image(only);
      return true;
    }
    if (only.name !== 'a' || !only.attribs.href) return false;
    const inside = meaningful(only.children);
    if (inside.length === 1 && isElement(inside[0]!) && inside[0].name === 'img') {
      this.image(inside[0], only.attribs.href);
      return true;
    }
    const label = text(only);
    if (label === '') return false;
    this.push('button', { text: label, url: only.attribs.href });
    return true;
  }

  /** Ends the current run of loose inline content: a lone link or image, or a paragraph. */
  flush(): void {
    const run = this.run;
    this.run = [];
    if (meaningful(run).length === 0) return;
    if (meaningful(run).every((n) => isElement(n) && n.name === 'br')) return;
    if (this.standalone(run)) return;
    this.push('text', { content: `<p>${outerHtml(run).trim()}</p>`, variant: 'paragraph' });
  }

  add(node: DomNode): void {
    if (node.type === ElementType.Text) {
      this.run.push(node);
      return;
    }
    if (!isElement(node)) return; // comments, doctype, CDATA
    const name = node.name.toLowerCase();
    if (droppedTags.has(name) || node.type !== ElementType.Tag) return;
    if (inlineTags.has(name)) {
      this.run.push(node);
      return;
    }
    this.flush();
    if (name === 'h1' || name === 'h2' || name === 'h3') {
      this.push('heading', { content: innerHtml(node).trim(), level: Number(name[1]) });
    } else if (name === 'hr') {
      this.push('divider', {});
    } else if (textTags.has(name)) {
      if (name !== 'p' || !this.standalone(node.children)) this.push('text', { content: outerHtml(node), variant: name === 'p' ? 'paragraph' : name });
    } else if (containerTags.has(name)) {
      for (const child of node.children) this.add(child);
      this.flush();
    } else {
      this.push('text', { content: outerHtml(node), variant: 'html' });
    }
  }
}

export function htmlToBlocks(html: string): EmailBlock[] {
  const document = parseDocument(html, { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true });
  const builder = new BlockBuilder();
  for (const node of document.children) builder.add(node);
  builder.flush();
  return builder.blocks;
}

/** How deep conversion and rendering go: real email HTML (MJML's tables in tables included) stays far below it. */
export const maxHtmlDepth = 100;

/**
 * Whether the HTML nests elements deeper than `limit`. Converting and rendering walk the
 * tree recursively, and the parser itself slows down with the square of the depth, so
 * HTML nested tens of thousands deep (a hostile body well under the size limit) must be
 * refused before either sees it. The parser's events are counted as they come (closings
 * the parser implies included) and parsing stops at the first element too deep, so this
 * check costs at most `limit` levels of that slowdown.
 */
export function htmlNestsDeeperThan(html: string, limit = maxHtmlDepth): boolean {
  let depth = 0;
  const tooDeep = new Error('too deep');
  const parser = new Parser(
    {
      onopentag() {
        depth += 1;
        if (depth > limit) throw tooDeep;
      },
      onclosetag() {
        depth -= 1;
      },
    },
    { decodeEntities: false, lowerCaseTags: true },
  );
  try {
    parser.end(html);
  } catch (error) {
    if (error === tooDeep) return true;
    throw error;
  }
  return false;
}
