import { get, live, query } from '../api.js';
import { field, h, replace } from '../dom.js';
import { ago, clock } from '../format.js';
import type { AgentPage, AgentSnapshot } from '../types.js';

/** Agents per "Show more"; the API answers at most MAX_PAGE in one page. */
const PAGE = 50;
const MAX_PAGE = 500;

/** An agent's state in words a person uses, and how that should look. */
export function agentState(a: AgentSnapshot): { text: string; tone: 'ok' | 'busy' | 'warn' | 'bad' } {
  if (!a.online) {
    return a.lastSeenAt
      ? { text: `unreachable since ${clock(a.lastSeenAt)}`, tone: 'bad' }
      : { text: 'never connected', tone: 'bad' };
  }
  if (a.circuit === 'open') return { text: 'paused after repeated failures', tone: 'bad' };
  if (a.circuit === 'half-open') return { text: 'recovering: trying one task', tone: 'warn' };
  if (a.overloaded) return { text: 'overloaded: machine is short of CPU or memory', tone: 'warn' };
  const active = a.metrics?.activeTasks ?? 0;
  const max = a.maxConcurrentTasks;
  if (max && active >= max) return { text: `busy ${active}/${max}`, tone: 'busy' };
  if (active > 0) return { text: `working ${active}/${max ?? '?'}`, tone: 'ok' };
  return { text: 'online', tone: 'ok' };
}

function meter(label: string, percent: number): HTMLElement {
  const p = Math.max(0, Math.min(100, Math.round(percent)));
  return h('div', { className: 'meter' }, [
    h('span', { text: label }),
    h(
      'div',
      {
        className: 'bar',
        role: 'meter',
        'aria-label': label,
        'aria-valuemin': 0,
        'aria-valuemax': 100,
        'aria-valuenow': p,
      },
      [h('i', { style: `width:${p}%` })],
    ),
    h('b', { text: `${p}%` }),
  ]);
}

export interface AgentsView {
  element: HTMLElement;
  reload(): void;
}

