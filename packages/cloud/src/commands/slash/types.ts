import type { ChatMessage } from '../../chat/chat-surface.js';
import type { Permission } from '../../middleware/permissions.js';
import type { RequestContext } from '../../middleware/types.js';
import { contextBlock, sectionBlock } from '../../notifications/blocks.js';
import { mrkdwnToPlain } from '../../notifications/mrkdwn.js';
import type { CommandContext } from '../context.js';

/** One `/bm` invocation, after the command word. */
export interface SlashInvocation {
  ctx: RequestContext;
  /** The words after the command name, unquoted. */
  args: string[];
  /** The raw text after the command name (for flag parsing). */
  rest: string;
  /** The whole table, for `/bm help`. */
  commands: readonly SlashCommand[];
}

/** One row of the `/bm` table: it dispatches the command and describes it in `/bm help`. */
export interface SlashCommand {
  name: string;
  usage: string;
  description: string;
  /** Checked before run; finer checks (ownership, sub-actions) happen inside. */
  permission: Permission;
  run(context: CommandContext, invocation: SlashInvocation): Promise<void>;
}

/** A section with an optional context line; the fallback text is the section without markup. */
export const block = (text: string, ...ctx: string[]): ChatMessage => ({
  text: mrkdwnToPlain(text).slice(0, 300),
  blocks: [sectionBlock(text), ...(ctx.length ? [contextBlock(...ctx)] : [])],
});
