#!/usr/bin/env node
import { fork } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import type { ChildReply } from './child.js';
import { now } from './harness.js';
import { SCENARIOS } from './scenarios/index.js';
import { round } from './stats.js';
import type { BenchRow, Scenario, ScenarioResult } from './types.js';

/** Per scenario: the full run seeds a million rows per database and holds 10,000 agents. */
const scenarioTimeoutMs = (quick: boolean) => (quick ? 5 : 45) * 60_000;

interface ScenarioReport extends Partial<ScenarioResult> {
  name: string;
  title: string;
  durationMs: number;
  error?: string;
  loadAvg1mBefore: number;
  /** Handles the scenario left open after closing everything (should be empty). */
  openHandles?: string[];
}

/** One scenario in its own process (see child.ts); progress lines pass through on stderr. */
function runIsolated(scenario: Scenario, quick: boolean): Promise<ChildReply> {
  return new Promise((resolve) => {
    const child = fork(
      new URL('./child.js', import.meta.url),
      [scenario.name, ...(quick ? ['--quick'] : [])],
      {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        execArgv: ['--expose-gc'],
      },
    );
    let reply: ChildReply | undefined;
    const timeoutMs = scenarioTimeoutMs(quick);
    const timer = setTimeout(() => {
      reply ??= { ok: false, error: `timed out after ${timeoutMs / 1000} s` };
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('message', (m: unknown) => {
      reply ??= m as ChildReply;
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(reply ?? { ok: false, error: `scenario process exited (${signal ?? code}) without a result` });
    });
  });
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
    for (const row of r.rows ?? [])
      lines.push([
        `  ${row.metric}`,
        formatValue(row),
        row.unit,
        `${row.target ? `[${row.target.met ? 'met' : 'NOT MET'}: ${row.target.text}] ` : ''}${row.notes}`,
      ]);
  }
  const cells = lines.filter((l): l is [string, string, string, string] => typeof l !== 'string');
  const width = (i: number) => Math.max(header[i]!.length, ...cells.map((c) => c[i]!.length));
  const w = [width(0), width(1), width(2)];
  const fmt = (c: [string, string, string, string]) =>
    `${c[0].padEnd(w[0]!)}  ${c[1].padStart(w[1]!)}  ${c[2].padEnd(w[2]!)}  ${c[3]}`;
  const rule = '-'.repeat(w[0]! + w[1]! + w[2]! + 6 + 40);
  return [fmt(header), rule, ...lines.map((l) => (typeof l === 'string' ? l : fmt(l)))].join('\n');
}

/** The same table as Markdown, for bench-results/latest.md beside the JSON. */
function markdown(
  reports: ScenarioReport[],
  meta: { startedAt: string; quick: boolean; machine: string; note?: string },
): string {
  const cell = (text: string) => text.replaceAll('|', '\\|');
  const out = [
    `# Bench results${meta.quick ? ' (--quick)' : ''}`,
    '',
    `${meta.startedAt} on ${meta.machine}`,
    '',
    ...(meta.note ? [meta.note, ''] : []),
    targetSummary(reports),
    '',
    '| metric | value | unit | target | baseline / notes |',
    '| --- | ---: | --- | --- | --- |',
  ];
  for (const r of reports) {
    out.push(`| **${cell(r.title)}**${r.error ? ' — FAILED' : ''} | | | | |`);
    if (r.error) out.push(`| error | | | | ${cell(r.error.split('\n')[0] ?? '')} |`);
    for (const row of r.rows ?? [])
      out.push(
        `| ${cell(row.metric.trim())} | ${formatValue(row)} | ${row.unit} | ${row.target ? `${row.target.met ? '✅ met' : '❌ not met'}: ${cell(row.target.text)}` : ''} | ${cell(row.notes)} |`,
      );
  }
  return `${out.join('\n')}\n`;
}

/** How many of the issue's targets this run met, per scenario (the table says which). */
function targetSummary(reports: ScenarioReport[]): string {
  const per = reports.flatMap((r) => {
    const rows = (r.rows ?? []).filter((row) => row.target);
    return rows.length
      ? [{ name: r.name, rows: rows.length, met: rows.filter((row) => row.target?.met).length }]
      : [];
  });
  const all = per.reduce((a, p) => a + p.rows, 0);
  const met = per.reduce((a, p) => a + p.met, 0);
  return `Targets met: ${met} of ${all} (${per.map((p) => `${p.name} ${p.met}/${p.rows}`).join(', ')}).`;
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
    .option('--note <text>', 'a line for the top of latest.md (why this run, what it is not)')
    .option('--render <json>', 'write latest.md again from a results JSON, without running anything')
    .parse(argv);
  const opts = program.opts<{ quick: boolean; only?: string; out: string; note?: string; render?: string }>();
  if (opts.render) return render(opts.render, opts.out, opts.note);
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
    const load0 = round(os.loadavg()[0] ?? 0);
    const reply = await runIsolated(scenario, opts.quick);
    const base = {
      name: scenario.name,
      title: scenario.title,
      durationMs: round(now() - s0),
      // The machine is shared: a busy neighbour shows up here before it shows up as a regression.
      loadAvg1mBefore: load0,
    };
    if (reply.ok) {
      reports.push({ ...base, ...reply.result, openHandles: reply.openHandles });
      if (reply.openHandles.length > 0) log(`  note: left open: ${reply.openHandles.join(', ')}`);
    } else {
      log(`  ✗ ${scenario.name} failed: ${reply.error}`);
      reports.push({ ...base, error: reply.error });
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
  const m = result.machine;
  await writeFile(
    path.join(dir, 'latest.md'),
    markdown(reports, {
      startedAt: result.startedAt,
      quick: opts.quick,
      ...(opts.note !== undefined && { note: opts.note }),
      machine: describeMachine(m),
    }),
  );
  process.stdout.write(
    `\nwritten ${path.relative(process.cwd(), file)}, latest.json and latest.md (${result.durationMs / 1000} s)\n`,
  );
  return reports.some((r) => r.error) ? 1 : 0;
}

interface Results {
  startedAt: string;
  quick: boolean;
  machine: ReturnType<typeof machine>;
  scenarios: ScenarioReport[];
}

const describeMachine = (m: Results['machine']) =>
  `${m.cpus} × ${m.cpuModel}, ${m.totalMemoryMb} MiB, Node ${m.node}, load ${m.loadAvg1m}`;

async function render(file: string, out: string, note: string | undefined): Promise<number> {
  const result = JSON.parse(await readFile(file, 'utf8')) as Results;
  await writeFile(
    path.join(path.resolve(out), 'latest.md'),
    markdown(result.scenarios, {
      startedAt: result.startedAt,
      quick: result.quick,
      machine: describeMachine(result.machine),
      ...(note !== undefined && { note }),
    }),
  );
  return 0;
}

// The scenarios ran in child processes that are gone by now, so this process ends on its own.
main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
