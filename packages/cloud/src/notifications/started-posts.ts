/**
 * "Task started" posts still on their way, by task. The launcher sends a task to its agent before posting
 * (the post is not on the dispatch path), so the agent's first progress can come before the post lands; the
 * notification service waits here for that post instead of posting a second message for the task.
 */
export class StartedPosts {
  private readonly pending = new Map<string, Promise<unknown>>();

  /** Notes the post of `taskId` until it settles. */
  hold<T>(taskId: string, post: Promise<T>): Promise<T> {
    const settled = post.then(
      () => undefined,
      () => undefined,
    );
    this.pending.set(taskId, settled);
    void settled.then(() => {
      if (this.pending.get(taskId) === settled) this.pending.delete(taskId);
    });
    return post;
  }

  /** Settles once the task's "Task started" post (if one is on its way) has landed or failed. */
  landed(taskId: string): Promise<unknown> {
    return this.pending.get(taskId) ?? Promise.resolve();
  }
}
