import { type Kysely, sql } from 'kysely';
import type { Schema } from '../schema.js';

interface Pending {
  fn: (trx: Kysely<Schema>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** At most this many units of work share one commit; the rest wait for the next. */
const MAX_BATCH = 256;

/**
 * Group commit: the transactions asked for in one event-loop tick run one after another inside one database
 * transaction, each in its own savepoint, and every caller's promise settles only after that one COMMIT — so
 * what a caller does after its transaction (emit events, acknowledge a result to an agent) still happens only
 * once its writes are durable, at the price of one commit per tick instead of one per unit of work.
 *
 * Savepoints of one name stack, so none is released (a statement saved per unit): rolling back to the
 * name undoes the newest, the unit's own.
 * A unit that throws is rolled back to its savepoint alone and its caller gets the error; the others commit
 * (without savepoints, see the constructor, the batch is run again unit by unit).
 * If the shared transaction itself fails (a lost connection, a serialization failure), every unit of that
 * batch is run again in a transaction of its own, so one bad neighbour cannot fail another caller.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private running = false;
  private readonly savepoints: boolean;

  /**
   * `savepoints: false` (PostgreSQL, where each is a round trip to the server): the units run without one, and
   * the first that throws aborts the shared transaction, so that batch is run again unit by unit (the fallback
   * below) — the same outcome for every caller, bought with the retry only when a unit fails.
   */
  constructor(
    private readonly db: Kysely<Schema>,
    opts: { savepoints?: boolean } = {},
  ) {
    this.savepoints = opts.savepoints ?? true;
  }

  run<T>(fn: (trx: Kysely<Schema>) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  /**
   * Single-row writes of one kind that one statement can do many of (a multi-row INSERT): the rows asked for
   * until the batch's turn comes are written together, as one unit of that group commit; each caller gets its
   * row's result after the COMMIT. `write` returns one result per value, in order.
   */
  collector<V, R>(
    write: (trx: Kysely<Schema>, values: readonly V[]) => Promise<R[]>,
    maxRows = 1000,
  ): (value: V) => Promise<R> {
    type Open = { values: V[]; waiters: Array<{ resolve: (r: R) => void; reject: (e: unknown) => void }> };
    let open: Open | null = null;
    return (value) =>
      new Promise<R>((resolve, reject) => {
        if (!open || open.values.length >= maxRows) {
          const batch: Open = { values: [], waiters: [] };
          open = batch;
          this.run(async (trx) => {
            if (open === batch) open = null;
            return write(trx, batch.values);
          }).then(
            (results) =>
              batch.waiters.forEach((w, i) => {
                const r = results[i];
                if (r === undefined) w.reject(new Error('batched write returned fewer rows than asked'));
                else w.resolve(r);
              }),
            (err: unknown) => {
              for (const w of batch.waiters) w.reject(err);
            },
          );
        }
        open.values.push(value);
        open.waiters.push({ resolve, reject });
      });
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.splice(0, MAX_BATCH);
    if (batch.length === 0) return;
    this.running = true;
    try {
      if (batch.length === 1) await this.alone(batch[0] as Pending);
      else await this.together(batch);
    } finally {
      this.running = false;
      if (this.queue.length > 0) this.schedule();
    }
  }

  private async alone(unit: Pending): Promise<void> {
    try {
      unit.resolve(await this.db.transaction().execute(unit.fn));
    } catch (err) {
      unit.reject(err);
    }
  }

  private async together(batch: Pending[]): Promise<void> {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; err: unknown }> = [];
    try {
      await this.db.transaction().execute(async (trx) => {
        if (!this.savepoints) {
          // A unit that caught a failed statement and went on leaves PostgreSQL's transaction aborted: COMMIT
          // then rolls back, which Kysely reports as an error, so that batch too is run again unit by unit.
          for (const unit of batch) outcomes.push({ ok: true, value: await unit.fn(trx) });
          return;
        }
        for (const unit of batch) {
          await sql`savepoint group_commit_unit`.execute(trx);
          try {
            outcomes.push({ ok: true, value: await unit.fn(trx) });
          } catch (err) {
            await sql`rollback to savepoint group_commit_unit`.execute(trx);
            outcomes.push({ ok: false, err });
          }
        }
      });
    } catch {
      for (const unit of batch) await this.alone(unit);
      return;
    }
    batch.forEach((unit, i) => {
      const o = outcomes[i];
      if (o?.ok) unit.resolve(o.value);
      else unit.reject(o?.err);
    });
  }
}
