import { type ChildProcess, spawn } from 'node:child_process';
import type { SpawnedProcess, SpawnOptions } from '@anthropic-ai/claude-agent-sdk';

const STDERR_TAIL_CHARS = 4000;

/**
 * Spawns Claude Code for the SDK and keeps hold of the child, so the executor can
 * prove it is gone (and kill it hard) when a task is cancelled or times out.
 */
export class ClaudeProcessHandle {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stderrTail = '';

  constructor(
    private readonly onStderr: (text: string) => void,
    private readonly onSpawn?: (pid: number) => void,
  ) {}

  readonly spawn = (opts: SpawnOptions): SpawnedProcess => {
    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
      windowsHide: true,
    });
    this.child = child;
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      // An aborted spawn signal also emits 'error' while the process is still exiting; only
      // a failed spawn (no pid) means there is no exit to wait for.
      child.once('error', () => {
        if (child.pid === undefined) resolve();
      });
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
      this.onStderr(chunk);
    });
    if (child.pid !== undefined) this.onSpawn?.(child.pid);
    // ChildProcess satisfies the interface; the SDK only needs stdio, kill and exit events.
    return child as unknown as SpawnedProcess;
  };

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get stderr(): string {
    return this.stderrTail;
  }

  /** Resolves once the child has exited, killing it after `graceMs` if it lingers. */
  async ensureExited(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    let timer: NodeJS.Timeout | undefined;
    const graceful = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (!graceful) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }
}
