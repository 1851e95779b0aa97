import { describe, expect, it } from 'vitest';
import { runSlackBudget, type SlackBudgetTask } from './slack-budget.js';

const ok = (t: SlackBudgetTask) => t.updates.filter((u) => u.status === 'ok');
const finalAt = (t: SlackBudgetTask) => ok(t).at(-1)!.at;
const callsOf = (t: SlackBudgetTask) => t.posts + t.updates.length;
const bound = (t: SlackBudgetTask, intervalMs: number) => (t.endedAt - t.startedAt) / intervalMs + 3;

describe('Slack call budget (NotificationService + SlackChatSurface against the emulator, virtual time)', () => {
  it('one task: at most duration/3 s + 3 calls, progress updates at least 3 s apart', async () => {
    const run = await runSlackBudget({ tasks: 1, channels: 1, durationMs: () => 60_000, eventEveryMs: 200 });
    const [task] = run.tasks;
    expect(run.rateLimited).toBe(0);
    expect(task!.posts).toBe(1);
    // Busy the whole minute: the 3 s interval is the binding limit, and it is used.
    expect(task!.updates.length).toBeGreaterThanOrEqual(18);
    expect(callsOf(task!)).toBeLessThanOrEqual(bound(task!, run.progressIntervalMs));
    const times = ok(task!).map((u) => u.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(3000);
    expect(finalAt(task!)).toBeGreaterThanOrEqual(task!.endedAt);
  });

  it('50 tasks at once in one workspace: no 429, every task served, finals before waiting progress', async () => {
    const durationMs = (i: number) => 120_000 + (i % 7) * 9_000 + i * 37;
    const run = await runSlackBudget({ tasks: 50, channels: 5, durationMs });
    expect(run.rateLimited).toBe(0);

    const all = run.tasks.flatMap((t) =>
      ok(t).map((u) => ({ at: u.at, task: t, final: u.at === finalAt(t) })),
    );
    all.sort((a, b) => a.at - b.at);
    // Workspace: never more than 45 updates in any minute (the emulator would answer 429 above 50).
    for (const [i, call] of all.entries()) {
      const inMinute = all.slice(i).filter((c) => c.at < call.at + 60_000).length;
      expect(inMinute).toBeLessThanOrEqual(45);
    }
    for (const t of run.tasks) {
      expect(t.posts).toBe(1);
      expect(callsOf(t)).toBeLessThanOrEqual(bound(t, run.progressIntervalMs));
      const progress = ok(t).filter((u) => u.at < t.endedAt);
      // Fair: in two minutes or more of a shared 45/min budget, each of the 50 tasks gets updates.
      expect(progress.length).toBeGreaterThanOrEqual(1);
      // Round-robin: between two updates of this task, no other task gets two progress updates.
      const times = [t.startedAt, ...progress.map((u) => u.at)];
      for (let i = 1; i < times.length; i++) {
        const others = all.filter(
          (c) => !c.final && c.task !== t && c.at > times[i - 1]! && c.at < times[i]!,
        );
        const perTask = new Map<SlackBudgetTask, number>();
        for (const c of others) perTask.set(c.task, (perTask.get(c.task) ?? 0) + 1);
        expect(Math.max(0, ...perTask.values())).toBeLessThanOrEqual(1);
      }
      // Finals first: once this final may go (its 3 s since the last update passed), only finals go before it.
      const lastBefore = progress.at(-1)?.at ?? Number.NEGATIVE_INFINITY;
      const ready = Math.max(t.endedAt, lastBefore + run.progressIntervalMs);
      const between = all.filter((c) => c.at > ready && c.at < finalAt(t));
      expect(between.every((c) => c.final)).toBe(true);
      // ... and it waits no longer than the budget's spacing for each of them (60 s / 45, plus a slot in flight).
      expect(finalAt(t) - ready).toBeLessThanOrEqual((between.length + 1) * 1334);
    }
  });

  it('a 429 anyway: the whole workspace waits Retry-After, then every final still lands', async () => {
    const run = await runSlackBudget({
      tasks: 10,
      channels: 2,
      durationMs: (i) => 20_000 + i * 500,
      inject429: { atMs: 8_000, rule: { count: 1, retryAfterSec: 7 } },
    });
    expect(run.rateLimited).toBe(1);
    const updates = run.tasks.flatMap((t) => t.updates).sort((a, b) => a.at - b.at);
    const limited = updates.find((u) => u.status === 'rate_limited')!;
    const after = updates.filter((u) => u.at > limited.at);
    expect(after.length).toBeGreaterThan(0);
    expect(after[0]!.at - limited.at).toBeGreaterThanOrEqual(7_000);
    for (const t of run.tasks) expect(ok(t).at(-1)!.at).toBeGreaterThanOrEqual(t.endedAt);
  });

  it('a final update in a long 429 storm makes at most 6 requests, each after Retry-After', async () => {
    const run = await runSlackBudget({
      tasks: 1,
      channels: 1,
      durationMs: () => 10_000,
      inject429: { atMs: 9_000, rule: { forMs: 120_000, retryAfterSec: 2 } },
    });
    const [task] = run.tasks;
    const afterEnd = task!.updates.filter((u) => u.at >= task!.endedAt);
    expect(afterEnd.length).toBeGreaterThan(1);
    expect(afterEnd.length).toBeLessThanOrEqual(6);
    expect(afterEnd.every((u) => u.status === 'rate_limited')).toBe(true);
    for (let i = 1; i < afterEnd.length; i++)
      expect(afterEnd[i]!.at - afterEnd[i - 1]!.at).toBeGreaterThanOrEqual(2_000);
  });
});
