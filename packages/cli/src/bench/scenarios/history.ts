import { monitorEventLoopDelay } from 'node:perf_hooks';
import { SleepExecutor } from '@bematic/agent';
import { type Cloud, createDatabase, migrateToLatest } from '@bematic/cloud';
import type { TestSystem } from '@bematic/testkit';
import { sql } from 'kysely';
import { type BenchDatabase, benchDatabases } from '../databases.js';
import { addProjects, apiGet, consoleMessage, now, startBenchSystem } from '../harness.js';
import { round, summarize } from '../stats.js';
import type { BenchRow, Scenario } from '../types.js';

const DAY_MS = 86_400_000;
/** The history spans a year: the dashboard's 14-day cost chart covers 1/26 of it. */
const SPAN_MS = 365 * DAY_MS;
const PROJECTS = 40;
const USERS = 300;
const BOTS = ['coder', 'reviewer', 'planner', 'ops'];
const TARGET_MS = 50;
const STALL_MS = 20;
/** Rows per seeding statement. */
const SEED_CHUNK = 50_000;

interface Sizes {
  tasks: number;
  archived: number;
  audit: number;
}

const taskId = (i: number) => `task_h${String(i).padStart(8, '0')}`;

/**
 * The history, generated inside the database (a million rows through the
 * driver would take minutes). Triggers and indexes are in place while it is
 * written, exactly as when the rows arrive one by one.
 */
function seedStatements(dialect: 'sqlite' | 'postgres', s: Sizes, end: number): string[] {
  const step = Math.floor(SPAN_MS / s.tasks);
  // One statement (one transaction) per chunk: PostgreSQL's per-row totals trigger updates the same few
  // counter rows, and within one transaction each update walks the row's growing version chain.
  const series = (n: number, body: string) => {
    const out: string[] = [];
    for (let from = 0; from < n; from += SEED_CHUNK) {
      const to = Math.min(n, from + SEED_CHUNK) - 1;
      out.push(
        dialect === 'sqlite'
          ? `WITH RECURSIVE seq(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM seq WHERE i < ${to}) ${body} FROM seq`
          : `${body} FROM generate_series(${from}::bigint, ${to}) AS seq(i)`,
      );
    }
    return out;
  };
  const pad = (expr: string) =>
    dialect === 'sqlite' ? `printf('%08d', ${expr})` : `lpad((${expr})::text, 8, '0')`;
  const id = `'task_h' || ${pad('i')}`;
  const createdAt = (i: string) => `${end} - (${s.tasks} - ${i}) * ${step}`;
  const created = createdAt('i');
  const every = Math.max(1, Math.floor(s.tasks / s.audit));
  const status = `CASE WHEN i % 10000 = 9999 THEN 'running' WHEN i % 100 < 90 THEN 'completed'
    WHEN i % 100 < 96 THEN 'failed' ELSE 'cancelled' END`;
  const bot = `CASE i % 4 ${BOTS.map((b, n) => `WHEN ${n} THEN '${b}'`).join(' ')} END`;
  const submission = `'{"taskId":"' || ${id} || '","projectId":"proj_h' || (i % ${PROJECTS}) || '","localPath":"/srv/repo","botName":"coder","command":"code","prompt":"fix the flaky test number ' || i || '","systemPrompt":"You are a careful engineer.","model":"claude-sonnet-4-5","allowedTools":["Read","Edit","Bash"],"priority":"normal"}'`;
  return [
    ...series(
      s.tasks,
      `INSERT INTO tasks (id, project_id, agent_id, bot_name, command, prompt, model, priority, status, user_id,
        channel_id, thread_ts, submission, result, error_code, files_changed, commands_run, input_tokens,
        output_tokens, cache_read_tokens, cache_creation_tokens, cost_usd, duration_ms, num_turns, continuations,
        created_at, updated_at, started_at, completed_at)
       SELECT ${id}, 'proj_h' || (i % ${PROJECTS}), 'agent-1', ${bot}, 'code',
        'fix the flaky test number ' || i || ' in the checkout service', 'claude-sonnet-4-5', 'normal', ${status},
        'U' || (i % ${USERS}), 'C0HIST' || (i % ${PROJECTS}), '1700000000.' || ${pad('i')}, ${submission},
        'Done: the test waits for the server before it asserts.', NULL, '["src/a.ts"]', '["npm test"]',
        (i % 5000) + 1000, (i % 700) + 100, i % 9000, i % 300, (i % 97) / 1000.0, (i % 600) * 1000, 3, 0,
        ${created}, ${created} + 60000, ${created} + 1000, ${created} + 60000`,
    ),
    ...series(
      s.archived,
      `INSERT INTO archived_tasks (id, original_id, task_data, reason, metadata, archived_at)
       SELECT 'arch_h' || ${pad('i')}, 'task_old' || ${pad('i')},
        '{"id":"task_old' || ${pad('i')} || '","status":"completed","prompt":"an old task"}', 'retention', '{}',
        ${end - SPAN_MS} - i * 1000`,
    ),
    ...series(
      s.audit,
      `INSERT INTO audit_logs (ts, action, actor, resource_type, resource_id, details)
       SELECT ${createdAt(`i * ${every}`)}, 'task.completed',
        'system', 'task', 'task_h' || ${pad(`i * ${every}`)}, '{}'`,
    ),
  ];
}

