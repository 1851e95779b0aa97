import { live, post } from '../api.js';
import { h, replace } from '../dom.js';
import { clock, dateTime } from '../format.js';
import { emoji, htmlInto, mrkdwnToHtml } from '../text.js';
import type { ConsoleChange, ConsoleMessage, ConsoleThread, SessionInfo } from '../types.js';
import { renderBlocks } from './blocks.js';

export interface ConsoleView {
  element: HTMLElement;
  load(threads: ConsoleThread[]): void;
  /** Link tasks to the thread they run in. */
  setTaskLinks(byThread: Map<string, string[]>): void;
}

/** The console: threads as in Slack, a composer that remembers what was typed. */
export function createConsole(session: SessionInfo): ConsoleView {
  const state = {
    threads: [] as ConsoleThread[],
    replyTo: null as string | null,
    history: [] as string[],
    historyPos: -1,
    draft: '',
    taskLinks: new Map<string, string[]>(),
  };
  const messages = h('div', {
    id: 'messages',
    role: 'log',
    'aria-live': 'polite',
    'aria-label': 'Conversation',
    tabindex: 0,
  });
  const input = h('textarea', {
    id: 'input',
    rows: 1,
    placeholder: 'code fix the login bug in auth.ts',
    'aria-label': 'Message to Bematic',
  });
  const error = h('div', { id: 'composer-error', role: 'alert', className: 'error' });
  const replying = h('div', { id: 'replying', hidden: true }, [
    h('span', { text: 'Replying in thread' }),
    h('button', {
      type: 'button',
      className: 'linkbtn',
      text: 'Leave thread (Esc)',
      onclick: () => setReply(null),
    }),
  ]);
  const composer = h('form', { id: 'composer', autocomplete: 'off' }, [
    replying,
    h('div', { className: 'row' }, [
      input,
      h('button', { className: 'btn primary', id: 'send', type: 'submit', text: 'Send' }),
    ]),
    h('p', {
      className: 'help',
      text: 'Enter sends · Shift+Enter new line · ↑/↓ recall · Esc leaves a thread',
    }),
    error,
  ]);
  const element = h(
    'section',
    { className: 'panel console', id: 'console', 'aria-labelledby': 'console-title' },
    [
      h('h2', { id: 'console-title' }, [
        'Console ',
        h('span', { className: 'muted', text: session.consoleChannelId }),
      ]),
      messages,
      composer,
    ],
  );

  const showError = (e: Error | null) => {
    error.textContent = e ? e.message : '';
  };

  function renderMessage(m: ConsoleMessage): HTMLElement {
    const bot = m.userId !== session.user.id;
    const head = h('div', { className: 'head' }, [
      h('span', { className: `who${bot ? ' bot' : ''}`, text: bot ? 'Bematic' : session.user.name }),
      h('time', {
        className: 'when',
        datetime: new Date(m.postedAt).toISOString(),
        title: dateTime(m.postedAt),
        text: clock(m.postedAt),
      }),
      m.visibleTo ? h('span', { className: 'eph', text: 'only visible to you' }) : null,
      m.editedAt ? h('span', { className: 'edited', text: '(edited)' }) : null,
    ]);
    const body = m.blocks?.length
      ? renderBlocks(m.blocks, m, showError)
      : htmlInto(h('div', { className: 'body' }), mrkdwnToHtml(m.text));
    const reactions = m.reactions.length
      ? h(
          'div',
          { className: 'reactions' },
          m.reactions.map((r) => h('span', { className: 'reaction', title: `:${r}:`, text: emoji(r) })),
        )
      : null;
    return h('div', { className: 'msg', 'data-ts': m.ts }, [head, body, reactions]);
  }

  function render(): void {
    const atBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    if (state.threads.length === 0) {
      replace(messages, [
        h('div', { className: 'empty' }, [
          'Ask for something, e.g. ',
          h('code', { text: 'code fix the login bug in auth.ts' }),
          ' or ',
          h('code', { text: '/bm help' }),
          '.',
        ]),
      ]);
      return;
    }
    replace(
      messages,
      state.threads.map((t) => {
        const links = state.taskLinks.get(t.root.ts) ?? [];
        return h(
          'article',
          {
            className: `thread${state.replyTo === t.root.ts ? ' focus' : ''}`,
            id: `thread-${t.root.ts.replace('.', '-')}`,
          },
          [
            renderMessage(t.root),
            t.replies.length ? h('div', { className: 'replies' }, t.replies.map(renderMessage)) : null,
            t.root.visibleTo
              ? null
              : h('div', { className: 'thread-actions' }, [
                  h('button', {
                    type: 'button',
                    className: 'linkbtn',
                    text: t.replies.length ? `Reply in thread (${t.replies.length})` : 'Reply in thread',
                    onclick: () => setReply(t.root.ts),
                  }),
                  ...links.map((id) =>
                    h('a', {
                      className: 'linkbtn',
                      href: `/tasks/${encodeURIComponent(id)}`,
                      text: `Open task ${id}`,
                    }),
                  ),
                ]),
          ],
        );
      }),
    );
    if (atBottom) messages.scrollTop = messages.scrollHeight;
  }

  let pending = false;
  const schedule = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      render();
    });
  };

  function find(ts: string): ConsoleMessage | undefined {
    for (const t of state.threads) {
      if (t.root.ts === ts) return t.root;
      const r = t.replies.find((x) => x.ts === ts);
      if (r) return r;
    }
    return undefined;
  }

  function apply(change: ConsoleChange): void {
    const m = change.message;
    if (m.channelId !== session.consoleChannelId) return;
    if (change.kind === 'message.posted') {
      if (find(m.ts)) return;
      if (m.threadTs === null) state.threads.push({ channelId: m.channelId, root: m, replies: [] });
      else state.threads.find((t) => t.root.ts === m.threadTs)?.replies.push(m);
    } else {
      const found = find(m.ts);
      if (!found) return;
      Object.assign(found, m);
    }
    schedule();
  }

  function setReply(ts: string | null): void {
    state.replyTo = ts;
    replying.hidden = ts === null;
    render();
    input.focus();
  }

  const autosize = () => {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  };

  function send(): void {
    const text = input.value.trim();
    if (!text) return;
    showError(null);
    state.history.push(text);
    state.historyPos = -1;
    state.draft = '';
    input.value = '';
    autosize();
    post('/api/console/messages', {
      text,
      threadTs: state.replyTo,
      channelId: session.consoleChannelId,
    }).catch((e: Error) => {
      showError(e);
      input.value = text;
      autosize();
    });
  }

  composer.addEventListener('submit', (e) => {
    e.preventDefault();
    send();
  });
  input.addEventListener('input', autosize);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
      return;
    }
    if (e.key === 'Escape') return setReply(null);
    const single = !input.value.includes('\n');
    if (e.key === 'ArrowUp' && (single || input.selectionStart === 0) && state.history.length) {
      e.preventDefault();
      if (state.historyPos === -1) {
        state.draft = input.value;
        state.historyPos = state.history.length;
      }
      state.historyPos = Math.max(0, state.historyPos - 1);
      input.value = state.history[state.historyPos] ?? '';
      autosize();
    } else if (
      e.key === 'ArrowDown' &&
      state.historyPos !== -1 &&
      (single || input.selectionStart === input.value.length)
    ) {
      e.preventDefault();
      state.historyPos++;
      if (state.historyPos >= state.history.length) {
        state.historyPos = -1;
        input.value = state.draft;
      } else input.value = state.history[state.historyPos] ?? '';
      autosize();
    }
  });

  live.on('console', (data) => apply(data as ConsoleChange));

  return {
    element,
    load(threads) {
      state.threads = threads;
      render();
      messages.scrollTop = messages.scrollHeight;
    },
    setTaskLinks(byThread) {
      state.taskLinks = byThread;
      schedule();
    },
  };
}
