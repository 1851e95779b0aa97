import type { Scenario } from '../types.js';
import { agentOverhead } from './agent-overhead.js';
import { connectedAgents } from './connected-agents.js';
import { crossInstance } from './cross-instance.js';
import { dispatchLatency } from './dispatch-latency.js';
import { eventStream } from './event-stream.js';
import { history } from './history.js';
import { lifecycle } from './lifecycle.js';
import { offlineDrain } from './offline-drain.js';
import { slackBudget } from './slack-budget.js';
import { streamFanIn } from './stream-fan-in.js';
import { throughput } from './throughput.js';
import { worktreeOverhead } from './worktree-overhead.js';

/** In the order they run. */
export const SCENARIOS: Scenario[] = [
  dispatchLatency,
  throughput,
  lifecycle,
  streamFanIn,
  eventStream,
  slackBudget,
  connectedAgents,
  offlineDrain,
  crossInstance,
  history,
  agentOverhead,
  worktreeOverhead,
];
