#!/usr/bin/env node
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { now } from './harness.js';
import { agentOverhead } from './scenarios/agent-overhead.js';
import { connectedAgents } from './scenarios/connected-agents.js';
import { dispatchLatency } from './scenarios/dispatch-latency.js';
import { offlineDrain } from './scenarios/offline-drain.js';
import { streamFanIn } from './scenarios/stream-fan-in.js';
import { throughput } from './scenarios/throughput.js';
import { round } from './stats.js';
import type { BenchRow, Scenario, ScenarioResult } from './types.js';

export const SCENARIOS: Scenario[] = [
  dispatchLatency,
  throughput,
  streamFanIn,
  connectedAgents,
  offlineDrain,
  agentOverhead,
];

interface ScenarioReport extends Partial<ScenarioResult> {
  name: string;
  title: string;
  durationMs: number;
  error?: string;
}

function machine() {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemoryMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    loadAvg1m: round(os.loadavg()[0] ?? 0),
  };
}

function table(reports: ScenarioReport[]): string {
  const header: [string, string, string, string] = ['metric', 'value', 'unit', 'baseline / notes'];
  const lines: Array<[string, string, string, string] | string> = [];
  for (const r of reports) {
    lines.push(`${r.title}${r.error ? ' — FAILED' : ''}`);
    if (r.error) lines.push(['  error', '', '', r.error.split('\n')[0] ?? '']);
    for (const row of r.rows ?? []) lines.push([`  ${row.metric}`, formatValue(row), row.unit, row.notes]);
  }
  const cells = lines.filter((l): l is [string, string, string, string] => typeof l !== 'string');
  const width = (i: number) => Math.max(header[i]!.length, ...cells.map((c) => c[i]!.length));
  const w = [width(0), width(1), width(2)];
  const fmt = (c: [string, string, string, string]) =>
    `${c[0].padEnd(w[0]!)}  ${c[1].padStart(w[1]!)}  ${c[2].padEnd(w[2]!)}  ${c[3]}`;
  const rule = '-'.repeat(w[0]! + w[1]! + w[2]! + 6 + 40);
  return [fmt(header), rule, ...lines.map((l) => (typeof l === 'string' ? l : fmt(l)))].join('\n');
}

function formatValue(row: BenchRow): string {
  if (!Number.isFinite(row.value)) return String(row.value);
  return row.value.toLocaleString('en-US', { maximumFractionDigits: 3 });
}

async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('bench')
    .description('Bematic benchmark: loopback, no-op executor, raw ws echo as the baseline')
    .option('--quick', 'smaller counts, for a fast look', false)
    .option('--only <names>', `comma-separated scenarios: ${SCENARIOS.map((s) => s.name).join(', ')}`)
    .option('--out <dir>', 'where the JSON goes', 'bench-results')
    .parse(argv);
  const opts = program.opts<{ quick: boolean; only?: string; out: string }>();
  const wanted = opts.only
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown scenario(s): ${unknown.join(', ')}; choose from ${SCENARIOS.map((s) => s.name).join(', ')}\n`,
    );
    return 2;
  }
  const selected = wanted ? SCENARIOS.filter((s) => wanted.includes(s.name)) : SCENARIOS;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const started = new Date();
  const t0 = now();
  const reports: ScenarioReport[] = [];
  for (const scenario of selected) {
    log(`▶ ${scenario.title}`);
    const s0 = now();
    try {
      const result = await scenario.run({ quick: opts.quick, log });
      reports.push({ name: scenario.name, title: scenario.title, durationMs: round(now() - s0), ...result });
    } catch (err) {
      const error = err instanceof Error ? (err.stack ?? err.message) : String(err);
      log(`  ✗ ${scenario.name} failed: ${error}`);
      reports.push({ name: scenario.name, title: scenario.title, durationMs: round(now() - s0), error });
    }
    log(`  done in ${(round(now() - s0) / 1000).toFixed(1)} s`);
  }

  process.stdout.write(`\n${table(reports)}\n`);
  const result = {
    startedAt: started.toISOString(),
    durationMs: round(now() - t0),
    quick: opts.quick,
    machine: machine(),
    scenarios: reports,
  };
  const dir = path.resolve(opts.out);
  await mkdir(dir, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const json = `${JSON.stringify(result, null, 2)}\n`;
  const file = path.join(dir, `bench-${stamp}.json`);
  await writeFile(file, json);
  await writeFile(path.join(dir, 'latest.json'), json);
  process.stdout.write(
    `\nwritten ${path.relative(process.cwd(), file)} and latest.json (${result.durationMs / 1000} s)\n`,
  );
  return reports.some((r) => r.error) ? 1 : 0;
}

/** Handles still open after every scenario closed its servers; stdio and timers from dependencies are expected. */
function leftovers(): string[] {
  const expected = new Set(['TTYWrap', 'PipeWrap', 'FSReqCallback', 'Timeout', 'Immediate']);
  return process.getActiveResourcesInfo().filter((r) => !expected.has(r));
}

main(process.argv).then(
  (code) => {
    const open = leftovers();
    if (open.length > 0) process.stderr.write(`note: still open at exit: ${open.join(', ')}\n`);
    // Exit anyway, so a stray handle in a dependency cannot keep the run alive.
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
