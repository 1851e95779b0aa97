import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type ScriptedModelServer, startScriptedModelServer, turn } from '@bematic/testkit';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BlackholeProxy } from './blackhole-proxy.js';
import { CLI, freePort, processes, type Started, taggedProcesses, until } from './harness.js';

const run = promisify(execFile);

/**
 * The cloud's reconnect grace and heartbeat for this file: short, so the partition plays out in seconds. The agent
 * stops at half the grace after the last frame, the cloud fails a heartbeat or two later than the grace: a margin
 * of 5 s for SIGTERM, the 3 s kill grace and SIGKILL, on a loaded machine.
 */
const GRACE_MS = 10_000;
const HEARTBEAT_MS = 500;

interface TaskRow {
  id: string;
  status: string;
  error_code: string | null;
  completed_at: number | null;
}

/**
 * A network partition between a real `bematic agent` and `bematic cloud` (a black-holing TCP proxy between
 * them: no FIN, no RST, only silence). The cloud fails the task AGENT_LOST after its reconnect grace; the
 * agent, told that grace at AUTH, must have stopped Claude Code before then, so nothing of the task runs or
 * writes once it is recorded failed.
 */
describe('network partition between agent and cloud', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let model: ScriptedModelServer;
  let proxy: BlackholeProxy;
  let cloud: Started;
  let agent: Started;
  let agentKey = '';
  const chaosRun = randomBytes(6).toString('hex');
  const consoleToken = randomBytes(16).toString('hex');
  const procs = processes(
    () => env,
    () => dir,
  );
  let port = 0;
  const webapp = () => path.join(dir, 'webapp');
  const query = <T>(sql: string, ...params: unknown[]): T[] => {
    const db = new Database(path.join(dir, 'bematic.db'), { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error('packages/cli/dist is missing: run `npm run build` first');
    dir = await mkdtemp(path.join(tmpdir(), 'bematic-partition-'));
    mkdirSync(webapp());
    model = await startScriptedModelServer();
    port = await freePort();
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      DATABASE_URL: `sqlite:${path.join(dir, 'bematic.db')}`,
      BEMATIC_LOG_LEVEL: 'info',
      BEMATIC_LOG_FORMAT: 'json',
      BEMATIC_CONSOLE_TOKEN: consoleToken,
    };
    const bematic = (...args: string[]) => run(process.execPath, [CLI, ...args], { env, cwd: dir });
    await bematic('migrate');
    agentKey = (await bematic('keys', 'create', 'box')).stdout.match(/bmk_\S+/)![0];
    await bematic('projects', 'add', 'console:local', 'box', webapp());
    cloud = procs.start(['cloud'], {
      PORT: String(port),
      HOST: '127.0.0.1',
      BEMATIC_RECONNECT_GRACE_MS: String(GRACE_MS),
      BEMATIC_HEARTBEAT_MS: String(HEARTBEAT_MS),
    });
    await cloud.waitFor(/Bematic cloud: http/);
    proxy = await BlackholeProxy.start({ host: '127.0.0.1', port });
    agent = procs.start(['agent'], {
      BEMATIC_CLOUD_URL: `http://127.0.0.1:${proxy.port}`,
      BEMATIC_AGENT_ID: 'box',
      BEMATIC_AGENT_KEY: agentKey,
      BEMATIC_AGENT_ROOTS: dir,
      BEMATIC_AGENT_STATE_DIR: path.join(dir, 'agent-state'),
      ANTHROPIC_API_KEY: 'sk-ant-test',
      ANTHROPIC_BASE_URL: model.url,
      BEMATIC_CPU_THRESHOLD: 'off',
      BEMATIC_MEMORY_THRESHOLD: 'off',
      BEMATIC_RECONNECT_MAX_MS: '250',
      BEMATIC_AGENT_PASS_ENV: 'CHAOS_RUN',
      CHAOS_RUN: chaosRun,
    });
    await agent.waitFor(/connected to the cloud/);
  });

  afterEach(({ task }) => {
    if (task.result?.state === 'fail') {
      console.log(
        `--- cloud ---\n${cloud?.output().slice(-8000)}\n--- agent ---\n${agent?.output().slice(-8000)}`,
      );
    }
  });

  afterAll(async () => {
    // An agent still running Claude Code (this test failed) would wait for it on SIGTERM.
    if (taggedProcesses(chaosRun).length > 0) await agent?.kill9();
    await procs.stopAll();
    await proxy?.close();
    await model?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the agent stops Claude Code before the cloud records AGENT_LOST; nothing is written after; the late result is a no-op', async () => {
    const marker = `partition-${randomBytes(3).toString('hex')}`;
    const ticks = path.join(webapp(), `${marker}.ticks`);
    // Writes a line every 50 ms for as long as it is let run.
    script(model, marker, ticks);
    const res = await fetch(`http://127.0.0.1:${port}/api/console/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${consoleToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: `ops run ${marker} keep writing`, channelId: 'console:local' }),
    });
    expect(res.status).toBe(202);
    await until('Claude Code writing', () => existsSync(ticks) && statSync(ticks).size > 0);
    const taskRow = () => query<TaskRow>('select * from tasks where prompt like ?', `%${marker}%`)[0];
    expect(taskRow()?.status).toBe('running');
    expect(taggedProcesses(chaosRun).length).toBeGreaterThan(0);

    proxy.blackhole();
    // The agent gives up first: its runs end with their processes while the cloud still counts the grace.
    await until(
      'Claude Code gone, or the task given up',
      () => taggedProcesses(chaosRun).length === 0 || taskRow()?.status !== 'running',
      GRACE_MS * 4,
    );
    const stoppedAt = Date.now();
    expect(taggedProcesses(chaosRun), 'Claude Code still running when the cloud gave the task up').toEqual(
      [],
    );
    expect(taskRow()?.status, 'the cloud has not given the task up yet').toBe('running');
    expect(agent.output()).toMatch(/stopping every task/);
    const ticksWhenStopped = statSync(ticks).size;

    let aliveAtTerminal: number[] = [];
    const lost = await until(
      'the cloud records AGENT_LOST',
      () => {
        const t = taskRow();
        if (t?.status !== 'running') aliveAtTerminal = taggedProcesses(chaosRun);
        return t?.status === 'running' ? undefined : t;
      },
      GRACE_MS * 4,
    );
    expect(lost).toMatchObject({ status: 'failed', error_code: 'AGENT_LOST' });
    expect(aliveAtTerminal).toEqual([]);
    expect(lost.completed_at!).toBeGreaterThanOrEqual(stoppedAt);
    expect(statSync(ticks).mtimeMs, 'last write before AGENT_LOST').toBeLessThanOrEqual(lost.completed_at!);
    expect(statSync(ticks).size).toBe(ticksWhenStopped);

    // The link heals: the agent reports it runs nothing; its own AGENT_LOST for the task changes nothing.
    const connections = agent.output().match(/connected to the cloud/g)?.length ?? 0;
    proxy.heal();
    await until(
      'the agent back',
      () => (agent.output().match(/connected to the cloud/g)?.length ?? 0) > connections,
      30_000,
    );
    const journal = path.join(dir, 'agent-state', 'outbound-terminal.jsonl');
    await until('the late result acknowledged', () => {
      const lines = readFileSync(journal, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { op: string; id?: string; frame?: string });
      const done = new Set(lines.filter((l) => l.op === 'done').map((l) => l.id));
      const adds = lines.filter((l) => l.op === 'add' && l.frame?.includes(lost.id));
      return adds.length > 0 && adds.every((l) => done.has(JSON.parse(l.frame!).id as string));
    });
    const terminalAudits = query<{ n: number }>(
      `select count(*) as n from audit_logs where resource_id = ? and action in ('task.completed', 'task.failed', 'task.cancelled')`,
      lost.id,
    )[0]?.n;
    expect(terminalAudits).toBe(1);
    expect(taskRow()).toMatchObject({ status: 'failed', error_code: 'AGENT_LOST' });
    expect(statSync(ticks).size).toBe(ticksWhenStopped);
  });
});

function script(model: ScriptedModelServer, marker: string, ticks: string): void {
  model.setConversations({
    [marker]: [
      turn.toolUse('Bash', {
        command: `while true; do echo tick >> ${ticks}; sleep 0.05; done`,
        description: 'Keep writing',
      }),
      turn.text('Stopped writing.'),
    ],
  });
}
