import type { Clock } from '@bematic/protocol';
import type { Kysely, Selectable } from 'kysely';
import { z } from 'zod';
import { StoredDataError } from '../errors.js';
import type { Schema, TaskPlansTable } from '../schema.js';
import {
  PLAN_STATUSES,
  type PlanStatus,
  type PlanStep,
  type TaskPlan,
  type TaskPlanRepository,
} from './types.js';

const Steps = z.array(z.object({ title: z.string(), prompt: z.string(), command: z.string().optional() }));
const Status = z.enum(PLAN_STATUSES);

function toPlan(row: Selectable<TaskPlansTable>): TaskPlan {
  const ref = (column: string) => new StoredDataError('task_plans', column, row.task_id, 'invalid');
  let steps: unknown;
  try {
    steps = JSON.parse(row.steps);
  } catch {
    throw ref('steps');
  }
  const parsedSteps = Steps.safeParse(steps);
  if (!parsedSteps.success) throw ref('steps');
  const status = Status.safeParse(row.status);
  if (!status.success) throw ref('status');
  return {
    taskId: row.task_id,
    originalCommand: row.original_command,
    steps: parsedSteps.data,
    status: status.data,
    replacesTaskId: row.replaces_task_id ?? null,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export class KyselyTaskPlanRepository implements TaskPlanRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async create(plan: { taskId: string; originalCommand: string }): Promise<TaskPlan> {
    const row = await this.db
      .insertInto('task_plans')
      .values(this.newPlan(plan))
      .returningAll()
      .executeTakeFirstOrThrow();
    return toPlan(row);
  }

  /** A plan row as it starts: planning, no steps yet. */
  private newPlan(plan: { taskId: string; originalCommand: string }) {
    const at = this.now();
    return {
      task_id: plan.taskId,
      original_command: plan.originalCommand,
      steps: '[]',
      status: 'planning' as const,
      created_at: at,
      updated_at: at,
    };
  }

  async claimReplacement(plan: {
    taskId: string;
    originalCommand: string;
    replacesTaskId: string;
  }): Promise<TaskPlan | undefined> {
    const row = await this.db
      .insertInto('task_plans')
      .values({ ...this.newPlan(plan), replaces_task_id: plan.replacesTaskId })
      .onConflict((oc) => oc.column('replaces_task_id').doNothing())
      .returningAll()
      .executeTakeFirst();
    return row ? toPlan(row) : undefined;
  }

  findByReplaced(taskId: string): Promise<TaskPlan | undefined> {
    return this.findBy('replaces_task_id', taskId);
  }

  findByTask(taskId: string): Promise<TaskPlan | undefined> {
    return this.findBy('task_id', taskId);
  }

  private async findBy(
    column: 'task_id' | 'replaces_task_id',
    taskId: string,
  ): Promise<TaskPlan | undefined> {
    const row = await this.db
      .selectFrom('task_plans')
      .selectAll()
      .where(column, '=', taskId)
      .executeTakeFirst();
    return row ? toPlan(row) : undefined;
  }

  async move(
    taskId: string,
    from: readonly PlanStatus[],
    to: PlanStatus,
    steps?: PlanStep[],
  ): Promise<TaskPlan | undefined> {
    const row = await this.db
      .updateTable('task_plans')
      .set({ status: to, updated_at: this.now(), ...(steps ? { steps: JSON.stringify(steps) } : {}) })
      .where('task_id', '=', taskId)
      .where('status', 'in', [...from])
      .returningAll()
      .executeTakeFirst();
    return row ? toPlan(row) : undefined;
  }
}
