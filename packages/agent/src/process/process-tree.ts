import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { type Clock, systemClock } from '@bematic/protocol';

/**
 * Set in the environment of every Claude Code process the agent starts, and inherited by all it
 * starts in turn. Claude Code runs each command in a new session (and the sandbox in yet another),
 * and a process whose parent died is re-parented, so neither the process group nor the parent
 * links find everything; the inherited variable does.
 */
export const RUN_TAG_VAR = 'BEMATIC_CLAUDE_RUN';

/** One Claude Code process and everything it started: its group, and every process carrying its tag. */
export interface ProcessRun {
  /** The group Claude Code leads (its pid). */
  pgid: number;
  tag: string;
}

const POLL_MS = 50;

export function newRunTag(): string {
  return randomBytes(12).toString('hex');
}

const hasProc = (() => {
  try {
    return readdirSync('/proc').includes('self');
  } catch {
    return false;
  }
})();

/** Fields of /proc/<pid>/stat after the command name (which may itself contain spaces and parentheses). */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * When the process started (clock ticks since boot), so a recorded pid can be told apart from a
 * later process that reused the number. Undefined where there is no /proc or the process is gone.
 */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/**
 * Live processes of a run: members of its group, and processes whose environment carries its tag.
 * Zombies do not count: they run nothing and linger until whoever inherited them reaps them.
 * Without /proc (macOS) the kernel only answers whether the group has a member.
 */
export function runMembers(run: ProcessRun): number[] {
  const byGroup = Number.isInteger(run.pgid) && run.pgid > 1;
  if (!hasProc) return byGroup && signal(-run.pgid, 0) ? [run.pgid] : [];
  const marker = `${RUN_TAG_VAR}=${run.tag}`;
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields === undefined) continue;
    const [state, , group] = fields;
    if (state === 'Z' || state === 'X') continue;
    if ((byGroup && Number(group) === run.pgid) || carries(entry, marker)) out.push(Number(entry));
  }
  return out;
}

function carries(pid: string, marker: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker);
  } catch {
    return false; // gone, or not ours to read
  }
}

function signal(target: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(target, sig);
    return true;
  } catch (err) {
    // EPERM: it exists but is not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends `sig` to the run's group and to every other process carrying its tag. */
export function signalRun(run: ProcessRun, sig: NodeJS.Signals): void {
  if (Number.isInteger(run.pgid) && run.pgid > 1) signal(-run.pgid, sig);
  for (const pid of runMembers(run)) if (pid !== process.pid) signal(pid, sig);
}

/** Resolves true once the run has no live process, false if `ms` passes first. */
export async function waitForRunGone(
  run: ProcessRun,
  ms: number,
  clock: Clock = systemClock,
): Promise<boolean> {
  const deadline = clock.now() + ms;
  for (;;) {
    if (runMembers(run).length === 0) return true;
    if (clock.now() >= deadline) return false;
    await new Promise<void>((resolve) => clock.setTimeout(resolve, POLL_MS));
  }
}

/**
 * Ends a run: SIGTERM to all of it, then SIGKILL to whatever is still alive after the grace
 * (again, for anything started meanwhile). Resolves true once nothing of it is left.
 */
export async function stopRun(
  run: ProcessRun,
  { graceMs, clock = systemClock }: { graceMs: number; clock?: Clock },
): Promise<boolean> {
  if (runMembers(run).length === 0) return true;
  signalRun(run, 'SIGTERM');
  if (await waitForRunGone(run, graceMs, clock)) return true;
  for (let round = 0; round < 20; round++) {
    signalRun(run, 'SIGKILL');
    if (await waitForRunGone(run, 250, clock)) return true;
  }
  return false;
}
