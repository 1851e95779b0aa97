import { describe, expect, it } from 'vitest';
import type { Project } from '../db/repositories/types.js';
import { BotRegistry } from './bot-registry.js';
import { CoderBot, ReviewerBot } from './bots.js';
import { parseArguments, parseCommand, tokenize } from './command-parser.js';
import { buildExecutionConfig, createModelStrategy, DEFAULT_MODEL_TIERS } from './model-routing.js';

const project: Project = {
  id: 'proj_1',
  name: 'web',
  channelId: 'C1',
  agentId: 'agent-1',
  fallbackAgentIds: [],
  localPath: '/srv/web',
  defaultModel: null,
  maxBudgetUsd: 3,
  createdAt: 0,
  updatedAt: 0,
};

describe('command parser', () => {
  it('keeps quoted strings together and apostrophes literal', () => {
    expect(tokenize(`fix "the login bug" 'in auth' don't`).map((t) => t.value)).toEqual([
      'fix',
      'the login bug',
      'in auth',
      "don't",
    ]);
  });

  it.each([
    ['fix it --model opus', { model: 'opus' }, 'fix it'],
    ['fix it --priority URGENT --budget 2.5', { priority: 'urgent', budget: 2.5 }, 'fix it'],
    ['--decompose build the thing', { decompose: true }, 'build the thing'],
    ['fix --model=sonnet it', { model: 'sonnet' }, 'fix it'],
    ['write "--model opus" literally', {}, 'write "--model opus" literally'],
  ])('%s', (text, flags, args) => {
    const p = parseArguments(text);
    expect(p.flags).toEqual(flags);
    expect(p.args).toBe(args);
    expect(p.errors).toEqual([]);
  });

  it('reports unknown flags and bad values', () => {
    const p = parseArguments('fix --verbose --budget -3 --priority soon');
    expect(p.unknownFlags).toEqual(['--verbose']);
    expect(p.errors).toHaveLength(2);
    expect(p.errors.join()).toMatch(/budget.*positive/);
    expect(p.errors.join()).toMatch(/priority must be one of urgent, high, normal, low/);
  });

  it('parseCommand picks the command word or the default command', () => {
    expect(parseCommand('fix the login bug in auth.ts', CoderBot)).toMatchObject({
      command: 'fix',
      args: 'the login bug in auth.ts',
    });
    expect(parseCommand('the whole thing', CoderBot).command).toBe('implement');
  });
});

describe('BotRegistry.resolveFromMention', () => {
  const registry = new BotRegistry();

  it.each([
    ['code fix the login bug in auth.ts', 'coder', 'fix', 'the login bug in auth.ts'],
    ['dev refactor utils.ts', 'coder', 'refactor', 'utils.ts'],
    ['coder add dark mode', 'coder', 'implement', 'dark mode'],
    ['review auth.ts', 'reviewer', 'review', 'auth.ts'],
    ['reviewer audit the api', 'reviewer', 'audit', 'the api'],
    ['ops logs payment errors', 'ops', 'logs', 'payment errors'],
    ['plan estimate the migration', 'planner', 'estimate', 'the migration'],
    ['fix the flaky test', 'coder', 'fix', 'the flaky test'],
    ['explain the cache', 'reviewer', 'explain', 'the cache'],
  ])('%s', (text, bot, command, args) => {
    const r = registry.resolveFromMention(text);
    expect(r.kind).toBe('resolved');
    if (r.kind !== 'resolved') return;
    expect([r.bot.name, r.parsed.command, r.parsed.args]).toEqual([bot, command, args]);
  });

  it('names the bots for an unknown first word', () => {
    const r = registry.resolveFromMention('wizard make it pretty');
    expect(r.kind).toBe('unknown_bot');
    if (r.kind === 'resolved') return;
    expect(r.message).toMatch(/Unknown bot "wizard"/);
    expect(r.bots).toEqual(['coder', 'reviewer', 'ops', 'planner']);
  });

  it('rejects duplicate bot names', () => {
    expect(() => new BotRegistry([CoderBot, { ...ReviewerBot, aliases: ['code'] }])).toThrow(/already used/);
  });
});

describe('model routing and execution config', () => {
  const strategy = createModelStrategy();
  const resolve = (text: string) => {
    const r = new BotRegistry().resolveFromMention(text);
    if (r.kind !== 'resolved') throw new Error(r.message);
    return r;
  };

  it.each([
    ['code fix x', DEFAULT_MODEL_TIERS.premium],
    ['review x', DEFAULT_MODEL_TIERS.standard],
    ['code fix x --model haiku', DEFAULT_MODEL_TIERS.fast],
    ['review x --model premium', DEFAULT_MODEL_TIERS.premium],
    ['review x --model claude-sonnet-4-5-20250929', 'claude-sonnet-4-5-20250929'],
  ])('%s → %s', (text, model) => {
    const { bot, parsed } = resolve(text);
    const built = buildExecutionConfig(parsed, bot, project, strategy);
    expect(built.ok && built.config.model).toBe(model);
  });

  it('tiers are configurable', () => {
    const { bot, parsed } = resolve('code fix x');
    const built = buildExecutionConfig(
      parsed,
      bot,
      project,
      createModelStrategy({ premium: 'claude-opus-9' }),
    );
    expect(built.ok && built.config.model).toBe('claude-opus-9');
  });

  it('builds the TASK_SUBMIT fields from bot, flags and project', () => {
    const { bot, parsed } = resolve('code fix the login bug --priority high');
    const built = buildExecutionConfig(parsed, bot, project, strategy);
    expect(built.ok).toBe(true);
    if (!built.ok) return;
    expect(built.config).toMatchObject({
      projectId: 'proj_1',
      localPath: '/srv/web',
      botName: 'coder',
      command: 'fix',
      prompt: 'the login bug',
      priority: 'high',
      maxBudgetUsd: 3,
      allowedTools: ['Read', 'Edit', 'Write', 'Glob', 'Grep', 'Bash'],
    });
    expect(built.config.systemPrompt).toContain('/srv/web');
    const review = resolve('review auth.ts --budget 0.5');
    const r = buildExecutionConfig(review.parsed, review.bot, project, strategy);
    expect(r.ok && r.config.allowedTools).toEqual(['Read', 'Glob', 'Grep']);
    expect(r.ok && r.config.maxBudgetUsd).toBe(0.5);
  });

  it('rejects unknown models and bad flag values with a clear error', () => {
    const a = resolve('code fix x --model gpt-4');
    expect(buildExecutionConfig(a.parsed, a.bot, project, strategy)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/Unknown model "gpt-4"/),
    });
    const b = resolve('code fix x --budget lots');
    expect(buildExecutionConfig(b.parsed, b.bot, project, strategy)).toMatchObject({ ok: false });
  });
});
