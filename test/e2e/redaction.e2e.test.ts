import { Writable } from 'node:stream';
import { secretSafeLogOptions } from '@bematic/cloud';
import { SAMPLE_SECRETS, SECRET_VALUES, startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nextTerminal, readThread } from './support.js';

/**
 * Every listed secret kind, put where a hostile or careless model would put it — its own text, a command
 * line, a command's output it repeats — must not appear in the Slack thread, the console, the stored task
 * or the logs. A model error naming internal addresses must not show them in the thread either.
 */
describe('secrets stay secret, end to end', () => {
  let system: TestSystem;
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  const all = Object.values(SAMPLE_SECRETS);

  beforeAll(async () => {
    system = await startTestSystem({
      logger: pino({ level: 'debug', ...secretSafeLogOptions() }, sink),
      settings: { BEMATIC_PROGRESS_INTERVAL_MS: '100' },
    });
    system.emulator.addUser({ id: 'U0ALICE', name: 'alice' });
  });
  afterAll(() => system?.close());

  const leaks = (text: string): string[] => SECRET_VALUES.filter((v) => text.includes(v));

  it('model text, a command line and command output never show a secret anywhere', async () => {
    const printed = all.map((s) => `'${s.replace(/'/g, '')}'`).join(' ');
    system.model.setScript([
      turn.textThenTool(`Found these: ${all.join(' | ')}`, 'Bash', { command: `printf '%s\\n' ${printed}` }),
      turn.text(`The command printed:\n${all.join('\n')}\nDone.`),
    ]);
    const done = nextTerminal(system);
    const msg = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> code list the credentials in this repo`,
    });
    const { event, task } = await done;
    expect(event).toBe('task.completed');

    // The model really saw the secrets in the command output: they exist, and are kept from people.
    expect(JSON.stringify(system.model.mainLoopRequests().at(-1)?.messages)).toContain(SECRET_VALUES[2]);

    const thread = await readThread(system, msg.ts);
    const shown = JSON.stringify(thread.map((m) => [m.text, m.blocks, m.edits]));
    expect(leaks(shown)).toEqual([]);
    expect(shown).toContain('[redacted:');

    const row = await system.cloud.repos.tasks.findById(task.id);
    expect(leaks(JSON.stringify(row))).toEqual([]);
    expect(row?.result).toContain('[redacted:github-token]');
    const audit = await system.cloud.repos.audit.list({ resourceId: task.id });
    expect(leaks(JSON.stringify(audit))).toEqual([]);

    await system.agent.outbound.whenEmpty();
    expect(logLines.length).toBeGreaterThan(0);
    expect(leaks(logLines.join(''))).toEqual([]);
  });

  it('the console shows no secret either', async () => {
    const posted = await system.cloud.console.post('console:local', {
      text: `token ${SAMPLE_SECRETS['github token']}`,
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: SAMPLE_SECRETS['aws secret key'] ?? '' } }],
    });
    const shown = JSON.stringify(system.cloud.console.getMessage('console:local', posted.ts));
    expect(shown).toContain('[redacted:github-token]');
    expect(leaks(shown)).toEqual([]);
  });

  it('a model error does not post internal addresses or keys to the thread', async () => {
    system.model.setScript([
      turn.error(401, {
        message: `upstream 127.0.0.1:43767 via api-gw.prod.internal:8443 rejected key ${SAMPLE_SECRETS['anthropic key']}`,
      }),
    ]);
    const done = nextTerminal(system);
    const msg = await system.emulator.mention({
      user: 'U0ALICE',
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> code try again`,
    });
    const { event, task } = await done;
    expect(event).toBe('task.failed');
    // The error did carry them (so this test can fail): they were replaced, not absent.
    expect((await system.cloud.repos.tasks.findById(task.id))?.errorMessage).toContain('[internal address]');
    const shown = JSON.stringify((await readThread(system, msg.ts)).map((m) => [m.text, m.blocks]));
    expect(shown).not.toMatch(/127\.0\.0\.1:43767|prod\.internal/);
    expect(leaks(shown)).toEqual([]);
  });
});
