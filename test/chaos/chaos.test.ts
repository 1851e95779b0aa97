import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  type ModelScript,
  type ScriptedModelServer,
  type SlackEmulator,
  startScriptedModelServer,
  startSlackEmulator,
  turn,
} from '@bematic/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, openTestDatabase, type TestDatabase, testBackends } from './backend.js';
import {
  CLI,
  freePort,
  processes,
  RAW_AGENT_METRICS,
  RawAgent,
  rawAgent,
  type Started,
  seededRandom,
  taggedProcesses,
  until,
} from './harness.js';

const run = promisify(execFile);

/**
 * Chaos: `bematic cloud` and `bematic agent` as OS processes, the real Claude Code against the scripted model
 * server, and raw protocol clients playing agents. Each scenario breaks one seam (kill -9 of either process at
 * a chosen moment, a refusal, stale messages, duplicate Slack deliveries) and then checks the guarantees: every
 * task ends in exactly one terminal state, nothing happens after it, no Claude Code is left running, and every
 * refused task is delivered once the reason clears. Seeded (CHAOS_SEED) and bounded; it waits for states, not
 * for time.
 */
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));

const TERMINAL = ['completed', 'failed', 'cancelled'] as const;
const SLACK_CHANNEL = 'C0CHAOS';
const SIGNING_SECRET = 'chaos-signing-secret';

interface TaskRow {
  id: string;
  status: string;
  error_code: string | null;
  attempt: number;
  agent_id: string;
  prompt: string;
  result: string | null;
  completed_at: number | null;
}

