/**
 * Child process for the lifecycle scenario: one raw protocol client that answers every TASK_SUBMIT at once
 * with TASK_ACK, TASK_PROGRESS and TASK_COMPLETE (an agent with a no-op executor and no queue), so what is
 * measured is the cloud's handling of the lifecycle, not an agent's. Also the baseline: the same client
 * sending frames as fast as a raw `ws` server on loopback takes them. Driven over IPC.
 */
import type { PayloadOf } from '@bematic/protocol';
import { RawAgent } from '@bematic/testkit';
import { WebSocket } from 'ws';

export type LifecycleCommand =
  | { type: 'connect'; url: string; agentId: string; apiKey: string; expect: number }
  | { type: 'blast'; url: string; frame: string; count: number }
  | { type: 'stop' };

export type LifecycleReply =
  | { type: 'authenticated' }
  | { type: 'done'; resultAcks: number; submits: number; lastResultAckMs: number }
  | { type: 'blasted'; count: number }
  | { type: 'failed'; error: string };

/** Messages on the wire per task: SUBMIT and RESULT_ACK from the cloud, ACK, PROGRESS, COMPLETE from the agent. */
export const MESSAGES_PER_TASK = 5;

const reply = (r: LifecycleReply) => process.send?.(r);
let agent: RawAgent | undefined;

export function completeOf(taskId: string, attempt: number): PayloadOf<'TASK_COMPLETE'> {
  return {
    taskId,
    attempt,
    result: 'done',
    metrics: {
      inputTokens: 10,
      outputTokens: 20,
      cacheReadTokens: 0,
      cacheCreationTokens: 0,
      costUsd: 0.001,
      durationMs: 1,
      numTurns: 1,
      continuations: 0,
    },
    filesChanged: [],
    commandsRun: [],
  };
}

function connect(cmd: Extract<LifecycleCommand, { type: 'connect' }>): void {
  const auth = {
    agentId: cmd.agentId,
    apiKey: cmd.apiKey,
    agentVersion: 'bench',
    hostname: 'bench-lifecycle',
    maxConcurrentTasks: 10_000,
  };
  RawAgent.accepted(cmd.url, auth, { answerPings: true, timeoutMs: 300_000 }).then(
    (a) => {
      agent = a;
      const authenticatedAt = performance.now();
      reply({ type: 'authenticated' });
      let submits = 0;
      let resultAcks = 0;
      const answer = async () => {
        while (submits < cmd.expect) {
          const { payload } = await a.next('TASK_SUBMIT');
          submits++;
          const { taskId, attempt } = payload;
          a.send('TASK_ACK', { taskId, attempt, accepted: true, queued: false });
          a.send('TASK_PROGRESS', { taskId, attempt, kind: 'started', message: 'Task started' });
          a.send('TASK_COMPLETE', completeOf(taskId, attempt));
        }
      };
      const count = async () => {
        while (resultAcks < cmd.expect) {
          await a.next('TASK_RESULT_ACK');
          resultAcks++;
        }
        reply({ type: 'done', resultAcks, submits, lastResultAckMs: performance.now() - authenticatedAt });
      };
      Promise.all([answer(), count()]).catch((err: Error) => reply({ type: 'failed', error: err.message }));
    },
    (err: Error) => reply({ type: 'failed', error: err.message }),
  );
}

function blast(cmd: Extract<LifecycleCommand, { type: 'blast' }>): void {
  const ws = new WebSocket(cmd.url);
  ws.on('open', () => {
    for (let i = 0; i < cmd.count; i++) ws.send(cmd.frame);
    reply({ type: 'blasted', count: cmd.count });
  });
  ws.on('error', (err) => reply({ type: 'failed', error: err.message }));
}

function isCommand(value: unknown): value is LifecycleCommand {
  const type = (value as { type?: unknown } | null)?.type;
  return type === 'connect' || type === 'blast' || type === 'stop';
}

process.on('message', (cmd: unknown) => {
  if (!isCommand(cmd)) return;
  if (cmd.type === 'connect') connect(cmd);
  else if (cmd.type === 'blast') blast(cmd);
  else {
    void agent?.terminate();
    process.disconnect?.();
    setImmediate(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
