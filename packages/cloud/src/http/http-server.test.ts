import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { completedTask, newTaskInput, openTestDb, type TestDb } from '../../test/support/database.js';
import { AuditTrail } from '../audit/audit-trail.js';
import { Cache } from '../cache/cache.js';
import { CacheInvalidation } from '../cache/invalidation.js';
import type { InboundHandler, InboundRequest } from '../chat/inbound.js';
import { ConsoleChatSurface, type ConsoleThread } from '../console/console-surface.js';
import type { AuditEntry, Project, Task } from '../db/repositories/types.js';
import type { AgentDirectory, AgentSnapshot } from '../gateway/types.js';
import { MetricsCollector } from '../metrics/metrics-collector.js';
import { TaskEvents } from '../tasks/task-events.js';
import { ConsoleSessions } from './access/console-session.js';
import type { AgentPage, DashboardStats, TaskPage } from './dashboard-reads.js';
import { databaseProbe, type ProbeResult } from './health.js';
import { createHttpServer, type HttpServerHandle } from './http-server.js';

interface ReadyBody {
  status: string;
  checks: { database: ProbeResult; gateway: ProbeResult };
  reasons: string[];
}
interface ErrorBody {
  error: { code: string; message: string };
}
const TOKEN = 'test-console-token-0123456789';
const json = async <T>(res: Response | Promise<Response>): Promise<T> => (await (await res).json()) as T;

