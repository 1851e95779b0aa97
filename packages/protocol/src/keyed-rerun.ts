/**
 * A pass over what waits for one key (an agent's outbox, the tasks a freed slot can take) that, asked for
 * again while it runs, runs once more afterwards instead of alongside: a burst of requests costs at most
 * two passes, and none is lost, since the pass after a request starts after it. A caller who asks meanwhile
 * gets the promise of the run that will include its request; the further pass is the starting caller's.
 */
export class KeyedRerun {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();

  /** `repeat`: checked before each further pass (e.g. the agent is still there); false drops the rest. */
  run(key: string, pass: () => Promise<void>, repeat: () => boolean = () => true): Promise<void> {
    const current = this.running.get(key);
    if (current) {
      this.again.add(key);
      return current;
    }
    const run = (async () => {
      // Awaited before the first pass, so the entry below is in place before anything the pass calls.
      await undefined;
      try {
        do {
          this.again.delete(key);
          await pass();
        } while (this.again.has(key) && repeat());
      } finally {
        // In the same turn as the last check: a request that comes later starts a run of its own.
        this.running.delete(key);
        this.again.delete(key);
      }
    })();
    this.running.set(key, run);
    return run;
  }

  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  /** Settles once every run under way has (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }
}
