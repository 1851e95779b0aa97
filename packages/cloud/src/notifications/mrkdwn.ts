/**
 * Markdown (what Claude writes) → Slack mrkdwn. Code fences and inline code
 * are kept verbatim apart from the &, <, > escaping Slack requires everywhere.
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const BOLD = '\u0001';
const CODE = '\u0002';

function convertInline(line: string): string {
  const codes: string[] = [];
  let s = line.replace(/`([^`\n]+)`/g, (_m, code: string) => {
    codes.push(`\`${escapeMrkdwn(code)}\``);
    return `${CODE}${codes.length - 1}${CODE}`;
  });
  const links: string[] = [];
  // Links are taken out before escaping so their URLs survive intact.
  s = s.replace(/!?\[([^\]\n]*)\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g, (_m, label: string, url: string) => {
    const safeUrl = url
      .replace(/&/g, '&amp;')
      .replace(/</g, '%3C')
      .replace(/>/g, '%3E')
      .replace(/\|/g, '%7C');
    const text = escapeMrkdwn(label.trim());
    links.push(text ? `<${safeUrl}|${text}>` : `<${safeUrl}>`);
    return `${CODE}L${links.length - 1}${CODE}`;
  });
  s = escapeMrkdwn(s);
  s = s.replace(/\*\*(?=\S)(.+?)(?<=\S)\*\*/g, `${BOLD}$1${BOLD}`);
  s = s.replace(/__(?=\S)(.+?)(?<=\S)__/g, `${BOLD}$1${BOLD}`);
  s = s.replace(/(^|[^*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])/g, '$1_$2_');
  s = s.replace(/~~(?=\S)(.+?)(?<=\S)~~/g, '~$1~');
  s = s.replaceAll(BOLD, '*');
  s = s.replace(new RegExp(`${CODE}L(\\d+)${CODE}`, 'g'), (_m, i: string) => links[Number(i)] ?? '');
  s = s.replace(new RegExp(`${CODE}(\\d+)${CODE}`, 'g'), (_m, i: string) => codes[Number(i)] ?? '');
  return s;
}

export function markdownToMrkdwn(markdown: string): string {
  const out: string[] = [];
  let inFence = false;
  for (const line of markdown.replace(/\r\n/g, '\n').split('\n')) {
    const fence = /^\s*```/.test(line);
    if (fence) {
      // Slack ignores the language tag and would show it as code text.
      out.push('```');
      inFence = !inFence;
      continue;
    }
    if (inFence) {
      out.push(escapeMrkdwn(line));
      continue;
    }
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const inner = convertInline(heading[1] ?? '').replace(/\*/g, '');
      out.push(inner ? `*${inner}*` : '');
      continue;
    }
    if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      out.push('──────────');
      continue;
    }
    const bullet = /^(\s*)[-*+]\s+(.*)$/.exec(line);
    if (bullet) {
      const depth = Math.floor((bullet[1] ?? '').replace(/\t/g, '  ').length / 2);
      const task = /^\[([ xX])\]\s+(.*)$/.exec(bullet[2] ?? '');
      const body = task ? `${task[1] === ' ' ? '☐' : '☑'} ${task[2]}` : (bullet[2] ?? '');
      out.push(`${'    '.repeat(depth)}${depth > 0 ? '◦' : '•'} ${convertInline(body)}`);
      continue;
    }
    const quote = /^\s*>\s?(.*)$/.exec(line);
    if (quote) {
      out.push(`>${convertInline(quote[1] ?? '')}`);
      continue;
    }
    out.push(convertInline(line));
  }
  if (inFence) out.push('```');
  return out.join('\n');
}

/**
 * The plain-text fallback of a mrkdwn message (notifications, screen readers): formatting marks go,
 * everything written stays — `task_e968` keeps its underscore, a link keeps its label. Slack still
 * reads the fallback with its escaping, so entities are left as they are.
 */
export function mrkdwnToPlain(mrkdwn: string): string {
  return mrkdwn
    .replace(/```\n?([\s\S]*?)\n?```/g, '$1')
    .replace(/`([^`\n]+)`/g, '$1')
    .replace(/<([^<>|\n]+)\|([^<>\n]+)>/g, (_m, target: string, label: string) =>
      /^[@#!]/.test(target) ? `<${target}|${label}>` : label,
    )
    .replace(/<((?:https?|mailto):[^<>|\n]+)>/g, '$1')
    .replace(/(^|[^\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])/gm, '$1$2')
    .replace(/(^|[^\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])/gm, '$1$2')
    .replace(/(^|[^\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])/gm, '$1$2');
}
