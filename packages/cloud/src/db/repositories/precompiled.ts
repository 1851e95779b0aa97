import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import { type DatabaseDialect, dialectOf } from '../database.js';
import type { Schema } from '../schema.js';

/**
 * A hot statement built and compiled once per dialect, then run with new parameters: Kysely otherwise builds
 * the query tree and compiles it to SQL on every call. `build` gets placeholder values; `run` takes the
 * parameters in the order the compiled statement binds them (the order `build` wrote them).
 */
export function precompiled<R>(build: (db: Kysely<Schema>) => Compilable<R>) {
  const compiled = new Map<DatabaseDialect, CompiledQuery<R>>();
  return (db: Kysely<Schema>, parameters: readonly unknown[]): Promise<QueryResult<R>> => {
    const dialect = dialectOf(db);
    let query = compiled.get(dialect);
    if (!query) {
      query = build(db).compile();
      if (query.parameters.length !== parameters.length)
        throw new Error(
          `precompiled statement binds ${query.parameters.length} parameters, got ${parameters.length}`,
        );
      compiled.set(dialect, query);
    }
    return db.executeQuery<R>({ ...query, parameters });
  };
}
