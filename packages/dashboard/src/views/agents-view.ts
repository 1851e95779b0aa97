import { get, live } from '../api.js';
import { h, replace } from '../dom.js';
import { ago, clock } from '../format.js';
import type { AgentSnapshot } from '../types.js';

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

export function createAgentsView(): AgentsView {
  const list = h('div', { id: 'agents', className: 'agents' }, [
    h('p', { className: 'muted', text: 'Loading…' }),
  ]);
  const hint = h('span', { className: 'hint' });
  const element = h('section', { className: 'panel', 'aria-labelledby': 'agents-title' }, [
    h('h2', { id: 'agents-title' }, ['Agents ', hint]),
    list,
  ]);

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

  const reload = () =>
    void get<{ agents: AgentSnapshot[] }>('/api/agents')
      .then(({ agents }) => {
        const online = agents.filter((a) => a.online).length;
        hint.textContent = agents.length ? `${online} of ${agents.length} online` : '';
        replace(
          list,
          agents.length
            ? agents.map(card)
            : [h('p', { className: 'muted', text: 'No agent has connected yet.' })],
        );
      })
      .catch(() => {});

  let timer: ReturnType<typeof setTimeout> | undefined;
  live.on('agent', () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 400);
  });
  setInterval(reload, 15_000);
  return { element, reload };
}
