import type { ProjectRepository, Task } from '../db/repositories/types.js';
import { TASK_ROW_EVENTS, type TaskEventName, type TaskEvents } from '../tasks/task-events.js';
import type { Cache, Invalidation } from './cache.js';
import { ALL_PROJECTS, cacheKeys } from './cache-keys.js';

/**
 * Drops exactly the cached keys (cache-keys.ts) that a write makes stale.
 * Task and agent changes arrive on the event bus (`attachToEvents`); archive and
 * restore are explicit calls from retention; project writes go through the
 * repository returned by `projects()`, so no caller can forget them.
 */
export class CacheInvalidation {
  /**
   * @param broadcast told of every key dropped here, so other cloud instances
   *   drop it too (cluster/notify-bus.ts); what they send back comes in through `dropRemote`.
   */
  constructor(
    private readonly cache: Cache,
    private readonly broadcast?: (target: Invalidation) => void,
  ) {}

  /** Another instance dropped this key. */
  dropRemote(target: Invalidation): void {
    this.cache.invalidate(target);
  }

  /** Missed what other instances sent (the bus reconnected): nothing cached can be trusted. */
  dropAll(): void {
    this.cache.flush();
  }

  attachToEvents(events: TaskEvents): () => void {
    const offs: Array<() => void> = [];
    const onTask = (name: TaskEventName) =>
      offs.push(events.on(name, (p) => this.taskChanged((p as { task: Task }).task)));
    for (const name of TASK_ROW_EVENTS) onTask(name);
    for (const name of ['agent.online', 'agent.offline', 'agent.status', 'circuit.changed'] as const) {
      offs.push(events.on(name, () => this.agentChanged()));
    }
    return () => {
      for (const off of offs) off();
    };
  }

  /** A task's row changed: its details, the lists that show it and the totals. */
  taskChanged(task: Pick<Task, 'id' | 'projectId'>): void {
    this.drop(cacheKeys.task(task.id));
    this.drop({ prefix: cacheKeys.projectTasks(task.projectId) });
    this.drop({ prefix: cacheKeys.projectTasks(ALL_PROJECTS) });
    this.drop(cacheKeys.globalStats());
  }

  /** The task left the tasks table (the totals count archived tasks too). */
  taskArchived(task: Pick<Task, 'id' | 'projectId'>): void {
    this.taskChanged(task);
  }

  /** A restored task is stored under its new id straight away. */
  taskRestored(task: Task): void {
    this.taskChanged(task);
    this.cache.set(cacheKeys.task(task.id), task);
  }

  agentChanged(): void {
    this.drop({ prefix: cacheKeys.agents() });
  }

  projectsChanged(): void {
    this.drop(cacheKeys.projectList());
  }

  private drop(target: Invalidation): void {
    this.cache.invalidate(target);
    this.broadcast?.(target);
  }

  /** The project repository, with every write dropping the cached project list. */
  projects(repo: ProjectRepository): ProjectRepository {
    const after = async <T>(write: Promise<T>): Promise<T> => {
      try {
        return await write;
      } finally {
        this.projectsChanged();
      }
    };
    return {
      findById: (id) => repo.findById(id),
      findByChannel: (channelId) => repo.findByChannel(channelId),
      list: () => repo.list(),
      create: (p) => after(repo.create(p)),
      update: (id, patch) => after(repo.update(id, patch)),
      delete: (id) => after(repo.delete(id)),
    };
  }
}
