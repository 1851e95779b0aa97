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
        tokens.push({ value: text.slice(i + 1, close), raw: text.slice(i, close + 1), quoted: true });
        i = close + 1;
        continue;
      }
    }
    const start = i;
    while (i < n && !/\s/.test(text[i] ?? '')) i++;
    const word = text.slice(start, i);
    tokens.push({ value: word, raw: word, quoted: false });
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
};

export interface ParsedArguments {
  /** Free text without the flags, quotes kept as typed. */
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
  const flags: Record<string, FlagValue> = {};
  const unknownFlags: string[] = [];
  const errors: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok.quoted || !/^--[A-Za-z]/.test(tok.value)) {
      free.push(tok);
      continue;
    }
    const body = tok.value.slice(2);
    const eq = body.indexOf('=');
    const name = (eq === -1 ? body : body.slice(0, eq)).toLowerCase();
    const inline = eq === -1 ? undefined : body.slice(eq + 1);
    const spec = specs[name];
    if (!spec) {
      unknownFlags.push(`--${name}`);
      continue;
    }
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
    args: free.map((t) => t.raw).join(' '),
    positionals: free.map((t) => t.value),
    flags,
    unknownFlags,
    errors,
  };
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
  return {
    botName,
    command,
    args: parsed.args,
    flags,
    unknownFlags: parsed.unknownFlags,
    errors: parsed.errors,
  };
}

/** The spec's `parseCommand`: the first word is a command of the bot when it names one. */
export function parseCommand(
  text: string,
  bot: {
    name: string;
    defaultCommand: string;
    commands: readonly { name: string; aliases: readonly string[] }[];
  },
): ParsedCommand {
  const trimmed = text.trim();
  const first = tokenize(trimmed)[0];
  if (first && !first.quoted) {
    const w = first.value.toLowerCase();
    const cmd = bot.commands.find((c) => c.name === w || c.aliases.includes(w));
    if (cmd) {
      return toParsedCommand(bot.name, cmd.name, parseArguments(trimmed.slice(first.raw.length)));
    }
  }
  return toParsedCommand(bot.name, bot.defaultCommand, parseArguments(trimmed));
}
