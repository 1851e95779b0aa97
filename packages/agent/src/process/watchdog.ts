import { spawn } from 'node:child_process';
import { type ProcessRun, RUN_TAG_VAR } from './process-tree.js';

/**
 * The watchdog holds the read end of a pipe whose only writer is the agent. The kernel closes
 * that writer however the agent ends (kill -9 included), so end-of-file means "the agent is
 * gone" unless "done" arrived first; then the run (its group and every process carrying its tag)
 * gets SIGTERM, and SIGKILL after the grace. A shell, not a second Node process: a few hundred
 * kilobytes per running Claude Code.
 */
const SCRIPT = `
pgid=$1; marker="${RUN_TAG_VAR}=$2"; ticks=$3
IFS= read -r line
[ "$line" = done ] && exit 0
tagged() { grep -lsa -- "$marker" /proc/[0-9]*/environ 2>/dev/null | sed 's#^/proc/##; s#/environ$##'; }
alive() { kill -0 -"$pgid" 2>/dev/null || [ -n "$(tagged)" ]; }
kill -TERM -"$pgid" 2>/dev/null
kill -TERM $(tagged) 2>/dev/null
n=0
while alive && [ "$n" -lt "$ticks" ]; do n=$((n + 1)); sleep 0.1; done
n=0
while alive && [ "$n" -lt 50 ]; do
  kill -KILL -"$pgid" 2>/dev/null
  kill -KILL $(tagged) 2>/dev/null
  n=$((n + 1)); sleep 0.1
done
`;

export interface Watchdog {
  readonly pid: number | undefined;
  /** The run is gone or handed over: the watchdog exits without signalling anything. */
  release(): void;
}

/** Starts a watchdog that ends `run` if this process dies before `release()`. */
export function watchRun(run: ProcessRun, graceMs: number): Watchdog {
  if (process.platform === 'win32') return { pid: undefined, release: () => {} };
  const args = [String(run.pgid), run.tag, String(Math.ceil(graceMs / 100))];
  const child = spawn('/bin/sh', ['-c', SCRIPT, 'bematic-watchdog', ...args], {
    // Its own session: a Ctrl-C or a signal to the agent's group must not take the watchdog with it.
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => {});
  child.stdin?.on('error', () => {});
  child.unref();
  let released = false;
  return {
    pid: child.pid,
    release: () => {
      if (released) return;
      released = true;
      child.stdin?.end('done\n');
    },
  };
}
