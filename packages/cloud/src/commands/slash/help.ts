import type { BotRegistry } from '../../bots/bot-registry.js';
import type { ChatMessage } from '../../chat/chat-surface.js';
import { contextBlock, sectionBlock } from '../../notifications/blocks.js';
import { escapeMrkdwn } from '../../notifications/mrkdwn.js';
import type { SlashCommand } from './types.js';

/** What `/bm help` shows of each row of the table. */
export type SlashCommandInfo = Pick<SlashCommand, 'usage' | 'description'>;

export interface HelpOptions {
  /** Shown first (e.g. "Unknown command …"), already mrkdwn. */
  note?: string;
  /** How people address the app where they are ("@BematicManager"); absent where the mention is implicit. */
  appName?: string;
}

/** Inline code: Slack wants `<`, `>` and `&` escaped even there, once. */
const code = (text: string): string => `\`${escapeMrkdwn(text)}\``;

/** `/bm help`: the bots from the registry and the `/bm` rows from the table that dispatches them. */
export function helpMessage(
  bots: BotRegistry,
  slash: readonly SlashCommandInfo[],
  options: HelpOptions = {},
): ChatMessage {
  const ask = (words: string): string => (options.appName ? `@${options.appName} ${words}` : words);
  const botLines = bots.list().map((b) => {
    const cmds = b.commands.map((c) => `${code(c.name)}${c.writes ? '' : ' (read-only)'}`).join(', ');
    const names = [b.name, ...b.aliases].map(code).join('/');
    return `• ${names} — ${escapeMrkdwn(b.description)}\n    ${cmds}`;
  });
  const slashLines = slash.map((s) => `• ${code(`/bm ${s.usage}`)} — ${escapeMrkdwn(s.description)}`);
  const example = ask('fix the login bug in auth.ts');
  const whom = options.appName ? `mention ${escapeMrkdwn(`@${options.appName}`)}` : 'type';
  return {
    text: `Bematic help: ${options.appName ? `mention @${options.appName}` : 'type'} with what to do in plain words, e.g. "${example}".`,
    blocks: [
      ...(options.note ? [sectionBlock(`:grey_question: ${options.note}`)] : []),
      sectionBlock(
        [
          `*Ask in plain words:* ${whom} with what to do, e.g. ${code(example)}. It goes to the channel's default bot.`,
          `*Shortcuts:* ${code(ask('[bot] [command] <what to do> [--model opus|sonnet|haiku|<id>] [--priority urgent|high|normal|low] [--budget <usd>] [--decompose] [--base <ref>]'))}`,
          'Reply in the thread to continue the same session.',
        ].join('\n'),
      ),
      sectionBlock(`*Bots*\n${botLines.join('\n')}`),
      sectionBlock(`*Slash commands*\n${slashLines.join('\n')}`),
      contextBlock('Write commands run on the premium model, read-only ones on the standard model.'),
    ],
  };
}

export const help: SlashCommand = {
  name: 'help',
  usage: 'help',
  description: 'this help',
  permission: 'view',
  run: (context, { ctx, commands }) =>
    ctx.request.respond(
      helpMessage(context.config.bots, commands, {
        ...(ctx.request.appName ? { appName: ctx.request.appName } : {}),
      }),
    ),
};
