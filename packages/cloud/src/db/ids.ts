import { randomUUID } from 'node:crypto';

/**
 * Generated ids are `<prefix>_` + the first 16 hex digits of a random UUID,
 * e.g. `task_3f9a0c1d2e4b4a51`: short enough to type in Slack (`/bm archive
 * task_…`), readable as to what they name, and random enough (60 bits) that a
 * collision is not a practical concern. Callers may always supply their own id.
 */
export function newId(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
}

export const newTaskId = (): string => newId('task');
export const newArchiveId = (): string => newId('archive');
export const newProjectId = (): string => newId('proj');
export const newSessionId = (): string => newId('sess');
export const newApiKeyId = (): string => newId('key');
