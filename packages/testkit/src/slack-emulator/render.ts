import type { SlackMessage, SlackUser } from './workspace.js';

export interface SlackBlock {
  type: string;
  [key: string]: unknown;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Text of a text object ({type:'mrkdwn'|'plain_text', text}) or a rich-text element tree. */
function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (!isRecord(value)) return '';
  if (typeof value.text === 'string') return value.text;
  if (Array.isArray(value.elements)) return value.elements.map(textOf).join('');
  if (value.type === 'user' && typeof value.user_id === 'string') return `<@${value.user_id}>`;
  if (value.type === 'link' && typeof value.url === 'string') return value.url;
  if (value.type === 'emoji' && typeof value.name === 'string') return `:${value.name}:`;
  return '';
}

function elementText(element: unknown): string {
  if (!isRecord(element)) return '';
  switch (element.type) {
    case 'button':
      return `[ ${textOf(element.text)} ]`;
    case 'image':
      return `[image: ${String(element.alt_text ?? '')}]`;
    default:
      return textOf(element) || textOf(element.text) || `[${String(element.type)}]`;
  }
}

/** One block as the lines a person would read. */
export function blockToLines(block: SlackBlock): string[] {
  switch (block.type) {
    case 'header':
      return [`== ${textOf(block.text)} ==`];
    case 'section': {
      const lines: string[] = [];
      const text = textOf(block.text);
      if (text) lines.push(...text.split('\n'));
      // A field is "*Label*\nvalue": read as one line each, as Slack lays them out in a grid.
      const fields = asArray(block.fields).map(textOf).filter(Boolean);
      for (const field of fields) lines.push(field.replace(/\n/, ' ').replace(/\n/g, ', '));
      if (block.accessory !== undefined) lines.push(elementText(block.accessory));
      return lines;
    }
    case 'context':
      return [asArray(block.elements).map(elementText).filter(Boolean).join(' · ')];
    case 'divider':
      return ['────────'];
    case 'actions':
      return [asArray(block.elements).map(elementText).join(' ')];
    case 'image':
      return [`[image: ${String(block.alt_text ?? '')}]`];
    case 'rich_text':
      return textOf(block).split('\n');
    default:
      return [textOf(block.text) || `[${block.type}]`];
  }
}

export function blocksToText(blocks: SlackBlock[]): string {
  return blocks.flatMap(blockToLines).join('\n');
}

function withNames(text: string, users: ReadonlyMap<string, SlackUser>): string {
  return text.replace(/<@([A-Z0-9]+)(?:\|[^>]*)?>/g, (_m, id: string) => `@${users.get(id)?.name ?? id}`);
}

/** What a Slack client shows for mrkdwn links and escapes. */
function asDisplayed(text: string): string {
  return text
    .replace(/<(https?:[^|>]+)\|([^>]+)>/g, '$2 ($1)')
    .replace(/<(https?:[^>]+)>/g, '$1')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

export interface RenderOptions {
  users: ReadonlyMap<string, SlackUser>;
}

/** A message as a person reads it: author, current content (blocks flattened), reactions, files. */
export function renderMessage(message: SlackMessage, options: RenderOptions): string {
  const author = options.users.get(message.user)?.name ?? message.user;
  const body = message.blocks && message.blocks.length > 0 ? blocksToText(message.blocks) : message.text;
  const lines = asDisplayed(withNames(body, options.users)).split('\n');
  const edited = message.edits.length > 0 ? ` (edited ${message.edits.length}x)` : '';
  const out = [`[${author}]${edited} ${lines[0] ?? ''}`, ...lines.slice(1).map((l) => `    ${l}`)];
  for (const file of message.files) out.push(`    [file: ${file.title ?? file.filename}]`);
  if (message.reactions.size > 0) {
    out.push(
      `    ${[...message.reactions].map(([name, who]) => `:${name}:${who.length > 1 ? ` ${who.length}` : ''}`).join(' ')}`,
    );
  }
  return out.join('\n');
}

export function renderMessages(messages: SlackMessage[], options: RenderOptions): string {
  return messages
    .map((m, i) => {
      const rendered = renderMessage(m, options);
      if (i === 0) return rendered;
      const [first = '', ...rest] = rendered.split('\n');
      return [`  ↳ ${first}`, ...rest.map((l) => `    ${l}`)].join('\n');
    })
    .join('\n');
}
