import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BotRegistry, DEFAULT_BOT, parseMcpConfig, registerProject } from '@bematic/cloud';
import type { McpServers } from '@bematic/protocol';
import type { Command } from 'commander';
import { table, withRepositories } from './shared.js';

export function registerProjectsCommand(program: Command): void {
  const projects = program.command('projects').description('Map chat channels to checkouts on agents');

  projects
    .command('add <channel> <agent-id> <path>')
    .description('Register (or re-point) a channel → agent + local path')
    .option('--name <name>', 'project name (default: the directory name)')
    .option('--model <model>', 'default model for this project')
    .option(
      '--default-bot <bot>',
      `the bot plain-words mentions go to (default ${DEFAULT_BOT}; e.g. code, review, ops, plan)`,
      (v) => {
        const bot = new BotRegistry().get(v);
        if (!bot) {
          const names = new BotRegistry()
            .list()
            .map((b) => b.name)
            .join(', ');
          throw new Error(`--default-bot: unknown bot "${v}" (bots: ${names})`);
        }
        return bot.name;
      },
    )
    .option('--budget <usd>', 'per-task budget in USD', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error('--budget must be a positive number of USD');
      return n;
    })
    .option(
      '--mcp-config <file>',
      'MCP servers for this project\'s tasks: a .mcp.json-style file ({"mcpServers": {…}}); "none" removes them',
    )
    .action(
      async (
        channel: string,
        agentId: string,
        localPath: string,
        opts: { name?: string; model?: string; budget?: number; defaultBot?: string; mcpConfig?: string },
      ) => {
        let mcpServers: McpServers | null | undefined;
        if (opts.mcpConfig === 'none') mcpServers = null;
        else if (opts.mcpConfig !== undefined) {
          try {
            mcpServers = parseMcpConfig(readFileSync(opts.mcpConfig, 'utf8'), opts.mcpConfig);
          } catch (err) {
            console.error(err instanceof Error ? err.message : String(err));
            process.exitCode = 1;
            return;
          }
        }
        await withRepositories(async ({ repos }) => {
          const project = await registerProject(repos, {
            channelId: channel,
            agentId,
            localPath: path.resolve(localPath),
            name: opts.name ?? path.basename(path.resolve(localPath)),
            defaultModel: opts.model ?? null,
            maxBudgetUsd: opts.budget ?? null,
            ...(opts.defaultBot ? { defaultBot: opts.defaultBot } : {}),
            ...(mcpServers !== undefined && { mcpServers }),
          });
          const mcp = Object.keys(project.mcpServers ?? {});
          console.log(
            `Channel ${channel} → agent "${project.agentId}" at ${project.localPath} (project ${project.id}); plain words go to ${project.defaultBot}.` +
              (mcp.length > 0 ? ` MCP servers: ${mcp.join(', ')}.` : ''),
          );
        });
      },
    );

  projects
    .command('list')
    .description('List registered projects')
    .action(async () => {
      await withRepositories(async ({ repos }) => {
        const rows = (await repos.projects.list()).map((p) => ({
          id: p.id,
          name: p.name,
          channel: p.channelId,
          agent: p.agentId,
          path: p.localPath,
          model: p.defaultModel,
          'default bot': p.defaultBot,
          'budget $': p.maxBudgetUsd,
          mcp: Object.keys(p.mcpServers ?? {}).join(',') || null,
        }));
        console.log(table(rows));
      });
    });

  projects
    .command('remove <channel>')
    .description('Unlink a channel')
    .action(async (channel: string) => {
      await withRepositories(async ({ repos }) => {
        const project = await repos.projects.findByChannel(channel);
        if (!project) {
          console.error(`No project is registered for channel ${channel}.`);
          process.exitCode = 1;
          return;
        }
        await repos.projects.delete(project.id);
        await repos.audit.log({
          action: 'project.removed',
          actor: 'cli',
          resourceType: 'project',
          resourceId: project.id,
          details: { channelId: channel },
        });
        console.log(`Removed project ${project.name} (${channel}).`);
      });
    });
}
