import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { RawAgent } from '@bematic/testkit';

export const CLI = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));

/** mulberry32: a small seeded generator, so a failing run can be replayed with CHAOS_SEED. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resolves when `check` returns something other than undefined/false; polls a state (DB, files, /proc). */
export async function until<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A port nobody listens on now, so a restarted cloud can come back at the address its agents know. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface Started {
  child: ChildProcess;
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  exited: Promise<void>;
  output(): string;
  kill9(): Promise<void>;
}

/** `bematic …` OS processes; `stopAll` ends what is still running. */
export function processes(env: () => NodeJS.ProcessEnv, cwd: () => string) {
  const children: ChildProcess[] = [];
  const start = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Started => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...env(), ...extraEnv }, cwd: cwd() });
    children.push(child);
    let out = '';
    const append = (d: Buffer) => {
      out += d.toString();
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const waitFor = (pattern: RegExp) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) resolve(m);
        };
        child.stdout?.on('data', check);
        child.stderr?.on('data', check);
        child.once('exit', (code) => reject(new Error(`exited with ${code} before ${pattern}:\n${out}`)));
        check();
      });
    const kill9 = async () => {
      child.kill('SIGKILL');
      await exited;
    };
    return { child, waitFor, exited, output: () => out, kill9 };
  };
  const stopAll = async () => {
    const running = children.splice(0).filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of running) c.kill('SIGTERM');
    await Promise.all(running.map((c) => new Promise((r) => c.once('exit', r))));
  };
  return { start, stopAll };
}

/**
 * Pids of Claude Code runs (and what they started) that belong to this suite: they carry the agent's run tag
 * BEMATIC_CLAUDE_RUN and the suite's own CHAOS_RUN id, so other people's processes on the machine never count.
 */
export function taggedProcesses(chaosRun: string): number[] {
  const mine: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${name}/environ`, 'latin1');
    } catch {
      continue; // gone, or not ours to read
    }
    const vars = environ.split('\0');
    if (vars.includes(`CHAOS_RUN=${chaosRun}`) && vars.some((v) => v.startsWith('BEMATIC_CLAUDE_RUN='))) {
      mine.push(Number(name));
    }
  }
  return mine;
}

export { RAW_AGENT_METRICS, RawAgent } from '@bematic/testkit';

/** A raw protocol client authenticated as `agentId` that answers pings, as the chaos scenarios' hand-played agents. */
export function rawAgent(url: string, agentId: string, apiKey: string): Promise<RawAgent> {
  return RawAgent.accepted(
    url,
    { agentId, apiKey, agentVersion: 'chaos-raw', maxConcurrentTasks: 4 },
    { answerPings: true },
  );
}
