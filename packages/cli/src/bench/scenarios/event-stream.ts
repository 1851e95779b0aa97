import { type IncomingMessage, request } from 'node:http';
import { SleepExecutor } from '@bematic/agent';
import type { TaskStatus } from '@bematic/protocol';
import type { TestSystem } from '@bematic/testkit';
import {
  addProjects,
  mapLimit,
  now,
  sessionCookie,
  startBenchSystem,
  TerminalLog,
  withTimeout,
} from '../harness.js';
import { round } from '../stats.js';
import type { BenchRow, Scenario } from '../types.js';

const PROJECTS = 16;

/** One `text/event-stream` reader of the dashboard's live feed, as a browser holds it. */
class FeedReader {
  frames = 0;
  bytes = 0;
  resyncs = 0;
  ended = false;
  /** The last status each task's frames said, in the order they came. */
  readonly lastStatus = new Map<string, TaskStatus>();
  private buffer = '';
  private res: IncomingMessage | undefined;
  private listeners: Array<() => void> = [];

  static open(system: TestSystem, cookie: string): Promise<FeedReader> {
    const reader = new FeedReader();
    return new Promise((resolve, reject) => {
      const req = request(`${system.cloud.url}/api/events`, { headers: { cookie } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`event stream refused: HTTP ${res.statusCode}`));
        reader.res = res;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => reader.take(chunk));
        res.on('close', () => {
          reader.ended = true;
          reader.notify();
        });
        resolve(reader);
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** Stops reading: the socket fills, and the cloud sees a client that takes no more. */
  pause(): void {
    this.res?.pause();
  }

  resume(): void {
    this.res?.resume();
  }

  /** Resolves once `done()` holds for what has been read (rejects after timeoutMs). */
  until(done: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => {
        const check = () => {
          if (!done()) return;
          this.listeners = this.listeners.filter((l) => l !== check);
          resolve();
        };
        this.listeners.push(check);
      }),
      timeoutMs,
      what,
    );
  }

  close(): void {
    this.res?.destroy();
  }

  private take(chunk: string): void {
    this.bytes += Buffer.byteLength(chunk);
    this.buffer += chunk;
    for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
      this.frame(this.buffer.slice(0, end));
      this.buffer = this.buffer.slice(end + 2);
    }
    this.notify();
  }

  private frame(text: string): void {
    let event = 'message';
    let data = '';
    for (const line of text.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data += line.slice(6);
    }
    if (data === '') return;
    this.frames++;
    if (event === 'resync') this.resyncs++;
    if (event !== 'task') return;
    const { task } = JSON.parse(data) as { task: { id: string; status: TaskStatus } };
    this.lastStatus.set(task.id, task.status);
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}

/**
 * The live event stream under a burst: two dashboard readers of `/api/events`, one reading as fast as the
 * cloud writes, one that stops reading for the whole burst (a tab in the background, a slow link). The burst
 * is `tasks` tasks run to the end (every lifecycle event). Then the slow reader reads again: it must still be
 * connected and must end up with every task's final state, whether as the latest state per task (coalesced)
 * or after a `resync` (it reloads, so it reads the final states from the API), never cut off mid-burst.
 */
export const eventStream: Scenario = {
  name: 'event-stream',
  title: 'Live event stream under a burst: a reader that stops reading is coalesced, never cut',
  async run(ctx) {
    const tasks = ctx.quick ? 200 : 1000;
    const system = await startBenchSystem({
      executor: () => new SleepExecutor({ durationMs: 0 }),
      maxConcurrentTasks: 64,
    });
    const terminals = new TerminalLog(system.cloud);
    const readers: FeedReader[] = [];
    try {
      const channels = await addProjects(system, PROJECTS, 'console', 'feed');
      const cookie = await sessionCookie(system.cloud);
      const fast = await FeedReader.open(system, cookie);
      const slow = await FeedReader.open(system, cookie);
      readers.push(fast, slow);
      await slow.until(() => slow.frames > 0, 10_000, 'the hello frame');
      slow.pause();

      const t0 = now();
      await mapLimit(
        Array.from({ length: tasks }, (_, i) => i),
        16,
        (i) =>
          system.cloud.inbound.handle({
            kind: 'mention',
            surface: system.cloud.console,
            userId: 'bench-user',
            userName: 'bench',
            channelId: channels[i % PROJECTS] ?? '',
            text: `code feed task ${i}`,
            threadTs: null,
            messageTs: null,
            receivedAt: Date.now(),
            respond: async () => {},
          }),
      );
      await terminals.waitForCount(tasks, 300_000);
      const burstMs = now() - t0;
      const ids = [...terminals.at.keys()];
      const final = new Map(ids.map((id) => [id, terminals.at.get(id)?.task.status]));
      const caughtUp = (r: FeedReader) => ids.every((id) => r.lastStatus.get(id) === final.get(id));
      await fast.until(() => caughtUp(fast), 60_000, 'the fast reader to see every final state');
      const fastFrames = fast.frames;
      const slowBefore = slow.frames;

      const r0 = now();
      slow.resume();
      await slow.until(
        () => slow.ended || caughtUp(slow) || slow.resyncs > 0,
        60_000,
        'the slow reader to catch up or be told to reload',
      );
      const catchUpMs = now() - r0;
      const cut = slow.ended;
      const coalescedFinal = ids.filter((id) => slow.lastStatus.get(id) === final.get(id)).length;
      // Behind: the cloud stopped writing to it and kept latest states (fewer frames), or told it to reload.
      const behind = slow.frames < fastFrames || slow.resyncs > 0;
      const complete = !cut && behind && (coalescedFinal === ids.length || slow.resyncs > 0);
      ctx.log(
        `  ${tasks} tasks in ${round(burstMs)} ms; fast reader ${fastFrames} frames, slow reader ${slow.frames} (${slowBefore} before resuming), ${slow.resyncs} resync`,
      );
      const rows: BenchRow[] = [
        {
          metric: `slow reader after a ${tasks}-task burst: cut off`,
          value: cut ? 1 : 0,
          unit: 'cuts',
          target: { text: 'never cut; coalesced state or resync', met: complete },
          notes: `still connected: ${!cut}; ${!behind ? 'its socket took the whole burst, so nothing was coalesced (not exercised)' : slow.resyncs > 0 ? 'told to reload (resync)' : `${coalescedFinal}/${ids.length} final states as the latest state per task`}; it read nothing for ${round(burstMs)} ms`,
        },
        {
          metric: 'frames to the slow reader',
          value: slow.frames,
          unit: 'frames',
          notes: `baseline: ${fastFrames} frames (${round(fast.bytes / 1024)} KiB) to the reader that kept up; ${slowBefore} before it stopped and caught up; caught up ${round(catchUpMs)} ms after reading again`,
        },
      ];
      return {
        rows,
        details: {
          tasks,
          burstMs,
          catchUpMs,
          fast: { frames: fastFrames, bytes: fast.bytes },
          slow: {
            frames: slow.frames,
            bytes: slow.bytes,
            resyncs: slow.resyncs,
            cut,
            behind,
            coalescedFinal,
          },
        },
      };
    } finally {
      for (const r of readers) r.close();
      terminals.close();
      await system.close();
    }
  },
};
