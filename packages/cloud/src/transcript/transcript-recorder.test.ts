import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { completedTask, openTestDb, type TestDb } from '../../test/support/database.js';
import { TaskEvents } from '../tasks/task-events.js';
import { TranscriptRecorder } from './transcript-recorder.js';

describe('TranscriptRecorder', () => {
  let t: TestDb;
  beforeEach(async () => {
    t = await openTestDb(Date.now());
  });
  afterEach(async () => {
    await t.close();
  });

  it('stores steps in order, joins streamed text, and attaches each tool result to its call', async () => {
    const events = new TaskEvents();
    const recorder = new TranscriptRecorder(t.repos.taskSteps, pino({ level: 'silent' }));
    recorder.attach(events);
    const seen: string[] = [];
    recorder.subscribe(({ taskId }) => seen.push(taskId));
    const task = await completedTask(t.repos);
    const progress = (p: Record<string, unknown>) =>
      events.emit('task.progress', {
        task,
        progress: { taskId: task.id, kind: 'tool', message: 'x', ...p } as never,
      });
    events.emit('task.progress', {
      task,
      progress: { taskId: task.id, attempt: 1, kind: 'started', message: 'Task started' },
    });
    events.emit('task.stream', { task, text: 'Looking ' });
    events.emit('task.stream', { task, text: 'at auth.ts.' });
    progress({
      tool: 'Read',
      message: 'Reading auth.ts',
      toolUseId: 'toolu_01',
      input: '{"file_path":"auth.ts"}',
    });
    progress({ tool: 'Edit', message: 'Editing auth.ts', toolUseId: 'toolu_02', input: '--- a/auth.ts' });
    progress({
      tool: 'Read',
      message: 'Reading auth.ts',
      toolUseId: 'toolu_01',
      result: 'export const ok',
      isError: false,
    });
    progress({
      tool: 'Edit',
      message: 'Editing auth.ts',
      toolUseId: 'toolu_02',
      result: 'no match',
      isError: true,
    });
    progress({ tool: 'Bash', message: 'Running ls', toolUseId: 'toolu_unknown', result: 'orphan result' });
    await recorder.flush();

    const steps = await t.repos.taskSteps.list(task.id);
    expect(steps.map((s) => [s.kind, s.tool, s.message])).toEqual([
      ['started', null, 'Task started'],
      ['text', null, 'Looking at auth.ts.'],
      ['tool', 'Read', 'Reading auth.ts'],
      ['tool', 'Edit', 'Editing auth.ts'],
      ['tool', 'Bash', 'Running ls'],
    ]);
    expect(steps[2]?.detail).toEqual({
      toolUseId: 'toolu_01',
      input: '{"file_path":"auth.ts"}',
      result: 'export const ok',
      isError: false,
    });
    expect(steps[3]?.detail).toMatchObject({ input: '--- a/auth.ts', result: 'no match', isError: true });
    expect(seen.length).toBe(8);
    expect(new Set(seen)).toEqual(new Set([task.id]));
  });
});
