import { type Options, query } from '@anthropic-ai/claude-agent-sdk';
import { ClaudeExecutor } from '@bematic/agent';
import type { TaskSubmit } from '@bematic/protocol';
import type { RecordedRequest, ScriptedModelServer, TestSystem } from '@bematic/testkit';
import {
  BENCH_USER,
  now,
  silentLogger,
  startBenchSystem,
  TerminalLog,
  TimingExecutor,
  watchAgentFrames,
  withTimeout,
} from '../harness.js';
import { median, round, summarize } from '../stats.js';
import type { Scenario } from '../types.js';

const API_KEY = 'sk-ant-bench-key';
const RUN_TIMEOUT_MS = 90_000;

/** The moment the next main-loop request (one the server has not seen yet) is recorded. */
function nextMainLoopRequest(model: ScriptedModelServer): Promise<number> {
  const seen = new Set<RecordedRequest>(model.requests);
  let at = 0;
  return model
    .waitForRequest((r) => {
      if (seen.has(r) || !r.mainLoop) return false;
      at = now();
      return true;
    })
    .then(() => at);
}

/** What ClaudeExecutor gives Claude Code, rebuilt here so the bare run is an equal comparison. */
function claudeEnv(model: ScriptedModelServer, home: string): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(SLACK_|BEMATIC_|DATABASE_URL$|PG[A-Z]*$|ANTHROPIC_)/.test(k)) env[k] = v;
  }
  return {
    ...env,
    ANTHROPIC_API_KEY: API_KEY,
    ANTHROPIC_BASE_URL: model.url,
    HOME: home,
    CLAUDE_CONFIG_DIR: `${home}/.claude`,
    CLAUDE_CODE_MAX_RETRIES: '0',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    ENABLE_TOOL_SEARCH: 'false',
  };
}

interface AgentRun {
  /** TASK_SUBMIT frame read off the agent's socket → Claude Code's first model request. */
  submitToFirstRequest: number;
  mentionToExecutor: number;
  executorToFirstRequest: number;
  mentionToFirstRequest: number;
  executorToDone: number;
  status: string;
}

interface BareRun {
  queryToFirstRequest: number;
  queryToDone: number;
}

/** The moment the last TASK_SUBMIT frame arrived on the agent's socket, before the agent parsed it. */
function submitArrivals(system: TestSystem): { last(): number; reset(): void } {
  let at = 0;
  const frames = watchAgentFrames(system, (data, t) => {
    if (data.includes('"TASK_SUBMIT"')) at = t;
  });
  return {
    last: () => at,
    reset: () => {
      frames.rehook();
      at = 0;
    },
  };
}

/** Mean with a 95 % confidence half-width (normal approximation), for paired differences. */
function meanCi(values: number[]): { mean: number; halfWidth: number; sd: number } {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, halfWidth: n > 1 ? (1.96 * sd) / Math.sqrt(n) : Number.POSITIVE_INFINITY };
}

/** The paired comparison must tell apart differences this small (the issue asks for 10 ms). */
const RESOLUTION_MS = 10;

/**
 * What the agent adds before Claude Code's first model request, against the
 * scripted model server, as a paired comparison: from the TASK_SUBMIT frame
 * arriving on the agent's socket (parse, path check, queue admission,
 * workspace, executor, spawn) to the first model request, against a bare
 * `query()` with the same options to the same server. The pairs alternate
 * which goes first so drift in the machine's load cancels; the difference is
 * taken per pair. Each run spawns Claude Code.
 */
