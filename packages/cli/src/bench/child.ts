/**
 * Runs one scenario in a fresh process and hands its result to the parent
 * over IPC, so scenarios never share a heap, an event loop or leftovers:
 * memory baselines are clean and one scenario's garbage cannot slow the next.
 * Usage (by main.ts): node child.js <scenario> [--quick]
 */
import { SCENARIOS } from './scenarios/index.js';
import type { ScenarioResult } from './types.js';

export type ChildReply =
  | { ok: true; result: ScenarioResult; openHandles: string[] }
  | { ok: false; error: string };

/** Handles still open after the scenario closed everything; stdio is expected. */
function openHandles(): string[] {
  const expected = new Set(['TTYWrap', 'PipeWrap', 'Pipe']);
  return process.getActiveResourcesInfo().filter((r) => !expected.has(r));
}

async function run(): Promise<ChildReply> {
  const [name, ...flags] = process.argv.slice(2);
  const scenario = SCENARIOS.find((s) => s.name === name);
  if (!scenario) return { ok: false, error: `unknown scenario ${String(name)}` };
  try {
    const result = await scenario.run({
      quick: flags.includes('--quick'),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    // Let close callbacks of sockets and servers run before looking for leftovers.
    await new Promise((r) => setTimeout(r, 50));
    return { ok: true, result, openHandles: openHandles() };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
}

const reply = await run();
if (process.send) process.send(reply, () => process.exit(reply.ok ? 0 : 1));
else {
  process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
  process.exit(reply.ok ? 0 : 1);
}
