import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClaudeExecutor, DEFAULT_CONFINEMENT } from '@bematic/agent';
import { ManualClock, type MessageView, startTestSystem, type TestSystem, turn } from '@bematic/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buttonValue, nextTerminal, readThread } from './support.js';

/**
 * Approvals from the thread, through real parts: the real Claude Code asks (an operator's `ask` rule
 * matches `npm install`), the agent sends PERMISSION_REQUEST, the cloud posts the question with buttons
 * through Bolt into the Slack emulator, a person clicks, and the answer decides whether the command runs.
 */
const ALICE = 'U0ALICE';
const BOB = 'U0BOB';
const ADMIN = 'U0ADMIN';
const TIMEOUT_MS = 60_000;

describe('approvals from the thread', () => {
  let system: TestSystem;
  const clock = new ManualClock(Date.now());
  // An npm that installs nothing and needs no network: the question is about the command, not npm.
  const fakeBin = mkdtempSync(path.join(tmpdir(), 'bematic-fake-npm-'));
  writeFileSync(path.join(fakeBin, 'npm'), '#!/bin/sh\necho "added 1 package"\n');
  chmodSync(path.join(fakeBin, 'npm'), 0o755);
  beforeAll(async () => {
    system = await startTestSystem({
      ...(process.env.DBG ? { logger: (await import('pino')).pino({ level: 'debug' }) } : {}),
      settings: {
        BEMATIC_PROGRESS_INTERVAL_MS: '100',
        BEMATIC_ADMIN_USERS: ADMIN,
        BEMATIC_APPROVAL_TIMEOUT_MS: String(TIMEOUT_MS),
      },
      cloud: { approvalClock: clock },
      executor: (model, home) =>
        new ClaudeExecutor({
          apiKey: 'sk-ant-test-key',
          baseUrl: model.url,
          home,
          maxRetries: 0,
          env: { ...process.env, PATH: `${fakeBin}${path.delimiter}${process.env.PATH ?? ''}` },
          confinement: { ...DEFAULT_CONFINEMENT, approvalRules: ['Bash(npm install:*)'] },
        }),
    });
    for (const [id, name] of [
      [ALICE, 'alice'],
      [BOB, 'bob'],
      [ADMIN, 'admin'],
    ] as const)
      system.emulator.addUser({ id, name });
  });
  afterAll(async () => {
    await system?.close();
    rmSync(fakeBin, { recursive: true, force: true });
  });

  /** Whether the command ran: its marker file is among the files the task changed (in its worktree). */
  const installed = async (taskId: string, name: string): Promise<boolean> =>
    ((await system.cloud.repos.tasks.findById(taskId))?.filesChanged ?? []).includes(`${name}.installed`);
  const install = (name: string) => ({ command: `npm install ${name} && touch ${name}.installed` });

  async function start(prompt: string) {
    return system.emulator.mention({
      user: ALICE,
      channel: system.channel,
      text: `<@${system.emulator.botUserId}> code ${prompt}`,
    });
  }

  /** Waits for the bot's question in the thread. */
  async function question(threadTs: string, nth = 0): Promise<MessageView> {
    return system.emulator.waitFor(
      () =>
        system.emulator.thread(system.channel, threadTs).filter((m) => buttonValue(m, 'permission_deny'))[
          nth
        ],
      20_000,
    );
  }

  const click = (user: string, q: MessageView, actionId: string) =>
    system.emulator.clickButton({
      user,
      channel: system.channel,
      messageTs: q.ts,
      actionId,
      value: buttonValue(q, actionId) ?? '',
    });

  async function auditOf(taskId: string): Promise<string[]> {
    return (await system.cloud.repos.audit.list({ resourceId: taskId })).map((a) => a.action);
  }

  it('asks in the thread; the requester approves with one click and the command runs', async () => {
    system.model.setScript([turn.toolUse('Bash', install('left-pad')), turn.text('Installed left-pad.')]);
    const done = nextTerminal(system);
    const msg = await start('add left-pad');
    const q = await question(msg.ts);
    expect(q.readable).toContain('Claude wants to run: `npm install left-pad');
    expect(q.readable).toMatch(/Approve.*Approve for this task.*Deny/s);
    // The progress message says what the task waits for.
    await system.emulator.waitFor(() =>
      system.emulator
        .thread(system.channel, msg.ts)
        .find((m) => /waiting for your approval/i.test(m.readable)),
    );

    await click(ALICE, q, 'permission_approve');

    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(await installed(task.id, 'left-pad')).toBe(true);
    const answered = system.emulator.messageAt(system.channel, q.ts);
    expect(answered?.readable).toContain(`Approved by`);
    expect(buttonValue(answered, 'permission_approve')).toBeUndefined();
    expect(await system.cloud.repos.permissionRequests.listPending({ taskId: task.id })).toEqual([]);
    expect(await auditOf(task.id)).toEqual(
      expect.arrayContaining(['permission.requested', 'permission.decided']),
    );
  });

  it('"Approve for this task" is asked once for the same command', async () => {
    system.model.setScript([
      turn.toolUse('Bash', install('is-odd')),
      turn.toolUse('Bash', install('is-odd')),
      turn.text('Installed twice.'),
    ]);
    const done = nextTerminal(system);
    const msg = await start('add is-odd twice');
    await click(ALICE, await question(msg.ts), 'permission_approve_task');
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    const asked = (await system.cloud.repos.audit.list({ resourceId: task.id })).filter(
      (a) => a.action === 'permission.requested',
    );
    expect(asked).toHaveLength(1);
    expect(await installed(task.id, 'is-odd')).toBe(true);
  });

  it('Deny: the command does not run and the task carries on', async () => {
    system.model.setScript([
      turn.toolUse('Bash', install('evil-pkg')),
      turn.text('Understood, not installing.'),
    ]);
    const done = nextTerminal(system);
    const msg = await start('add evil-pkg');
    const q = await question(msg.ts);
    await click(ALICE, q, 'permission_deny');
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(await installed(task.id, 'evil-pkg')).toBe(false);
    expect(system.emulator.messageAt(system.channel, q.ts)?.readable).toContain('Denied by');
  });

  it('someone else gets an ephemeral refusal; an admin may answer', async () => {
    system.model.setScript([turn.toolUse('Bash', install('by-admin')), turn.text('Done.')]);
    const done = nextTerminal(system);
    const msg = await start('add by-admin');
    const q = await question(msg.ts);
    const before = system.emulator.ephemerals(BOB).length;

    await click(BOB, q, 'permission_approve');

    const refusal = await system.emulator.waitFor(() => system.emulator.ephemerals(BOB)[before]);
    expect(JSON.stringify(refusal)).toMatch(/Only .* or an admin can answer/);
    expect(buttonValue(system.emulator.messageAt(system.channel, q.ts), 'permission_approve')).toBeDefined();
    await click(ADMIN, q, 'permission_approve');
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(await installed(task.id, 'by-admin')).toBe(true);
  });

  it('no answer within BEMATIC_APPROVAL_TIMEOUT_MS denies', async () => {
    system.model.setScript([turn.toolUse('Bash', install('too-late')), turn.text('Nobody answered.')]);
    const done = nextTerminal(system);
    const msg = await start('add too-late');
    const q = await question(msg.ts);
    await clock.advance(TIMEOUT_MS - 1);
    expect(
      await system.cloud.repos.permissionRequests.findById(buttonValue(q, 'permission_deny') ?? ''),
    ).toMatchObject({
      status: 'pending',
    });
    await clock.advance(1);
    const { event, task } = await done;
    expect(event).toBe('task.completed');
    expect(await installed(task.id, 'too-late')).toBe(false);
    await system.emulator.waitFor(() =>
      /Nobody answered in time/.test(system.emulator.messageAt(system.channel, q.ts)?.readable ?? ''),
    );
    const asked = (await system.cloud.repos.audit.list({ resourceId: task.id })).find(
      (a) => a.action === 'permission.decided',
    );
    expect(asked?.details).toMatchObject({ decision: 'timed_out' });
  });

  it('cancelling the task while it waits denies the request; nothing hangs', async () => {
    system.model.setScript([turn.toolUse('Bash', install('never')), turn.text('unreachable')]);
    const done = nextTerminal(system);
    const msg = await start('add never');
    const q = await question(msg.ts);
    const progress = (await readThread(system, msg.ts)).find((m) => buttonValue(m, 'task_cancel'));
    await system.emulator.clickButton({
      user: ALICE,
      channel: system.channel,
      messageTs: progress!.ts,
      actionId: 'task_cancel',
      value: buttonValue(progress, 'task_cancel')!,
    });
    const { event, task } = await done;
    expect(event).toBe('task.cancelled');
    expect(await installed(task.id, 'never')).toBe(false);
    await system.emulator.waitFor(() =>
      /ended before anyone answered/.test(system.emulator.messageAt(system.channel, q.ts)?.readable ?? ''),
    );
    expect(await system.cloud.repos.permissionRequests.listPending({ taskId: task.id })).toEqual([]);
    // A late click changes nothing.
    const before = system.emulator.ephemerals(ALICE).length;
    await click(ALICE, q, 'permission_approve');
    const late = await system.emulator.waitFor(() => system.emulator.ephemerals(ALICE)[before]);
    expect(JSON.stringify(late)).toMatch(/already been answered|not known/);
  });
});
