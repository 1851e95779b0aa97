import { type ChildProcess, fork } from 'node:child_process';
import { withTimeout } from './harness.js';

/**
 * A bench client child process (lifecycle-client, swarm-client) driven over IPC: commands in, replies
 * `{type}` out, a `{type: 'failed', error}` reply rejects whatever waits. Kept out of the measured
 * process so the cloud's CPU and memory are its own.
 */
export class ClientProcess<Cmd extends { type: string }, Reply extends { type: string }> {
  private readonly child: ChildProcess;
  readonly exited: Promise<void>;

  constructor(module: URL, execArgv: string[] = []) {
    this.child = fork(module, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The first reply of type `expect` from now on. */
  reply<T extends Reply['type']>(expect: T, timeoutMs: number): Promise<Extract<Reply, { type: T }>> {
    let cleanup = () => {};
    const answer = new Promise<Extract<Reply, { type: T }>>((resolve, reject) => {
      const onMessage = (m: unknown) => {
        const type = (m as { type?: unknown }).type;
        if (type === 'failed') {
          cleanup();
          reject(new Error((m as { error?: string }).error ?? 'client failed'));
        }
        if (type !== expect) return;
        cleanup();
        resolve(m as Extract<Reply, { type: T }>);
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`client process exited (${code}) before replying ${expect}`));
      };
      cleanup = () => {
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
    });
    return withTimeout(answer, timeoutMs, `client ${expect}`).finally(cleanup);
  }

  send(cmd: Cmd): void {
    this.child.send(cmd);
  }

  request<T extends Reply['type']>(
    cmd: Cmd,
    expect: T,
    timeoutMs: number,
  ): Promise<Extract<Reply, { type: T }>> {
    const answer = this.reply(expect, timeoutMs);
    this.send(cmd);
    return answer;
  }

  /** Sends `stop` and waits for the exit; kills it if it does not go. */
  async stop(stop: Cmd): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.send(stop);
    await withTimeout(this.exited, 10_000, 'client exit').catch(() => this.child.kill('SIGKILL'));
  }
}

/** Resident set size of a process in bytes (Linux /proc), or 0 when unreadable. */
export async function rssOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  try {
    const { readFile } = await import('node:fs/promises');
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}