/** The agents: a page at a time ("Show more"), online first, with the counts of all of them in the title. */
export function createAgentsView(): AgentsView {
  const filters = { q: '', status: '' };
  let agents: AgentSnapshot[] = [];
  let cursor: string | null = null;

  const search = h('input', {
    type: 'search',
    name: 'agent-q',
    placeholder: 'Agent id or host name',
    'aria-label': 'Search agents',
  });
  const status = h('select', { name: 'agent-status', 'aria-label': 'Agent status' }, [
    h('option', { value: '', text: 'Any' }),
    h('option', { value: 'online', text: 'Online' }),
    h('option', { value: 'offline', text: 'Offline' }),
  ]);
  const form = h('form', { className: 'filters', role: 'search', 'aria-label': 'Filter agents' }, [
    field('Search', search),
    field('Status', status),
  ]);
  const list = h('div', { id: 'agents', className: 'agents' }, [
    h('p', { className: 'muted', text: 'Loading…' }),
  ]);
  const hint = h('span', { className: 'hint' });
  const more = h('button', { type: 'button', className: 'btn', text: 'Show more agents', hidden: true });
  const note = h('p', { className: 'muted small', 'aria-live': 'polite' });
  const element = h(
    'section',
    { className: 'panel', id: 'agents-panel', 'aria-labelledby': 'agents-title' },
    [
      h('h2', { id: 'agents-title' }, ['Agents ', hint]),
      form,
      list,
      h('div', { className: 'more' }, [more, note]),
    ],
  );

  function card(a: AgentSnapshot): HTMLElement {
    const s = agentState(a);
    const m = a.metrics;
    const queued = m?.queuedTasks ? `, ${m.queuedTasks} waiting` : '';
    return h('article', { className: `agent tone-${s.tone}`, 'data-agent': a.agentId }, [
      h('div', { className: 'name' }, [
        h('i', { className: `dot ${s.tone}`, 'aria-hidden': 'true' }),
        h('b', { text: a.agentId }),
        h('span', { className: 'state', text: s.text + queued }),
      ]),
      h('div', { className: 'facts' }, [
        h('span', { text: a.hostname ?? 'unknown host' }),
        a.lastSeenAt && a.online ? h('span', { text: `seen ${ago(a.lastSeenAt)}` }) : null,
        a.offlineQueueDepth ? h('span', { text: `${a.offlineQueueDepth} task(s) waiting for it` }) : null,
      ]),
      a.sandbox === 'off' || a.sandbox === 'unavailable'
        ? h('p', {
            className: 'sandbox-off',
            role: 'status',
            text:
              a.sandbox === 'off'
                ? 'Sandbox is OFF: commands run unconfined'
                : 'Sandbox unavailable: every command is asked for',
          })
        : a.sandbox === 'on'
          ? h('p', { className: 'sandbox-on', text: 'Commands sandboxed' })
          : null,
      m && a.online
        ? h('div', { className: 'meters' }, [meter('CPU', m.cpuPercent), meter('Memory', m.memoryPercent)])
        : null,
    ]);
  }

  function render(summary: AgentPage['summary']): void {
    hint.textContent = summary.total ? `${summary.online} of ${summary.total} online` : '';
    const filtered = filters.q !== '' || filters.status !== '';
    replace(
      list,
      agents.length
        ? agents.map(card)
        : [
            h('p', {
              className: 'muted',
              // A text search tests a bounded number of agents per page: no match yet is not no match at all.
              text: !filtered
                ? 'No agent has connected yet.'
                : cursor !== null
                  ? 'No match among the agents searched so far: Show more searches further.'
                  : 'No agent matches these filters.',
            }),
          ],
    );
    more.hidden = cursor === null;
    const of =
      filters.q !== ''
        ? ''
        : ` of ${filters.status === 'online' ? summary.online : filters.status === 'offline' ? summary.offline : summary.total}`;
    note.textContent = `${agents.length}${of} agent${agents.length === 1 ? '' : 's'} shown`;
  }

  let generation = 0;
  /**
   * The newest request wins, except that a refresh (live updates) never drops a "Show more" under way; it
   * reloads as many agents as are shown, so it does not undo one either.
   */
  async function load(mode: 'first' | 'more' | 'refresh'): Promise<void> {
    if (mode === 'refresh' && more.disabled) return;
    const mine = ++generation;
    const limit = mode === 'refresh' ? Math.min(MAX_PAGE, Math.max(PAGE, agents.length)) : PAGE;
    if (mode === 'more') more.disabled = true;
    try {
      const page = await get<AgentPage>(
        `/api/agents${query({ q: filters.q, status: filters.status, limit, cursor: mode === 'more' ? cursor : null })}`,
      );
      if (mine !== generation) return;
      agents = mode === 'more' ? [...agents, ...page.agents] : page.agents;
      cursor = page.nextCursor;
      render(page.summary);
    } finally {
      if (mode === 'more') more.disabled = false;
    }
  }
  const run = (mode: 'first' | 'more' | 'refresh') =>
    void load(mode).catch((e: Error) => (note.textContent = e.message));

  let debounce: ReturnType<typeof setTimeout> | undefined;
  form.addEventListener('submit', (e) => e.preventDefault());
  search.addEventListener('input', () => {
    filters.q = search.value.trim();
    clearTimeout(debounce);
    debounce = setTimeout(() => run('first'), 250);
  });
  status.addEventListener('change', () => {
    filters.status = status.value;
    run('first');
  });
  more.addEventListener('click', () => run('more'));

  // With many agents a heartbeat arrives every few milliseconds: one refresh a second at most, not one each.
  let pending = false;
  live.on('agent', () => {
    if (pending) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      run('refresh');
    }, 1000);
  });
  setInterval(() => run('refresh'), 15_000);
  return { element, reload: () => run('refresh') };
}
