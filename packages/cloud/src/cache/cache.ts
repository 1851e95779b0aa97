/**
 * A small in-process TTL + LRU cache for read paths (dashboard lists, stats,
 * agent status). Entries expire after their TTL and the least recently used
 * entry is evicted beyond `maxEntries`. Keys are hierarchical strings (see
 * cache-keys.ts), so a prefix invalidates a whole family.
 */
export interface CacheOptions {
  /** Shown in metrics (`cache` label). */
  name?: string;
  /** Default lifetime of an entry; 0 disables caching (every get misses). */
  ttlMs: number;
  maxEntries?: number;
  now?: () => number;
  /** Called on every lookup, e.g. MetricsCollector.recordCacheLookup. */
  onLookup?: (cache: string, hit: boolean) => void;
}

export interface CacheStats {
  name: string;
  size: number;
  hits: number;
  misses: number;
  /** hits / (hits + misses); 0 before the first lookup. */
  hitRatio: number;
  evictions: number;
}

export type Invalidation = string | { prefix: string };

interface Entry {
  value: unknown;
  expiresAt: number;
}

export class Cache {
  readonly name: string;
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  /** Bumped by invalidations so a load that started before one cannot store stale data. */
  private generation = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly onLookup: ((cache: string, hit: boolean) => void) | undefined;

  constructor(opts: CacheOptions) {
    this.name = opts.name ?? 'default';
    this.ttlMs = Math.max(0, opts.ttlMs);
    this.maxEntries = Math.max(1, opts.maxEntries ?? 1000);
    this.now = opts.now ?? Date.now;
    this.onLookup = opts.onLookup;
  }

  get<T>(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > this.now()) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.count(true);
      return entry.value as T;
    }
    if (entry) this.entries.delete(key);
    this.count(false);
    return undefined;
  }

  has(key: string): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && entry.expiresAt > this.now();
  }

  set<T>(key: string, value: T, ttlMs: number = this.ttlMs): void {
    if (ttlMs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
      this.evictions++;
    }
  }

  /**
   * The cached value, or the loader's result (stored). Concurrent callers for
   * the same key share one load; a load overtaken by an invalidation is
   * returned to its callers but not stored.
   */
  async getOrLoad<T>(key: string, loader: () => Promise<T>, ttlMs: number = this.ttlMs): Promise<T> {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > this.now()) return this.get<T>(key) as T;
    const pending = this.inflight.get(key);
    if (pending) {
      this.count(true);
      return pending as Promise<T>;
    }
    this.get<T>(key); // counts the miss and drops an expired entry
    const generation = this.generation;
    const load = loader().then(
      (value) => {
        this.inflight.delete(key);
        if (generation === this.generation) this.set(key, value, ttlMs);
        return value;
      },
      (err: unknown) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, load);
    return load;
  }

  /** Drop one key, or every key starting with a prefix. Returns how many entries went. */
  invalidate(target: Invalidation): number {
    this.generation++;
    if (typeof target === 'string') {
      this.inflight.delete(target);
      return this.entries.delete(target) ? 1 : 0;
    }
    let removed = 0;
    for (const key of [...this.entries.keys()]) {
      if (key.startsWith(target.prefix)) {
        this.entries.delete(key);
        removed++;
      }
    }
    for (const key of [...this.inflight.keys()]) if (key.startsWith(target.prefix)) this.inflight.delete(key);
    return removed;
  }

  flush(): void {
    this.generation++;
    this.entries.clear();
    this.inflight.clear();
  }

  /** Load and store a value ahead of demand. Best effort: a failing loader leaves the cache as it was. */
  async warm<T>(key: string, loader: () => Promise<T>, ttlMs: number = this.ttlMs): Promise<boolean> {
    try {
      const value = await loader();
      this.set(key, value, ttlMs);
      return true;
    } catch {
      return false;
    }
  }

  keys(): string[] {
    const now = this.now();
    return [...this.entries].filter(([, e]) => e.expiresAt > now).map(([k]) => k);
  }

  stats(): CacheStats {
    const lookups = this.hits + this.misses;
    return {
      name: this.name,
      size: this.entries.size,
      hits: this.hits,
      misses: this.misses,
      hitRatio: lookups === 0 ? 0 : this.hits / lookups,
      evictions: this.evictions,
    };
  }

  private count(hit: boolean): void {
    if (hit) this.hits++;
    else this.misses++;
    this.onLookup?.(this.name, hit);
  }
}
