import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ExecutionOutcome, ExecutionSink, Executor } from '@bematic/agent';
import { type Cloud, registerProject, type Task, type TaskEventMap } from '@bematic/cloud';
import type { TaskSubmit } from '@bematic/protocol';
import { SYSTEM_AGENT_ID, startTestSystem, type TestSystem, type TestSystemOptions } from '@bematic/testkit';
import { type Logger, pino } from 'pino';
import type { WebSocket } from 'ws';

export const now = (): number => performance.now();

export const silentLogger = (): Logger => pino({ level: 'silent' });

export const BENCH_USER = 'U0BENCH';

/** Wraps an executor and notes the moment each TASK_SUBMIT reaches it. */
export class TimingExecutor implements Executor {
  constructor(
    private readonly inner: Executor,
    private readonly onReceive: (task: TaskSubmit, at: number) => void,
  ) {}

  execute(task: TaskSubmit, sink: ExecutionSink, signal: AbortSignal): Promise<ExecutionOutcome> {
    this.onReceive(task, now());
    return this.inner.execute(task, sink, signal);
  }
}

/**
 * The whole system in this process (Slack emulator, Bolt, cloud, real agent
 * over loopback WebSocket), with the per-user rate limit lifted so the
 * benchmark measures the system rather than the limiter.
 */
export async function startBenchSystem(opts: TestSystemOptions): Promise<TestSystem> {
  const system = await startTestSystem({
    git: false,
    logger: silentLogger(),
    ...opts,
    settings: { BEMATIC_RATE_LIMIT: '10000000', BEMATIC_LOG_LEVEL: 'silent', ...opts.settings },
  });
  system.emulator.addUser({ id: BENCH_USER, name: 'bench' });
  return system;
}

/**
 * The agent runs one task per project directory at a time, so work meant to
 * run in parallel is spread over several projects, each with its own channel.
 */
export async function addProjects(
  system: TestSystem,
  count: number,
  kind: 'slack' | 'console',
  prefix = 'bench',
): Promise<string[]> {
  const channels: string[] = [];
  for (let i = 0; i < count; i++) {
    const localPath = path.join(system.root, `${prefix}-${i}`);
    await mkdir(localPath, { recursive: true });
    const channelId = kind === 'slack' ? `C0${prefix.toUpperCase()}${i}` : `console:${prefix}-${i}`;
    if (kind === 'slack') system.emulator.addChannel({ id: channelId, name: `${prefix}-${i}` });
    await registerProject(system.cloud.repos, {
      channelId,
      agentId: SYSTEM_AGENT_ID,
      localPath,
      name: `${prefix}-${i}`,
    });
    channels.push(channelId);
  }
  return channels;
}

const sessions = new WeakMap<Cloud, Promise<string>>();

/** Sign in once per cloud with a one-time login link, as a browser does; the session cookie. */
export function sessionCookie(cloud: Cloud): Promise<string> {
  let cookie = sessions.get(cloud);
  if (!cookie) {
    cookie = cloud.loginUrl().then(async (url) => {
      const res = await fetch(url, { redirect: 'manual' });
      const value = res.headers.get('set-cookie')?.split(';')[0];
      if (res.status !== 303 || !value) throw new Error(`console sign-in refused: HTTP ${res.status}`);
      return value;
    });
    sessions.set(cloud, cookie);
  }
  return cookie;
}

/** A dashboard read with the browser's session; the HTTP status, body read and dropped. */
export async function apiGet(cloud: Cloud, path: string): Promise<number> {
  const res = await fetch(`${cloud.url}${path}`, { headers: { cookie: await sessionCookie(cloud) } });
  await res.arrayBuffer();
  return res.status;
}

/** A dashboard read with the browser's session, answered 200: its JSON body. */
export async function apiJson<T>(cloud: Cloud, path: string): Promise<T> {
  const res = await fetch(`${cloud.url}${path}`, { headers: { cookie: await sessionCookie(cloud) } });
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** What a person types into the web console, through its HTTP API. */
export async function consoleMessage(cloud: Cloud, channelId: string, text: string): Promise<void> {
  const res = await fetch(`${cloud.url}/api/console/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: await sessionCookie(cloud) },
    body: JSON.stringify({ text, channelId }),
  });
  await res.arrayBuffer();
  if (res.status !== 202) throw new Error(`console message refused: HTTP ${res.status}`);
}

type Terminal = 'task.completed' | 'task.failed' | 'task.cancelled';
const TERMINALS: Terminal[] = ['task.completed', 'task.failed', 'task.cancelled'];

/** Counts terminal task events and lets a scenario await the n-th one. */
export class TerminalLog {
  readonly at = new Map<string, { event: Terminal; at: number; task: Task }>();
  private readonly offs: Array<() => void>;
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  private readonly taskWaiters = new Map<string, () => void>();

  constructor(cloud: Cloud) {
    this.offs = TERMINALS.map((event) =>
      cloud.events.on(event, (payload: TaskEventMap[Terminal]) => {
        this.at.set(payload.task.id, { event, at: now(), task: payload.task });
        this.taskWaiters.get(payload.task.id)?.();
        this.taskWaiters.delete(payload.task.id);
        this.waiters = this.waiters.filter((w) => {
          if (this.at.size < w.n) return true;
          w.resolve();
          return false;
        });
      }),
    );
  }

  count(event?: Terminal): number {
    if (!event) return this.at.size;
    return [...this.at.values()].filter((e) => e.event === event).length;
  }

  /** Resolves once n tasks have ended (rejects after timeoutMs so a stuck run still finishes). */
  waitForCount(n: number, timeoutMs: number): Promise<void> {
    if (this.at.size >= n) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.waiters.push({ n, resolve })),
      timeoutMs,
      `${n} terminal tasks (saw ${this.at.size})`,
    );
  }

  waitForTask(taskId: string, timeoutMs: number): Promise<void> {
    if (this.at.has(taskId)) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.taskWaiters.set(taskId, resolve)),
      timeoutMs,
      `task ${taskId} to end`,
    );
  }

  close(): void {
    for (const off of this.offs) off();
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls a condition nothing announces (a row count, say) every few milliseconds. */
export async function until(
  cond: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs: number,
  everyMs = 5,
): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!(await cond())) {
    if (now() > deadline) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs fn over items with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

let gcFn: (() => void) | null | undefined;

/** A full collection, so memory figures are live objects and not garbage (no-op if V8 refuses). */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) gcFn = exposed;
  }
  if (gcFn === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
  gcFn?.();
}

export interface MemorySnapshot {
  rss: number;
  heapUsed: number;
  external: number;
}

export function memory(): MemorySnapshot {
  collectGarbage();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external + m.arrayBuffers };
}

/**
 * Every frame the test system's agent reads off its socket, the moment it arrives and before the agent
 * parses it: a listener put ahead of the agent's own on its current WebSocket. Call `rehook()` before
 * each measurement; it attaches to a new socket after a reconnect.
 */
export function watchAgentFrames(
  system: TestSystem,
  onFrame: (data: Buffer, at: number) => void,
): { rehook(): void } {
  let hooked: WebSocket | undefined;
  const rehook = () => {
    const ws = (system.agent.connection as unknown as { ws?: WebSocket }).ws;
    if (!ws || ws === hooked) return;
    hooked = ws;
    ws.prependListener('message', (data: Buffer) => onFrame(data, now()));
  };
  rehook();
  return { rehook };
}
