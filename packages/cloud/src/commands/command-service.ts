import type { RequestContext } from '../middleware/types.js';
import type { TaskMessageOwner } from '../notifications/task-message-owner.js';
import type { TaskEvents } from '../tasks/task-events.js';
import { type CommandContext, reject } from './context.js';
import { DecompositionFlow } from './decomposition-flow.js';
import { handleSlash } from './slash/index.js';
import { TaskButtons } from './task-buttons.js';
import { TaskLauncher } from './task-launcher.js';
import { ThreadReplies } from './thread-replies.js';

/**
 * The terminal handler of the middleware chain: routes each kind of request to
 * the module that serves it — mentions (TaskLauncher), thread replies, buttons
 * and `/bm` commands. The handlers share the CommandContext, never this router.
 */
export class CommandService {
  private readonly launcher: TaskLauncher;
  private readonly replies: ThreadReplies;
  private readonly buttons: TaskButtons;
  private readonly decomposition: DecompositionFlow;

  constructor(private readonly context: CommandContext) {
    this.launcher = new TaskLauncher(context);
    this.decomposition = new DecompositionFlow(context, this.launcher);
    this.replies = new ThreadReplies(context, this.launcher, this.decomposition);
    this.buttons = new TaskButtons(context, this.launcher, this.decomposition);
  }

  /** Draws the plan messages of decomposed requests, for the notifications. */
  get taskMessages(): TaskMessageOwner {
    return this.decomposition;
  }

  /** Never throws. */
  async handle(ctx: RequestContext): Promise<void> {
    try {
      switch (ctx.request.kind) {
        case 'mention':
          return await this.launcher.fromMention(ctx);
        case 'thread_reply':
          return await this.replies.handle(ctx);
        case 'slash':
          return await handleSlash(this.context, ctx);
        case 'action':
          return await this.buttons.handle(ctx);
      }
    } catch (err) {
      this.context.log.error({ err, requestId: ctx.requestId }, 'command failed');
      await reject(
        this.context,
        ctx,
        'internal_error',
        'Something went wrong handling that request; it has been logged.',
        { error: err instanceof Error ? err.message : String(err) },
      );
    }
  }

  /** Subscribes decomposition to terminal task events. */
  attach(events: TaskEvents): () => void {
    return this.decomposition.attach(events);
  }
}
