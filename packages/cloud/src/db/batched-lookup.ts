/** At most this many keys in one query; a larger tick is answered by several. */
const MAX_KEYS = 500;

interface Waiter<V> {
  resolve: (value: V | undefined) => void;
  reject: (err: unknown) => void;
}

/**
 * Look-ups by key asked for in one event-loop tick, answered by one query for all of them: the read of a task
 * that every agent frame makes costs one statement (one round trip on PostgreSQL) per tick, not one per frame.
 * The query runs after the tick, so each answer is at least as fresh as the moment it was asked for: a caller
 * that committed a write before asking sees it.
 */
export class BatchedLookup<V> {
  private pending: Map<string, Array<Waiter<V>>> | null = null;

  /** `fetch`: the rows found among `keys`, by key (a missing key is answered undefined). */
  constructor(private readonly fetch: (keys: string[]) => Promise<Map<string, V>>) {}

  get(key: string): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      if (!this.pending) {
        this.pending = new Map();
        setImmediate(() => void this.flush());
      }
      const waiters = this.pending.get(key);
      if (waiters) waiters.push({ resolve, reject });
      else this.pending.set(key, [{ resolve, reject }]);
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = null;
    if (!batch) return;
    const keys = [...batch.keys()];
    for (let i = 0; i < keys.length; i += MAX_KEYS) {
      const chunk = keys.slice(i, i + MAX_KEYS);
      try {
        const found = await this.fetch(chunk);
        for (const key of chunk) for (const w of batch.get(key) ?? []) w.resolve(found.get(key));
      } catch (err) {
        for (const key of chunk) for (const w of batch.get(key) ?? []) w.reject(err);
      }
    }
  }
}
