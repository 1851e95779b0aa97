import type { Clock } from '@bematic/protocol';
import type { Kysely, Selectable } from 'kysely';
import { guardUnique, RecordNotFoundError } from '../errors.js';
import { newProjectId } from '../ids.js';
import type { ProjectsTable, Schema } from '../schema.js';
import { decodeMcpServers, decodeStringArray, definedOnly, encodeJson } from './codec.js';
import type { NewProject, Project, ProjectRepository } from './types.js';

function toProject(row: Selectable<ProjectsTable>): Project {
  return {
    id: row.id,
    name: row.name,
    channelId: row.channel_id,
    agentId: row.agent_id,
    fallbackAgentIds: decodeStringArray(row.fallback_agent_ids, {
      table: 'projects',
      column: 'fallback_agent_ids',
      rowId: row.id,
    }),
    localPath: row.local_path,
    defaultModel: row.default_model,
    maxBudgetUsd: row.max_budget_usd,
    defaultBot: row.default_bot,
    mcpServers: decodeMcpServers(row.mcp_servers, {
      table: 'projects',
      column: 'mcp_servers',
      rowId: row.id,
    }),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class KyselyProjectRepository implements ProjectRepository {
  constructor(
    private readonly db: Kysely<Schema>,
    private readonly now: Clock['now'] = Date.now,
  ) {}

  async create(p: NewProject): Promise<Project> {
    const now = this.now();
    const row = await guardUnique('project for channel', p.channelId, () =>
      this.db
        .insertInto('projects')
        .values({
          id: p.id ?? newProjectId(),
          name: p.name,
          channel_id: p.channelId,
          agent_id: p.agentId,
          fallback_agent_ids: encodeJson(p.fallbackAgentIds ?? []),
          local_path: p.localPath,
          default_model: p.defaultModel,
          max_budget_usd: p.maxBudgetUsd,
          ...(p.defaultBot ? { default_bot: p.defaultBot } : {}),
          mcp_servers: p.mcpServers ? encodeJson(p.mcpServers) : null,
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    return toProject(row);
  }

  async findById(id: string): Promise<Project | undefined> {
    const row = await this.db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toProject(row);
  }

  async findByChannel(channelId: string): Promise<Project | undefined> {
    const row = await this.db
      .selectFrom('projects')
      .selectAll()
      .where('channel_id', '=', channelId)
      .executeTakeFirst();
    return row && toProject(row);
  }

  async list(): Promise<Project[]> {
    const rows = await this.db.selectFrom('projects').selectAll().orderBy('name').orderBy('id').execute();
    return rows.map(toProject);
  }

  async update(
    id: string,
    patch: Partial<Omit<Project, 'id' | 'createdAt' | 'updatedAt'>>,
  ): Promise<Project> {
    const row = await guardUnique('project for channel', patch.channelId ?? id, () =>
      this.db
        .updateTable('projects')
        .set({
          ...definedOnly({
            name: patch.name,
            channel_id: patch.channelId,
            agent_id: patch.agentId,
            fallback_agent_ids: patch.fallbackAgentIds && encodeJson(patch.fallbackAgentIds),
            local_path: patch.localPath,
            default_model: patch.defaultModel,
            max_budget_usd: patch.maxBudgetUsd,
            default_bot: patch.defaultBot,
            mcp_servers:
              patch.mcpServers === undefined ? undefined : patch.mcpServers && encodeJson(patch.mcpServers),
          }),
          updated_at: this.now(),
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirst(),
    );
    if (!row) throw new RecordNotFoundError('project', id);
    return toProject(row);
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('projects').where('id', '=', id).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }
}
