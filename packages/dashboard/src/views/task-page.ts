import { ApiError, get, live, post } from '../api.js';
import { h, replace } from '../dom.js';
import { clockSeconds, count, dateTime, duration, money, STATUS_LABEL } from '../format.js';
import { htmlInto, markdownToHtml } from '../text.js';
import type { AuditEntry, Task, TaskDetail, TaskStep, TaskSummary } from '../types.js';
import { statusBadge } from './status.js';

type Action = 'retry' | 'cancel' | 'create_pr' | 'archive';
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

interface PlanItem {
  content: string;
  status: 'pending' | 'in_progress' | 'completed';
}

/** Everything one task did: /tasks/<id>. */
export function createTaskPage(taskId: string): { element: HTMLElement } {
  const element = h('main', { id: 'main', className: 'task-page', tabindex: -1 }, [
    h('p', { className: 'muted', text: 'Loading task…' }),
  ]);
  const notice = h('div', { className: 'notice', role: 'status', 'aria-live': 'polite' });

  async function act(action: Action, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    notice.textContent = '';
    try {
      const r = await post<{ messages: string[] }>(`/api/tasks/${encodeURIComponent(taskId)}/actions`, {
        action,
      });
      notice.textContent = r.messages.join(' ') || 'Done.';
      if (action === 'archive')
        notice.textContent += ' The task is archived; it stays restorable with /bm restore.';
    } catch (e) {
      notice.textContent = (e as Error).message;
    } finally {
      button.disabled = false;
      schedule();
    }
  }

  /** The buttons survive re-renders (the page redraws as the task streams), so a click is never lost. */
  let actionBar: { key: string; el: HTMLElement } | null = null;
  function actions(t: Task): HTMLElement {
    const key = actionKeys(t).join(',');
    if (actionBar?.key === key) return actionBar.el;
    actionBar = { key, el: buildActions(t) };
    return actionBar.el;
  }

  function actionKeys(t: Task): Action[] {
    const terminal = TERMINAL.has(t.status);
    const keys: Action[] = [];
    if (!terminal) keys.push('cancel');
    if (t.status === 'failed' && t.recoverable !== false) keys.push('retry');
    if (t.workspace?.branch && t.workspace.commit && !t.pullRequestUrl && t.status === 'completed')
      keys.push('create_pr');
    if (terminal) keys.push('archive');
    return keys;
  }

  function buildActions(t: Task): HTMLElement {
    const btn = (action: Action, label: string, style = '') => {
      const b = h('button', {
        type: 'button',
        className: `btn ${style}`,
        'data-action': action,
        text: label,
      });
      b.addEventListener('click', () => void act(action, b));
      return b;
    };
    const labels: Record<Action, [string, string]> = {
      cancel: ['Cancel task', 'danger'],
      retry: ['Retry', 'primary'],
      create_pr: ['Create pull request', 'primary'],
      archive: ['Archive', ''],
    };
    return h(
      'div',
      { className: 'actions', role: 'group', 'aria-label': 'Task actions' },
      actionKeys(t).map((a) => btn(a, labels[a][0], labels[a][1])),
    );
  }

  function timeline(t: Task, audit: AuditEntry[]): HTMLElement {
    const at = (action: string) => audit.find((e) => e.action === action)?.ts ?? null;
    const terminalAt = t.completedAt;
    const points: Array<[string, number | null, string]> = [
      ['Created', t.createdAt, 'done'],
      ['Waiting for agent', at('task.queued'), 'done'],
      ['Sent to agent', at('task.submitted'), 'done'],
      ['Running', t.startedAt ?? at('task.started'), 'done'],
      [TERMINAL.has(t.status) ? (STATUS_LABEL[t.status] ?? t.status) : 'Finished', terminalAt, t.status],
    ];
    return h(
      'ol',
      { className: 'timeline' },
      points
        .filter(([label, time]) => time !== null || label === 'Finished')
        .map(([label, time, tone]) =>
          h('li', { className: time === null ? 'pending' : `tone-${tone}` }, [
            h('span', { className: 'label', text: label }),
            time === null
              ? h('span', { className: 'muted', text: 'not yet' })
              : h('time', {
                  datetime: new Date(time).toISOString(),
                  title: dateTime(time),
                  text: clockSeconds(time),
                }),
          ]),
        ),
    );
  }

  /** The latest plan: a plan step when the agent sends one, else the input of the last TodoWrite call. */
  function planItems(steps: TaskStep[]): PlanItem[] | undefined {
    for (const s of [...steps].reverse()) {
      if (s.kind === 'plan') return (s.detail as { items?: PlanItem[] } | null)?.items;
      const d = s.detail as { input?: string; isError?: boolean } | null;
      if (s.tool === 'TodoWrite' && d?.input && d.isError !== true) {
        try {
          const todos = (JSON.parse(d.input) as { todos?: PlanItem[] }).todos;
          if (Array.isArray(todos)) return todos.filter((t) => typeof t.content === 'string');
        } catch {
          // A clipped input is not a plan.
        }
      }
    }
    return undefined;
  }

  function plan(steps: TaskStep[]): HTMLElement | null {
    const items = planItems(steps);
    if (!items?.length) return null;
    const mark = { completed: '☑', in_progress: '▶', pending: '☐' } as const;
    return section('Checklist', [
      h(
        'ul',
        { className: 'checklist' },
        items.map((i) =>
          h('li', { className: i.status }, [
            h('span', { 'aria-hidden': 'true', text: mark[i.status] ?? '☐' }),
            ` ${i.content}`,
            h('span', { className: 'sr-only', text: ` (${i.status.replace('_', ' ')})` }),
          ]),
        ),
      ),
    ]);
  }

  function transcript(steps: TaskStep[]): HTMLElement {
    const shown = steps.filter((s) => s.kind !== 'plan');
    if (shown.length === 0)
      return section('Transcript', [h('p', { className: 'muted', text: 'Nothing reported yet.' })]);
    return section('Transcript', [
      h(
        'ol',
        { className: 'transcript', id: 'transcript' },
        shown.map((s) => {
          const d = s.detail as { input?: string; result?: string; isError?: boolean } | null;
          return h('li', { className: `step step-${s.kind}` }, [
            h('time', { datetime: new Date(s.createdAt).toISOString(), text: clockSeconds(s.createdAt) }),
            s.kind === 'text'
              ? htmlInto(h('div', { className: 'step-text md' }), markdownToHtml(s.message))
              : h('div', { className: 'step-body' }, [
                  s.tool
                    ? h('span', { className: 'tool', text: s.tool })
                    : h('span', { className: 'tool muted', text: s.kind }),
                  h('span', { className: 'summary', text: s.message }),
                  d?.input ? h('pre', { className: 'input', text: d.input }) : null,
                  d?.result
                    ? h('details', null, [
                        h('summary', { text: d.isError ? 'Error' : 'Result' }),
                        h('pre', { text: d.result }),
                      ])
                    : null,
                ]),
          ]);
        }),
      ),
    ]);
  }

  /** The change as a diff: the edits and writes of the transcript. */
  function diffText(steps: TaskStep[]): string | null {
    const hunks = steps
      .filter((s) => s.tool === 'Edit' || s.tool === 'MultiEdit' || s.tool === 'Write')
      .map((s) => s.detail as { input?: string; isError?: boolean } | null)
      .filter((d) => d?.input?.startsWith('--- ') && d.isError !== true)
      .map((d) => d?.input ?? '');
    return hunks.length > 0 ? hunks.join('\n') : null;
  }

  function diffView(t: Task, steps: TaskStep[]): HTMLElement {
    const diff = diffText(steps);
    const ws = t.workspace;
    const stats = new Map((ws?.files ?? []).map((f) => [f.path, f]));
    const files = t.filesChanged.length > 0 ? t.filesChanged : [...stats.keys()];
    const children: Array<HTMLElement | null> = [
      files.length
        ? h(
            'ul',
            { className: 'files' },
            files.map((f) => {
              const st = stats.get(f);
              return h('li', null, [
                h('code', { text: f }),
                st && !st.binary
                  ? h('span', { className: 'stat' }, [
                      h('span', { className: 'plus', text: ` +${st.added}` }),
                      h('span', { className: 'minus', text: ` −${st.removed}` }),
                    ])
                  : st?.binary
                    ? h('span', { className: 'muted', text: ' binary' })
                    : null,
              ]);
            }),
          )
        : h('p', { className: 'muted', text: 'No files changed.' }),
    ];
    if (diff) {
      children.push(
        h(
          'pre',
          { className: 'diff', id: 'diff', 'aria-label': 'Diff', tabindex: 0 },
          diff.split('\n').map((line) => {
            const cls =
              line.startsWith('+++') || line.startsWith('---')
                ? 'file'
                : line.startsWith('+')
                  ? 'add'
                  : line.startsWith('-')
                    ? 'del'
                    : line.startsWith('@@')
                      ? 'hunk'
                      : '';
            return h('span', { className: cls, text: `${line}\n` });
          }),
        ),
      );
    }
    const fact = (label: string, value: HTMLElement) =>
      h('div', null, [h('dt', { text: label }), h('dd', null, [value])]);
    const facts: Array<HTMLElement | null> = [
      ws?.branch ? fact('Branch', h('code', { text: ws.branch })) : null,
      ws?.commit ? fact('Commit', h('code', { text: ws.commit.slice(0, 12), title: ws.commit })) : null,
      ws?.base ? fact('Based on', h('code', { text: ws.base })) : null,
      t.pullRequestUrl
        ? fact(
            'Pull request',
            h('a', {
              href: t.pullRequestUrl,
              target: '_blank',
              rel: 'noopener noreferrer',
              text: t.pullRequestUrl,
            }),
          )
        : null,
    ];
    if (facts.some(Boolean)) children.unshift(h('dl', { className: 'facts-grid' }, facts));
    return section('Files changed', children);
  }

  function usage(t: Task): HTMLElement {
    const item = (label: string, value: string) =>
      h('div', null, [h('dt', { text: label }), h('dd', { text: value })]);
    return section('Cost and tokens', [
      h('dl', { className: 'facts-grid', id: 'usage' }, [
        item('Cost', money(t.costUsd)),
        item('Input tokens', count(t.inputTokens)),
        item('Output tokens', count(t.outputTokens)),
        item('Cache read', count(t.cacheReadTokens)),
        item('Cache written', count(t.cacheCreationTokens)),
        item('Turns', String(t.numTurns)),
        item('Took', duration(t.durationMs)),
      ]),
    ]);
  }

  function auditList(entries: AuditEntry[], title: string, empty: string): HTMLElement {
    if (entries.length === 0) return section(title, [h('p', { className: 'muted', text: empty })]);
    return section(title, [
      h('table', { className: 'audit' }, [
        h('thead', null, [
          h('tr', null, [
            h('th', { scope: 'col', text: 'When' }),
            h('th', { scope: 'col', text: 'What' }),
            h('th', { scope: 'col', text: 'Who' }),
            h('th', { scope: 'col', text: 'Details' }),
          ]),
        ]),
        h(
          'tbody',
          null,
          entries.map((e) =>
            h('tr', null, [
              h('td', null, [
                h('time', {
                  datetime: new Date(e.ts).toISOString(),
                  title: dateTime(e.ts),
                  text: clockSeconds(e.ts),
                }),
              ]),
              h('td', null, [h('code', { text: e.action })]),
              h('td', { text: e.actor }),
              h('td', {
                className: 'details',
                text: Object.entries(e.details)
                  .map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
                  .join(' · '),
              }),
            ]),
          ),
        ),
      ]),
    ]);
  }

  function render(d: TaskDetail): void {
    const t = d.task;
    const title = t.prompt.split('\n')[0] ?? t.id;
    document.title = `${STATUS_LABEL[t.status] ?? t.status}: ${title.slice(0, 60)} · Bematic`;
    const meta = (label: string, value: HTMLElement | string) =>
      h('div', null, [h('dt', { text: label }), h('dd', null, [value])]);
    const approvals = d.audit.filter(
      (e) => e.action.startsWith('permission.') || e.action.startsWith('approval.'),
    );
    replace(element, [
      h('nav', { className: 'crumbs', 'aria-label': 'Breadcrumb' }, [
        h('a', { href: '/', text: 'Dashboard' }),
        ' / ',
        h('span', { text: t.id }),
      ]),
      h('header', { className: 'task-head' }, [
        h('div', { className: 'title-row' }, [statusBadge(t.status), h('h1', { text: title })]),
        h(
          'dl',
          { className: 'meta' },
          [
            meta('Requested by', t.userId),
            meta('Bot', `${t.botName} ${t.command}`),
            meta('Model', t.model),
            meta('Project', d.project?.name ?? t.projectId),
            meta('Agent', t.agentId),
            d.links.thread
              ? meta('Conversation', h('a', { href: d.links.thread, text: 'Open thread' }))
              : null,
          ].filter((x): x is HTMLDivElement => x !== null),
        ),
        actions(t),
        notice,
      ]),
      h('div', { className: 'task-grid' }, [
        h('div', { className: 'col-main' }, [
          section('Request', [h('pre', { className: 'prompt', text: t.prompt })]),
          plan(d.steps),
          transcript(d.steps),
          t.result
            ? section('Result', [
                htmlInto(h('div', { className: 'md', id: 'result' }), markdownToHtml(t.result)),
              ])
            : null,
          t.errorMessage
            ? section('Error', [
                h('p', { className: 'error' }, [
                  t.errorCode ? h('code', { text: t.errorCode }) : null,
                  ` ${t.errorMessage}`,
                ]),
              ])
            : null,
          t.warning ? section('Warning', [h('p', { text: t.warning })]) : null,
          diffView(t, d.steps),
        ]),
        h('div', { className: 'col-side' }, [
          section('Timeline', [timeline(t, d.audit)]),
          usage(t),
          auditList(approvals, 'Approvals', 'Nothing was asked for.'),
          t.commandsRun.length
            ? section('Commands run', [
                h(
                  'ul',
                  { className: 'files' },
                  t.commandsRun.map((c) => h('li', null, [h('code', { text: c })])),
                ),
              ])
            : null,
        ]),
      ]),
      auditList(d.audit, 'Audit trail', 'No audit entries.'),
    ]);
  }

  let shown = '';
  async function load(): Promise<void> {
    try {
      const detail = await get<TaskDetail>(`/api/tasks/${encodeURIComponent(taskId)}/detail`);
      const text = JSON.stringify(detail);
      if (text === shown) return;
      shown = text;
      render(detail);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      replace(element, [
        h('nav', { className: 'crumbs' }, [h('a', { href: '/', text: 'Dashboard' })]),
        h('h1', {
          text: e instanceof ApiError && e.status === 404 ? 'Task not found' : 'Could not load the task',
        }),
        h('p', { className: 'muted', text: (e as Error).message }),
      ]);
    }
  }

  let timer: ReturnType<typeof setTimeout> | undefined;
  function schedule(): void {
    clearTimeout(timer);
    timer = setTimeout(() => void load(), 300);
  }
  live.on('task', (data) => {
    if ((data as { task: TaskSummary }).task.id === taskId) schedule();
  });
  live.on('step', (data) => {
    if ((data as { taskId: string }).taskId === taskId) schedule();
  });
  live.on('hello', () => void load());
  void load();
  return { element };
}

function section(title: string, children: Array<HTMLElement | null>): HTMLElement {
  const id = `sec-${title.toLowerCase().replace(/[^a-z]+/g, '-')}`;
  return h('section', { className: 'panel card', 'aria-labelledby': id }, [
    h('h2', { id, text: title }),
    ...children,
  ]);
}