const chaosSuite = (backend: Backend) => () => {
  // Each backend's run draws from its own generator, so a seed replays the same choices on either.
  const random = seededRandom(SEED);
  const shuffle = <T>(items: readonly T[]): T[] =>
    items
      .map((item) => ({ item, key: random() }))
      .sort((a, b) => a.key - b.key)
      .map((x) => x.item);
  const figures = {
    tasks: 0,
    agentKills: 0,
    cloudKills: 0,
    terminal: { completed: 0, failed: 0, cancelled: 0 } as Record<string, number>,
    settleMs: [] as number[],
    resendMs: [] as number[],
    staleIgnored: 0,
    slackDeliveries: 0,
  };
  let db: TestDatabase;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let model: ScriptedModelServer;
  let slack: SlackEmulator;
  let port: number;
  let cloud: Started;
  let agent: Started;
  const chaosRun = randomBytes(6).toString('hex');
  const consoleToken = randomBytes(16).toString('hex');
  const keys: Record<string, string> = {};
  const scripts: Record<string, ModelScript> = {};
  const procs = processes(
    () => env,
    () => dir,
  );
  const projectDir = (name: string) => path.join(dir, name);
  const baseUrl = () => `http://127.0.0.1:${port}`;
  const wsUrl = () => `ws://127.0.0.1:${port}/ws/agent`;
  const journal = () => path.join(dir, 'agent-state', 'outbound-terminal.jsonl');

  const bematic = (...args: string[]) => run(process.execPath, [CLI, ...args], { env, cwd: dir });
  const query = <T>(sql: string, ...params: unknown[]): Promise<T[]> => db.query<T>(sql, ...params);
  const taskByMarker = async (marker: string) =>
    (await query<TaskRow>('select * from tasks where prompt like ?', `%${marker}%`))[0];
  const terminalTask = async (marker: string) => {
    const t = await taskByMarker(marker);
    return t && (TERMINAL as readonly string[]).includes(t.status) ? t : undefined;
  };

  const startCloud = async () => {
    cloud = procs.start(['cloud'], { PORT: String(port), HOST: '127.0.0.1' });
    await cloud.waitFor(/Bematic cloud: http/);
  };
  const startAgent = async () => {
    agent = procs.start(['agent'], {
      BEMATIC_CLOUD_URL: baseUrl(),
      BEMATIC_AGENT_ID: 'box',
      BEMATIC_AGENT_KEY: keys.box!,
      BEMATIC_AGENT_ROOTS: dir,
      BEMATIC_AGENT_STATE_DIR: path.join(dir, 'agent-state'),
      MAX_CONCURRENT_TASKS: '2',
      ANTHROPIC_API_KEY: 'sk-ant-test',
      ANTHROPIC_BASE_URL: model.url,
      // The machine's load is not what these scenarios vary: refusals come from raw clients.
      BEMATIC_CPU_THRESHOLD: 'off',
      BEMATIC_MEMORY_THRESHOLD: 'off',
      BEMATIC_RECONNECT_MAX_MS: '250',
      // Claude Code and every command it runs carry the suite's id beside the agent's run tag.
      BEMATIC_AGENT_PASS_ENV: 'CHAOS_RUN',
      CHAOS_RUN: chaosRun,
      BEMATIC_LOG_LEVEL: 'info',
    });
    await agent.waitFor(/connected to the cloud/);
  };
  /** Resolves once the agent has authenticated `n` times in its life (it reconnects after a cloud restart). */
  const agentConnections = (n: number) =>
    until(
      `agent connection #${n}`,
      () => (agent.output().match(/connected to the cloud/g)?.length ?? 0) >= n,
    );

  const script = (marker: string, turns: ModelScript) => {
    scripts[marker] = turns;
    model.setConversations({ ...scripts });
  };
  const postConsole = async (text: string, channelId = 'console:local') => {
    const res = await fetch(`${baseUrl()}/api/console/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${consoleToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text, channelId }),
    });
    expect(res.status).toBe(202);
    figures.tasks += 1;
  };
  const journalLines = (): Array<{ op: string; frame?: string; id?: string }> =>
    existsSync(journal())
      ? readFileSync(journal(), 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as { op: string; frame?: string; id?: string })
      : [];
  /** The envelope ids of the task's terminal messages in the journal that no `done` line has cleared yet. */
  const journalPending = (taskId: string) => {
    const lines = journalLines();
    const done = new Set(lines.filter((l) => l.op === 'done').map((l) => l.id));
    return lines
      .filter((l) => l.op === 'add' && l.frame !== undefined)
      .map((l) => JSON.parse(l.frame!) as { id: string; payload: { taskId: string } })
      .filter((f) => f.payload.taskId === taskId && !done.has(f.id));
  };

  /** The guarantees, after every scenario, over every task the database holds. */
  const checkGuarantees = async (sideEffects: Array<{ file: string; marker: string }>) => {
    const tasks = await until('every task terminal', async () => {
      const all = await query<TaskRow>('select * from tasks');
      return all.every((t) => (TERMINAL as readonly string[]).includes(t.status)) ? all : undefined;
    });
    for (const t of tasks) {
      const terminalAudits = (
        await query<{ n: number }>(
          `select count(*) as n from audit_logs where resource_id = ? and action in ('task.completed', 'task.failed', 'task.cancelled')`,
          t.id,
        )
      )[0]?.n;
      expect(terminalAudits, `task ${t.id} (${t.status}) terminal transitions`).toBe(1);
    }
    for (const { file, marker } of sideEffects) {
      const t = (await taskByMarker(marker))!;
      expect(existsSync(file), `${file} written`).toBe(true);
      expect(statSync(file).mtimeMs, `${file} written before ${t.id} ended`).toBeLessThanOrEqual(
        t.completed_at!,
      );
    }
    expect(taggedProcesses(chaosRun), 'Claude Code processes of this suite still running').toEqual([]);
    return tasks;
  };

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error('packages/cli/dist is missing: run `npm run build` first');
    console.log(`chaos seed ${SEED} (replay with CHAOS_SEED=${SEED})`);
    dir = await mkdtemp(path.join(tmpdir(), 'bematic-chaos-'));
    db = await openTestDatabase(backend, dir);
    for (const p of ['webapp', 'api', 'rawapp']) mkdirSync(projectDir(p));
    slack = await startSlackEmulator();
    slack.addChannel({ id: SLACK_CHANNEL, name: 'chaos' });
    model = await startScriptedModelServer();
    port = await freePort();
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      DATABASE_URL: db.url,
      BEMATIC_LOG_LEVEL: 'info',
      BEMATIC_LOG_FORMAT: 'json',
      BEMATIC_CONSOLE_TOKEN: consoleToken,
      SLACK_BOT_TOKEN: slack.botToken,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slack.apiUrl,
    };
    await bematic('migrate');
    for (const id of ['box', 'raw', 'raw2']) {
      const created = await bematic('keys', 'create', id);
      keys[id] = created.stdout.match(/bmk_\S+/)![0];
    }
    await bematic('projects', 'add', 'console:local', 'box', projectDir('webapp'));
    await bematic('projects', 'add', 'console:api', 'box', projectDir('api'), '--name', 'api');
    await bematic('projects', 'add', SLACK_CHANNEL, 'box', projectDir('webapp'), '--name', 'webapp-slack');
    await bematic('projects', 'add', 'console:raw', 'raw', projectDir('rawapp'));
    // No command sets fallbacks yet; the raw project's fallback agent is raw2.
    await query(`update projects set fallback_agent_ids = '["raw2"]' where channel_id = 'console:raw'`);
    await startCloud();
    await startAgent();
  });

  afterEach(({ task }) => {
    // What the processes said is the only record of a failed run; print the end of it with the seed.
    if (task.result?.state === 'fail') {
      console.log(
        `seed ${SEED}\n--- cloud ---\n${cloud?.output().slice(-8000)}\n--- agent ---\n${agent?.output().slice(-8000)}`,
      );
    }
  });

  afterAll(async () => {
    await procs.stopAll();
    await model?.close();
    await slack?.stop();
    const settle = figures.settleMs.length ? Math.max(...figures.settleMs) : 0;
    const resend = figures.resendMs.length ? Math.max(...figures.resendMs) : 0;
    console.log(
      `chaos summary: backend=${backend} seed=${SEED} tasks=${figures.tasks} kills=${figures.agentKills + figures.cloudKills} ` +
        `(agent ${figures.agentKills}, cloud ${figures.cloudKills}) terminal=completed:${figures.terminal.completed}` +
        `/failed:${figures.terminal.failed}/cancelled:${figures.terminal.cancelled} ` +
        `settle_max=${settle}ms resend_max=${resend}ms stale_ignored=${figures.staleIgnored} ` +
        `slack_deliveries=${figures.slackDeliveries}`,
    );
    await db?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('kill -9 of the agent mid-task: its Claude Code ends with it, the task fails AGENT_LOST once, nothing runs after', async () => {
    const marker = `chaos-k-${randomBytes(3).toString('hex')}`;
    const started = path.join(projectDir('webapp'), `${marker}.started`);
    const late = path.join(projectDir('webapp'), `${marker}.late`);
    script(marker, [
      turn.toolUse('Bash', {
        command: `touch ${started} && sleep 120 && touch ${late}`,
        description: 'A long step',
      }),
      turn.text('Finished the long step.'),
    ]);
    await postConsole(`ops run ${marker} the long step`);
    await until('the long step running', () => existsSync(started));
    expect(taggedProcesses(chaosRun).length).toBeGreaterThan(0);

    const killedAt = Date.now();
    await agent.kill9();
    figures.agentKills += 1;
    // The seed decides whether the agent comes back at once (its start must reap what the dead one left before
    // it reports at AUTH) or only after the watchdog, which ends the run when the agent's pipe closes.
    if (random() < 0.5) {
      await until('Claude Code gone after the agent', () => taggedProcesses(chaosRun).length === 0, 20_000);
    }
    await startAgent();
    let aliveAtTerminal: number[] = [];
    const task = await until('the task terminal', async () => {
      const t = await terminalTask(marker);
      if (t) aliveAtTerminal = taggedProcesses(chaosRun);
      return t;
    });
    figures.settleMs.push(Date.now() - killedAt);
    // AGENT_LOST is recorded only once its processes are gone.
    expect(aliveAtTerminal).toEqual([]);
    expect(task).toMatchObject({ status: 'failed', error_code: 'AGENT_LOST' });
    await checkGuarantees([{ file: started, marker }]);
    expect(existsSync(late)).toBe(false);
  });

  it('kill -9 of the cloud mid-task: the agent finishes, keeps the results and delivers them to the restarted cloud', async () => {
    const markers = [
      `chaos-c-${randomBytes(3).toString('hex')}`,
      `chaos-c-${randomBytes(3).toString('hex')}`,
    ];
    const channels = ['console:local', 'console:api'];
    const files = markers.map((m, i) => path.join(projectDir(i === 0 ? 'webapp' : 'api'), `${m}.fx`));
    markers.forEach((m, i) => {
      script(m, [
        turn.toolUse('Bash', { command: `touch ${files[i]}`, description: 'Mark the work' }),
        turn.text(`Marked ${m}.`),
      ]);
    });
    // Both tasks wait at their first model call while the cloud dies; the seed picks the order they are sent.
    model.hold();
    for (const i of shuffle([0, 1])) await postConsole(`ops run ${markers[i]} mark the work`, channels[i]);
    for (const m of markers) {
      await model.waitForRequest((r) => r.mainLoop && JSON.stringify(r.messages).includes(m));
    }
    const ids: string[] = [];
    for (const m of markers) ids.push((await taskByMarker(m))!.id);
    const connectionsBefore = agent.output().match(/connected to the cloud/g)?.length ?? 0;

    const killedAt = Date.now();
    await cloud.kill9();
    figures.cloudKills += 1;
    model.release();
    // With the cloud gone, both results wait in the agent's journal.
    for (const id of ids) await until(`result of ${id} journalled`, () => journalPending(id).length > 0);

    await startCloud();
    await agentConnections(connectionsBefore + 1);
    for (const m of markers) await until(`${m} terminal`, () => terminalTask(m));
    figures.settleMs.push(Date.now() - killedAt);
    for (const m of markers) expect(await taskByMarker(m)).toMatchObject({ status: 'completed' });
    // Acknowledged: the journal has let go of them.
    for (const id of ids) await until(`journal cleared for ${id}`, () => journalPending(id).length === 0);
    await checkGuarantees(markers.map((marker, i) => ({ file: files[i]!, marker })));
  });

  it("kill -9 of the cloud between the agent's write of the result and the cloud's commit: the result survives", async () => {
    const marker = `chaos-w-${randomBytes(3).toString('hex')}`;
    const fx = path.join(projectDir('webapp'), `${marker}.fx`);
    const gate = path.join(projectDir('webapp'), `${marker}.go`);
    script(marker, [
      turn.toolUse('Bash', {
        command: `touch ${fx} && while [ ! -e ${gate} ]; do sleep 0.05; done`,
        description: 'Mark the work and wait',
      }),
      turn.text(`Marked ${marker}.`),
    ]);
    await postConsole(`ops run ${marker} mark the work`);
    await until('the step running', () => existsSync(fx));
    const id = (await taskByMarker(marker))!.id;
    // Hold the model's last answer, freeze the cloud, then let the task finish: the agent writes the result
    // to a socket nobody reads and journals it; the cloud dies before it could commit anything.
    model.hold();
    writeFileSync(gate, '');
    await model.waitForRequest(
      (r) =>
        r.mainLoop &&
        JSON.stringify(r.messages).includes('tool_result') &&
        JSON.stringify(r.messages).includes(marker),
    );
    const connectionsBefore = agent.output().match(/connected to the cloud/g)?.length ?? 0;
    cloud.child.kill('SIGSTOP');
    model.release();
    await until('result journalled, not acknowledged', () => journalPending(id).length > 0);
    expect((await taskByMarker(marker))?.status).toBe('running');
    const killedAt = Date.now();
    await cloud.kill9();
    figures.cloudKills += 1;

    await startCloud();
    await agentConnections(connectionsBefore + 1);
    const task = await until('the task terminal', () => terminalTask(marker));
    figures.settleMs.push(Date.now() - killedAt);
    expect(task).toMatchObject({ status: 'completed' });
    await until('journal cleared', () => journalPending(id).length === 0);
    await checkGuarantees([{ file: fx, marker }]);
  });

  it('an agent of protocol v1 gets a coded refusal at AUTH, and the cloud carries on', async () => {
    const old = await RawAgent.open(wsUrl(), { answerPings: true });
    old.sendRaw({
      v: 1,
      type: 'AUTH_REQUEST',
      id: 'v1-auth',
      ts: Date.now(),
      payload: {
        agentId: 'raw',
        apiKey: keys.raw,
        agentVersion: '0.9.0',
        maxConcurrentTasks: 1,
        activeTaskIds: [],
        bufferedTaskIds: [],
      },
    });
    await old.closed;
    // The refusal comes in the peer's own envelope version, which `parse` (v2) rejects: read it as JSON.
    const reply = old.rawFrames.find((f) => f.type === 'AUTH_RESPONSE');
    expect(reply).toMatchObject({ v: 1, payload: { success: false, code: 'UNSUPPORTED_PROTOCOL_VERSION' } });
    expect(cloud.child.exitCode).toBeNull();
    expect((await fetch(`${baseUrl()}/healthz`)).status).toBe(200);
  });

  it('refusals are resent as soon as the reason clears; stale-attempt messages are audited and ignored', async () => {
    const raw = await rawAgent(wsUrl(), 'raw', keys.raw!);
    const submitOf = async (marker: string) => {
      const taskId = (await until(`task ${marker} created`, () => taskByMarker(marker))).id;
      return raw.next('TASK_SUBMIT', (m) => m.payload.taskId === taskId);
    };
    const overload = { resource: 'cpu' as const, percent: 97, sustainedMs: 30_000 };

    // 1. OVERLOADED, then AGENT_STATUS {overloaded:false}: resent with a new attempt.
    await postConsole('ops run chaos-r1 refused then delivered', 'console:raw');
    const first = await submitOf('chaos-r1');
    const taskId = first.payload.taskId;
    raw.send('TASK_ACK', {
      taskId,
      attempt: first.payload.attempt,
      accepted: false,
      queued: false,
      code: 'OVERLOADED',
      reason: 'CPU busy',
      overload,
    });
    await until(
      'task queued after the refusal',
      async () => (await taskByMarker('chaos-r1'))?.status === 'queued',
    );
    const clearedAt = Date.now();
    raw.send('AGENT_STATUS', { overloaded: false, maxConcurrentTasks: 4, metrics: RAW_AGENT_METRICS });
    const second = await submitOf('chaos-r1');
    figures.resendMs.push(Date.now() - clearedAt);
    expect(second.payload.attempt).toBeGreaterThan(first.payload.attempt);

    // 2. AT_CAPACITY while another task holds the slot; the other's terminal message frees it: resent.
    raw.send('TASK_ACK', {
      taskId,
      attempt: second.payload.attempt,
      accepted: false,
      queued: false,
      code: 'AT_CAPACITY',
    });
    await until('task queued at capacity', async () => (await taskByMarker('chaos-r1'))?.status === 'queued');
    await postConsole('ops run chaos-r2 holds the slot', 'console:raw');
    const other = await submitOf('chaos-r2');
    expect(other.payload.taskId).not.toBe(taskId);
    raw.send('TASK_ACK', {
      taskId: other.payload.taskId,
      attempt: other.payload.attempt,
      accepted: true,
      queued: false,
    });
    const freedAt = Date.now();
    raw.send('TASK_COMPLETE', {
      taskId: other.payload.taskId,
      attempt: other.payload.attempt,
      result: 'held the slot',
      metrics: zeroMetrics,
      filesChanged: [],
      commandsRun: [],
    });
    await raw.next('TASK_RESULT_ACK', (m) => m.payload.taskId === other.payload.taskId);
    const third = await submitOf('chaos-r1');
    figures.resendMs.push(Date.now() - freedAt);
    expect(third.payload.attempt).toBeGreaterThan(second.payload.attempt);
    raw.send('TASK_ACK', { taskId, attempt: third.payload.attempt, accepted: true, queued: false });
    await until('task submitted or running', async () =>
      ['submitted', 'running'].includes((await taskByMarker('chaos-r1'))?.status ?? ''),
    );

    // 3. Messages of earlier attempts, in a seeded order: audited as stale, nothing changes, no ack.
    const stale = shuffle([first.payload.attempt, second.payload.attempt]).flatMap((attempt) =>
      shuffle(['progress', 'complete', 'error'] as const).map((kind) => ({ attempt, kind })),
    );
    for (const { attempt, kind } of stale) {
      if (kind === 'progress')
        raw.send('TASK_PROGRESS', { taskId, attempt, kind: 'status', message: 'from an old attempt' });
      else if (kind === 'complete')
        raw.send('TASK_COMPLETE', {
          taskId,
          attempt,
          result: 'stale',
          metrics: zeroMetrics,
          filesChanged: [],
          commandsRun: [],
        });
      else
        raw.send('TASK_ERROR', {
          taskId,
          attempt,
          error: 'stale',
          recoverable: false,
          errorCode: 'EXECUTION_FAILED',
        });
    }
    const staleTerminal = stale.filter((s) => s.kind !== 'progress').length;
    await until('stale messages audited', async () => {
      const n = (
        await query<{ n: number }>(
          `select count(*) as n from audit_logs where action = 'task.stale_message' and resource_id = ?`,
          taskId,
        )
      )[0]!.n;
      return n >= staleTerminal ? n : undefined;
    });
    figures.staleIgnored += staleTerminal;
    expect((await taskByMarker('chaos-r1'))?.status).not.toMatch(/completed|failed/);
    expect(raw.has('TASK_RESULT_ACK', (m) => (m.payload as { taskId: string }).taskId === taskId)).toBe(
      false,
    );

    // The current attempt's result is the one that counts.
    raw.send('TASK_COMPLETE', {
      taskId,
      attempt: third.payload.attempt,
      result: 'delivered after two refusals',
      metrics: zeroMetrics,
      filesChanged: [],
      commandsRun: [],
    });
    await raw.next(
      'TASK_RESULT_ACK',
      (m) => m.payload.taskId === taskId && m.payload.attempt === third.payload.attempt,
    );
    expect(await taskByMarker('chaos-r1')).toMatchObject({
      status: 'completed',
      result: 'delivered after two refusals',
    });

    // 4. OVERLOADED and staying so; the project's fallback agent comes online: it gets the task.
    await postConsole('ops run chaos-r3 taken over by the fallback', 'console:raw');
    const busy = await submitOf('chaos-r3');
    raw.send('TASK_ACK', {
      taskId: busy.payload.taskId,
      attempt: busy.payload.attempt,
      accepted: false,
      queued: false,
      code: 'OVERLOADED',
      overload,
    });
    await until('task queued, overloaded', async () => (await taskByMarker('chaos-r3'))?.status === 'queued');
    const onlineAt = Date.now();
    const fallback = await rawAgent(wsUrl(), 'raw2', keys.raw2!);
    const moved = await fallback.next('TASK_SUBMIT', (m) => m.payload.taskId === busy.payload.taskId);
    figures.resendMs.push(Date.now() - onlineAt);
    fallback.send('TASK_ACK', {
      taskId: moved.payload.taskId,
      attempt: moved.payload.attempt,
      accepted: true,
      queued: false,
    });
    // The overloaded agent's late word about its attempt is stale now.
    raw.send('TASK_ERROR', {
      taskId: moved.payload.taskId,
      attempt: busy.payload.attempt,
      error: 'late',
      recoverable: true,
      errorCode: 'EXECUTION_FAILED',
    });
    fallback.send('TASK_COMPLETE', {
      taskId: moved.payload.taskId,
      attempt: moved.payload.attempt,
      result: 'done by the fallback',
      metrics: zeroMetrics,
      filesChanged: [],
      commandsRun: [],
    });
    await fallback.next('TASK_RESULT_ACK', (m) => m.payload.taskId === moved.payload.taskId);
    expect(await taskByMarker('chaos-r3')).toMatchObject({ status: 'completed', agent_id: 'raw2' });
    await fallback.close();
    raw.send('AGENT_STATUS', { overloaded: false, maxConcurrentTasks: 4, metrics: RAW_AGENT_METRICS });

    // 5. AT_CAPACITY (healthy, just full) and the fallback comes back online: it takes the task at once.
    await postConsole('ops run chaos-r4 full agent, fallback returns', 'console:raw');
    const full = await submitOf('chaos-r4');
    raw.send('TASK_ACK', {
      taskId: full.payload.taskId,
      attempt: full.payload.attempt,
      accepted: false,
      queued: false,
      code: 'AT_CAPACITY',
    });
    await until('task queued, full', async () => (await taskByMarker('chaos-r4'))?.status === 'queued');
    const backAt = Date.now();
    const returned = await rawAgent(wsUrl(), 'raw2', keys.raw2!);
    const taken = await returned.next('TASK_SUBMIT', (m) => m.payload.taskId === full.payload.taskId);
    figures.resendMs.push(Date.now() - backAt);
    returned.send('TASK_ACK', {
      taskId: taken.payload.taskId,
      attempt: taken.payload.attempt,
      accepted: true,
      queued: false,
    });
    returned.send('TASK_COMPLETE', {
      taskId: taken.payload.taskId,
      attempt: taken.payload.attempt,
      result: 'done by the returning fallback',
      metrics: zeroMetrics,
      filesChanged: [],
      commandsRun: [],
    });
    await returned.next('TASK_RESULT_ACK', (m) => m.payload.taskId === taken.payload.taskId);
    expect(await taskByMarker('chaos-r4')).toMatchObject({ status: 'completed', agent_id: 'raw2' });
    await raw.close();
    await returned.close();
    await checkGuarantees([]);
  });

  it('the same Slack event delivered three times makes one task, also across a kill -9 of the cloud', async () => {
    const marker = `chaos-s-${randomBytes(3).toString('hex')}`;
    const fx = path.join(projectDir('webapp'), `${marker}.fx`);
    script(marker, [
      turn.toolUse('Bash', { command: `touch ${fx}`, description: 'Mark' }),
      turn.text('Marked.'),
    ]);
    const { events } = slack.prepareMention({
      user: 'U0CHAOS',
      channel: SLACK_CHANNEL,
      text: `ops run ${marker}`,
    });
    const mention = events.find((e) => JSON.stringify(e).includes('"app_mention"'))!;
    const deliver = async (options: { retryNum?: number; retryReason?: string }) => {
      const result = await slack.deliverHttp(`${baseUrl()}/slack/events`, SIGNING_SECRET, mention, options);
      expect(result.status).toBe(200);
      figures.slackDeliveries += 1;
    };
    // Original, Slack's retry, and a replay of the original, in a seeded order; the cloud dies after the first.
    const [firstDelivery, ...later] = shuffle([{}, { retryNum: 1, retryReason: 'http_timeout' }, {}]);
    await deliver(firstDelivery!);
    figures.tasks += 1;
    await until('the task terminal', () => terminalTask(marker));
    const connectionsBefore = agent.output().match(/connected to the cloud/g)?.length ?? 0;
    await cloud.kill9();
    figures.cloudKills += 1;
    await startCloud();
    for (const options of later) await deliver(options);
    await agentConnections(connectionsBefore + 1);
    expect(await query<TaskRow>('select * from tasks where prompt like ?', `%${marker}%`)).toHaveLength(1);
    expect(await taskByMarker(marker)).toMatchObject({ status: 'completed' });
    const tasks = await checkGuarantees([{ file: fx, marker }]);
    for (const t of tasks) figures.terminal[t.status] = (figures.terminal[t.status] ?? 0) + 1;
    expect(tasks).toHaveLength(figures.tasks);
  });
};

const zeroMetrics = {
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  costUsd: 0,
  durationMs: 0,
  numTurns: 0,
  continuations: 0,
};

for (const backend of testBackends()) describe(`chaos on ${backend} (seed ${SEED})`, chaosSuite(backend));
