import type { McpServers } from '@bematic/protocol';
import type { ApiKeyService } from '../auth/api-keys.js';
import type { Project, Repositories } from '../db/repositories/types.js';

export interface ProvisionAgentOptions {
  agentId: string;
  /** Channel whose tasks this agent runs (e.g. 'console:local' or a Slack channel id). */
  channelId: string;
  localPath: string;
  projectName: string;
  /** Keys with this label for the agent are revoked first, so restarts do not pile up keys. */
  keyLabel: string;
  defaultModel?: string | null;
  maxBudgetUsd?: number | null;
}

/**
 * Gives an agent a fresh API key and binds a channel to its checkout. Used by
 * `bematic up` for the in-process agent, and by tests and the demo.
 */
export async function provisionAgent(
  deps: { repos: Repositories; apiKeys: ApiKeyService },
  opts: ProvisionAgentOptions,
): Promise<{ key: string; project: Project }> {
  for (const old of await deps.apiKeys.list(opts.agentId)) {
    if (old.label === opts.keyLabel && old.revokedAt === null) await deps.apiKeys.revoke(old.id, 'system');
  }
  const { key } = await deps.apiKeys.create(opts.agentId, { label: opts.keyLabel, actor: 'system' });
  const project = await registerProject(deps.repos, {
    channelId: opts.channelId,
    agentId: opts.agentId,
    localPath: opts.localPath,
    name: opts.projectName,
    defaultModel: opts.defaultModel ?? null,
    maxBudgetUsd: opts.maxBudgetUsd ?? null,
  });
  return { key, project };
}

/** Creates the channel's project, or points the existing one at this agent and path. */
export async function registerProject(
  repos: Repositories,
  p: {
    channelId: string;
    agentId: string;
    localPath: string;
    name: string;
    defaultModel?: string | null;
    maxBudgetUsd?: number | null;
    /** A bot name or alias (checked against the registry by the caller). */
    defaultBot?: string;
    /** undefined keeps what the project had; null removes them. */
    mcpServers?: McpServers | null;
  },
): Promise<Project> {
  const existing = await repos.projects.findByChannel(p.channelId);
  const fields = {
    name: p.name,
    agentId: p.agentId,
    localPath: p.localPath,
    defaultModel: p.defaultModel ?? existing?.defaultModel ?? null,
    maxBudgetUsd: p.maxBudgetUsd ?? existing?.maxBudgetUsd ?? null,
    ...(p.defaultBot ? { defaultBot: p.defaultBot } : {}),
    mcpServers: p.mcpServers === undefined ? (existing?.mcpServers ?? null) : p.mcpServers,
  };
  const project = existing
    ? await repos.projects.update(existing.id, fields)
    : await repos.projects.create({ channelId: p.channelId, ...fields });
  await repos.audit.log({
    action: existing ? 'project.updated' : 'project.registered',
    actor: 'system',
    resourceType: 'project',
    resourceId: project.id,
    details: {
      channelId: p.channelId,
      agentId: p.agentId,
      localPath: p.localPath,
      defaultBot: project.defaultBot,
      // Names only: server commands, URLs and headers may carry credentials.
      mcpServers: Object.keys(fields.mcpServers ?? {}),
    },
  });
  return project;
}