export async function seed(
  db: BenchDatabase,
  sizes: Sizes,
  end: number,
  log: (l: string) => void,
): Promise<number> {
  const t0 = now();
  const database = await createDatabase(db.url);
  try {
    await migrateToLatest(database);
    const statements = seedStatements(db.dialect, sizes, end);
    if (db.dialect === 'postgres') {
      // PostgreSQL's per-row totals trigger makes a bulk insert 17× slower; the load goes in without it and
      // the totals are then added per (status, bot) through the database's own task_totals_apply, so the
      // counters are exactly what the trigger would have left.
      await sql.raw('ALTER TABLE tasks DISABLE TRIGGER task_totals_track').execute(database.db);
      for (const statement of statements) await sql.raw(statement).execute(database.db);
      await sql.raw('ALTER TABLE tasks ENABLE TRIGGER task_totals_track').execute(database.db);
      await sql
        .raw(
          `SELECT task_totals_apply(status, bot_name, 0, count(*), sum(cost_usd), sum(input_tokens)::bigint,
             sum(output_tokens)::bigint, sum(cache_read_tokens)::bigint, sum(cache_creation_tokens)::bigint,
             sum(duration_ms)::bigint)
           FROM tasks GROUP BY status, bot_name`,
        )
        .execute(database.db);
    } else for (const statement of statements) await sql.raw(statement).execute(database.db);
    if (db.dialect === 'postgres') {
      // A bulk load leaves PostgreSQL without statistics or a visibility map until autovacuum
      // passes; run what autovacuum would, so plans are the ones a live server settles on.
      await sql.raw('VACUUM ANALYZE').execute(database.db);
      // The load and the vacuum write gigabytes of WAL, and the checkpoints trailing it would still be writing
      // the tables out while the calls are measured: take that checkpoint now.
      await sql
        .raw('CHECKPOINT')
        .execute(database.db)
        .catch((err: unknown) => log(`  postgres: no CHECKPOINT after the load (${String(err)})`));
    } else {
      // On SQLite the load leaves the text index in the segments it was written in, which every later write
      // would merge a little of; merge them into one, as migration 016 does after building the index.
      await sql.raw(`INSERT INTO task_search (task_search) VALUES ('optimize')`).execute(database.db);
    }
  } finally {
    await database.close();
  }
  const ms = now() - t0;
  log(
    `  ${db.dialect}: seeded ${sizes.tasks} tasks, ${sizes.archived} archived, ${sizes.audit} audit in ${round(ms / 1000)} s`,
  );
  return ms;
}

