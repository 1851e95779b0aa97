import { DEFAULT_BOTS } from './bots.js';
import {
  type ParsedArguments,
  type ParsedCommand,
  parseArguments,
  tokenize,
  toParsedCommand,
} from './command-parser.js';
import { type Bot, findCommand } from './types.js';

export type MentionResolution =
  | {
      kind: 'resolved';
      bot: Bot;
      parsed: ParsedCommand;
      /** How the bot was chosen: its name, one of its command words, or the channel's default bot. */
      via: 'bot_keyword' | 'command_word' | 'default_bot';
    }
  | { kind: 'unknown_bot'; word: string; message: string; bots: string[] }
  | { kind: 'empty'; message: string; bots: string[] };

export interface MentionDefaults {
  /** The bot plain words go to (the channel's project setting); `coder` when not set. */
  defaultBot?: string;
}

export const DEFAULT_BOT = 'coder';

/** Bots are plugins: register any number; names and aliases must be unique. */
export class BotRegistry {
  private readonly bots = new Map<string, Bot>();
  private readonly byAlias = new Map<string, Bot>();

  constructor(bots: readonly Bot[] = DEFAULT_BOTS) {
    for (const bot of bots) this.register(bot);
  }

  register(bot: Bot): void {
    for (const word of [bot.name, ...bot.aliases]) {
      const key = word.toLowerCase();
      const taken = this.byAlias.get(key);
      if (taken && taken !== bot) throw new Error(`bot name "${word}" is already used by ${taken.name}`);
      this.byAlias.set(key, bot);
    }
    if (!findCommand(bot, bot.defaultCommand)) {
      throw new Error(`bot ${bot.name}: default command "${bot.defaultCommand}" is not one of its commands`);
    }
    this.bots.set(bot.name, bot);
  }

  get(name: string): Bot | undefined {
    return this.bots.get(name) ?? this.byAlias.get(name.toLowerCase());
  }

  list(): Bot[] {
    return [...this.bots.values()];
  }

  /** The bot whose command (or command alias) this word is, when exactly one bot has it. */
  private botForCommandWord(word: string): Bot | undefined {
    const owners = this.list().filter((b) => findCommand(b, word));
    return owners.length === 1 ? owners[0] : undefined;
  }

  /**
   * "please fix the typo in README" → the default bot with the whole text as the request.
   * Bot names ("code …", "review …") and command words ("fix …", "explain …") are shortcuts that pick
   * the bot and command; the command word stays in the request, only a leading bot name is taken off.
   * Flags anywhere (`--model opus`) are read and removed. A mention with nothing to do is `empty`.
   */
  resolveFromMention(text: string, defaults: MentionDefaults = {}): MentionResolution {
    const bots = this.list().map((b) => b.name);
    const args = parseArguments(text.trim());
    const words = tokenize(args.args);
    const first = words[0];
    const empty = (): MentionResolution => ({ kind: 'empty', message: this.howTo(), bots });
    if (!first) return empty();
    const word = first.quoted ? undefined : first.value.toLowerCase();
    const named = word ? this.byAlias.get(word) : undefined;
    if (named) {
      const rest = args.args.slice(first.end).trim();
      const second = tokenize(rest)[0];
      const named2 = second && !second.quoted ? findCommand(named, second.value) : undefined;
      // "plan estimate …": bot name, then command. "review auth.ts": the bot's name is its command too.
      const own = named2 ? undefined : findCommand(named, first.value);
      const command = named2 ?? own;
      const request = own ? args.args : rest;
      const remainder = named2 && second ? rest.slice(second.end).trim() : rest;
      const commandName = command?.name ?? named.defaultCommand;
      if (!request || (command && !remainder && needsArguments(command.usage))) return empty();
      return this.resolved(named, commandName, { ...args, args: request }, 'bot_keyword');
    }
    const owner = word ? this.botForCommandWord(word) : undefined;
    if (owner) {
      const command = findCommand(owner, first.value)!;
      if (words.length === 1 && needsArguments(command.usage)) return empty();
      return this.resolved(owner, command.name, args, 'command_word');
    }
    const fallback = this.get(defaults.defaultBot ?? DEFAULT_BOT);
    if (!fallback) {
      const name = defaults.defaultBot ?? DEFAULT_BOT;
      return {
        kind: 'unknown_bot',
        word: name,
        message: `This channel's default bot "${name}" does not exist. ${this.botListText()}`,
        bots,
      };
    }
    return this.resolved(fallback, fallback.defaultCommand, args, 'default_bot');
  }

  private resolved(
    bot: Bot,
    command: string,
    args: ParsedArguments,
    via: 'bot_keyword' | 'command_word' | 'default_bot',
  ): MentionResolution {
    return { kind: 'resolved', bot, parsed: toParsedCommand(bot.name, command, args), via };
  }

  /** What to say to a mention that asks for nothing. */
  howTo(): string {
    return [
      'Tell me what to do in plain words, e.g. `fix the typo in README.md` or `review src/auth.ts`.',
      `Start with a bot to pick one: ${this.list()
        .map((b) => `\`${shortName(b)}\``)
        .join(
          ', ',
        )}; add \`--model opus\`, \`--budget 2\` or \`--decompose\` as needed. \`/bm help\` has the rest.`,
    ].join('\n');
  }

  botListText(): string {
    return `Available bots: ${this.list()
      .map(
        (b) =>
          `*${b.name}*${b.aliases.length ? ` (${b.aliases.join(', ')})` : ''} — ${b.commands.map((c) => c.name).join(', ')}`,
      )
      .join('; ')}.`;
  }
}

/** "code fix <what is broken>" needs something after the command; "ops status" does not. */
function needsArguments(usage: string): boolean {
  return usage.includes('<');
}

/** The word people type for a bot: "code" for coder, "ops" for ops. */
export function shortName(bot: Bot): string {
  const alias = bot.aliases[0];
  return alias && alias.length < bot.name.length ? alias : bot.name;
}
