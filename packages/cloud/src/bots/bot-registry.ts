import { DEFAULT_BOTS } from './bots.js';
import { type ParsedCommand, parseArguments, tokenize, toParsedCommand } from './command-parser.js';
import { type Bot, findCommand } from './types.js';

export type MentionResolution =
  | { kind: 'resolved'; bot: Bot; parsed: ParsedCommand }
  | { kind: 'unknown_bot'; word: string; message: string; bots: string[] }
  | { kind: 'empty'; message: string; bots: string[] };

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
   * "code fix the login bug in auth.ts" → coder / fix / "the login bug in auth.ts".
   * The first word names a bot (or a command only one bot has); the next word
   * may name one of its commands, otherwise the bot's default command applies.
   */
  resolveFromMention(text: string): MentionResolution {
    const bots = this.list().map((b) => b.name);
    const trimmed = text.trim();
    const first = tokenize(trimmed)[0];
    if (!first) {
      return {
        kind: 'empty',
        message: `Tell me what to do, e.g. \`code fix the login bug\`. ${this.botListText()}`,
        bots,
      };
    }
    let rest = trimmed.slice(first.raw.length).trim();
    const word = first.value.toLowerCase();
    let bot = first.quoted ? undefined : this.byAlias.get(word);
    let command: string | undefined;
    if (!bot && !first.quoted) {
      bot = this.botForCommandWord(word);
      if (bot) command = findCommand(bot, word)?.name;
    }
    if (!bot) {
      return {
        kind: 'unknown_bot',
        word: first.value,
        message: `Unknown bot "${first.value}". ${this.botListText()}`,
        bots,
      };
    }
    if (!command) {
      const second = tokenize(rest)[0];
      const found = second && !second.quoted ? findCommand(bot, second.value) : undefined;
      if (found && second) {
        command = found.name;
        rest = rest.slice(second.raw.length).trim();
      } else {
        command = bot.defaultCommand;
      }
    }
    return { kind: 'resolved', bot, parsed: toParsedCommand(bot.name, command, parseArguments(rest)) };
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
