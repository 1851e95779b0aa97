import { tokenize } from '../../bots/command-parser.js';
import type { RequestContext } from '../../middleware/types.js';
import { escapeMrkdwn } from '../../notifications/mrkdwn.js';
import { audit, type CommandContext, requirePermission } from '../context.js';
import { agents } from './agents.js';
import { archive } from './archive.js';
import { cancel } from './cancel.js';
import { help, helpMessage } from './help.js';
import { diff, discard, pr } from './pr.js';
import { projects } from './projects.js';
import { queue } from './queue.js';
import { restore } from './restore.js';
import { status } from './status.js';
import type { SlashCommand } from './types.js';
import { users } from './users.js';

export { helpMessage, type SlashCommandInfo } from './help.js';
export type { SlashCommand, SlashInvocation } from './types.js';

/** Every `/bm` command, in the order `/bm help` lists them. */
export const SLASH_COMMANDS: readonly SlashCommand[] = [
  help,
  status,
  agents,
  queue,
  cancel,
  pr,
  diff,
  discard,
  archive,
  restore,
  projects,
  users,
];

/** `/bm …`: every subcommand is permission-checked and audited; anything unknown gets help. */
export async function handleSlash(
  context: CommandContext,
  ctx: RequestContext,
  commands: readonly SlashCommand[] = SLASH_COMMANDS,
): Promise<void> {
  const text = ctx.request.text.trim();
  const first = tokenize(text)[0];
  const name = first?.value.toLowerCase() ?? '';
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    await audit(context, ctx, 'command.unknown', 'channel', ctx.request.channelId, {
      text: text.slice(0, 200),
    });
    await ctx.request.respond(
      helpMessage(context.config.bots, commands, {
        ...(name
          ? { note: `Unknown command \`${escapeMrkdwn(name.slice(0, 50))}\`. Here's what I can do:` }
          : {}),
        ...(ctx.request.appName ? { appName: ctx.request.appName } : {}),
      }),
    );
    return;
  }
  if (!(await requirePermission(context, ctx, cmd.permission, `use /bm ${cmd.name}`))) return;
  const rest = first ? text.slice(first.raw.length).trim() : '';
  const args = tokenize(rest).map((t) => t.value);
  await cmd.run(context, { ctx, args, rest, commands });
  if (!ctx.rejection)
    await audit(context, ctx, `command.${cmd.name}`, 'channel', ctx.request.channelId, {
      args: args.slice(0, 10),
    });
}
