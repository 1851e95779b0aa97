import type { TaskPriority, TaskSubmit } from '@bematic/protocol';
import type { Project } from '../db/repositories/types.js';
import type { ParsedCommand } from './command-parser.js';
import { type Bot, findCommand } from './types.js';

export const MODEL_TIERS = ['premium', 'standard', 'fast'] as const;
export type ModelTier = (typeof MODEL_TIERS)[number];
export type ModelTiers = Record<ModelTier, string>;

export const DEFAULT_MODEL_TIERS: ModelTiers = {
  premium: 'claude-opus-5-5',
  standard: 'claude-sonnet-5-5',
  fast: 'claude-haiku-5-5',
};

/** Family names people type, mapped to tiers. */
const FAMILY_TIER: Record<string, ModelTier> = { opus: 'premium', sonnet: 'standard', haiku: 'fast' };
const MODEL_ID = /^claude-[a-z0-9][a-z0-9.-]{1,98}$/;

export interface ModelChoice {
  model: string;
  tier: ModelTier | null;
  reason: 'flag' | 'project-default' | 'write-command' | 'read-command';
}

export type ModelChoiceResult = { ok: true; choice: ModelChoice } | { ok: false; error: string };

export interface ModelStrategy {
  readonly tiers: ModelTiers;
  choose(parsed: ParsedCommand, bot: Bot, project: Project): ModelChoiceResult;
}

/** Writes need the strongest model; reading and planning do fine on the standard tier. */
export function createModelStrategy(tiers: Partial<ModelTiers> = {}): ModelStrategy {
  const t: ModelTiers = { ...DEFAULT_MODEL_TIERS, ...tiers };
  const resolveOverride = (value: string): ModelChoiceResult => {
    const v = value.trim().toLowerCase();
    const tier = (MODEL_TIERS as readonly string[]).includes(v) ? (v as ModelTier) : FAMILY_TIER[v];
    if (tier) return { ok: true, choice: { model: t[tier], tier, reason: 'flag' } };
    if (MODEL_ID.test(v)) return { ok: true, choice: { model: v, tier: null, reason: 'flag' } };
    return {
      ok: false,
      error: `Unknown model "${value}". Use a tier (premium, standard, fast), a family (opus, sonnet, haiku) or a full claude-… model id.`,
    };
  };
  return {
    tiers: t,
    choose(parsed, bot, project) {
      if (parsed.flags.model) return resolveOverride(parsed.flags.model);
      if (project.defaultModel)
        return { ok: true, choice: { model: project.defaultModel, tier: null, reason: 'project-default' } };
      const writes = findCommand(bot, parsed.command)?.writes ?? false;
      return writes
        ? { ok: true, choice: { model: t.premium, tier: 'premium', reason: 'write-command' } }
        : { ok: true, choice: { model: t.standard, tier: 'standard', reason: 'read-command' } };
    },
  };
}

/** TASK_SUBMIT minus the task id, which is assigned when the task row is created. */
export type ExecutionConfig = Omit<TaskSubmit, 'taskId'>;

export type ExecutionConfigResult =
  | { ok: true; config: ExecutionConfig; choice: ModelChoice }
  | { ok: false; error: string };

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