export const agentOverhead: Scenario = {
  name: 'overhead',
  title: 'Agent overhead before the first model request vs bare SDK query()',
  async run(ctx) {
    // The full run takes pairs until the 95 % interval of the mean difference is within ±10 ms (checked every
    // 10 pairs after the first 40), or it has spent the budget below.
    const minPairs = ctx.quick ? 2 : 40;
    const maxPairs = ctx.quick ? 2 : 500;
    const budgetMs = 15 * 60_000;
    let home = '';
    let received: { task: TaskSubmit; at: number } | null = null;
    const system: TestSystem = await startBenchSystem({
      git: true,
      // Short throttle so each run's last Slack update lands before the next (bare) run starts.
      settings: { BEMATIC_PROGRESS_INTERVAL_MS: '100' },
      executor: (model, h) => {
        home = h;
        return new TimingExecutor(
          new ClaudeExecutor({
            apiKey: API_KEY,
            baseUrl: model.url,
            home: h,
            maxRetries: 0,
            logger: silentLogger(),
          }),
          (task, at) => {
            received = { task, at };
          },
        );
      },
    });
    const terminals = new TerminalLog(system.cloud);
    const { model } = system;
    const arrivals = submitArrivals(system);

    const agentRun = async (i: number): Promise<AgentRun> => {
      received = null;
      arrivals.reset();
      const first = nextMainLoopRequest(model);
      const t0 = now();
      await system.emulator.mention({
        user: BENCH_USER,
        channel: system.channel,
        text: `<@${system.emulator.botUserId}> code fix overhead run ${i}`,
      });
      const firstAt = await withTimeout(first, RUN_TIMEOUT_MS, 'the first model request (agent)');
      const got = received as { task: TaskSubmit; at: number } | null;
      if (!got) throw new Error('the executor never saw the task');
      await terminals.waitForTask(got.task.taskId, RUN_TIMEOUT_MS);
      const done = terminals.at.get(got.task.taskId);
      await system.cloud.notifications.idle();
      const frameAt = arrivals.last();
      if (frameAt === 0) throw new Error('the TASK_SUBMIT frame was not seen on the agent socket');
      return {
        submitToFirstRequest: firstAt - frameAt,
        mentionToExecutor: got.at - t0,
        executorToFirstRequest: firstAt - got.at,
        mentionToFirstRequest: firstAt - t0,
        executorToDone: (done?.at ?? now()) - got.at,
        status: done?.event ?? 'unknown',
      };
    };

    const bareRun = async (task: TaskSubmit): Promise<BareRun> => {
      const abortController = new AbortController();
      const options: Options = {
        cwd: task.localPath,
        model: task.model,
        systemPrompt: task.systemPrompt,
        tools: [...task.allowedTools],
        allowedTools: [...task.allowedTools],
        permissionMode: 'dontAsk',
        settingSources: [],
        maxTurns: 200,
        abortController,
        env: claudeEnv(model, home),
      };
      const first = nextMainLoopRequest(model);
      const t0 = now();
      const consume = (async () => {
        for await (const _ of query({ prompt: task.prompt, options })) {
          // drain every message, as a caller would
        }
      })();
      try {
        const firstAt = await withTimeout(first, RUN_TIMEOUT_MS, 'the first model request (bare query)');
        await withTimeout(consume, RUN_TIMEOUT_MS, 'bare query() to finish');
        return { queryToFirstRequest: firstAt - t0, queryToDone: now() - t0 };
      } catch (err) {
        abortController.abort();
        await consume.catch(() => {});
        throw err;
      }
    };

    try {
      const agentRuns: AgentRun[] = [];
      const bareRuns: BareRun[] = [];
      // Warm-up: the first spawn pays for reading Claude Code from disk; it also yields the exact TASK_SUBMIT.
      await agentRun(-1);
      const task = (received as { task: TaskSubmit } | null)?.task;
      if (!task) throw new Error('no TASK_SUBMIT captured');
      await bareRun(task);
      const started = now();
      const diffsSoFar = () =>
        agentRuns.map((r, i) => r.submitToFirstRequest - (bareRuns[i]?.queryToFirstRequest ?? 0));
      const resolved = () => meanCi(diffsSoFar()).halfWidth <= RESOLUTION_MS;
      for (let i = 0; i < maxPairs; i++) {
        if (i >= minPairs && i % 10 === 0 && (resolved() || now() - started > budgetMs)) break;
        // Alternate the order within the pair: whatever the machine does meanwhile hits both sides alike.
        if (i % 2 === 0) {
          agentRuns.push(await agentRun(i));
          bareRuns.push(await bareRun(task));
        } else {
          bareRuns.push(await bareRun(task));
          agentRuns.push(await agentRun(i));
        }
        if ((i + 1) % 10 === 0 || ctx.quick)
          ctx.log(`  overhead: ${i + 1} pairs, ±${round(meanCi(diffsSoFar()).halfWidth)} ms (95 %)`);
      }
      const iterations = agentRuns.length;
      const m = (f: (r: AgentRun) => number) => median(agentRuns.map(f));
      const diffs = agentRuns.map((r, i) => r.submitToFirstRequest - (bareRuns[i]?.queryToFirstRequest ?? 0));
      const d = summarize(diffs);
      const ci = meanCi(diffs);
      const agent = m((r) => r.submitToFirstRequest);
      const bare = median(bareRuns.map((r) => r.queryToFirstRequest));
      return {
        rows: [
          {
            metric: 'agent overhead before the first model request (paired)',
            value: round(d.p50),
            unit: 'ms',
            target: { text: 'resolves 10 ms (95 % interval ±10 ms)', met: ci.halfWidth <= RESOLUTION_MS },
            notes: `median of ${iterations} per-pair differences; mean ${round(ci.mean)} ± ${round(ci.halfWidth)} ms (95 %), sd ${round(ci.sd)} ms`,
          },
          {
            metric: '  TASK_SUBMIT received → first model request (agent)',
            value: round(agent),
            unit: 'ms',
            notes: `median (min ${round(Math.min(...agentRuns.map((r) => r.submitToFirstRequest)))}); parse, path check, queue admission, git status, spawn, Claude Code start`,
          },
          {
            metric: '  query() → first model request (bare SDK)',
            value: round(bare),
            unit: 'ms',
            notes: `baseline: median (min ${round(Math.min(...bareRuns.map((r) => r.queryToFirstRequest)))}), same cwd/model/tools/env, same scripted model server`,
          },
          {
            metric: '  executor → first model request (agent)',
            value: round(m((r) => r.executorToFirstRequest)),
            unit: 'ms',
            notes: 'of the above, from the executor call on (ClaudeExecutor)',
          },
          {
            metric: 'mention → first model request (end to end)',
            value: round(m((r) => r.mentionToFirstRequest)),
            unit: 'ms',
            notes: `of which mention → executor ${round(m((r) => r.mentionToExecutor))} ms`,
          },
          {
            metric: 'run to done: agent / bare',
            value: round(m((r) => r.executorToDone)),
            unit: 'ms',
            notes: `bare query() ${round(median(bareRuns.map((r) => r.queryToDone)))} ms (one-turn "Done." script)`,
          },
        ],
        details: {
          pairs: iterations,
          model: task.model,
          tools: task.allowedTools,
          differenceMs: d,
          differenceMean: ci,
          agentRuns,
          bareRuns,
        },
      };
    } finally {
      terminals.close();
      await system.close();
    }
  },
};
