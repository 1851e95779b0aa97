import type { BotRegistry } from '../../bots/bot-registry.js';
import type { ChatMessage } from '../../chat/chat-surface.js';
import { contextBlock, sectionBlock } from '../../notifications/blocks.js';
import type { SlashCommand } from './types.js';

/** What `/bm help` shows of each row of the table. */
export type SlashCommandInfo = Pick<SlashCommand, 'usage' | 'description'>;

export function helpMessage(
  bots: BotRegistry,
  slash: readonly SlashCommandInfo[],
  note?: string,
): ChatMessage {
  const botLines = bots.list().map((b) => {
    const cmds = b.commands.map((c) => `\`${c.name}\`${c.writes ? '' : ' (read-only)'}`).join(', ');
    const names = [b.name, ...b.aliases].map((n) => `\`${n}\``).join('/');
    return `• ${names} — ${b.description}\n    ${cmds}`;
  });
  const slashLines = slash.map((s) => `• \`/bm ${s.usage}\` — ${s.description}`);
  return {
    text: 'Bematic help: mention me with a bot and a command, e.g. "@Bematic code fix the login bug in auth.ts".',
    blocks: [
      ...(note ? [sectionBlock(`:grey_question: ${note}`)] : []),
      sectionBlock(
        '*Ask a bot:* `@Bematic <bot> [command] <what to do> [--model opus|sonnet|haiku|<id>] [--priority urgent|high|normal|low] [--budget <usd>] [--decompose]`\nExample: `@Bematic code fix the login bug in auth.ts`. Reply in the thread to continue the same session.',
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
  run: (context, { ctx, commands }) => ctx.request.respond(helpMessage(context.config.bots, commands)),
};
