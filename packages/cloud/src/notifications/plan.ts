import type { TaskProgress } from '@bematic/protocol';
import { z } from 'zod';

export const PLAN_STATUSES = ['pending', 'in_progress', 'completed'] as const;

const PlanItem = z.object({ content: z.string().min(1).max(500), status: z.enum(PLAN_STATUSES) });
export type PlanItem = z.infer<typeof PlanItem>;
const TodoWriteInput = z.object({ todos: z.array(PlanItem.passthrough()).max(100) });

/** The checklist a TodoWrite call sets (Claude Code's plan), or undefined when the step is not one. */
export function planFromProgress(progress: TaskProgress): PlanItem[] | undefined {
  if (progress.kind !== 'tool' || progress.tool !== 'TodoWrite' || !progress.input) return undefined;
  if (progress.result !== undefined || progress.isError) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(progress.input);
  } catch {
    // A clipped input is not a plan.
    return undefined;
  }
  const parsed = TodoWriteInput.safeParse(raw);
  return parsed.success ? parsed.data.todos.map(({ content, status }) => ({ content, status })) : undefined;
}
