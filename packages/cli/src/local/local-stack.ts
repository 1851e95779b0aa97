import path from 'node:path';
import { Agent, type AgentConfig, detectSandbox, type Executor, loadAgentConfig } from '@bematic/agent';
import {
  type Cloud,
  type CloudConfig,
  provisionAgent,
  type StartCloudOptions,
  startCloud,
} from '@bematic/cloud';
import type { Logger } from 'pino';

export const LOCAL_AGENT_ID = 'local';
export const LOCAL_CHANNEL = 'console:local';

export interface LocalStack {
  cloud: Cloud;
  agent: Agent;
  close(): Promise<void>;
}

/**
 * The one-process mode behind `bematic up`: the cloud, plus an agent for
 * `projectDir` connected to it over a real WebSocket on loopback, exactly as
 * a remote agent would be.
 */
export async function startLocalStack(opts: {
  config: CloudConfig;
  projectDir: string;
  /** The executor, or how to make one from the local agent's configuration (its confinement). */
  executor: Executor | ((config: AgentConfig) => Executor);
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  cloud?: Omit<StartCloudOptions, 'config' | 'logger'>;
  maxConcurrentTasks?: number;
}): Promise<LocalStack> {
  const cloud = await startCloud({ config: opts.config, logger: opts.logger, ...opts.cloud });
  try {
    const { key } = await provisionAgent(
      { repos: cloud.repos, apiKeys: cloud.gateway.apiKeys },
      {
        agentId: LOCAL_AGENT_ID,
        channelId: LOCAL_CHANNEL,
        localPath: opts.projectDir,
        projectName: path.basename(opts.projectDir) || 'local',
        keyLabel: 'bematic up',
      },
    );
    const env = opts.env ?? process.env;
    const config = loadAgentConfig(
      {
        ...env,
        BEMATIC_CLOUD_URL: cloud.agentUrl,
        BEMATIC_AGENT_ID: LOCAL_AGENT_ID,
        BEMATIC_AGENT_KEY: key,
        BEMATIC_AGENT_ROOTS: opts.projectDir,
        ...(opts.maxConcurrentTasks !== undefined && {
          MAX_CONCURRENT_TASKS: String(opts.maxConcurrentTasks),
        }),
      },
      opts.projectDir,
    );
    // Local mode starts on a machine without a sandbox too: then every command is asked for in the thread.
    if (config.sandbox === 'on' && !detectSandbox(env.PATH).available) config.sandbox = 'unavailable';
    const agent = new Agent({
      config,
      executor: typeof opts.executor === 'function' ? opts.executor(config) : opts.executor,
      logger: opts.logger.child({ component: 'agent' }),
    });
    const authenticated = new Promise<void>((resolve, reject) => {
      agent.once('authenticated', () => resolve());
      agent.once('auth-failed', (reason: string) =>
        reject(new Error(`local agent could not authenticate: ${reason}`)),
      );
    });
    agent.start();
    await authenticated;
    return {
      cloud,
      agent,
      close: async () => {
        await agent.stop({ graceful: true });
        await cloud.close();
      },
    };
  } catch (err) {
    await cloud.close();
    throw err;
  }
}
