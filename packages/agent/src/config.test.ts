import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_SETTINGS, AgentConfigError, agentWsUrl, loadAgentConfig } from './config.js';

const required = {
  BEMATIC_CLOUD_URL: 'http://localhost:3000',
  BEMATIC_AGENT_ID: 'a1',
  BEMATIC_AGENT_KEY: 'k',
};

describe('loadAgentConfig', () => {
  it('reads several cloud instances from a comma-separated BEMATIC_CLOUD_URL, in order', () => {
    const config = loadAgentConfig(
      { ...required, BEMATIC_CLOUD_URL: 'http://a:3000, https://b.example , ws://c:4000/' },
      '/srv/work',
    );
    expect(config.cloudUrls).toEqual([
      'ws://a:3000/ws/agent',
      'wss://b.example/ws/agent',
      'ws://c:4000/ws/agent',
    ]);
    expect(() =>
      loadAgentConfig({ ...required, BEMATIC_CLOUD_URL: 'http://a:3000,,http://b' }, '/srv'),
    ).toThrow(/BEMATIC_CLOUD_URL must be a ws:\/\//);
  });

  it('applies defaults', () => {
    expect(loadAgentConfig(required, '/srv/work')).toEqual({
      cloudUrls: ['ws://localhost:3000/ws/agent'],
      agentId: 'a1',
      agentKey: 'k',
      maxConcurrentTasks: 3,
      roots: ['/srv/work'],
      cpuThreshold: 90,
      memoryThreshold: 90,
      cpuWindowMs: 30_000,
      maxTurns: 200,
      taskTimeoutMs: 1_800_000,
      shutdownGraceMs: 60_000,
      reconnectMaxMs: 30_000,
      stateDir: path.join('/srv/work', '.bematic', 'agent'),
      worktreeDir: path.join(os.homedir(), '.bematic', 'worktrees', 'a1'),
      branchPrefix: 'bematic/',
      projectConcurrency: 3,
      githubApiUrl: 'https://api.github.com',
      githubToken: undefined,
      sandbox: 'on',
      sandboxAllowedDomains: [],
      approvalRules: [],
      passEnv: [],
      logLevel: 'info',
      logFormat: 'auto',
    });
  });

  it('journals results by default under ./.bematic/agent/ of the directory the agent starts in', () => {
    expect(loadAgentConfig(required, '/home/dev/project').stateDir).toBe('/home/dev/project/.bematic/agent');
    expect(loadAgentConfig(required, '/tmp/elsewhere').stateDir).toBe('/tmp/elsewhere/.bematic/agent');
    // The default never pulls worktrees into the directory (often the checkout itself).
    expect(loadAgentConfig(required, '/home/dev/project').worktreeDir).not.toContain('/home/dev/project');
    const chosen = loadAgentConfig({ ...required, BEMATIC_AGENT_STATE_DIR: '/var/lib/bematic' }, '/x');
    expect(chosen).toMatchObject({ stateDir: '/var/lib/bematic', worktreeDir: '/var/lib/bematic/worktrees' });
  });

  it('reads the confinement settings, keeping rules with commas whole', () => {
    const config = loadAgentConfig(
      {
        ...required,
        BEMATIC_SANDBOX: 'OFF',
        BEMATIC_SANDBOX_ALLOWED_DOMAINS: 'registry.npmjs.org, *.github.com',
        BEMATIC_APPROVAL_RULES: 'Bash(git push:*), Bash(npm publish:*),WebFetch',
        BEMATIC_AGENT_PASS_ENV: 'JAVA_HOME,GOPATH',
      },
      '/srv',
    );
    expect(config).toMatchObject({
      sandbox: 'off',
      sandboxAllowedDomains: ['registry.npmjs.org', '*.github.com'],
      approvalRules: ['Bash(git push:*)', 'Bash(npm publish:*)', 'WebFetch'],
      passEnv: ['JAVA_HOME', 'GOPATH'],
    });
  });

  it('names the variable of a bad confinement setting', () => {
    expect(() =>
      loadAgentConfig({
        ...required,
        BEMATIC_SANDBOX: 'maybe',
        BEMATIC_SANDBOX_ALLOWED_DOMAINS: 'http://x.com/',
        BEMATIC_APPROVAL_RULES: 'Bash(git push:*',
        BEMATIC_AGENT_PASS_ENV: 'NOT-A-NAME',
      }),
    ).toThrow(
      /BEMATIC_SANDBOX must be "on" or "off", got "maybe"[\s\S]*BEMATIC_SANDBOX_ALLOWED_DOMAINS: "http:\/\/x.com\/" is not a host name[\s\S]*BEMATIC_APPROVAL_RULES: "Bash\(git push:\*" is not a rule[\s\S]*BEMATIC_AGENT_PASS_ENV: "NOT-A-NAME" is not an environment variable name/,
    );
  });

  it('keeps worktrees under the state dir, and validates the workspace settings', () => {
    expect(loadAgentConfig({ ...required, BEMATIC_AGENT_STATE_DIR: 'st' }, '/srv').worktreeDir).toBe(
      '/srv/st/worktrees',
    );
    expect(
      loadAgentConfig(
        {
          ...required,
          BEMATIC_WORKTREE_DIR: '/wt',
          BEMATIC_BRANCH_PREFIX: 'ai/',
          BEMATIC_PROJECT_CONCURRENCY: '2',
          GITHUB_API_URL: 'https://ghe.example.com/api/v3/',
          GITHUB_TOKEN: 'ghp_x',
        },
        '/srv',
      ),
    ).toMatchObject({
      worktreeDir: '/wt',
      branchPrefix: 'ai/',
      projectConcurrency: 2,
      githubApiUrl: 'https://ghe.example.com/api/v3',
      githubToken: 'ghp_x',
    });
    expect(() => loadAgentConfig({ ...required, BEMATIC_BRANCH_PREFIX: 'a..b' })).toThrow(
      /BEMATIC_BRANCH_PREFIX/,
    );
    expect(() => loadAgentConfig({ ...required, BEMATIC_PROJECT_CONCURRENCY: '0' })).toThrow(
      /BEMATIC_PROJECT_CONCURRENCY must be an integer/,
    );
    expect(() => loadAgentConfig({ ...required, GITHUB_API_URL: 'ftp://x' })).toThrow(/GITHUB_API_URL/);
  });

  it('reads every setting', () => {
    const config = loadAgentConfig(
      {
        ...required,
        MAX_CONCURRENT_TASKS: '5',
        BEMATIC_AGENT_ROOTS: ['/a', 'rel', ''].join(path.delimiter),
        BEMATIC_CPU_THRESHOLD: '80',
        BEMATIC_MEMORY_THRESHOLD: '70',
        BEMATIC_RECONNECT_MAX_MS: '1000',
        BEMATIC_AGENT_STATE_DIR: '.state',
      },
      '/srv',
    );
    expect(config).toMatchObject({
      maxConcurrentTasks: 5,
      roots: ['/a', '/srv/rel'],
      cpuThreshold: 80,
      memoryThreshold: 70,
      reconnectMaxMs: 1000,
      stateDir: '/srv/.state',
    });
  });

  it('reads the resource gate, turns and time limit; a threshold can be off', () => {
    expect(
      loadAgentConfig({
        ...required,
        BEMATIC_CPU_THRESHOLD: 'off',
        BEMATIC_MEMORY_THRESHOLD: ' OFF ',
        BEMATIC_CPU_WINDOW_MS: '5000',
        BEMATIC_MAX_TURNS: '40',
        BEMATIC_TASK_TIMEOUT_MS: '60000',
      }),
    ).toMatchObject({
      cpuThreshold: 'off',
      memoryThreshold: 'off',
      cpuWindowMs: 5000,
      maxTurns: 40,
      taskTimeoutMs: 60_000,
    });
    expect(() => loadAgentConfig({ ...required, BEMATIC_CPU_THRESHOLD: 'never' })).toThrow(
      /BEMATIC_CPU_THRESHOLD must be an integer from 1 to 100, or off, got "never"/,
    );
    expect(() => loadAgentConfig({ ...required, BEMATIC_MAX_TURNS: '0' })).toThrow(
      /BEMATIC_MAX_TURNS must be an integer from 1/,
    );
  });

  it('lists every problem at once, by variable name', () => {
    try {
      loadAgentConfig({
        BEMATIC_CLOUD_URL: 'ftp://x',
        MAX_CONCURRENT_TASKS: 'lots',
        BEMATIC_CPU_THRESHOLD: '150',
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AgentConfigError);
      const { issues } = err as AgentConfigError;
      expect(issues).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/BEMATIC_CLOUD_URL must be a ws:\/\//),
          expect.stringMatching(/BEMATIC_AGENT_ID is required/),
          expect.stringMatching(/BEMATIC_AGENT_KEY is required/),
          expect.stringMatching(/MAX_CONCURRENT_TASKS must be an integer from 1 to 1000, got "lots"/),
          expect.stringMatching(/BEMATIC_CPU_THRESHOLD must be an integer from 1 to 100/),
        ]),
      );
    }
  });

  it('documents every variable it reads', () => {
    expect(AGENT_SETTINGS.map((s) => s.name)).toEqual([
      'BEMATIC_CLOUD_URL',
      'BEMATIC_AGENT_ID',
      'BEMATIC_AGENT_KEY',
      'MAX_CONCURRENT_TASKS',
      'BEMATIC_AGENT_ROOTS',
      'BEMATIC_CPU_THRESHOLD',
      'BEMATIC_CPU_WINDOW_MS',
      'BEMATIC_MEMORY_THRESHOLD',
      'BEMATIC_MAX_TURNS',
      'BEMATIC_TASK_TIMEOUT_MS',
      'BEMATIC_SHUTDOWN_GRACE_MS',
      'BEMATIC_RECONNECT_MAX_MS',
      'BEMATIC_AGENT_STATE_DIR',
      'BEMATIC_WORKTREE_DIR',
      'BEMATIC_BRANCH_PREFIX',
      'BEMATIC_PROJECT_CONCURRENCY',
      'GITHUB_API_URL',
      'GITHUB_TOKEN',
      'BEMATIC_SANDBOX',
      'BEMATIC_SANDBOX_ALLOWED_DOMAINS',
      'BEMATIC_APPROVAL_RULES',
      'BEMATIC_AGENT_PASS_ENV',
      'BEMATIC_LOG_LEVEL',
      'BEMATIC_LOG_FORMAT',
    ]);
  });
});

describe('agentWsUrl', () => {
  it.each([
    ['http://h:3000', 'ws://h:3000/ws/agent'],
    ['https://h/', 'wss://h/ws/agent'],
    ['wss://h/base', 'wss://h/base/ws/agent'],
    ['ws://h/ws/agent', 'ws://h/ws/agent'],
  ])('%s → %s', (input, expected) => {
    expect(agentWsUrl(input)).toBe(expected);
  });

  it('rejects other schemes and garbage', () => {
    expect(agentWsUrl('ftp://h')).toBeUndefined();
    expect(agentWsUrl('not a url')).toBeUndefined();
  });
});
