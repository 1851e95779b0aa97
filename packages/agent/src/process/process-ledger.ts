import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Clock, systemClock } from '@bematic/protocol';
import { z } from 'zod';
import { type ProcessRun, processStartTime, runMembers, stopRun } from './process-tree.js';

const Entry = z.object({
  pgid: z.number().int().positive(),
  tag: z.string().regex(/^[0-9a-f]{8,64}$/),
  /** Start time of the group leader, so a reused pid is not mistaken for ours. */
  startTime: z.string().optional(),
  taskId: z.string(),
  recordedAt: z.number(),
});
export type LedgerEntry = z.infer<typeof Entry>;

export interface ReapedRun {
  pgid: number;
  taskId: string;
  /** Whether anything of it was still alive (and was stopped). */
  wasAlive: boolean;
}

/**
 * The Claude Code runs this agent has going, one small file each under `<state dir>/processes/`.
 * Written synchronously when a run starts and removed once it is known gone, so after a crash
 * the next start finds (and ends) exactly what the previous run left behind.
 */
export class ProcessLedger {
  private readonly dir: string;

  constructor(
    stateDir: string,
    private readonly clock: Clock = systemClock,
  ) {
    this.dir = path.join(stateDir, 'processes');
  }

  record(run: ProcessRun, taskId: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const startTime = processStartTime(run.pgid);
    const entry: LedgerEntry = {
      ...run,
      taskId,
      recordedAt: this.clock.now(),
      ...(startTime !== undefined && { startTime }),
    };
    writeFileSync(this.file(run.pgid), JSON.stringify(entry), { mode: 0o600 });
  }

  forget(pgid: number): void {
    rmSync(this.file(pgid), { force: true });
  }

  entries(): LedgerEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const out: LedgerEntry[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const file = path.join(this.dir, name);
      try {
        const parsed = Entry.safeParse(JSON.parse(readFileSync(file, 'utf8')));
        if (parsed.success) {
          out.push(parsed.data);
          continue;
        }
      } catch {
        // unreadable: a half-written record of a run that cannot be identified
      }
      rmSync(file, { force: true });
    }
    return out;
  }

  /**
   * Ends every recorded run that is still alive and clears the ledger. When the leader's pid now
   * belongs to a process started later, that group is someone else's: only tagged processes count.
   */
  async reap({ graceMs }: { graceMs: number }): Promise<ReapedRun[]> {
    const reaped: ReapedRun[] = [];
    for (const entry of this.entries()) {
      const nowStarted = processStartTime(entry.pgid);
      const reused =
        entry.startTime !== undefined && nowStarted !== undefined && nowStarted !== entry.startTime;
      // Group 0 matches nothing: only the tag identifies the run then.
      const run: ProcessRun = { pgid: reused ? 0 : entry.pgid, tag: entry.tag };
      const wasAlive = runMembers(run).length > 0;
      if (wasAlive) await stopRun(run, { graceMs, clock: this.clock });
      this.forget(entry.pgid);
      reaped.push({ pgid: entry.pgid, taskId: entry.taskId, wasAlive });
    }
    return reaped;
  }

  private file(pgid: number): string {
    return path.join(this.dir, `${pgid}.json`);
  }
}
