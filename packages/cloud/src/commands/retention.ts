/**
 * What `/bm archive` and `/bm restore` need from retention. RetentionService
 * implements it; an ArchivedTask and a restored Task both satisfy the results.
 */
export interface RetentionOperations {
  /** Archives a terminal task; rejects with a clear Error when it cannot. */
  archive(taskId: string, reason: string, actor: string): Promise<{ id: string }>;
  /** Restores an archived task as a new task row. */
  restore(archiveId: string, actor: string): Promise<{ id: string }>;
}
