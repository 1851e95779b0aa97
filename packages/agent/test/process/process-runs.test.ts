import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessLedger } from '../../src/process/process-ledger.js';
import {
  newRunTag,
  type ProcessRun,
  RUN_TAG_VAR,
  runMembers,
  stopRun,
} from '../../src/process/process-tree.js';

const WATCHDOG = fileURLToPath(new URL('../../dist/process/watchdog.js', import.meta.url));
const runs: ProcessRun[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const run of runs.splice(0)) await stopRun(run, { graceMs: 0 });
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'bematic-runs-'));
  dirs.push(d);
  return d;
}

/** Something shaped like a Claude Code run: a group leader and a command in a session of its own. */
function fakeRun(tag: string | undefined): { run: ProcessRun; leader: ChildProcess } {
  // Untagged, nothing but the leader is findable, so it starts nothing else.
  const command = tag === undefined ? 'exec sleep 300' : 'setsid sleep 301 & exec sleep 300';
  const leader = spawn('/bin/sh', ['-c', command], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH, ...(tag !== undefined && { [RUN_TAG_VAR]: tag }) },
  });
  const run = { pgid: leader.pid!, tag: tag ?? newRunTag() };
  runs.push(run);
  return { run, leader };
}

/** Polls real process state (nothing announces that an unrelated process has gone), bounded. */
async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('process ledger', () => {
  it('a start after a crash ends the recorded runs, commands in other sessions included', async () => {
    const { run } = fakeRun(newRunTag());
    await until(() => runMembers(run).length === 2);
    const stateDir = tempDir();
    const ledger = new ProcessLedger(stateDir);
    ledger.record(run, 'task_1');

    // The next start of the agent reads the same state dir.
    const reaped = await new ProcessLedger(stateDir).reap({ graceMs: 1000 });

    expect(reaped).toEqual([{ pgid: run.pgid, taskId: 'task_1', wasAlive: true }]);
    expect(runMembers(run)).toEqual([]);
    expect(ledger.entries()).toEqual([]);
  });

  it('leaves alone a process that reused a recorded pid, and drops records it cannot read', async () => {
    const stateDir = tempDir();
    const { run, leader } = fakeRun(undefined); // untagged: not ours
    await until(() => runMembers({ pgid: run.pgid, tag: newRunTag() }).length > 0);
    const dir = path.join(stateDir, 'processes');
    const ledger = new ProcessLedger(stateDir);
    ledger.record(run, 'task_old');
    // As if the recorded process had started at another time: the pid now belongs to someone else.
    const file = path.join(dir, `${run.pgid}.json`);
    writeFileSync(file, JSON.stringify({ ...ledger.entries()[0], startTime: '1' }));
    writeFileSync(path.join(dir, 'garbage.json'), '{not json');

    const reaped = await ledger.reap({ graceMs: 100 });

    expect(reaped).toEqual([{ pgid: run.pgid, taskId: 'task_old', wasAlive: false }]);
    expect(leader.exitCode).toBeNull();
    expect(runMembers({ pgid: run.pgid, tag: newRunTag() }).length).toBeGreaterThan(0);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(path.join(dir, 'garbage.json'))).toBe(false);
  });
});

describe('watchdog', () => {
  /** A stand-in agent: starts a run, puts a watchdog on it, prints the run, then waits for `release`. */
  function parentWithRun(): Promise<{ parent: ChildProcess; run: ProcessRun }> {
    if (!existsSync(WATCHDOG)) throw new Error('packages/agent/dist is missing: run `npm run build` first');
    const script = `
      import { spawn } from 'node:child_process';
      import { watchRun } from ${JSON.stringify(WATCHDOG)};
      const tag = ${JSON.stringify(newRunTag())};
      // Untagged, nothing but the leader is findable, so it starts nothing else.
  const command = tag === undefined ? 'exec sleep 300' : 'setsid sleep 301 & exec sleep 300';
  const leader = spawn('/bin/sh', ['-c', command], {
        detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, ${RUN_TAG_VAR}: tag },
      });
      leader.unref();
      const dog = watchRun({ pgid: leader.pid, tag }, 500);
      console.log(JSON.stringify({ pgid: leader.pid, tag }));
      // Exits by itself once nothing is left to do: after "done" reached the watchdog's pipe.
      process.stdin.once('data', () => { dog.release(); process.stdin.destroy(); });
    `;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    return new Promise((resolve, reject) => {
      parent.stdout?.once('data', (d: Buffer) => {
        const run = JSON.parse(d.toString()) as ProcessRun;
        runs.push(run);
        resolve({ parent, run });
      });
      parent.once('exit', (code) => reject(new Error(`parent exited with ${code}`)));
    });
  }

  it('ends the run, commands in other sessions included, when the agent is killed with SIGKILL', async () => {
    const { parent, run } = await parentWithRun();
    await until(() => runMembers(run).length === 2);

    parent.kill('SIGKILL');

    await until(() => runMembers(run).length === 0);
  });

  it('does nothing once released: the run was handed over or is already gone', async () => {
    const { parent, run } = await parentWithRun();
    await until(() => runMembers(run).length === 2);
    const exited = new Promise((resolve) => parent.once('exit', resolve));
    parent.stdin?.write('release\n');
    await exited;
    // The watchdog saw "done" before its pipe closed: the run is untouched.
    expect(runMembers(run)).toHaveLength(2);
  });
});
