/** Rows a substring search tests per request at most (a few milliseconds of synchronous SQLite work). */
export const TEXT_SCAN_ROWS = 5000;

/**
 * A case-insensitive substring as a LIKE pattern, to compare with `lower(column)` and `escape '\'` (LIKE is
 * case-sensitive on PostgreSQL, and its wildcards in the text must match themselves).
 */
export function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
