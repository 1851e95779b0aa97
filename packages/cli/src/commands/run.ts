import {
  Agent,
  type AgentConfig,
  AgentConfigError,
  ClaudeExecutor,
  claudeExecutorSettingsOf,
  detectSandbox,
  loadAgentConfig,
} from '@bematic/agent';
import {
  type Cloud,
  type CloudConfig,
  ConfigError,
  InstanceIdInUseError,
  loadCloudConfig,
  SqliteInUseError,
  startCloud,
} from '@bematic/cloud';
import type { Command } from 'commander';
import { findClaudeCredentials, MISSING_CREDENTIALS_MESSAGE } from '../local/claude-credentials.js';
import { LOCAL_CHANNEL, startLocalStack } from '../local/local-stack.js';
import { createCliLogger } from '../local/logger.js';
import { onShutdown } from './shared.js';

/** Turns configuration errors into a clear message and exit code instead of a stack trace. */
function configOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (err instanceof ConfigError || err instanceof AgentConfigError) {
      console.error(err.message);
      console.error('Run `npx bematic config` to see every setting and its default.');
      process.exit(2);
    }
    throw err;
  }
}

/** The settings, with what was given on the command line taking precedence over the environment. */
function cloudConfig(opts: { port?: string; instanceId?: string }): CloudConfig {
  return loadCloudConfig(process.env, {
    ...(opts.port !== undefined && { PORT: opts.port }),
    ...(opts.instanceId !== undefined && { BEMATIC_INSTANCE_ID: opts.instanceId }),
  });
}

/** A cloud that cannot join its database (SQLite already in use, a duplicate instance id) says why and exits. */
async function startOrExit<T>(start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof SqliteInUseError || err instanceof InstanceIdInUseError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}

/** Like Jupyter: a one-time link signs the browser in; deployments use BEMATIC_CONSOLE_TOKEN instead. */
async function signInBanner(config: CloudConfig, cloud: Cloud): Promise<string> {
  return config.BEMATIC_CONSOLE_TOKEN
    ? 'Sign in to the dashboard with BEMATIC_CONSOLE_TOKEN'
    : `Sign in: ${await cloud.loginUrl()}  (works once, on any instance)`;
}

const red = (text: string): string => (process.stdout.isTTY ? `\x1b[31m${text}\x1b[0m` : text);

/** What the banner says about how commands are confined. */
export function sandboxBanner(config: AgentConfig): string {
  if (config.sandbox === 'off')
    return red('Sandbox: OFF (BEMATIC_SANDBOX=off): commands Claude Code runs are not confined.');
  if (config.sandbox === 'unavailable') {
    const { howTo, missing } = detectSandbox();
    return red(
      `Sandbox: unavailable (${missing.length > 0 ? `missing ${missing.join(', ')}` : 'unsupported platform'}); ` +
        `install it with \`${howTo ?? 'see the README'}\`. Until then every command is asked for in the thread.`,
    );
  }
  return 'Sandbox: on (commands write only in the task directory; network only to allowed domains).';
}

function slackBanner(config: CloudConfig): string {
  if (config.SLACK_BOT_TOKEN && config.SLACK_APP_TOKEN) return 'Slack: connected in Socket Mode.';
  if (config.SLACK_BOT_TOKEN) return 'Slack: HTTP events at /slack/events (signatures verified).';
  return 'Slack: not configured (set SLACK_BOT_TOKEN and SLACK_APP_TOKEN to join a workspace); use the console.';
}

