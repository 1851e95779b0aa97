import type { Middleware, RequestContext, StageObserver } from './types.js';

/**
 * Runs the stages in order, then the terminal handler. A stage stops the chain
 * by not calling next. The observer receives each stage's own time.
 */
export async function runPipeline(
  ctx: RequestContext,
  stages: readonly Middleware[],
  terminal: (ctx: RequestContext) => Promise<void>,
  observe: StageObserver = () => {},
  now: () => number = () => performance.now(),
): Promise<void> {
  const at = async (i: number): Promise<void> => {
    const stage = stages[i];
    if (!stage) {
      const start = now();
      try {
        await terminal(ctx);
      } finally {
        observe('handler', now() - start);
      }
      return;
    }
    const start = now();
    let downstream = 0;
    try {
      await stage.run(ctx, async () => {
        const s = now();
        try {
          await at(i + 1);
        } finally {
          downstream += now() - s;
        }
      });
    } finally {
      observe(stage.name, now() - start - downstream);
    }
  };
  await at(0);
}
