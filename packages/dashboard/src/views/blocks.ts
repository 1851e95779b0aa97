import { post } from '../api.js';
import { h } from '../dom.js';
import { htmlInto, mrkdwnToHtml } from '../text.js';
import type { Block, BlockElement, ConsoleMessage, TextObject } from '../types.js';

/** Block Kit as Slack shows it, with working buttons (they go through POST /api/console/actions). */

function textObj(t: TextObject | string | undefined): HTMLElement {
  if (t === undefined) return h('span');
  if (typeof t === 'string') return htmlInto(h('span'), mrkdwnToHtml(t));
  return t.type === 'plain_text' ? h('span', { text: t.text }) : htmlInto(h('span'), mrkdwnToHtml(t.text));
}

function button(el: BlockElement, msg: ConsoleMessage, onError: (e: Error) => void): HTMLElement {
  const label = (typeof el.text === 'string' ? el.text : el.text?.text) ?? el.action_id ?? 'Button';
  if (el.url) {
    const internal = el.url.startsWith('/') || el.url.startsWith(location.origin);
    return h('a', {
      className: `btn${el.style ? ` ${el.style}` : ''}`,
      href: el.url,
      ...(internal ? {} : { target: '_blank', rel: 'noopener noreferrer' }),
      text: label,
    });
  }
  const b = h('button', {
    className: `btn${el.style === 'primary' ? ' primary' : el.style === 'danger' ? ' danger' : ''}`,
    type: 'button',
    text: label,
  });
  b.addEventListener('click', () => {
    b.disabled = true;
    post('/api/console/actions', {
      actionId: el.action_id,
      value: el.value,
      messageTs: msg.ts,
      channelId: msg.channelId,
    })
      .catch(onError)
      .finally(() => setTimeout(() => (b.disabled = false), 1500));
  });
  return b;
}

export function renderBlocks(blocks: Block[], msg: ConsoleMessage, onError: (e: Error) => void): HTMLElement {
  const wrap = h('div', { className: 'body' });
  for (const b of blocks) {
    if (b.type === 'header') {
      wrap.append(
        h('div', {
          className: 'blk-header',
          text: typeof b.text === 'string' ? b.text : (b.text?.text ?? ''),
        }),
      );
    } else if (b.type === 'divider') {
      wrap.append(h('hr', { className: 'blk-divider' }));
    } else if (b.type === 'section') {
      const txt = h('div', { className: 'txt' }, [b.text ? textObj(b.text) : null]);
      if (b.fields?.length)
        txt.append(
          h(
            'div',
            { className: 'blk-fields' },
            b.fields.map((f) => h('div', null, [textObj(f)])),
          ),
        );
      const acc = b.accessory?.type === 'button' ? button(b.accessory, msg, onError) : null;
      wrap.append(h('div', { className: 'blk-section' }, [txt, acc]));
    } else if (b.type === 'context') {
      wrap.append(
        h(
          'div',
          { className: 'blk-context' },
          (b.elements ?? []).map((e) =>
            e.type === 'image'
              ? h('span', { text: e.alt_text ?? '' })
              : e.type === 'plain_text'
                ? h('span', { text: typeof e.text === 'string' ? e.text : '' })
                : textObj(e.text),
          ),
        ),
      );
    } else if (b.type === 'actions') {
      wrap.append(
        h(
          'div',
          { className: 'blk-actions' },
          (b.elements ?? []).filter((e) => e.type === 'button').map((e) => button(e, msg, onError)),
        ),
      );
    } else if (b.type === 'rich_text' || b.type === 'markdown') {
      wrap.append(htmlInto(h('div'), mrkdwnToHtml(typeof b.text === 'string' ? b.text : msg.text)));
    }
  }
  return wrap;
}