interface Call {
  name: string;
  path: string;
}

function calls(sizes: Sizes, end: number): Call[] {
  const step = Math.floor(SPAN_MS / sizes.tasks);
  const deep = Math.floor(sizes.tasks * 0.1);
  const cursor = Buffer.from(`${end - (sizes.tasks - deep) * step}:${taskId(deep)}`).toString('base64url');
  const some = taskId(Math.floor(sizes.tasks / 2));
  return [
    { name: 'stats', path: '/api/stats' },
    { name: 'tasks, first page', path: '/api/tasks?limit=50' },
    { name: 'tasks, page at 90 % depth', path: `/api/tasks?limit=50&cursor=${cursor}` },
    { name: 'tasks, running', path: '/api/tasks?limit=50&status=running' },
    {
      name: 'tasks, failed+cancelled, deep',
      path: `/api/tasks?limit=50&status=failed,cancelled&cursor=${cursor}`,
    },
    { name: 'tasks, one project', path: '/api/tasks?limit=50&project=proj_h7' },
    { name: 'tasks, one user', path: '/api/tasks?limit=50&user=U17' },
    { name: 'tasks, one bot', path: '/api/tasks?limit=50&bot=reviewer' },
    { name: 'tasks, text (common)', path: '/api/tasks?limit=50&q=flaky' },
    { name: 'tasks, text (rare)', path: '/api/tasks?limit=50&q=no-such-words' },
    { name: 'tasks, by id', path: `/api/tasks?limit=50&q=${some}` },
    { name: 'task page', path: `/api/tasks/${some}/detail` },
    { name: 'costs per day, 14 d', path: '/api/costs?by=day&days=14&tz=-60' },
    { name: 'costs per project, 14 d', path: '/api/costs?by=project&days=14' },
    { name: 'costs per user, 14 d', path: '/api/costs?by=user&days=14' },
    { name: 'agents', path: '/api/agents' },
    { name: 'projects', path: '/api/projects' },
    { name: 'audit, newest', path: '/api/audit?limit=100' },
  ];
}

interface Measured {
  dialect: string;
  seedMs: number;
  calls: Array<{ name: string; p50: number; p99: number; max: number; status: number; loopMaxMs: number }>;
  eventLoop: { p99: number; max: number; over20ms: number };
  backgroundTasks: number;
}

