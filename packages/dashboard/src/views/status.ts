import { h } from '../dom.js';
import { STATUS_LABEL } from '../format.js';
import type { TaskStatus } from '../types.js';

export function statusBadge(status: TaskStatus): HTMLElement {
  return h('span', { className: `badge s-${status}`, text: STATUS_LABEL[status] ?? status });
}
