import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openTestDb, type TestDb } from '../../test/support/database.js';
import { Cache } from '../cache/cache.js';
import type { InboundHandler, InboundRequest } from '../chat/inbound.js';
import { ConsoleChatSurface } from '../console/console-surface.js';
import { TaskEvents } from '../tasks/task-events.js';
import { createHttpServer, type HttpServerHandle } from './http-server.js';

/**
 * Runs the dashboard's inline script against the real server with just enough
 * of a DOM to host it (no browser is available offline): type a request, watch
 * the thread render live from Server-Sent Events, click a Block Kit button.
 */
class FakeElement {
  children: FakeElement[] = [];
  attributes: Record<string, string> = {};
  listeners: Record<string, Array<(ev: unknown) => void>> = {};
  style: Record<string, string> = {};
  className = '';
  value = '';
  disabled = false;
  selectionStart = 0;
  selectionEnd = 0;
  scrollTop = 0;
  scrollHeight = 0;
  clientHeight = 0;
  private text = '';
  private html = '';
  constructor(readonly tagName: string) {}
  set textContent(v: string) {
    this.children = [];
    this.html = '';
    this.text = v;
  }
  get textContent(): string {
    return this.text + this.html.replace(/<[^>]*>/g, '') + this.children.map((c) => c.textContent).join('');
  }
  set innerHTML(v: string) {
    this.children = [];
    this.text = '';
    this.html = v;
  }
  appendChild(c: FakeElement): FakeElement {
    this.children.push(c);
    return c;
  }
  setAttribute(k: string, v: string): void {
    this.attributes[k] = v;
  }
  addEventListener(type: string, fn: (ev: unknown) => void): void {
    this.listeners[type] = [...(this.listeners[type] ?? []), fn];
  }
  dispatch(type: string, ev: Record<string, unknown> = {}): void {
    for (const fn of this.listeners[type] ?? []) fn({ preventDefault() {}, currentTarget: this, ...ev });
  }
  focus(): void {}
  scrollIntoView(): void {}
  *walk(): Generator<FakeElement> {
    yield this;
    for (const c of this.children) yield* c.walk();
  }
}

class RecordingInbound implements InboundHandler {
  readonly requests: InboundRequest[] = [];
  async handle(r: InboundRequest): Promise<void> {
    this.requests.push(r);
    if (r.kind !== 'mention') return;
    await r.surface.post(
      r.channelId,
      {
        text: 'Task started',
        blocks: [
          { type: 'header', text: { type: 'plain_text', text: 'Working on it' } },
          { type: 'section', text: { type: 'mrkdwn', text: `*coder* is on it: _${r.text}_ in \`auth.ts\`` } },
          { type: 'divider' },
          {
            type: 'context',
            elements: [{ type: 'mrkdwn', text: ':hourglass_flowing_sand: queued on agent_1' }],
          },
          {
            type: 'actions',
            elements: [
              {
                type: 'button',
                text: { type: 'plain_text', text: 'Cancel' },
                action_id: 'task_cancel',
                value: 'task_42',
                style: 'danger',
              },
            ],
          },
        ],
      },
      r.threadTs,
    );
  }
}

describe('dashboard page script', () => {
  let t: TestDb;
  let handle: HttpServerHandle;
  let base: string;
  const aborts: AbortController[] = [];

  beforeEach(async () => {
    t = await openTestDb(Date.now());
  });
  afterEach(async () => {
    for (const a of aborts) a.abort();
    await handle.close();
    await t.close();
  });

  it('sends what is typed, renders the live thread with Block Kit, and clicks buttons', async () => {
    const inbound = new RecordingInbound();
    handle = createHttpServer({
      health: { database: async () => ({ ok: true }), gateway: () => ({ ok: true }) },
      repos: t.repos,
      directory: { listAgents: async () => [] },
      console: new ConsoleChatSurface(),
      inbound,
      cache: new Cache({ ttlMs: 1000 }),
      events: new TaskEvents(),
    });
    await new Promise<void>((r) => handle.server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(handle.server.address() as AddressInfo).port}`;

    const html = await (await fetch(`${base}/`)).text();
    const script = /<script>([\s\S]*)<\/script>/.exec(html)?.[1] ?? '';
    const byId = new Map<string, FakeElement>();
    for (const m of html.matchAll(/<(\w+)[^>]*\bid="([^"]+)"/g))
      byId.set(m[2] ?? '', new FakeElement(m[1] ?? 'div'));
    const document = {
      getElementById: (id: string) => byId.get(id) ?? null,
      createElement: (tag: string) => new FakeElement(tag),
      createTextNode: (text: string) => {
        const el = new FakeElement('#text');
        el.textContent = text;
        return el;
      },
    };
    const pageFetch = (path: string, init?: RequestInit) => fetch(base + path, init);
    class PageEventSource {
      private readonly handlers = new Map<string, (e: { data: string }) => void>();
      onerror: (() => void) | null = null;
      constructor(path: string) {
        const abort = new AbortController();
        aborts.push(abort);
        void this.pump(path, abort.signal);
      }
      addEventListener(type: string, fn: (e: { data: string }) => void): void {
        this.handlers.set(type, fn);
      }
      private async pump(path: string, signal: AbortSignal): Promise<void> {
        try {
          const res = await fetch(base + path, { signal });
          const reader = res.body?.getReader();
          const decoder = new TextDecoder();
          let buffer = '';
          for (;;) {
            const chunk = await reader?.read();
            if (!chunk || chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true });
            let sep = buffer.indexOf('\n\n');
            while (sep >= 0) {
              const lines = buffer.slice(0, sep).split('\n');
              buffer = buffer.slice(sep + 2);
              const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
              const data = lines.find((l) => l.startsWith('data: '))?.slice(6);
              if (event && data !== undefined) this.handlers.get(event)?.({ data });
              sep = buffer.indexOf('\n\n');
            }
          }
        } catch {
          this.onerror?.();
        }
      }
    }
    const raf = (fn: () => void) => setTimeout(fn, 0);
    const noInterval = () => 0;
    new Function('document', 'fetch', 'EventSource', 'requestAnimationFrame', 'setInterval', script)(
      document,
      pageFetch,
      PageEventSource,
      raf,
      noInterval,
    );
    const el = (id: string) => byId.get(id) as FakeElement;
    await vi.waitFor(() => expect(el('live-text').textContent).toBe('live'));

    const input = el('input');
    input.value = 'code fix the login bug';
    input.dispatch('keydown', { key: 'Enter', shiftKey: false, isComposing: false });
    expect(input.value).toBe('');

    await vi.waitFor(() => expect(el('messages').textContent).toContain('Working on it'));
    const text = el('messages').textContent;
    expect(text).toContain('code fix the login bug');
    expect(text).toContain('coder is on it: code fix the login bug in auth.ts');
    expect(text).toContain('⏳ queued on agent_1');
    expect(inbound.requests[0]).toMatchObject({ kind: 'mention', text: 'code fix the login bug' });

    const cancel = [...el('messages').walk()].find(
      (n) => n.tagName === 'button' && n.textContent === 'Cancel',
    );
    expect(cancel?.className).toContain('danger');
    cancel?.dispatch('click');
    await vi.waitFor(() => expect(inbound.requests).toHaveLength(2));
    expect(inbound.requests[1]).toMatchObject({
      kind: 'action',
      text: 'task_cancel',
      actionValue: 'task_42',
    });

    input.value = '';
    input.dispatch('keydown', { key: 'ArrowUp' });
    expect(input.value).toBe('code fix the login bug');
  });
});