export function registerRunCommands(program: Command): void {
  program
    .command('up')
    .description(
      'Cloud + an in-process agent for the current directory + the dashboard (what `npm start` runs)',
    )
    .option('-p, --port <port>', 'HTTP port (default PORT or 3000)')
    .option('-d, --dir <path>', 'project directory the local agent works in', process.cwd())
    .action(async (opts: { port?: string; dir: string }) => {
      const config = configOrExit(() => cloudConfig(opts));
      const logger = createCliLogger(config.BEMATIC_LOG_LEVEL, config.BEMATIC_LOG_FORMAT);
      const credentials = findClaudeCredentials();
      const stack = await startOrExit(() =>
        startLocalStack({
          config,
          projectDir: opts.dir,
          executor: (agentConfig) =>
            new ClaudeExecutor({
              logger: logger.child({ component: 'claude' }),
              ...claudeExecutorSettingsOf(agentConfig),
            }),
          logger,
        }),
      );
      console.log(
        [
          '',
          `  Bematic is running: ${stack.cloud.url}`,
          `  ${await signInBanner(config, stack.cloud)}`,
          `  Console channel ${LOCAL_CHANNEL} → local agent in ${opts.dir}`,
          `  ${slackBanner(config)}`,
          `  ${sandboxBanner(stack.agent.config)}`,
          `  Database: ${config.DATABASE_URL}   Metrics: ${stack.cloud.url}/metrics`,
          `  Claude credentials: ${credentials ?? 'MISSING'}`,
          '',
          '  Try typing in the console:  code add a hello() function to hello.js',
          '',
        ].join('\n'),
      );
      if (!credentials) console.warn(`${MISSING_CREDENTIALS_MESSAGE}\n`);
      onShutdown(
        () => stack.close(),
        (m) => logger.info(m),
      );
    });

  program
    .command('cloud')
    .description('Run the control plane alone; agents connect to ws://HOST:PORT/ws/agent')
    .option('-p, --port <port>', 'HTTP port (default PORT or 3000)')
    .option(
      '--instance-id <id>',
      'name of this instance in logs, metrics, /readyz and /bm agents (default BEMATIC_INSTANCE_ID or <hostname>-<pid>)',
    )
    .action(async (opts: { port?: string; instanceId?: string }) => {
      const config = configOrExit(() => cloudConfig(opts));
      const logger = createCliLogger(config.BEMATIC_LOG_LEVEL, config.BEMATIC_LOG_FORMAT);
      const cloud = await startOrExit(() => startCloud({ config, logger }));
      console.log(
        `\n  Bematic cloud: ${cloud.url}  (agents: ${cloud.agentUrl}/ws/agent)\n  Instance: ${cloud.cluster.instanceId}\n  ${await signInBanner(config, cloud)}\n  ${slackBanner(config)}\n`,
      );
      onShutdown(
        () => cloud.close(),
        (m) => logger.info(m),
      );
    });

  program
    .command('agent')
    .description('Run an agent; needs BEMATIC_CLOUD_URL, BEMATIC_AGENT_ID and BEMATIC_AGENT_KEY')
    .action(async () => {
      const config = configOrExit(() => loadAgentConfig());
      const logger = createCliLogger(config.logLevel ?? 'info', config.logFormat);
      if (!findClaudeCredentials()) console.warn(`${MISSING_CREDENTIALS_MESSAGE}\n`);
      console.log(`\n  ${sandboxBanner(config)}`);
      if (config.sandbox === 'on' && !detectSandbox().available)
        console.warn(
          `  ${red(`The sandbox cannot start here: tasks will fail with SANDBOX_UNAVAILABLE. Install it with \`${detectSandbox().howTo}\`, or set BEMATIC_SANDBOX=off.`)}\n`,
        );
      const agent = new Agent({
        config,
        executor: new ClaudeExecutor({
          logger: logger.child({ component: 'claude' }),
          ...claudeExecutorSettingsOf(config),
        }),
        logger,
      });
      agent.on('authenticated', () =>
        logger.info({ cloud: agent.connection.url, agentId: config.agentId }, 'connected to the cloud'),
      );
      agent.on('auth-failed', (reason) =>
        logger.error(
          { reason },
          'the cloud refused this agent; check BEMATIC_AGENT_ID and BEMATIC_AGENT_KEY',
        ),
      );
      agent.start();
      onShutdown(
        () => agent.stop({ graceful: true }),
        (m) => logger.info(m),
      );
    });
}
