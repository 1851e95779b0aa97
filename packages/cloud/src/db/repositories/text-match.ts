/**
 * Rows a substring search tests per request at most, and the most matches a term may have for its index to
 * answer it whole (a few milliseconds of synchronous work either way).
 */
export const TEXT_SCAN_ROWS = 5000;

/**
 * A case-insensitive substring as a LIKE pattern, to compare with `lower(column)` and `escape '\'` (LIKE is
 * case-sensitive on PostgreSQL, and its wildcards in the text must match themselves).
 */
export function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
