import { cloudSettingDefault } from '../config.js';
import type { Project } from '../db/repositories/types.js';
import type { ParsedCommand } from './command-parser.js';
import { type Bot, findCommand } from './types.js';

export const MODEL_TIERS = ['premium', 'standard', 'fast'] as const;
export type ModelTier = (typeof MODEL_TIERS)[number];
export type ModelTiers = Record<ModelTier, string>;

/** The tiers' models when nothing is configured: the defaults of the BEMATIC_MODEL_* settings. */
export const DEFAULT_MODEL_TIERS: ModelTiers = {
  premium: cloudSettingDefault('BEMATIC_MODEL_PREMIUM'),
  standard: cloudSettingDefault('BEMATIC_MODEL_STANDARD'),
  fast: cloudSettingDefault('BEMATIC_MODEL_FAST'),
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
