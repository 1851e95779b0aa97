import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TaskSubmission } from '@bematic/protocol';
import { sql } from 'kysely';
import { createDatabase, type Database } from '../../src/db/database.js';
import { migrateToLatest } from '../../src/db/migrations/index.js';
import { createRepositories } from '../../src/db/repositories/index.js';
import type { NewTask, Repositories, Task } from '../../src/db/repositories/types.js';

/** A migrated SQLite database in a fresh temp directory, with a controllable clock. */
export interface TestDb {
  database: Database;
  repos: Repositories;
  clock: { now: number };
  dir: string;
  close(): Promise<void>;
}

export async function openTestDb(startAt = 1_700_000_000_000): Promise<TestDb> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bematic-test-'));
  const database = await createDatabase(`sqlite:${path.join(dir, 'test.db')}`);
  await migrateToLatest(database);
  const clock = { now: startAt };
  const repos = createRepositories(database.db, { now: () => clock.now });
  return {
    database,
    repos,
    clock,
    dir,
    async close() {
      await database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A PostgreSQL database in a schema of its own (`prefix` + a random suffix), dropped with it on close. */
export async function openPostgresSchema(url: string, prefix: string): Promise<Database> {
  const schema = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const database = await createDatabase(url, { schema });
  return {
    ...database,
    close: async () => {
      await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(database.db);
      await database.close();
    },
  };
}

export function newTaskInput(over: Partial<NewTask> = {}): NewTask {
  const submission: TaskSubmission = {
    taskId: 'placeholder',
    projectId: over.projectId ?? 'proj_1',
    localPath: '/srv/checkout',
    botName: over.botName ?? 'coder',
    command: over.command ?? 'fix',
    prompt: over.prompt ?? 'fix the login bug in auth.ts',
    systemPrompt: 'You are a careful engineer.',
    model: over.model ?? 'claude-sonnet-4-5',
    allowedTools: ['Read', 'Edit'],
    priority: 'normal',
  };
  return {
    projectId: 'proj_1',
    agentId: 'agent_1',
    botName: 'coder',
    command: 'fix',
    prompt: 'fix the login bug in auth.ts',
    model: 'claude-sonnet-4-5',
    priority: 'normal',
    userId: 'U1',
    channelId: 'console:local',
    submission,
    ...over,
  };
}

/** A task taken through submitted → running → completed with usage figures. */
export async function completedTask(repos: Repositories, over: Partial<NewTask> = {}): Promise<Task> {
  const t = await repos.tasks.create(newTaskInput(over));
  await repos.tasks.transition(t.id, 'submitted');
  await repos.tasks.transition(t.id, 'running');
  const { task } = await repos.tasks.transition(t.id, 'completed', {
    result: 'Fixed the null check in auth.ts',
    inputTokens: 1200,
    outputTokens: 340,
    cacheReadTokens: 50,
    cacheCreationTokens: 10,
    costUsd: 0.042,
    durationMs: 8100,
    numTurns: 3,
    continuations: 0,
    filesChanged: ['src/auth.ts'],
    commandsRun: ['npm test'],
  });
  return task;
}
