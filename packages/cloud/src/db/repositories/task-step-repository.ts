import type { Clock } from '@bematic/protocol';
import type { Kysely, Selectable } from 'kysely';
import type { Schema, TaskStepsTable } from '../schema.js';
import { decodeRecord, encodeJson, stripNul } from './codec.js';
import type { NewTaskStep, TaskStep, TaskStepRepository } from './types.js';

const KINDS = new Set<TaskStep['kind']>(['started', 'tool', 'status', 'continuation', 'text', 'plan']);
const DEFAULT_LIMIT = 2000;
/** A text step grows until this size, then the next chunk starts a new one. */
const MAX_TEXT_STEP = 64 * 1024;

function toStep(row: Selectable<TaskStepsTable>): TaskStep {
  const ref = { table: 'task_steps', column: 'detail', rowId: String(row.id) };
  return {
    id: row.id,
    taskId: row.task_id,
    kind: KINDS.has(row.kind as TaskStep['kind']) ? (row.kind as TaskStep['kind']) : 'status',
    tool: row.tool,
    message: row.message,
    detail: row.detail === null ? null : decodeRecord(row.detail, ref),
    createdAt: row.created_at,
  };
}

export class KyselyTaskStepRepository implements TaskStepRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async append(step: NewTaskStep): Promise<TaskStep> {
    const row = await this.db
      .insertInto('task_steps')
      .values({
        task_id: step.taskId,
        kind: step.kind,
        tool: step.tool,
        message: stripNul(step.message),
        detail: step.detail === null ? null : encodeJson(step.detail),
        created_at: step.createdAt ?? this.now(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toStep(row);
  }

  async appendText(taskId: string, text: string): Promise<TaskStep> {
    const last = await this.db
      .selectFrom('task_steps')
      .selectAll()
      .where('task_id', '=', taskId)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (last?.kind === 'text' && last.message.length + text.length <= MAX_TEXT_STEP) {
      const row = await this.db
        .updateTable('task_steps')
        .set({ message: last.message + stripNul(text) })
        .where('id', '=', last.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toStep(row);
    }
    return this.append({ taskId, kind: 'text', tool: null, message: text, detail: null });
  }

  async mergeDetail(taskId: string, toolUseId: string, detail: Record<string, unknown>): Promise<boolean> {
    const rows = await this.db
      .selectFrom('task_steps')
      .selectAll()
      .where('task_id', '=', taskId)
      // A cheap pre-filter (LIKE wildcards in the id only widen it); the exact match is checked below.
      .where('detail', 'like', `%${JSON.stringify(toolUseId).slice(1, -1)}%`)
      .orderBy('id', 'desc')
      .limit(20)
      .execute();
    const row = rows.map(toStep).find((s) => s.detail?.toolUseId === toolUseId);
    if (!row) return false;
    await this.db
      .updateTable('task_steps')
      .set({ detail: encodeJson({ ...row.detail, ...detail }) })
      .where('id', '=', row.id)
      .execute();
    return true;
  }

  async list(taskId: string, limit = DEFAULT_LIMIT): Promise<TaskStep[]> {
    const rows = await this.db
      .selectFrom('task_steps')
      .selectAll()
      .where('task_id', '=', taskId)
      .orderBy('id', 'asc')
      .limit(limit)
      .execute();
    return rows.map(toStep);
  }
}
