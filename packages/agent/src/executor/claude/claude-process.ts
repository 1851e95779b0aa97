import { type ChildProcess, spawn } from 'node:child_process';
import type { SpawnedProcess, SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import { systemClock, type TimerHandle } from '@bematic/protocol';
import type { ProcessLedger } from '../../process/process-ledger.js';
import { newRunTag, type ProcessRun, RUN_TAG_VAR, stopRun } from '../../process/process-tree.js';
import { type Watchdog, watchRun } from '../../process/watchdog.js';

const STDERR_TAIL_CHARS = 4000;
const groupsSupported = process.platform !== 'win32';

export interface ClaudeProcessOptions {
  taskId: string;
  onStderr: (text: string) => void;
  onSpawn?: ((pid: number) => void) | undefined;
  /** Where the group is recorded while it runs, for reaping after a crash. */
  ledger?: ProcessLedger | undefined;
  /** SIGTERM → SIGKILL grace, for the watchdog and for cancellation. */
  killGraceMs: number;
}

/**
 * Spawns Claude Code for the SDK as the leader of its own process group, tagged (RUN_TAG_VAR) so
 * that it and everything it starts (commands in their own sessions, the sandbox) can be ended
 * together: on cancel or timeout, after it exits (left-over background commands), by a watchdog
 * if the agent dies, and from the ledger at the next start if even the watchdog could not.
 */
export class ClaudeProcessHandle {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stderrTail = '';
  private watchdog: Watchdog | undefined;
  private readonly tag = newRunTag();
  private run: ProcessRun | undefined;

  constructor(private readonly opts: ClaudeProcessOptions) {}

  readonly spawn = (spawnOpts: SpawnOptions): SpawnedProcess => {
    const child = spawn(spawnOpts.command, spawnOpts.args, {
      cwd: spawnOpts.cwd,
      env: { ...spawnOpts.env, [RUN_TAG_VAR]: this.tag },
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: spawnOpts.signal,
      windowsHide: true,
      detached: groupsSupported,
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
      this.opts.onStderr(chunk);
    });
    if (child.pid !== undefined) {
      if (groupsSupported) {
        const run: ProcessRun = { pgid: child.pid, tag: this.tag };
        this.run = run;
        this.watchdog = watchRun(run, this.opts.killGraceMs);
        this.opts.ledger?.record(run, this.opts.taskId);
      }
      this.opts.onSpawn?.(child.pid);
    }
    // ChildProcess satisfies the interface; the SDK only needs stdio, kill and exit events.
    return child as unknown as SpawnedProcess;
  };

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get stderr(): string {
    return this.stderrTail;
  }

  /**
   * Resolves once Claude Code and every process of its group are gone. `stop`: end the group
   * now (SIGTERM, SIGKILL after the grace). Otherwise Claude Code gets `waitMs` to exit by itself
   * first; whatever it left running in its group is ended after that either way.
   */
  async ensureExited({ stop, waitMs }: { stop: boolean; waitMs: number }): Promise<void> {
    const child = this.child;
    if (child?.pid === undefined) return;
    const graceMs = this.opts.killGraceMs;
    const running = child.exitCode === null && child.signalCode === null;
    if (running && !stop) {
      let timer: TimerHandle | undefined;
      await Promise.race([
        this.exited,
        new Promise<void>((resolve) => {
          timer = systemClock.setTimeout(resolve, waitMs);
        }),
      ]);
      if (timer !== undefined) systemClock.clearTimeout(timer);
    }
    const run = this.run;
    if (run === undefined) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await this.exited;
      return;
    }
    const gone = await stopRun(run, { graceMs });
    await this.exited;
    if (!gone) return; // the watchdog and the ledger keep it until it is
    this.watchdog?.release();
    this.opts.ledger?.forget(run.pgid);
  }
}
