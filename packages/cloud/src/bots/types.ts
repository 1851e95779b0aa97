import type { Project } from '../db/repositories/types.js';

export interface BotCommand {
  name: string;
  aliases: readonly string[];
  description: string;
  /** Commands that change files run on the premium tier and need write tools. */
  writes: boolean;
  usage: string;
}

/** A persona: what it can do, what it tells Claude, and which tools Claude may use. */
export interface Bot {
  name: string;
  displayName: string;
  description: string;
  /** Other words that address this bot ("code", "dev" → coder). */
  aliases: readonly string[];
  commands: readonly BotCommand[];
  defaultCommand: string;
  allowedTools: readonly string[];
  systemPrompt(command: BotCommand, project: Project): string;
}

export const READ_ONLY_TOOLS = ['Read', 'Glob', 'Grep'] as const;

export function findCommand(bot: Bot, word: string): BotCommand | undefined {
  const w = word.toLowerCase();
  return bot.commands.find((c) => c.name === w || c.aliases.includes(w));
}
