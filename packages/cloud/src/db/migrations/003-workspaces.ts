import type { Kysely, Migration } from 'kysely';

/**
 * Where a task's changes live (its worktree branch, commit and diff stat, as
 * JSON), the pull request opened from it, and a project's MCP servers (JSON).
 */
export const workspaces: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('tasks').addColumn('workspace', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('pull_request_url', 'text').execute();
    await db.schema.alterTable('projects').addColumn('mcp_servers', 'text').execute();
  },
  async down(db: Kysely<unknown>) {
    await db.schema.alterTable('projects').dropColumn('mcp_servers').execute();
    await db.schema.alterTable('tasks').dropColumn('pull_request_url').execute();
    await db.schema.alterTable('tasks').dropColumn('workspace').execute();
  },
};
