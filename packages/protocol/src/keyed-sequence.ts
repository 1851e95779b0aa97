/**
 * Work that must not overlap for one key (a task's transcript writes, an agent's presence row, a Slack
 * channel's posts, a repository's worktrees) while different keys go on side by side. Each run starts once
 * everything asked before it for the same key has settled, whether that succeeded or failed; its own outcome
 * goes to its caller only.
 */
export class KeyedSequence {
  /** Per key: when the last run asked for settles. */
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.tails.get(key) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  /** Settles once every run asked for so far has (shutdown, tests). */
  async settled(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}
