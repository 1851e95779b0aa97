import { describe, expect, it } from 'vitest';
import { buildExecutionConfig } from '../commands/execution-config.js';
import type { Project } from '../db/repositories/types.js';
import { BotRegistry } from './bot-registry.js';
import { CoderBot, ReviewerBot } from './bots.js';
import { parseArguments, tokenize } from './command-parser.js';
import { createModelStrategy, DEFAULT_MODEL_TIERS } from './model-routing.js';

const project: Project = {
  id: 'proj_1',
  name: 'web',
  channelId: 'C1',
  agentId: 'agent-1',
  fallbackAgentIds: [],
  localPath: '/srv/web',
  defaultModel: null,
  maxBudgetUsd: 3,
  defaultBot: 'coder',
  mcpServers: null,
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

  it('a named bot picks the command word or its default command', () => {
    const registry = new BotRegistry();
    const named = (text: string) => {
      const r = registry.resolveFromMention(`${CoderBot.name} ${text}`);
      return r.kind === 'resolved' ? r.parsed : undefined;
    };
    expect(named('fix the login bug in auth.ts')).toMatchObject({
      command: 'fix',
      args: 'fix the login bug in auth.ts',
    });
    expect(named('the whole thing')?.command).toBe('implement');
  });
});

describe('BotRegistry.resolveFromMention', () => {
  const registry = new BotRegistry();

  it.each([
    // A leading bot name picks the bot and is taken off; a command word picks the command and stays.
    ['code fix the login bug in auth.ts', 'coder', 'fix', 'fix the login bug in auth.ts'],
    ['code add a hello() function to hello.js', 'coder', 'implement', 'add a hello() function to hello.js'],
    ['dev refactor utils.ts', 'coder', 'refactor', 'refactor utils.ts'],
    ['coder dark mode for the settings page', 'coder', 'implement', 'dark mode for the settings page'],
    ['review auth.ts', 'reviewer', 'review', 'review auth.ts'],
    ['reviewer audit the api', 'reviewer', 'audit', 'audit the api'],
    ['ops logs payment errors', 'ops', 'logs', 'logs payment errors'],
    ['ops status', 'ops', 'status', 'status'],
    ['plan estimate the migration', 'planner', 'estimate', 'estimate the migration'],
    ['fix the flaky test', 'coder', 'fix', 'fix the flaky test'],
    ['explain the cache', 'reviewer', 'explain', 'explain the cache'],
    // Plain words go to the default bot, whole.
    ['please fix the typo in README', 'coder', 'implement', 'please fix the typo in README'],
    ['wizard make it pretty', 'coder', 'implement', 'wizard make it pretty'],
    ['--model opus why is the build slow?', 'coder', 'implement', 'why is the build slow?'],
    ['a < b && c', 'coder', 'implement', 'a < b && c'],
  ])('%s', (text, bot, command, args) => {
    const r = registry.resolveFromMention(text);
    expect(r.kind).toBe('resolved');
    if (r.kind !== 'resolved') return;
    expect([r.bot.name, r.parsed.command, r.parsed.args]).toEqual([bot, command, args]);
  });

  it('keeps line breaks and everything but the flags', () => {
    const r = registry.resolveFromMention('please update\nthe changelog --priority high\nand the README');
    expect(r.kind === 'resolved' && r.parsed.args).toBe('please update\nthe changelog\nand the README');
    expect(r.kind === 'resolved' && r.parsed.flags).toEqual({ priority: 'high' });
  });

  it("sends plain words to the channel's default bot", () => {
    const r = registry.resolveFromMention('why does login fail on Safari?', { defaultBot: 'review' });
    expect(r).toMatchObject({ kind: 'resolved', via: 'default_bot', bot: { name: 'reviewer' } });
    expect(r.kind === 'resolved' && r.parsed).toMatchObject({
      command: 'review',
      args: 'why does login fail on Safari?',
    });
  });

  it.each(['', '   ', 'code', '--model opus', 'code --budget 2', 'fix', 'code fix', 'review'])(
    '"%s" asks for nothing: a how-to, no task',
    (text) => {
      const r = registry.resolveFromMention(text);
      expect(r.kind).toBe('empty');
      expect(r.kind === 'empty' && r.message).toMatch(/plain words/);
    },
  );

  it('a default bot that does not exist is reported, not guessed', () => {
    const r = registry.resolveFromMention('do the thing', { defaultBot: 'wizard' });
    expect(r).toMatchObject({ kind: 'unknown_bot', word: 'wizard' });
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

  it('carries --base and the project MCP servers into the submission, and refuses a base that is not a ref', () => {
    const { bot, parsed } = resolve('code fix the login bug --base release/2.0');
    const mcpServers = { docs: { type: 'http' as const, url: 'https://mcp.example.com/' } };
    const built = buildExecutionConfig(parsed, bot, { ...project, mcpServers }, strategy);
    expect(built.ok && built.config).toMatchObject({ workspace: { base: 'release/2.0' }, mcpServers });
    const bad = resolve('code fix it --base "-x; rm -rf"');
    expect(buildExecutionConfig(bad.parsed, bad.bot, project, strategy)).toMatchObject({
      ok: false,
      error: expect.stringContaining('--base needs a branch, tag or commit'),
    });
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
      prompt: 'fix the login bug',
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
