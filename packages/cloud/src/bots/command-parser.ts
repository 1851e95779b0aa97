import { TASK_PRIORITIES, type TaskPriority } from '@bematic/protocol';

/**
 * Splits chat text into words, honouring "double" and 'single' quotes, and
 * separates `--flags` from the free text. A quote only opens at the start of a
 * word, so apostrophes ("don't") stay literal; an unterminated quote is literal.
 */
export interface Token {
  value: string;
  /** The word as typed, quotes included. */
  raw: string;
  quoted: boolean;
  /** Where the word starts and ends in the text (end exclusive). */
  start: number;
  end: number;
}

export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i] ?? '')) i++;
    if (i >= n) break;
    const ch = text[i];
    if (ch === '"' || ch === "'") {
      const close = text.indexOf(ch, i + 1);
      if (close !== -1) {
        tokens.push({
          value: text.slice(i + 1, close),
          raw: text.slice(i, close + 1),
          quoted: true,
          start: i,
          end: close + 1,
        });
        i = close + 1;
        continue;
      }
    }
    const start = i;
    while (i < n && !/\s/.test(text[i] ?? '')) i++;
    const word = text.slice(start, i);
    tokens.push({ value: word, raw: word, quoted: false, start, end: i });
  }
  return tokens;
}

export type FlagSpec =
  | { type: 'string' }
  | { type: 'number'; positive?: boolean }
  | { type: 'boolean' }
  | { type: 'enum'; values: readonly string[] };

export type FlagValue = string | number | boolean;

/** Flags understood on task requests. */
export const TASK_FLAGS: Readonly<Record<string, FlagSpec>> = {
  model: { type: 'string' },
  priority: { type: 'enum', values: TASK_PRIORITIES },
  budget: { type: 'number', positive: true },
  decompose: { type: 'boolean' },
  /** The git ref a writing task's branch starts from (default: the checkout's HEAD). */
  base: { type: 'string' },
};

export interface ParsedArguments {
  /** Free text without the flags, exactly as typed otherwise (quotes, line breaks). */
  args: string;
  /** Free words with quotes removed. */
  positionals: string[];
  flags: Record<string, FlagValue>;
  unknownFlags: string[];
  /** Problems with known flags, e.g. "--budget needs a positive number". */
  errors: string[];
}

export function parseArguments(
  text: string,
  specs: Readonly<Record<string, FlagSpec>> = TASK_FLAGS,
): ParsedArguments {
  const tokens = tokenize(text);
  const free: Token[] = [];
  /** Spans of the text taken by flags and their values. */
  const taken: [number, number][] = [];
  const flags: Record<string, FlagValue> = {};
  const unknownFlags: string[] = [];
  const errors: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok.quoted || !/^--[A-Za-z]/.test(tok.value)) {
      free.push(tok);
      continue;
    }
    const flagStart = tok.start;
    const takeUntil = (end: number) => taken.push([flagStart, end]);
    const body = tok.value.slice(2);
    const eq = body.indexOf('=');
    const name = (eq === -1 ? body : body.slice(0, eq)).toLowerCase();
    const inline = eq === -1 ? undefined : body.slice(eq + 1);
    const spec = specs[name];
    if (!spec) {
      unknownFlags.push(`--${name}`);
      takeUntil(tok.end);
      continue;
    }
    takeUntil(tok.end);
    if (spec.type === 'boolean') {
      if (inline === undefined) flags[name] = true;
      else if (/^(true|yes|1)$/i.test(inline)) flags[name] = true;
      else if (/^(false|no|0)$/i.test(inline)) flags[name] = false;
      else errors.push(`--${name} takes no value (or true/false)`);
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = tokens[i + 1];
      if (next && (next.quoted || !next.value.startsWith('--'))) {
        raw = next.value;
        i++;
        takeUntil(next.end);
      }
    }
    if (raw === undefined || raw === '') {
      errors.push(`--${name} needs a value`);
      continue;
    }
    if (spec.type === 'number') {
      const num = Number(raw);
      if (!Number.isFinite(num) || (spec.positive && num <= 0)) {
        errors.push(`--${name} needs a ${spec.positive ? 'positive ' : ''}number, got "${raw}"`);
        continue;
      }
      flags[name] = num;
    } else if (spec.type === 'enum') {
      const v = raw.toLowerCase();
      if (!spec.values.includes(v)) {
        errors.push(`--${name} must be one of ${spec.values.join(', ')}, got "${raw}"`);
        continue;
      }
      flags[name] = v;
    } else {
      flags[name] = raw;
    }
  }
  return {
    args: withoutSpans(text, taken),
    positionals: free.map((t) => t.value),
    flags,
    unknownFlags,
    errors,
  };
}

/** The text with the spans cut out; the spaces around each cut collapse to one. */
function withoutSpans(text: string, spans: [number, number][]): string {
  let out = '';
  let at = 0;
  for (const [start, end] of spans) {
    out = `${out}${text.slice(at, start)}`.replace(/[ \t]+$/, '');
    at = end;
    const after = text.slice(at).match(/^[ \t]*/)?.[0].length ?? 0;
    at += after;
    if (out && !out.endsWith('\n') && at < text.length && text[at] !== '\n') out += ' ';
  }
  return `${out}${text.slice(at)}`.trim();
}

/** A request to a bot: "code fix the login bug --model opus". */
export interface ParsedCommand {
  botName: string;
  command: string;
  args: string;
  flags: {
    model?: string;
    priority?: TaskPriority;
    budget?: number;
    decompose?: boolean;
    base?: string;
  };
  unknownFlags: string[];
  errors: string[];
}

export function toParsedCommand(botName: string, command: string, parsed: ParsedArguments): ParsedCommand {
  const f = parsed.flags;
  const flags: ParsedCommand['flags'] = {};
  if (typeof f.model === 'string') flags.model = f.model;
  if (typeof f.priority === 'string') flags.priority = f.priority as TaskPriority;
  if (typeof f.budget === 'number') flags.budget = f.budget;
  if (typeof f.decompose === 'boolean') flags.decompose = f.decompose;
  if (typeof f.base === 'string') flags.base = f.base;
  return {
    botName,
    command,
    args: parsed.args,
    flags,
    unknownFlags: parsed.unknownFlags,
    errors: parsed.errors,
  };
}