/** Tasks keep flowing while the dashboard is read, so nothing is measured on an idle cloud. */
function backgroundLoad(system: TestSystem, channels: string[]): { stop(): Promise<number> } {
  let running = true;
  let sent = 0;
  const loop = (async () => {
    while (running) {
      await consoleMessage(system.cloud, channels[sent % channels.length] ?? '', `code background ${sent}`);
      sent++;
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return sent;
    },
  };
}

async function measure(cloud: Cloud, list: Call[], repeats: number) {
  const results: Measured['calls'] = [];
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  for (const call of list) {
    loop.reset();
    const times: number[] = [];
    let status = 0;
    for (let i = 0; i < repeats; i++) {
      // Cold every time: the figure is the query, not the cache in front of it.
      cloud.cache.flush();
      const t0 = now();
      status = await apiGet(cloud, call.path);
      times.push(now() - t0);
    }
    const s = summarize(times);
    results.push({
      name: call.name,
      p50: round(s.p50),
      p99: round(s.p99),
      max: round(s.max),
      status,
      loopMaxMs: round(loop.max / 1e6),
    });
  }
  loop.disable();
  return results;
}

/**
 * The dashboard and API over a large history: every read the dashboard makes,
 * cache flushed before each request, with tasks running in the background,
 * on SQLite and PostgreSQL, while the event loop's delay is sampled.
 */
export const history: Scenario = {
  name: 'history',
  title: 'Dashboard and API over a large history (cold cache, background load)',
  async run(ctx) {
    const sizes: Sizes = ctx.quick
      ? { tasks: 20_000, archived: 2_000, audit: 10_000 }
      : { tasks: 1_000_000, archived: 100_000, audit: 500_000 };
    const repeats = ctx.quick ? 5 : 50;
    const end = Date.now() - 3_600_000;
    const runs: Measured[] = [];
    for (const open of await benchDatabases(ctx.log)) {
      const db = await open();
      try {
        const seedMs = await seed(db, sizes, end, ctx.log);
        const system = await startBenchSystem({
          databaseUrl: db.url,
          executor: () => new SleepExecutor({ durationMs: 0 }),
          maxConcurrentTasks: 16,
        });
        try {
          const channels = await addProjects(system, 4, 'console', 'hist');
          const list = calls(sizes, end);
          await measure(system.cloud, list, ctx.quick ? 1 : 3);
          const load = backgroundLoad(system, channels);
          const loop = monitorEventLoopDelay({ resolution: 5 });
          const stalls: number[] = [];
          let last = now();
          const watchdog = setInterval(() => {
            const t = now();
            if (t - last - 5 > STALL_MS) stalls.push(t - last - 5);
            last = t;
          }, 5);
          loop.enable();
          const measured = await measure(system.cloud, list, repeats);
          loop.disable();
          clearInterval(watchdog);
          const backgroundTasks = await load.stop();
          const run: Measured = {
            dialect: db.dialect,
            seedMs: round(seedMs),
            calls: measured,
            eventLoop: {
              p99: round(loop.percentile(99) / 1e6),
              max: round(loop.max / 1e6),
              over20ms: stalls.length,
            },
            backgroundTasks,
          };
          runs.push(run);
          const worst = measured.reduce((a, b) => (b.p99 > a.p99 ? b : a));
          ctx.log(
            `  ${db.dialect}: worst p99 ${worst.p99} ms (${worst.name}); event loop max ${run.eventLoop.max} ms; ${backgroundTasks} background tasks`,
          );
        } finally {
          await system.close();
        }
      } finally {
        await db.drop();
      }
    }
    const rows: BenchRow[] = [];
    for (const run of runs) {
      const over = run.calls.filter((c) => c.p99 >= TARGET_MS);
      rows.push({
        metric: `${run.dialect}: calls with p99 < ${TARGET_MS} ms`,
        value: run.calls.length - over.length,
        unit: `of ${run.calls.length}`,
        target: {
          text: `all < ${TARGET_MS} ms at 1,000,000 rows`,
          met: over.length === 0 && sizes.tasks >= 1_000_000,
        },
        notes: `${sizes.tasks.toLocaleString('en-US')} tasks, ${sizes.archived.toLocaleString('en-US')} archived; ${over.length ? `over: ${over.map((c) => `${c.name} ${c.p99} ms`).join(', ')}` : 'all under'}`,
      });
      for (const c of run.calls) {
        rows.push({
          metric: `  ${c.name}`,
          value: c.p99,
          unit: 'ms p99',
          target: { text: `< ${TARGET_MS} ms`, met: c.p99 < TARGET_MS },
          notes: `p50 ${c.p50} ms, max ${c.max} ms, event loop max ${c.loopMaxMs} ms, HTTP ${c.status}`,
        });
      }
      rows.push({
        metric: `  event-loop delay max`,
        value: run.eventLoop.max,
        unit: 'ms',
        target: { text: `≤ ${STALL_MS} ms`, met: run.eventLoop.max <= STALL_MS },
        notes: `p99 ${run.eventLoop.p99} ms; ${run.eventLoop.over20ms} stalls > ${STALL_MS} ms; ${run.backgroundTasks} tasks ran meanwhile`,
      });
    }
    return { rows, details: { sizes, repeats, spanDays: SPAN_MS / DAY_MS, runs } };
  },
};
