/** Slack rejects section text over 3000 characters and messages over ~40k. */
export const SECTION_TEXT_LIMIT = 3000;
export const MESSAGE_TEXT_LIMIT = 40_000;

const truncationNote = (n: number) => `… (truncated, ${n} more characters)`;

/** Where to cut `text` so that the kept part is at most `max` characters, preferring paragraph, then line, then word boundaries. */
function cutPoint(text: string, max: number): number {
  const window = text.slice(0, max + 1);
  const floor = Math.floor(max * 0.5);
  const para = window.lastIndexOf('\n\n');
  if (para >= floor) return para;
  const line = window.lastIndexOf('\n');
  if (line >= floor) return line;
  const space = window.lastIndexOf(' ');
  if (space >= floor) return space;
  return max;
}

function fenceOpen(text: string): boolean {
  return ((text.match(/^\s*```/gm) ?? []).length & 1) === 1;
}

/**
 * Shortens text to at most `limit` characters at a sensible boundary and says
 * how much was left out; an open code fence is closed so the rest renders.
 */
export function truncateText(text: string, limit: number): string {
  if (text.length <= limit) return text;
  // Reserve room for the note and a closing fence.
  const reserve = truncationNote(text.length).length + 6;
  const max = Math.max(0, limit - reserve);
  const at = cutPoint(text, max);
  let kept = text.slice(0, at).trimEnd();
  if (fenceOpen(kept)) kept += '\n```';
  return `${kept}\n${truncationNote(text.length - at)}`;
}

/**
 * Splits long text into chunks that each fit a section block, cutting at
 * paragraph/line boundaries and re-opening code fences across chunks. The
 * whole is first truncated to `totalLimit`.
 */
export function splitIntoSections(
  text: string,
  sectionLimit = SECTION_TEXT_LIMIT,
  totalLimit = 12_000,
): string[] {
  let rest = truncateText(text, totalLimit);
  const chunks: string[] = [];
  while (rest.length > sectionLimit) {
    const at = cutPoint(rest, sectionLimit - 8);
    let chunk = rest.slice(0, at).trimEnd();
    rest = rest.slice(at).replace(/^\n+/, '');
    if (fenceOpen(chunk)) {
      chunk += '\n```';
      rest = `\`\`\`\n${rest}`;
    }
    if (chunk) chunks.push(chunk);
  }
  if (rest.trim()) chunks.push(rest);
  return chunks;
}
