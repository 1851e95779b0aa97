import { McpServers, TaskSubmission, WorkspaceReport } from '@bematic/protocol';
import { StoredDataError } from '../errors.js';

/** Column codecs shared by the repositories: JSON text and 0/1 booleans. */

export interface ColumnRef {
  table: string;
  column: string;
  rowId: string;
}

function parseJsonText(text: string, ref: ColumnRef): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StoredDataError(
      ref.table,
      ref.column,
      ref.rowId,
      err instanceof Error ? err.message : 'bad JSON',
    );
  }
}

export function decodeStringArray(text: string, ref: ColumnRef): string[] {
  const value = parseJsonText(text, ref);
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) {
    throw new StoredDataError(ref.table, ref.column, ref.rowId, 'expected an array of strings');
  }
  return value;
}

export function decodeRecord(text: string, ref: ColumnRef): Record<string, unknown> {
  const value = parseJsonText(text, ref);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new StoredDataError(ref.table, ref.column, ref.rowId, 'expected a JSON object');
  }
  return { ...value };
}

/** Submissions decoded lately, by their stored text: a task's row is read a few times per lifecycle step. */
const SUBMISSIONS = new Map<string, TaskSubmission>();
const SUBMISSION_CACHE_SIZE = 2048;

/** The decoded submission; the same text gives the same (frozen) object, decoded and checked once. */
export function decodeSubmission(text: string, ref: ColumnRef): TaskSubmission {
  const known = SUBMISSIONS.get(text);
  if (known) return known;
  const parsed = TaskSubmission.safeParse(parseJsonText(text, ref));
  if (!parsed.success) throw new StoredDataError(ref.table, ref.column, ref.rowId, parsed.error.message);
  const submission = deepFreeze(parsed.data);
  if (SUBMISSIONS.size >= SUBMISSION_CACHE_SIZE) SUBMISSIONS.delete(SUBMISSIONS.keys().next().value ?? '');
  SUBMISSIONS.set(text, submission);
  return submission;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

export function decodeWorkspace(text: string | null, ref: ColumnRef): WorkspaceReport | null {
  if (text === null) return null;
  const parsed = WorkspaceReport.safeParse(parseJsonText(text, ref));
  if (!parsed.success) throw new StoredDataError(ref.table, ref.column, ref.rowId, parsed.error.message);
  return parsed.data;
}

export function decodeMcpServers(text: string | null, ref: ColumnRef): McpServers | null {
  if (text === null) return null;
  const parsed = McpServers.safeParse(parseJsonText(text, ref));
  if (!parsed.success) throw new StoredDataError(ref.table, ref.column, ref.rowId, parsed.error.message);
  return parsed.data;
}

export const encodeJson = (value: unknown): string => JSON.stringify(value);

export const encodeBool = (value: boolean | null): number | null => (value === null ? null : value ? 1 : 0);

export const decodeBool = (value: number | boolean | null): boolean | null =>
  value === null ? null : value === true || value === 1;

/** Assigns only the keys that are present, so `undefined` means "leave as is". */
export function definedOnly<T extends object>(values: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(values) as (keyof T)[]) {
    if (values[key] !== undefined) out[key] = values[key];
  }
  return out;
}

/**
 * PostgreSQL text cannot hold U+0000 (model output sometimes does, e.g. from a
 * binary file), so free-text columns drop it on both dialects alike.
 */
export function stripNul<T extends string | null | undefined>(text: T): T {
  return (typeof text === 'string' ? text.replaceAll('\u0000', '') : text) as T;
}
