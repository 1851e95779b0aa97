import { get } from 'node:http';
import { startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal, readThread } from './support.js';

/** With BEMATIC_PUBLIC_URL set, Slack's progress and completion messages link to the task's dashboard page. */
describe('completion message links to the task page', () => {
  let system: TestSystem;
  beforeAll(async () => {
    system = await startTestSystem({
      settings: { BEMATIC_PUBLIC_URL: 'https://bematic.example.com/', BEMATIC_PROGRESS_INTERVAL_MS: '200' },
    });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
  });
  afterAll(() => system?.close());

  it('puts the public task page URL in the progress and completion blocks, and the public host is accepted', async () => {
    system.model.setScript([turn.text('Nothing to change.')]);
    const done = nextTerminal(system);
    const mention = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> code fix the login bug in auth.ts`,
    });
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    const thread = await readThread(system, mention.ts);
    const completion = thread.find((m) => m.text.startsWith('Task completed'));
    const link = `<https://bematic.example.com/tasks/${task.id}|Open the task page>`;
    expect(JSON.stringify(completion?.blocks)).toContain(link);
    // While it ran, the progress message linked the live transcript too.
    const progress = (completion?.edits ?? [])
      .map((e) => JSON.stringify(e.blocks ?? []))
      .filter((b) => b.includes('task_cancel'));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.some((b) => b.includes(link))).toBe(true);
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        get(`${system.cloud.url}/tasks/${task.id}`, { headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        }).on('error', reject);
      });
    expect(await status('bematic.example.com')).toBe(200);
    expect(await status('evil.example.com')).toBe(403);
  });
});
