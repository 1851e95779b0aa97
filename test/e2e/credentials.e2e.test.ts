import { Writable } from 'node:stream';
import { ClaudeExecutor } from '@bematic/agent';
import { startTestSystem, type TestSystem } from '@bematic/testkit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal, readThread } from './support.js';

/** An agent whose Claude Code has neither an API key nor a login, as a new user meets it. */
describe('missing Claude credentials', () => {
  let system: TestSystem;
  const lines: string[] = [];
  const agentLog = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );

  beforeAll(async () => {
    system = await startTestSystem({
      logger: agentLog,
      // No ANTHROPIC_API_KEY anywhere in the environment Claude Code gets, and an empty HOME: not logged in.
      executor: (_model, home) =>
        new ClaudeExecutor({ home, maxRetries: 0, logger: agentLog, env: { PATH: process.env.PATH ?? '' } }),
    });
  });
  afterAll(() => system?.close());

  it('fails with a coded error, tells the thread what to set, and logs it on the agent', async () => {
    const done = nextTerminal(system);
    const mention = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> explain the build`,
    });
    const { event, task } = await done;
    expect(event).toBe('task.failed');
    expect(task.errorCode).toBe('CREDENTIALS_MISSING');
    const thread = await readThread(system, mention.ts);
    const text = thread
      .filter((m) => m.isBot)
      .map((m) => m.readable)
      .join('\n');
    expect(text).toContain('ANTHROPIC_API_KEY');
    expect(text).toContain('claude login');
    const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string; code?: string });
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 50,
        code: 'CREDENTIALS_MISSING',
        msg: expect.stringContaining('ANTHROPIC_API_KEY'),
      }),
    );
  });

  it('the agent logs the task lifecycle at info: received, started, and how it ended with its duration', async () => {
    const ofTask = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string; taskId?: string; [k: string]: unknown })
      .filter((l) => l.taskId !== undefined && l.level === 30 && /^task /.test(l.msg));
    const taskId = ofTask[0]?.taskId;
    expect(ofTask.filter((l) => l.taskId === taskId).map((l) => l.msg)).toEqual([
      'task received',
      'task started',
      'task failed',
    ]);
    expect(ofTask.find((l) => l.msg === 'task received')).toMatchObject({
      bot: expect.any(String),
      model: expect.any(String),
    });
    expect(ofTask.find((l) => l.msg === 'task failed')).toMatchObject({
      outcome: 'failed',
      errorCode: 'CREDENTIALS_MISSING',
      durationMs: expect.any(Number),
    });
  });
});
