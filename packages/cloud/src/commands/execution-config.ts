import type { TaskPriority, TaskSubmission } from '@bematic/protocol';
import type { ParsedCommand } from '../bots/command-parser.js';
import type { ModelChoice, ModelStrategy } from '../bots/model-routing.js';
import { type Bot, findCommand } from '../bots/types.js';
import type { Project } from '../db/repositories/types.js';

/** TASK_SUBMIT minus the task id, which is assigned when the task row is created. */
export type ExecutionConfig = Omit<TaskSubmission, 'taskId'>;

export type ExecutionConfigResult =
  | { ok: true; config: ExecutionConfig; choice: ModelChoice }
  | { ok: false; error: string };

/** What a parsed command becomes on the wire: command, prompt, system prompt, model, tools, budget. */
export function buildExecutionConfig(
  parsed: ParsedCommand,
  bot: Bot,
  project: Project,
  modelStrategy: ModelStrategy,
): ExecutionConfigResult {
  const command = findCommand(bot, parsed.command);
  if (!command) return { ok: false, error: `${bot.displayName} has no command "${parsed.command}".` };
  if (parsed.errors.length > 0) return { ok: false, error: parsed.errors.join('; ') };
  const chosen = modelStrategy.choose(parsed, bot, project);
  if (!chosen.ok) return chosen;
  const priority: TaskPriority = parsed.flags.priority ?? 'normal';
  const budget = parsed.flags.budget ?? project.maxBudgetUsd ?? undefined;
  const prompt =
    parsed.args.trim() ||
    `${command.description[0]?.toUpperCase()}${command.description.slice(1)} for this project.`;
  const config: ExecutionConfig = {
    projectId: project.id,
    localPath: project.localPath,
    botName: bot.name,
    command: command.name,
    prompt,
    systemPrompt: bot.systemPrompt(command, project),
    model: chosen.choice.model,
    allowedTools: [...bot.allowedTools],
    priority,
  };
  if (budget !== undefined && budget > 0) config.maxBudgetUsd = budget;
  if (parsed.flags.base !== undefined) {
    // Checked here so a typo is answered at once; the agent checks that the ref exists.
    if (!/^[A-Za-z0-9_./@^~-]{1,250}$/.test(parsed.flags.base) || parsed.flags.base.startsWith('-')) {
      return {
        ok: false,
        error: `--base needs a branch, tag or commit, got "${parsed.flags.base.slice(0, 80)}"`,
      };
    }
    config.workspace = { base: parsed.flags.base };
  }
  if (project.mcpServers && Object.keys(project.mcpServers).length > 0)
    config.mcpServers = project.mcpServers;
  return { ok: true, config, choice: chosen.choice };
}
