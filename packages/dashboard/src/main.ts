import { ApiError, get, live, post, whenSignedOut } from './api.js';
import { h, replace } from './dom.js';
import type { ConsoleThread, Project, SessionInfo, TaskSummary } from './types.js';
import { createAgentsView } from './views/agents-view.js';
import { createConsole } from './views/console-view.js';
import { createSummary } from './views/cost-chart.js';
import { createTaskPage } from './views/task-page.js';
import { createTasksView } from './views/tasks-view.js';

type Theme = 'light' | 'dark' | 'system';

function applyTheme(theme: Theme): void {
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

function themeToggle(): HTMLElement {
  const saved = (localStorage.getItem('bematic.theme') as Theme | null) ?? 'system';
  applyTheme(saved);
  const select = h(
    'select',
    { 'aria-label': 'Colour theme', className: 'theme' },
    (['system', 'light', 'dark'] as Theme[]).map((t) =>
      h('option', { value: t, text: t === 'system' ? 'Theme: system' : `Theme: ${t}` }),
    ),
  );
  select.value = saved;
  select.addEventListener('change', () => {
    localStorage.setItem('bematic.theme', select.value);
    applyTheme(select.value as Theme);
  });
  return select;
}

function header(): HTMLElement {
  const dot = h('i', { className: 'dot', 'aria-hidden': 'true' });
  const label = h('span', { text: 'connecting' });
  live.onState((on) => {
    dot.className = `dot ${on ? 'ok' : 'bad'}`;
    label.textContent = on ? 'live' : 'reconnecting';
  });
  return h('header', { className: 'top' }, [
    h('a', { href: '/', className: 'brand' }, [
      h('b', { text: 'Bematic' }),
      h('span', { className: 'muted', text: 'Claude Code agents' }),
    ]),
    h('span', { className: 'live', role: 'status' }, [dot, label]),
    themeToggle(),
  ]);
}

function signInView(refused: boolean): HTMLElement {
  const token = h('input', {
    type: 'password',
    id: 'token',
    autocomplete: 'current-password',
    required: true,
  });
  const error = h('p', {
    className: 'error',
    role: 'alert',
    text: refused ? 'That login link was already used or is not valid.' : '',
  });
  const form = h('form', { className: 'panel signin', 'aria-labelledby': 'signin-title' }, [
    h('h1', { id: 'signin-title', text: 'Sign in to Bematic' }),
    h('p', {
      text: 'Open the login link printed in the terminal where Bematic started (it works once), or enter the console token (BEMATIC_CONSOLE_TOKEN).',
    }),
    h('label', { for: 'token', text: 'Console token' }),
    token,
    h('button', { className: 'btn primary', type: 'submit', text: 'Sign in' }),
    error,
  ]);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    post('/login', { token: token.value })
      .then(() => location.replace(location.pathname))
      .catch((err: Error) => (error.textContent = err.message));
  });
  return h('main', { id: 'main', className: 'signin-page' }, [form]);
}

function dashboard(session: SessionInfo): HTMLElement {
  const consoleView = createConsole(session);
  const summary = createSummary();
  const agents = createAgentsView();
  const tasks = createTasksView();
  summary.onStats((s) => tasks.setBots(Object.keys(s.byBot).sort()));
  tasks.onListed((list: TaskSummary[]) => {
    const byThread = new Map<string, string[]>();
    for (const t of list) {
      if (t.channelId !== session.consoleChannelId || !t.threadTs) continue;
      byThread.set(t.threadTs, [...(byThread.get(t.threadTs) ?? []), t.id]);
    }
    consoleView.setTaskLinks(byThread);
  });
  const loadAll = () => {
    void get<{ threads: ConsoleThread[] }>(
      `/api/console/threads?channel=${encodeURIComponent(session.consoleChannelId)}`,
    )
      .then((r) => consoleView.load(r.threads))
      .catch(() => {});
    tasks.reload();
    summary.reload();
    agents.reload();
    void get<{ projects: Project[] }>('/api/projects')
      .then((r) => tasks.setProjects(r.projects))
      .catch(() => {});
  };
  let statsTimer: ReturnType<typeof setTimeout> | undefined;
  live.on('task', () => {
    clearTimeout(statsTimer);
    statsTimer = setTimeout(() => summary.reload(), 500);
  });
  live.on('hello', loadAll);
  return h('main', { id: 'main', className: 'dashboard' }, [
    consoleView.element,
    h('div', { className: 'side' }, [summary.element, agents.element, tasks.element]),
  ]);
}

async function start(): Promise<void> {
  const app = document.getElementById('app');
  if (!app) return;
  const params = new URLSearchParams(location.search);
  whenSignedOut(() => replace(app, [header(), signInView(false)]));
  let session: SessionInfo;
  try {
    session = await get<SessionInfo>('/api/session');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      replace(app, [header(), signInView(params.get('login') === 'refused')]);
      return;
    }
    replace(app, [h('p', { className: 'error', text: `Bematic is not reachable: ${(e as Error).message}` })]);
    return;
  }
  const taskMatch = /^\/tasks\/([^/]+)$/.exec(location.pathname);
  const view = taskMatch?.[1] ? createTaskPage(decodeURIComponent(taskMatch[1])).element : dashboard(session);
  replace(app, [header(), view]);
  live.connect();
}

void start();
