import DOMPurify from 'dompurify';
import { marked } from 'marked';

/** Slack mrkdwn and Markdown to sanitised HTML. Everything rendered as HTML passes DOMPurify. */

const EMOJI: Record<string, string> = {
  white_check_mark: '✅',
  x: '❌',
  hourglass_flowing_sand: '⏳',
  hourglass: '⌛',
  eyes: '👀',
  warning: '⚠️',
  rocket: '🚀',
  gear: '⚙️',
  robot_face: '🤖',
  no_entry_sign: '🚫',
  stop_button: '⏹️',
  arrows_counterclockwise: '🔄',
  memo: '📝',
  moneybag: '💰',
  stopwatch: '⏱️',
  zap: '⚡',
  file_folder: '📁',
  page_facing_up: '📄',
  hammer_and_wrench: '🛠️',
  large_green_circle: '🟢',
  red_circle: '🔴',
  inbox_tray: '📥',
  information_source: 'ℹ️',
  heavy_check_mark: '✔️',
  sparkles: '✨',
  repeat: '🔁',
  package: '📦',
  wave: '👋',
  thinking_face: '🤔',
  construction: '🚧',
  bar_chart: '📊',
  lock: '🔒',
  electric_plug: '🔌',
  satellite: '📡',
  zzz: '💤',
  brain: '🧠',
  mag: '🔍',
  ballot_box_with_check: '☑️',
  white_large_square: '⬜',
  arrow_forward: '▶️',
};

export function emoji(name: string): string {
  return EMOJI[name] ?? `:${name}:`;
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const unslack = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

function inline(s: string): string {
  return s
    .replace(/`([^`\n]+)`/g, (_m, c: string) => `<code>${c}</code>`)
    .replace(/(^|[\s(])\*([^*\n]+)\*(?=$|[\s).,:;!?])/g, '$1<b>$2</b>')
    .replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s).,:;!?])/g, '$1<i>$2</i>')
    .replace(/(^|[\s(])~([^~\n]+)~(?=$|[\s).,:;!?])/g, '$1<s>$2</s>')
    .replace(/:([a-z0-9_+-]+):/g, (m, n: string) => EMOJI[n] ?? m);
}

/** Slack mrkdwn (links first: they may hold markup characters, then escaping, then inline styles). */
export function mrkdwnToHtml(src: string): string {
  let out = '';
  src.split('```').forEach((part, i) => {
    if (i % 2 === 1) {
      out += `<pre>${esc(unslack(part.replace(/^\n/, '')))}</pre>`;
      return;
    }
    const re = /<([^<>|]+)(?:\|([^<>]+))?>/g;
    let last = 0;
    let seg = '';
    for (let m = re.exec(part); m; m = re.exec(part)) {
      seg += inline(esc(unslack(part.slice(last, m.index))));
      const target = m[1] ?? '';
      const label = m[2] ?? target;
      if (/^https?:\/\//.test(target) || target.startsWith('/'))
        seg += `<a href="${esc(target)}"${target.startsWith('/') ? '' : ' target="_blank" rel="noopener noreferrer"'}>${esc(unslack(label))}</a>`;
      else if (/^[@#]/.test(target)) seg += `<b>${esc(unslack(label.replace(/^[@#]/, '')))}</b>`;
      else seg += esc(unslack(label));
      last = re.lastIndex;
    }
    seg += inline(esc(unslack(part.slice(last))));
    out += seg
      .split('\n')
      .map((line) =>
        /^&gt;\s?/.test(line) ? `<blockquote>${line.replace(/^&gt;\s?/, '')}</blockquote>` : line,
      )
      .join('<br>')
      .replace(/<\/blockquote><br>/g, '</blockquote>');
  });
  return sanitize(out);
}

/** A task's result, written by the model as Markdown. */
export function markdownToHtml(src: string): string {
  return sanitize(marked.parse(src, { async: false, gfm: true, breaks: false }));
}

function sanitize(html: string): string {
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, ADD_ATTR: ['target'] });
}

export function htmlInto(el: HTMLElement, html: string): HTMLElement {
  el.innerHTML = html;
  return el;
}
