import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createMessage, type Message } from '@bematic/protocol';
import { describe, expect, it } from 'vitest';
import { OutboundBuffer, type OutboundTransport } from './outbound-buffer.js';
import { TerminalStore } from './terminal-store.js';

/** The socket side: records writes and lets the test decide each write's fate. */
class Transport implements OutboundTransport {
  ready = false;
  sent: Message[] = [];
  private settle: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  autoConfirm = true;
  isReady(): boolean {
    return this.ready;
  }
  send(message: Message): Promise<void> {
    this.sent.push(message);
    if (this.autoConfirm) return Promise.resolve();
    return new Promise((resolve, reject) => this.settle.push({ resolve, reject }));
  }
  failAll(): void {
    for (const s of this.settle.splice(0)) s.reject(new Error('socket closed'));
  }
  confirmFirst(): void {
    this.settle.shift()?.resolve();
  }
  confirmAll(): void {
    for (const s of this.settle.splice(0)) s.resolve();
  }
}

const stream = (seq: number) =>
  createMessage('TASK_STREAM', { taskId: 't1', attempt: 1, seq, text: `s${seq}` }) as Message;
const progress = (n: number) =>
  createMessage('TASK_PROGRESS', { taskId: 't1', attempt: 1, kind: 'status', message: `p${n}` }) as Message;
const metrics = {
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheCreationTokens: 0,
  costUsd: 0,
  durationMs: 0,
  numTurns: 0,
  continuations: 0,
};
const complete = (taskId: string, attempt = 1) =>
  createMessage('TASK_COMPLETE', {
    taskId,
    attempt,
    result: 'ok',
    metrics,
    filesChanged: [],
    commandsRun: [],
  }) as Message;
const status = (overloaded: boolean) =>
  createMessage('AGENT_STATUS', {
    overloaded,
    maxConcurrentTasks: 1,
    metrics: { cpuPercent: 0, memoryPercent: 0, rssMb: 0, loadAvg1m: 0, activeTasks: 0, queuedTasks: 0 },
  }) as Message;
const flushMicrotasks = () => new Promise((r) => setImmediate(r));

describe('OutboundBuffer', () => {
  it('holds messages while offline and sends them in order after auth', () => {
    const t = new Transport();
    const b = new OutboundBuffer({ transport: t });
    const msgs = [progress(0), stream(0), stream(1), complete('t1')];
    for (const m of msgs) b.enqueue(m);
    expect(t.sent).toHaveLength(0);
    expect(b.bufferedTaskIds()).toEqual(['t1']);
    t.ready = true;
    b.flush();
    expect(t.sent.map((m) => m.id)).toEqual(msgs.map((m) => m.id));
  });

  it('caps stream and progress frames, dropping the oldest stream chunks first, never terminal ones', () => {
    const t = new Transport();
    const b = new OutboundBuffer({ transport: t, maxDroppable: 3 });
    b.enqueue(progress(0));
    for (let i = 0; i < 5; i++) b.enqueue(stream(i));
    b.enqueue(complete('t1'));
    expect(b.dropped).toBe(3);
    t.ready = true;
    b.flush();
    expect(t.sent.map((m) => (m.type === 'TASK_STREAM' ? `s${m.payload.seq}` : m.type))).toEqual([
      'TASK_PROGRESS',
      's3',
      's4',
      'TASK_COMPLETE',
    ]);
  });

  it('keeps a terminal message after the write returns, until TASK_RESULT_ACK; resends it on each new connection', async () => {
    const t = new Transport();
    t.ready = true;
    t.autoConfirm = false;
    const b = new OutboundBuffer({ transport: t });
    b.enqueue(stream(0));
    b.enqueue(complete('t1'));
    expect(b.bufferedTaskIds()).toEqual(['t1']);
    t.failAll();
    await flushMicrotasks();
    expect(b.size).toBe(1); // the stream chunk is best effort; the result is not
    b.flush();
    expect(t.sent.filter((m) => m.type === 'TASK_COMPLETE')).toHaveLength(2);
    t.confirmAll();
    await flushMicrotasks();
    // Written and confirmed by the socket, but not committed by the cloud: still held.
    expect(b.bufferedTaskIds()).toEqual(['t1']);
    b.flush();
    expect(t.sent.filter((m) => m.type === 'TASK_COMPLETE')).toHaveLength(2); // not again on this connection
    t.autoConfirm = true;
    b.reconnected();
    expect(t.sent.filter((m) => m.type === 'TASK_COMPLETE')).toHaveLength(3); // again on the next one
    const empty = b.whenEmpty();
    expect(b.acknowledge('other')).toBe(false);
    expect(b.acknowledge('t1')).toBe(true);
    await empty;
    expect(b.bufferedTaskIds()).toEqual([]);
    b.reconnected();
    expect(t.sent.filter((m) => m.type === 'TASK_COMPLETE')).toHaveLength(3);
  });

  it('restamps what it holds of a task with a newer attempt and writes the terminal message again', async () => {
    const t = new Transport();
    t.ready = true;
    const b = new OutboundBuffer({ transport: t });
    b.enqueue(complete('t1', 1));
    await flushMicrotasks();
    b.restamp('t1', 3);
    const attempts = t.sent.map((m) => m.type === 'TASK_COMPLETE' && m.payload.attempt);
    expect(attempts).toEqual([1, 3]);
    b.restamp('t1', 2); // older than what it holds: nothing changes
    expect(t.sent).toHaveLength(2);
  });

  it('keeps only the newest AGENT_STATUS while offline', () => {
    const t = new Transport();
    const b = new OutboundBuffer({ transport: t });
    b.enqueue(status(true));
    b.enqueue(status(false));
    t.ready = true;
    b.flush();
    expect(t.sent.map((m) => m.type === 'AGENT_STATUS' && m.payload.overloaded)).toEqual([false]);
  });

  it('with a store, unacknowledged terminal messages survive a restart; acknowledged ones do not', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bematic-outbound-'));
    const t = new Transport();
    const first = new OutboundBuffer({ transport: t, store: new TerminalStore(dir) });
    first.enqueue(complete('delivered'));
    first.enqueue(complete('pending'));
    t.ready = true;
    first.flush();
    await flushMicrotasks();
    first.acknowledge('delivered');
    // Simulate the process dying before the cloud acknowledged the second, plus a torn final line.
    const store = new TerminalStore(dir);
    writeFileSync(store.file, `${readFileSync(store.file, 'utf8')}{"op":"add","fra`);
    const t2 = new Transport();
    const second = new OutboundBuffer({ transport: t2, store });
    expect(second.bufferedTaskIds()).toEqual(['pending']);
    t2.ready = true;
    second.reconnected();
    await flushMicrotasks();
    expect(t2.sent.map((m) => m.type === 'TASK_COMPLETE' && m.payload.taskId)).toEqual(['pending']);
    second.acknowledge('pending');
    await second.whenEmpty();
    expect(new OutboundBuffer({ transport: new Transport(), store: new TerminalStore(dir) }).size).toBe(0);
  });
});