/** Records what the console sends and answers in the thread, as the command service would. */
class RecordingInbound implements InboundHandler {
  readonly requests: InboundRequest[] = [];
  private waiters: Array<(r: InboundRequest) => void> = [];
  async handle(request: InboundRequest): Promise<void> {
    this.requests.push(request);
    for (const w of this.waiters.splice(0)) w(request);
    if (request.kind === 'mention') {
      await request.surface.post(request.channelId, { text: `Started: ${request.text}` }, request.threadTs);
    } else if (request.kind === 'slash') {
      await request.respond({ text: `status for ${request.userId}` });
    }
  }
  next(): Promise<InboundRequest> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

const agent: AgentSnapshot = {
  agentId: 'agent_1',
  online: true,
  overloaded: false,
  circuit: 'closed',
  hostname: 'devbox',
  version: '0.1.0',
  connectedAt: 1,
  lastSeenAt: 2,
  lastRttMs: 4,
  metrics: { cpuPercent: 12, memoryPercent: 40, rssMb: 120, loadAvg1m: 0.5, activeTasks: 1, queuedTasks: 0 },
  maxConcurrentTasks: 3,
  sandbox: 'on',
  offlineQueueDepth: 0,
};

describe('HTTP server', () => {
  let t: TestDb;
  let handle: HttpServerHandle;
  let base: string;
  let inbound: RecordingInbound;
  let events: TaskEvents;
  let gatewayAccepting: boolean;
  let surface: ConsoleChatSurface;
  let cache: Cache;
  let metrics: MetricsCollector;

  beforeEach(async () => {
    t = await openTestDb(Date.now());
    inbound = new RecordingInbound();
    events = new TaskEvents();
    gatewayAccepting = true;
    surface = new ConsoleChatSurface();
    metrics = new MetricsCollector({ defaultMetrics: false });
    cache = new Cache({
      name: 'dashboard',
      ttlMs: 60_000,
      onLookup: (c, hit) => metrics.recordCacheLookup(c, hit),
    });
    new CacheInvalidation(cache).attachToEvents(events);
    const directory: AgentDirectory = {
      listAgents: async () => ({ agents: [agent], next: null }),
      countAgents: async () => ({ online: 1, offline: 0, total: 1 }),
    };
    handle = createHttpServer({
      metrics,
      health: {
        database: databaseProbe(t.database),
        gateway: () => (gatewayAccepting ? { ok: true } : { ok: false, detail: 'gateway is shutting down' }),
      },
      repos: t.repos,
      directory,
      console: surface,
      inbound,
      cache,
      events,
      audit: new AuditTrail(t.repos.audit),
      sessions: new ConsoleSessions({ store: t.repos.consoleCredentials, token: TOKEN }),
      maxBodyBytes: 1024,
    });
    await new Promise<void>((r) => handle.server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(handle.server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await handle.close();
    await t.close();
  });

  /** Programs sign in with the configured token as a bearer token. */
  const auth = { authorization: `Bearer ${TOKEN}` };
  const api = (path: string, init: RequestInit = {}) =>
    fetch(base + path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
  const postJson = (path: string, body: unknown) =>
    api(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('answers liveness and readiness, and 503 with reasons when the database is down', async () => {
    expect(await json(fetch(`${base}/healthz`))).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);

    gatewayAccepting = false;
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect((await json<ReadyBody>(notReady)).reasons).toEqual(['gateway is shutting down']);

    gatewayAccepting = true;
    await t.database.close();
    const dbDown = await fetch(`${base}/readyz`);
    expect(dbDown.status).toBe(503);
    const body = await json<ReadyBody>(dbDown);
    expect(body.checks.database.ok).toBe(false);
    expect(body.reasons[0]).toMatch(/database unreachable/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('serves Prometheus metrics', async () => {
    await fetch(`${base}/healthz`);
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(await res.text()).toContain(
      'bematic_http_requests_total{method="GET",route="/healthz",status="200"} 1',
    );
  });

  it('lists tasks with filters and pages, shows one task, stats, projects, agents and audit', async () => {
    const done = await completedTask(t.repos);
    const running = await t.repos.tasks.create(newTaskInput({ projectId: 'proj_2' }));
    await t.repos.tasks.transition(running.id, 'submitted');
    await t.repos.projects.create({
      name: 'web',
      channelId: 'C1',
      agentId: 'agent_1',
      localPath: '/srv/web',
      defaultModel: null,
      maxBudgetUsd: null,
    });

    const all = await json<TaskPage>(api(`/api/tasks`));
    expect(all.tasks.map((x) => x.id).sort()).toEqual([done.id, running.id].sort());
    const completed = await json<TaskPage>(api(`/api/tasks?status=completed`));
    expect(completed.tasks).toHaveLength(1);
    expect(completed.tasks[0]).toMatchObject({
      id: done.id,
      inputTokens: 1200,
      costUsd: 0.042,
      botName: 'coder',
    });
    const byProject = await json<TaskPage>(api(`/api/tasks?project=proj_2`));
    expect(byProject.tasks.map((x) => x.id)).toEqual([running.id]);
    const page1 = await json<TaskPage>(api(`/api/tasks?limit=1`));
    expect(page1).toMatchObject({ limit: 1, nextCursor: expect.any(String) });
    const page2 = await json<TaskPage>(api(`/api/tasks?limit=1&cursor=${page1.nextCursor}`));
    expect(page2.nextCursor).toBeNull();
    expect(page2.tasks[0]?.id).not.toBe(page1.tasks[0]?.id);
    expect((await api(`/api/tasks?status=bogus`)).status).toBe(400);

    const one = await json<{ task: Task }>(api(`/api/tasks/${done.id}`));
    expect(one.task).toMatchObject({ id: done.id, result: 'Fixed the null check in auth.ts' });
    expect((await api(`/api/tasks/task_nope`)).status).toBe(404);

    const stats = await json<DashboardStats>(api(`/api/stats`));
    expect(stats.counts).toMatchObject({ completed: 1, submitted: 1 });
    expect(stats.totals).toMatchObject({ costUsd: 0.042, inputTokens: 1200, outputTokens: 340 });

    const projects = await json<{ projects: Project[] }>(api(`/api/projects`));
    expect(projects.projects.map((p) => p.name)).toEqual(['web']);
    const agents = await json<AgentPage>(api(`/api/agents`));
    expect(agents).toMatchObject({ limit: 100, nextCursor: null, summary: { online: 1, total: 1 } });
    expect(agents.agents[0]).toMatchObject({ agentId: 'agent_1', circuit: 'closed' });

    await t.repos.audit.log({ action: 'key.created', actor: 'U1', resourceId: 'key_1' });
    const audit = await json<{ entries: AuditEntry[] }>(api(`/api/audit?action=key.created`));
    expect(audit.entries).toHaveLength(1);
  });

  it('serves cached lists until a lifecycle event invalidates them', async () => {
    const task = await t.repos.tasks.create(newTaskInput());
    expect((await json<TaskPage>(api(`/api/tasks`))).tasks[0]?.status).toBe('pending');
    const { task: moved } = await t.repos.tasks.transition(task.id, 'submitted');
    expect((await json<TaskPage>(api(`/api/tasks`))).tasks[0]?.status).toBe('pending');
    events.emit('task.submitted', { task: moved });
    expect((await json<TaskPage>(api(`/api/tasks`))).tasks[0]?.status).toBe('submitted');
    expect(cache.stats().hits).toBeGreaterThan(0);
  });

  it('turns console input into mentions, thread replies, slash commands and actions', async () => {
    const mentioned = inbound.next();
    const res = await postJson('/api/console/messages', {
      text: '@BematicManager code fix the login bug in auth.ts',
    });
    expect(res.status).toBe(202);
    const posted = await json<{ ts: string; threadTs: string }>(res);
    const mention = await mentioned;
    expect(mention).toMatchObject({
      kind: 'mention',
      text: 'code fix the login bug in auth.ts',
      userId: 'console-user',
      channelId: 'console:local',
      threadTs: posted.ts,
      messageTs: posted.ts,
    });
    expect(mention.surface).toBe(surface);

    const replied = inbound.next();
    await postJson('/api/console/messages', { text: 'also add a test', threadTs: posted.ts });
    expect(await replied).toMatchObject({
      kind: 'thread_reply',
      text: 'also add a test',
      threadTs: posted.ts,
    });

    const slashed = inbound.next();
    await postJson('/api/console/messages', { text: '/bm status' });
    const slash = await slashed;
    expect(slash).toMatchObject({ kind: 'slash', text: 'status', threadTs: null, messageTs: null });

    const acted = inbound.next();
    const started = surface.threads('console:local', 'console-user')[0]?.replies[0];
    const actRes = await postJson('/api/console/actions', {
      actionId: 'task_cancel',
      value: 'task_1',
      messageTs: started?.ts,
    });
    expect(actRes.status).toBe(202);
    expect(await acted).toMatchObject({
      kind: 'action',
      text: 'task_cancel',
      actionValue: 'task_1',
      threadTs: posted.ts,
    });

    const threads = await json<{ threads: ConsoleThread[] }>(api(`/api/console/threads`));
    const texts = threads.threads.map((th) => [th.root.text, ...th.replies.map((r) => r.text)]);
    expect(texts[0]).toEqual([
      '@BematicManager code fix the login bug in auth.ts',
      'Started: code fix the login bug in auth.ts',
      'also add a test',
    ]);
    expect(texts[1]).toEqual(['/bm status']);
    expect(texts[2]).toEqual(['status for console-user']);

    const missing = await postJson('/api/console/messages', { text: 'x', threadTs: '1.000000' });
    expect(missing.status).toBe(404);
  });

  it('rejects bad JSON, invalid and oversized bodies, and cross-site posts, without crashing', async () => {
    const bad = await api(`/api/console/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"text": ',
    });
    expect(bad.status).toBe(400);
    expect((await json<ErrorBody>(bad)).error.code).toBe('INVALID_JSON');
    const invalid = await postJson('/api/console/messages', { text: '' });
    expect(invalid.status).toBe(400);
    expect((await json<ErrorBody>(invalid)).error.code).toBe('INVALID_BODY');
    const huge = await postJson('/api/console/messages', { text: 'x'.repeat(5000) });
    expect(huge.status).toBe(413);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/api/console/messages`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(`{"text":"${'y'.repeat(800)}`);
      req.end(`${'y'.repeat(800)}"}`);
    });
    expect(chunked).toBe(413);
    const form = await api(`/api/console/messages`, { method: 'POST', body: 'text=hi' });
    expect(form.status).toBe(415);
    const cross = await api(`/api/console/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ text: 'code rm -rf' }),
    });
    expect(cross.status).toBe(403);
    expect((await api(`/api/console/messages`)).status).toBe(405);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect(inbound.requests).toHaveLength(0);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const audited = await t.repos.audit.list({ action: 'http.bad_request' });
    expect(audited.map((e) => e.details.code).sort()).toEqual(
      [
        'BODY_TOO_LARGE',
        'BODY_TOO_LARGE',
        'FORBIDDEN_ORIGIN',
        'INVALID_BODY',
        'INVALID_JSON',
        'UNSUPPORTED_MEDIA_TYPE',
      ].sort(),
    );
  });

  it('streams console changes and task updates over Server-Sent Events', async () => {
    const controller = new AbortController();
    const res = await api(`/api/events`, { signal: controller.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const frames = sseFrames(res);
    expect((await frames.next()).value?.event).toBe('hello');

    await postJson('/api/console/messages', { text: 'code fix the login bug' });
    const first = (await frames.next()).value;
    expect(first?.event).toBe('console');
    expect(JSON.parse(first?.data ?? '{}')).toMatchObject({
      kind: 'message.posted',
      message: { text: 'code fix the login bug', userId: 'console-user' },
    });
    const second = (await frames.next()).value;
    expect(JSON.parse(second?.data ?? '{}').message.text).toBe('Started: code fix the login bug');

    const task = await t.repos.tasks.create(newTaskInput());
    events.emit('task.created', { task });
    const update = (await frames.next()).value;
    expect(update?.event).toBe('task');
    expect(JSON.parse(update?.data ?? '{}')).toMatchObject({ event: 'task.created', task: { id: task.id } });
    controller.abort();
  });

  it('serves the built front end: one shell for every page, bundles from this server only', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).toContain('<script type="module" src="/assets/app.js"></script>');
    expect(html).toContain('href="/assets/styles.css"');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/<script>[^<]/);
    expect(await (await fetch(`${base}/tasks/task_123`)).text()).toBe(html);
    const js = await fetch(`${base}/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
    const bundle = await js.text();
    expect(bundle).toContain('/api/console/messages');
    expect(bundle).not.toMatch(/https?:\/\/(cdn|unpkg|fonts)\./);
    expect((await fetch(`${base}/assets/styles.css`)).headers.get('content-type')).toContain('text/css');
    expect((await fetch(`${base}/assets/nope.js`)).status).toBe(404);
  });

  it('searches tasks by user, bot, text and date, in keyset pages that do not skip or repeat', async () => {
    const made: Task[] = [];
    for (let i = 0; i < 5; i++) {
      made.push(
        await t.repos.tasks.create(
          newTaskInput({
            prompt: i === 2 ? 'rename the Login button' : `task ${i}`,
            userId: i < 3 ? 'U1' : 'U2',
            botName: i === 4 ? 'reviewer' : 'coder',
          }),
        ),
      );
    }
    const ids = (p: TaskPage) => p.tasks.map((x) => x.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: TaskPage = await json<TaskPage>(
        api(`/api/tasks?limit=2${cursor ? `&cursor=${cursor}` : ''}`),
      );
      seen.push(...ids(page));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(
      [...made].sort((a, b) => b.createdAt - a.createdAt || b.id.localeCompare(a.id)).map((x) => x.id),
    );
    expect(ids(await json<TaskPage>(api('/api/tasks?user=U2&bot=reviewer')))).toEqual([made[4]!.id]);
    expect(ids(await json<TaskPage>(api('/api/tasks?q=login%20BUTTON')))).toEqual([made[2]!.id]);
    const future = Date.now() + 3600_000;
    expect(ids(await json<TaskPage>(api(`/api/tasks?from=${future}`)))).toEqual([]);
    expect((await api('/api/tasks?cursor=bm90LWEtY3Vyc29y')).status).toBe(400);
    expect((await api('/api/tasks?limit=0')).status).toBe(400);
  });

  it('answers the task page: task, transcript, audit and project; and cost per day, project and user', async () => {
    const done = await completedTask(t.repos);
    await t.repos.taskSteps.append({
      taskId: done.id,
      kind: 'tool',
      tool: 'Edit',
      message: 'Editing src/auth.ts',
      detail: { toolUseId: 'toolu_1', input: '--- a/src/auth.ts', result: 'ok' },
    });
    await t.repos.audit.log({
      action: 'task.created',
      actor: 'U1',
      resourceType: 'task',
      resourceId: done.id,
    });
    interface Detail {
      task: Task;
      steps: Array<{ tool: string; detail: unknown }>;
      audit: AuditEntry[];
      links: { thread: string | null };
    }
    const detail = await json<Detail>(api(`/api/tasks/${done.id}/detail`));
    expect(detail.task).toMatchObject({
      id: done.id,
      costUsd: 0.042,
      result: 'Fixed the null check in auth.ts',
    });
    expect(detail.task).not.toHaveProperty('submission');
    expect(detail.steps).toEqual([
      expect.objectContaining({ tool: 'Edit', detail: expect.objectContaining({ result: 'ok' }) }),
    ]);
    expect(detail.audit.map((e) => e.action)).toEqual(['task.created']);
    expect((await api('/api/tasks/task_nope/detail')).status).toBe(404);

    const byDay = await json<{ buckets: Array<{ key: string; costUsd: number; tasks: number }> }>(
      api('/api/costs?by=day&days=7'),
    );
    expect(byDay.buckets).toHaveLength(7);
    expect(byDay.buckets.at(-1)).toEqual({
      key: new Date().toISOString().slice(0, 10),
      costUsd: 0.042,
      tasks: 1,
    });
    const byUser = await json<{ buckets: unknown[] }>(api('/api/costs?by=user'));
    expect(byUser.buckets).toEqual([{ key: 'U1', costUsd: 0.042, tasks: 1 }]);
    expect((await api('/api/costs?by=planet')).status).toBe(400);
    // Days are counted in quarter-hours, as every time zone's offset is.
    expect((await api('/api/costs?by=day&tz=-345')).status).toBe(200);
    expect((await api('/api/costs?by=day&tz=7')).status).toBe(400);
  });

  it('runs task page buttons through the command layer, as Slack buttons and /bm commands, and returns its answer', async () => {
    const task = await completedTask(t.repos, { threadTs: '1700000000.000100' });
    const run = (action: string) =>
      postJson(`/api/tasks/${task.id}/actions`, { action }).then((r) => json<{ messages: string[] }>(r));
    const actions = [];
    for (const action of ['retry', 'cancel', 'create_pr', 'archive']) {
      const next = inbound.next();
      const answer = await run(action);
      actions.push(await next);
      if (action === 'archive') expect(answer.messages).toEqual([`status for console-user`]);
    }
    expect(actions.map((a) => [a.kind, a.text, a.actionValue, a.channelId, a.threadTs, a.userId])).toEqual([
      ['action', 'task_retry', task.id, 'console:local', '1700000000.000100', 'console-user'],
      ['action', 'task_cancel', task.id, 'console:local', '1700000000.000100', 'console-user'],
      ['slash', `pr ${task.id}`, undefined, 'console:local', '1700000000.000100', 'console-user'],
      [
        'slash',
        `archive ${task.id} archived from the dashboard`,
        undefined,
        'console:local',
        '1700000000.000100',
        'console-user',
      ],
    ]);
    expect((await postJson(`/api/tasks/${task.id}/actions`, { action: 'delete' })).status).toBe(400);
    expect((await postJson('/api/tasks/task_nope/actions', { action: 'cancel' })).status).toBe(404);
  });

  /** A raw request, so Host and Origin are exactly what an attacker's page would send. */
  const raw = (
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request(base + path, { method, headers }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('refuses DNS-rebinding requests (foreign Host and Origin) before anything runs', async () => {
    const port = new URL(base).port;
    const evil = { host: `evil.example:${port}`, origin: `http://evil.example:${port}` };
    const posted = await raw(
      'POST',
      '/api/console/messages',
      { ...evil, ...auth, 'content-type': 'application/json' },
      JSON.stringify({ text: 'code run rm -rf ~' }),
    );
    expect(posted.status).toBe(403);
    expect(JSON.parse(posted.body).error.code).toBe('HOST_NOT_ALLOWED');
    expect((await raw('GET', '/api/tasks', { ...evil, ...auth })).status).toBe(403);
    expect((await raw('GET', '/api/events', { host: evil.host, ...auth })).status).toBe(403);
    expect((await raw('GET', '/', { host: evil.host })).status).toBe(403);
    expect((await raw('GET', '/login?token=x', { host: evil.host })).status).toBe(403);
    // An allowed Host with a foreign Origin is a cross-site post.
    const cross = await raw(
      'POST',
      '/api/console/messages',
      { host: `localhost:${port}`, origin: evil.origin, ...auth, 'content-type': 'application/json' },
      JSON.stringify({ text: 'code run it' }),
    );
    expect(cross.status).toBe(403);
    expect(inbound.requests).toHaveLength(0);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`]) {
      expect((await raw('GET', '/api/stats', { host, ...auth })).status).toBe(200);
    }
    // Probes and scrapes address the server by whatever name the infrastructure uses.
    expect((await raw('GET', '/healthz', { host: evil.host })).status).toBe(200);
    expect((await raw('GET', '/metrics', { host: '10.0.0.7:9090' })).status).toBe(200);
    const audited = await t.repos.audit.list({ action: 'http.bad_request' });
    expect(audited.filter((e) => e.details.code === 'HOST_NOT_ALLOWED').length).toBeGreaterThanOrEqual(5);
  });

  it('needs a session for the console and every /api route; health and metrics stay open', async () => {
    for (const [method, path] of [
      ['GET', '/api/tasks'],
      ['GET', '/api/tasks/task_1'],
      ['GET', '/api/tasks/task_1/detail'],
      ['GET', '/api/agents'],
      ['GET', '/api/stats'],
      ['GET', '/api/costs'],
      ['GET', '/api/projects'],
      ['GET', '/api/audit'],
      ['GET', '/api/session'],
      ['GET', '/api/console/threads'],
      ['GET', '/api/events'],
      ['POST', '/api/console/messages'],
      ['POST', '/api/console/actions'],
      ['POST', '/api/tasks/task_1/actions'],
    ] as const) {
      const res = await fetch(base + path, {
        method,
        ...(method === 'POST'
          ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'code x' }) }
          : {}),
      });
      expect({ path, status: res.status }).toEqual({ path, status: 401 });
      expect((await json<ErrorBody>(res)).error.code).toBe('UNAUTHENTICATED');
    }
    const wrong = await fetch(`${base}/api/tasks`, {
      headers: { authorization: 'Bearer not-the-token-at-all' },
    });
    expect(wrong.status).toBe(401);
    const forged = await fetch(`${base}/api/tasks`, { headers: { cookie: 'bematic_session=forged' } });
    expect(forged.status).toBe(401);
    expect(inbound.requests).toHaveLength(0);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    // The page shell carries no data; it loads and asks to sign in.
    expect((await fetch(`${base}/`)).status).toBe(200);
  });

  it('signs a browser in with a one-time login link or the token, as an HttpOnly SameSite=Strict cookie', async () => {
    const token = await handle.sessions.issueLoginToken();
    const first = await fetch(`${base}/login?token=${token}&next=/tasks/task_9`, { redirect: 'manual' });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/tasks/task_9');
    const setCookie = first.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^bematic_session=[\w-]{40,};/);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('Path=/');
    const cookie = setCookie.split(';')[0] ?? '';
    const session = await fetch(`${base}/api/session`, { headers: { cookie } });
    expect(session.status).toBe(200);
    expect(await json(session)).toMatchObject({ signedIn: true, consoleChannelId: 'console:local' });

    const again = await fetch(`${base}/login?token=${token}`, { redirect: 'manual' });
    expect(again.headers.get('location')).toMatch(/^\/\?login=refused/);
    expect(again.headers.get('set-cookie')).toBeNull();
    const offsite = await fetch(`${base}/login?next=//evil.example/x`, { redirect: 'manual' });
    expect(offsite.headers.get('location')).toBe('/');

    const typed = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: TOKEN }),
    });
    expect(typed.status).toBe(200);
    expect(typed.headers.get('set-cookie')).toContain('HttpOnly');
    const refused = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: 'guess-guess-guess' }),
    });
    expect(refused.status).toBe(401);

    await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } });
    expect((await fetch(`${base}/api/session`, { headers: { cookie } })).status).toBe(401);
    const audited = await t.repos.audit.list({ action: 'http.bad_request' });
    expect(audited.filter((e) => e.details.code === 'LOGIN_REFUSED')).toHaveLength(2);
  });

  it('hands mounted prefixes to their handler', async () => {
    handle.mount('/slack', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('slack here');
    });
    expect(await (await fetch(`${base}/slack/events`)).text()).toBe('slack here');
    expect((await fetch(`${base}/slackers`)).status).toBe(404);
  });
});

async function* sseFrames(res: Response): AsyncGenerator<{ event: string; data: string }> {
  const reader = res.body?.getReader();
  if (!reader) return;
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    let sep = buffer.indexOf('\n\n');
    while (sep >= 0) {
      const raw = buffer.slice(0, sep);
      buffer = buffer.slice(sep + 2);
      const lines = raw.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
      const data = lines.find((l) => l.startsWith('data: '))?.slice(6);
      if (event && data !== undefined) yield { event, data };
      sep = buffer.indexOf('\n\n');
    }
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
  }
}
