import { get, query } from '../api.js';
import { h, replace, svg } from '../dom.js';
import { count, money } from '../format.js';
import type { CostBucket, DashboardStats } from '../types.js';

type By = 'day' | 'project' | 'user';

/** Totals plus cost per day, project or user as a small bar chart (with the numbers as a table for screen readers). */
export function createSummary(): {
  element: HTMLElement;
  reload(): void;
  onStats(fn: (s: DashboardStats) => void): void;
} {
  let by: By = 'day';
  let statsListener: (s: DashboardStats) => void = () => {};
  const totals = h('dl', { className: 'totals' });
  const chart = h('div', { className: 'chart' });
  const tabs = h(
    'div',
    { className: 'tabs', role: 'group', 'aria-label': 'Cost by' },
    (['day', 'project', 'user'] as By[]).map((b) =>
      h('button', {
        type: 'button',
        className: 'tab',
        'aria-pressed': b === by ? 'true' : 'false',
        'data-by': b,
        text: `per ${b}`,
        onclick: () => {
          by = b;
          for (const t of tabs.querySelectorAll('button'))
            t.setAttribute('aria-pressed', t.dataset.by === b ? 'true' : 'false');
          loadChart();
        },
      }),
    ),
  );
  const element = h('section', { className: 'panel summary', 'aria-labelledby': 'summary-title' }, [
    h('h2', { id: 'summary-title' }, ['Usage ', tabs]),
    totals,
    chart,
  ]);

  function renderChart(buckets: CostBucket[]): void {
    if (buckets.length === 0 || buckets.every((b) => b.tasks === 0)) {
      replace(chart, [h('p', { className: 'muted', text: 'No finished tasks yet.' })]);
      return;
    }
    const W = 560;
    const H = 120;
    const pad = 18;
    const max = Math.max(...buckets.map((b) => b.costUsd), 0.0001);
    const bw = (W - pad) / buckets.length;
    const label = (k: string) => (by === 'day' ? k.slice(5) : k.length > 10 ? `${k.slice(0, 9)}…` : k);
    const bars = buckets.map((b, i) => {
      const bh = Math.max(b.costUsd > 0 ? 2 : 0, ((H - 2 * pad) * b.costUsd) / max);
      const x = pad / 2 + i * bw + bw * 0.15;
      return svg('g', {}, [
        svg('rect', { x, y: H - pad - bh, width: bw * 0.7, height: bh, rx: 2, class: 'bar-fill' }, [
          svg('title', {}, [`${b.key}: ${money(b.costUsd)}, ${b.tasks} task(s)`]),
        ]),
        svg('text', { x: x + bw * 0.35, y: H - 4, 'text-anchor': 'middle', class: 'axis' }, [label(b.key)]),
      ]);
    });
    const figure = svg(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-title', class: 'costs' },
      [
        svg('title', { id: 'chart-title' }, [`Cost per ${by}; highest ${money(max)}`]),
        svg('line', { x1: pad / 2, x2: W - pad / 2, y1: H - pad, y2: H - pad, class: 'baseline' }),
        svg('text', { x: pad / 2, y: 10, class: 'axis' }, [`max ${money(max)}`]),
        ...bars,
      ],
    );
    const table = h('table', { className: 'sr-only' }, [
      h('caption', { text: `Cost per ${by}` }),
      h(
        'tbody',
        null,
        buckets.map((b) =>
          h('tr', null, [
            h('th', { scope: 'row', text: b.key }),
            h('td', { text: money(b.costUsd) }),
            h('td', { text: `${b.tasks} tasks` }),
          ]),
        ),
      ),
    ]);
    replace(chart, [figure, table]);
  }

  function loadChart(): void {
    void get<{ buckets: CostBucket[] }>(
      `/api/costs${query({ by, days: 14, tz: new Date().getTimezoneOffset() })}`,
    )
      .then((r) => renderChart(r.buckets))
      .catch(() => {});
  }

  function renderTotals(s: DashboardStats): void {
    const c = s.counts;
    const active = c.running + c.submitted + c.queued + c.pending;
    const item = (label: string, value: string) =>
      h('div', null, [h('dt', { text: label }), h('dd', { text: value })]);
    replace(totals, [
      item('Tasks', count(s.total)),
      item('Active', String(active)),
      item('Done', String(c.completed)),
      item('Failed', String(c.failed)),
      item('Spent', money(s.totals.costUsd)),
      item('Tokens in / out', `${count(s.totals.inputTokens)} / ${count(s.totals.outputTokens)}`),
    ]);
  }

  return {
    element,
    reload() {
      void get<DashboardStats>('/api/stats')
        .then((s) => {
          renderTotals(s);
          statsListener(s);
        })
        .catch(() => {});
      loadChart();
    },
    onStats(fn) {
      statsListener = fn;
    },
  };
}
