import { get, live, query } from '../api.js';
import { field, h, replace } from '../dom.js';
import { ago, dateTime, duration, money } from '../format.js';
import type { Project, TaskPage, TaskStatus, TaskSummary } from '../types.js';
import { statusBadge } from './status.js';

const STATUSES: Array<[TaskStatus | '', string]> = [
  ['', 'Any status'],
  ['running', 'Running'],
  ['queued', 'Waiting for agent'],
  ['submitted', 'Sent to agent'],
  ['pending', 'Starting'],
  ['completed', 'Done'],
  ['failed', 'Failed'],
  ['cancelled', 'Cancelled'],
];

interface Filters {
  q: string;
  status: string;
  project: string;
  user: string;
  bot: string;
  from: string;
  to: string;
}

export interface TasksView {
  element: HTMLElement;
  reload(): void;
  setProjects(projects: Project[]): void;
  setBots(bots: string[]): void;
  /** Tasks currently listed, for linking console threads. */
  onListed(fn: (tasks: TaskSummary[]) => void): void;
}

/** The task list: filters, text search, keyset pages ("Show more"). */
export function createTasksView(): TasksView {
  const filters: Filters = { q: '', status: '', project: '', user: '', bot: '', from: '', to: '' };
  let tasks: TaskSummary[] = [];
  let cursor: string | null = null;
  let listed: (tasks: TaskSummary[]) => void = () => {};
  let projectNames = new Map<string, string>();

  const search = h('input', {
    type: 'search',
    name: 'q',
    placeholder: 'Search requests and results',
    'aria-label': 'Search tasks',
  });
  const status = h(
    'select',
    { name: 'status' },
    STATUSES.map(([v, l]) => h('option', { value: v, text: l })),
  );
  const project = h('select', { name: 'project' }, [h('option', { value: '', text: 'All projects' })]);
  const bot = h('select', { name: 'bot' }, [h('option', { value: '', text: 'All bots' })]);
  const user = h('input', { type: 'text', name: 'user', placeholder: 'User id', size: 10 });
  const from = h('input', { type: 'date', name: 'from' });
  const to = h('input', { type: 'date', name: 'to' });
  const form = h('form', { className: 'filters', role: 'search', 'aria-label': 'Filter tasks' }, [
    field('Search', search),
    field('Status', status),
    field('Project', project),
    field('Bot', bot),
    field('User', user),
    field('From', from),
    field('To', to),
  ]);
  const body = h('tbody', { id: 'tasks' });
  const more = h('button', { type: 'button', className: 'btn', text: 'Show more', hidden: true });
  const note = h('p', { className: 'muted small', 'aria-live': 'polite' });
  const element = h(
    'section',
    { className: 'panel tasks', id: 'tasks-panel', 'aria-labelledby': 'tasks-title' },
    [
      h('h2', { id: 'tasks-title', text: 'Tasks' }),
      form,
      h('div', { className: 'tablewrap' }, [
        h('table', null, [
          h('thead', null, [
            h('tr', null, [
              h('th', { scope: 'col', text: 'Status' }),
              h('th', { scope: 'col', className: 'wide', text: 'Request' }),
              h('th', { scope: 'col', text: 'Bot' }),
              h('th', { scope: 'col', className: 'opt', text: 'Project' }),
              h('th', { scope: 'col', className: 'opt', text: 'User' }),
              h('th', { scope: 'col', className: 'num', text: 'Cost' }),
              h('th', { scope: 'col', className: 'num opt', text: 'Took' }),
              h('th', { scope: 'col', text: 'Started' }),
            ]),
          ]),
          body,
        ]),
      ]),
      h('div', { className: 'more' }, [more, note]),
    ],
  );

  const dayStart = (d: string) => (d ? new Date(`${d}T00:00:00`).getTime() : null);
  const dayEnd = (d: string) => (d ? new Date(`${d}T23:59:59.999`).getTime() : null);
  const params = () => ({
    q: filters.q,
    status: filters.status,
    project: filters.project,
    user: filters.user,
    bot: filters.bot,
    from: dayStart(filters.from),
    to: dayEnd(filters.to),
    limit: 25,
  });

  function row(t: TaskSummary): HTMLElement {
    return h('tr', { 'data-task': t.id }, [
      h('td', null, [statusBadge(t.status)]),
      h('td', { className: 'wide' }, [
        h('a', {
          href: `/tasks/${encodeURIComponent(t.id)}`,
          className: 'tasklink',
          title: t.promptPreview,
          text: t.promptPreview || t.id,
        }),
        h('span', { className: 'id', text: t.id }),
      ]),
      h('td', { text: `${t.botName} ${t.command}` }),
      h('td', { className: 'opt', text: projectNames.get(t.projectId) ?? t.projectId }),
      h('td', { className: 'opt', text: t.userId }),
      h('td', { className: 'num', text: money(t.costUsd) }),
      h('td', { className: 'num opt', text: duration(t.durationMs) }),
      h('td', null, [
        h('time', {
          datetime: new Date(t.createdAt).toISOString(),
          title: dateTime(t.createdAt),
          text: ago(t.createdAt),
        }),
      ]),
    ]);
  }

  function render(): void {
    if (tasks.length === 0) {
      const filtered = Object.values(filters).some(Boolean);
      replace(body, [
        h('tr', null, [
          h('td', {
            colspan: 8,
            className: 'muted empty',
            // A text search reads a bounded window of history per page: no match yet is not no match at all.
            text: !filtered
              ? 'No tasks yet: ask for something in the console.'
              : cursor !== null
                ? 'No match among the newest tasks searched so far: Show more searches older ones.'
                : 'No task matches these filters.',
          }),
        ]),
      ]);
    } else replace(body, tasks.map(row));
    more.hidden = cursor === null;
    note.textContent = `${tasks.length} task${tasks.length === 1 ? '' : 's'} shown`;
    listed(tasks);
  }

  let generation = 0;
  async function load(append: boolean): Promise<void> {
    const mine = ++generation;
    const page = await get<TaskPage>(`/api/tasks${query({ ...params(), cursor: append ? cursor : null })}`);
    if (mine !== generation) return;
    tasks = append ? [...tasks, ...page.tasks] : page.tasks;
    cursor = page.nextCursor;
    render();
  }
  const reload = () => void load(false).catch((e: Error) => (note.textContent = e.message));

  let timer: ReturnType<typeof setTimeout> | undefined;
  const debounced = () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 250);
  };
  form.addEventListener('submit', (e) => e.preventDefault());
  for (const [el, key] of [
    [search, 'q'],
    [status, 'status'],
    [project, 'project'],
    [bot, 'bot'],
    [user, 'user'],
    [from, 'from'],
    [to, 'to'],
  ] as const) {
    el.addEventListener(el instanceof HTMLSelectElement || el.type === 'date' ? 'change' : 'input', () => {
      filters[key] = el.value.trim();
      debounced();
    });
  }
  more.addEventListener('click', () => void load(true).catch((e: Error) => (note.textContent = e.message)));

  live.on('task', (data) => {
    const { task } = data as { task: TaskSummary };
    const i = tasks.findIndex((t) => t.id === task.id);
    if (i >= 0) {
      tasks[i] = task;
      const old = body.querySelector(`tr[data-task="${CSS.escape(task.id)}"]`);
      old?.replaceWith(row(task));
      listed(tasks);
    } else debounced();
  });

  return {
    element,
    reload,
    setProjects(projects) {
      projectNames = new Map(projects.map((p) => [p.id, p.name]));
      replace(project, [
        h('option', { value: '', text: 'All projects' }),
        ...projects.map((p) => h('option', { value: p.id, text: p.name })),
      ]);
      project.value = filters.project;
      if (tasks.length > 0) render();
    },
    setBots(bots) {
      replace(bot, [
        h('option', { value: '', text: 'All bots' }),
        ...bots.map((b) => h('option', { value: b, text: b })),
      ]);
      bot.value = filters.bot;
    },
    onListed(fn) {
      listed = fn;
    },
  };
}
