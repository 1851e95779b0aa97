import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Agent,
  ClaudeExecutor,
  DEFAULT_CPU_WINDOW_MS,
  type Executor,
  loadAgentConfig,
  ResourceMonitor,
  type ResourceSample,
} from '@bematic/agent';
import {
  type Cloud,
  type CloudConfig,
  loadCloudConfig,
  provisionAgent,
  type StartCloudOptions,
  startCloud,
} from '@bematic/cloud';
import { type Clock, systemClock } from '@bematic/protocol';
import { type Logger, pino } from 'pino';
import type { ModelScript } from './model-server/script.js';
import { type ScriptedModelServer, startScriptedModelServer } from './model-server/scripted-model-server.js';
import { type SlackEmulator, startSlackEmulator } from './slack-emulator/slack-emulator.js';

export const SYSTEM_CHANNEL = 'C0BEMATIC';
export const SYSTEM_AGENT_ID = 'agent-1';

export interface TestSystemOptions {
  script?: ModelScript;
  /** Extra cloud settings (environment-variable names), e.g. BEMATIC_RATE_LIMIT. */
  settings?: Record<string, string>;
  cloud?: Omit<StartCloudOptions, 'config' | 'logger'>;
  /** Default: the real Claude executor against the scripted model server. */
  executor?: (model: ScriptedModelServer, home: string) => Executor;
  /** Make the project directory a git repository (default true). */
  git?: boolean;
  /** Connect the agent at start (default true). */
  startAgent?: boolean;
  logger?: Logger;
  /** Reuse a database file across restarts (cloud restart tests). */
  databaseUrl?: string;
  maxConcurrentTasks?: number;
  /** Extra agent settings (environment-variable names), e.g. GITHUB_API_URL. */
  agentSettings?: Record<string, string>;
}

export interface TestSystem {
  emulator: SlackEmulator;
  model: ScriptedModelServer;
  cloud: Cloud;
  agent: Agent;
  agentKey: string;
  /**
   * What the agent's resource monitor reads. The machine's own load is not
   * used, so a busy CI host cannot make the agent refuse work; tests set it to
   * exercise the resource-exhaustion flow and then call `agent.resources.sample()`.
   */
  resources: ResourceSample;
  channel: string;
  /** The project checkout the agent works in. */
  projectDir: string;
  /** Scratch root (database, HOME for Claude Code). */
  root: string;
  config: CloudConfig;
  startAgent(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Boots a whole Bematic in this process, with doubles only at the network
 * edge: the Slack emulator, the scripted model server, the real cloud (Bolt in
 * Socket Mode pointed at the emulator), and a real agent running the real
 * Claude Agent SDK over a real WebSocket on loopback.
 */
export async function startTestSystem(opts: TestSystemOptions = {}): Promise<TestSystem> {
  const logger = opts.logger ?? pino({ level: 'silent' });
  const root = await mkdtemp(path.join(tmpdir(), 'bematic-system-'));
  const projectDir = path.join(root, 'project');
  const home = path.join(root, 'home');
  execFileSync('mkdir', ['-p', projectDir, home]);
  if (opts.git ?? true) {
    execFileSync('git', ['init', '-q'], { cwd: projectDir });
    execFileSync(
      'git',
      [
        '-c',
        'user.email=ci@bematic.dev',
        '-c',
        'user.name=ci',
        'commit',
        '-q',
        '--allow-empty',
        '-m',
        'init',
      ],
      {
        cwd: projectDir,
      },
    );
  }

  const emulator = await startSlackEmulator();
  emulator.addChannel({ id: SYSTEM_CHANNEL, name: 'webapp' });
  const model = await startScriptedModelServer({ script: opts.script ?? [] });
  const config = loadCloudConfig({
    DATABASE_URL: opts.databaseUrl ?? `sqlite:${path.join(root, 'bematic.db')}`,
    PORT: '0',
    SLACK_BOT_TOKEN: emulator.botToken,
    SLACK_APP_TOKEN: emulator.appToken,
    SLACK_API_URL: emulator.apiUrl,
    BEMATIC_LOG_LEVEL: 'silent',
    ...opts.settings,
  });
  const cloud = await startCloud({
    config,
    logger,
    slackRetry: { retries: 20, minTimeout: 20, maxTimeout: 200, factor: 1.5 },
    // The emulator enforces no limits here unless a test asks; runSlackBudget tests the real budget.
    slackUpdateBudget: { perMinute: 0, channelIntervalMs: 0 },
    ...opts.cloud,
  });
  await emulator.waitForConnection();
  const { key } = await provisionAgent(
    { repos: cloud.repos, apiKeys: cloud.gateway.apiKeys },
    {
      agentId: SYSTEM_AGENT_ID,
      channelId: SYSTEM_CHANNEL,
      localPath: projectDir,
      projectName: 'webapp',
      keyLabel: 'test-system',
    },
  );
  const executor =
    opts.executor?.(model, home) ??
    new ClaudeExecutor({ apiKey: 'sk-ant-test-key', baseUrl: model.url, home, maxRetries: 0, logger });
  const resources: ResourceSample = { cpuPercent: 10, memoryPercent: 30, rssMb: 100, loadAvg1m: 0.2 };
  let resourceTime = Date.now();
  const resourceClock: Clock = { ...systemClock, now: () => resourceTime };
  const agentConfig = loadAgentConfig(
    {
      BEMATIC_CLOUD_URL: cloud.agentUrl,
      BEMATIC_AGENT_ID: SYSTEM_AGENT_ID,
      BEMATIC_AGENT_KEY: key,
      BEMATIC_AGENT_ROOTS: root,
      BEMATIC_WORKTREE_DIR: path.join(root, 'worktrees'),
      ...(opts.maxConcurrentTasks !== undefined && { MAX_CONCURRENT_TASKS: String(opts.maxConcurrentTasks) }),
      ...opts.agentSettings,
    },
    root,
  );
  const agent = new Agent({
    config: agentConfig,
    executor,
    logger,
    reconnectBaseMs: 50,
    resourceMonitor: new ResourceMonitor({
      cpuThreshold: agentConfig.cpuThreshold,
      memoryThreshold: agentConfig.memoryThreshold,
      recoverySamples: 1,
      // Each sample stands for a whole CPU window, so one `sample()` call decides.
      clock: resourceClock,
      sampler: () => {
        resourceTime += DEFAULT_CPU_WINDOW_MS;
        return { ...resources };
      },
    }),
  });

  const startAgent = async () => {
    const authenticated = new Promise<void>((resolve) => agent.once('authenticated', () => resolve()));
    agent.start();
    await authenticated;
  };
  if (opts.startAgent ?? true) await startAgent();

  return {
    emulator,
    model,
    cloud,
    agent,
    agentKey: key,
    resources,
    channel: SYSTEM_CHANNEL,
    projectDir,
    root,
    config,
    startAgent,
    close: async () => {
      await agent.stop({ graceful: false });
      await cloud.close();
      await model.close();
      await emulator.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}
