/**
 * The dashboard: one self-contained page (inline CSS and vanilla JS, no
 * external assets, so it works offline). A console pane to talk to the bots
 * as one would in Slack, rendering the same Block Kit messages live; the task
 * table; agents; cost and token totals. Live updates come from GET /api/events.
 */
export function renderDashboardPage(config: { consoleChannelId: string; consoleUserId: string }): string {
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  return PAGE.replace('__BEMATIC_CONFIG__', () => json);
}

const PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bematic</title>
<style>
:root {
  --bg: #f6f7f9; --panel: #ffffff; --text: #1d2330; --muted: #667085; --border: #e3e6eb;
  --accent: #3b5bdb; --accent-soft: #edf2ff; --ok: #2f9e44; --warn: #e8590c; --err: #e03131; --code: #f1f3f5;
  --shadow: 0 1px 2px rgba(16,24,40,.06);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #111318; --panel: #181b22; --text: #e6e8ec; --muted: #9aa1ad; --border: #2a2f3a;
    --accent: #748ffc; --accent-soft: #1f2640; --ok: #51cf66; --warn: #ff922b; --err: #ff6b6b; --code: #222733;
    --shadow: none;
  }
}
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; }
body { background: var(--bg); color: var(--text); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; border-bottom: 1px solid var(--border); background: var(--panel); }
header h1 { font-size: 16px; margin: 0; letter-spacing: .2px; }
header .sub { color: var(--muted); font-size: 12px; }
.totals { display: flex; gap: 18px; margin-left: auto; flex-wrap: wrap; }
.totals div { display: flex; flex-direction: column; align-items: flex-end; }
.totals b { font-size: 15px; font-variant-numeric: tabular-nums; }
.totals span { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .4px; }
.live { display: inline-flex; align-items: center; gap: 6px; color: var(--muted); font-size: 12px; }
.dot { width: 8px; height: 8px; border-radius: 50%; background: var(--muted); display: inline-block; }
.dot.on { background: var(--ok); } .dot.off { background: var(--err); }
main { display: grid; grid-template-columns: minmax(380px, 1.1fr) minmax(420px, 1fr); gap: 16px; padding: 16px 20px; height: calc(100% - 58px); }
@media (max-width: 980px) { main { grid-template-columns: 1fr; height: auto; } }
.panel { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; box-shadow: var(--shadow); display: flex; flex-direction: column; min-height: 0; }
.panel > h2 { font-size: 13px; margin: 0; padding: 10px 14px; border-bottom: 1px solid var(--border); display: flex; align-items: center; gap: 8px; }
.panel > h2 .hint { color: var(--muted); font-weight: 400; margin-left: auto; font-size: 12px; }
.right { display: flex; flex-direction: column; gap: 16px; min-height: 0; }
#console { min-height: 480px; }
#messages { flex: 1; overflow-y: auto; padding: 12px 14px; min-height: 0; }
.empty { color: var(--muted); text-align: center; padding: 40px 10px; }
.empty code { background: var(--code); padding: 1px 5px; border-radius: 4px; }
.thread { border: 1px solid var(--border); border-radius: 8px; padding: 10px 12px; margin-bottom: 12px; }
.thread.focus { border-color: var(--accent); box-shadow: 0 0 0 2px var(--accent-soft); }
.replies { margin-left: 14px; padding-left: 12px; border-left: 2px solid var(--border); margin-top: 8px; }
.msg { padding: 4px 0; }
.msg .who { font-weight: 600; font-size: 13px; }
.msg .who.bot { color: var(--accent); }
.msg .when { color: var(--muted); font-size: 11px; margin-left: 6px; }
.msg .eph { color: var(--muted); font-size: 11px; font-style: italic; margin-left: 6px; }
.msg .edited { color: var(--muted); font-size: 11px; margin-left: 4px; }
.msg .body { margin-top: 2px; overflow-wrap: anywhere; }
.thread-actions { margin-top: 6px; }
.linkbtn { background: none; border: none; color: var(--accent); cursor: pointer; padding: 0; font: inherit; font-size: 12px; }
.linkbtn:focus-visible, .btn:focus-visible, select:focus-visible, textarea:focus-visible, tr:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
.blk-header { font-size: 15px; font-weight: 700; margin: 4px 0; }
.blk-section { margin: 4px 0; display: flex; gap: 10px; align-items: flex-start; }
.blk-section .txt { flex: 1; }
.blk-fields { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 16px; margin-top: 4px; }
.blk-context { color: var(--muted); font-size: 12px; margin: 4px 0; display: flex; gap: 8px; flex-wrap: wrap; align-items: center; }
.blk-divider { border: none; border-top: 1px solid var(--border); margin: 8px 0; }
.blk-actions { display: flex; gap: 8px; margin: 6px 0; flex-wrap: wrap; }
.btn { border: 1px solid var(--border); background: var(--panel); color: var(--text); border-radius: 6px; padding: 4px 12px; font: inherit; font-size: 13px; cursor: pointer; }
.btn:hover { border-color: var(--accent); }
.btn.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
.btn.danger { color: var(--err); border-color: var(--err); }
.btn:disabled { opacity: .5; cursor: default; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.body code { background: var(--code); padding: 1px 4px; border-radius: 4px; }
.body pre { background: var(--code); padding: 8px 10px; border-radius: 6px; overflow-x: auto; margin: 6px 0; white-space: pre-wrap; }
.body blockquote { border-left: 3px solid var(--border); margin: 4px 0; padding-left: 8px; color: var(--muted); }
.reactions { display: flex; gap: 4px; margin-top: 4px; }
.reaction { border: 1px solid var(--border); border-radius: 10px; padding: 0 6px; font-size: 12px; background: var(--accent-soft); }
#composer { border-top: 1px solid var(--border); padding: 10px 14px; }
#replying { display: none; font-size: 12px; color: var(--muted); margin-bottom: 6px; }
#replying.on { display: flex; gap: 8px; align-items: center; }
.row { display: flex; gap: 8px; }
#input { flex: 1; resize: none; min-height: 38px; max-height: 160px; padding: 8px 10px; border-radius: 8px; border: 1px solid var(--border); background: var(--bg); color: var(--text); font: inherit; }
#composer .help { color: var(--muted); font-size: 11px; margin-top: 6px; }
#error { color: var(--err); font-size: 12px; margin-top: 4px; min-height: 0; }
#agents { padding: 10px 14px; display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px; }
.agent { border: 1px solid var(--border); border-radius: 8px; padding: 8px 10px; font-size: 12.5px; }
.agent .name { font-weight: 600; display: flex; align-items: center; gap: 6px; font-size: 13px; }
.agent .kv { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin-top: 6px; color: var(--muted); }
.agent .kv b { color: var(--text); font-weight: 500; font-variant-numeric: tabular-nums; }
.bar { height: 5px; background: var(--border); border-radius: 3px; overflow: hidden; margin-top: 5px; }
.bar > i { display: block; height: 100%; background: var(--accent); }
.badge { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 11px; font-weight: 600; border: 1px solid transparent; white-space: nowrap; }
.s-completed, .c-closed { color: var(--ok); border-color: var(--ok); }
.s-failed, .c-open { color: var(--err); border-color: var(--err); }
.s-cancelled { color: var(--muted); border-color: var(--muted); }
.s-running { color: var(--accent); border-color: var(--accent); }
.s-queued, .s-submitted, .s-pending, .c-half-open { color: var(--warn); border-color: var(--warn); }
#tasks-panel { flex: 1; min-height: 260px; }
.tablewrap { overflow: auto; flex: 1; min-height: 0; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--border); white-space: nowrap; }
th { position: sticky; top: 0; background: var(--panel); color: var(--muted); font-weight: 500; font-size: 11px; text-transform: uppercase; letter-spacing: .4px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.prompt { max-width: 260px; overflow: hidden; text-overflow: ellipsis; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: var(--accent-soft); }
select { background: var(--bg); color: var(--text); border: 1px solid var(--border); border-radius: 6px; padding: 2px 6px; font: inherit; font-size: 12px; }
#stats { display: flex; gap: 8px; padding: 10px 14px; flex-wrap: wrap; }
.stat { border: 1px solid var(--border); border-radius: 8px; padding: 6px 10px; min-width: 88px; }
.stat b { display: block; font-size: 16px; font-variant-numeric: tabular-nums; }
.stat span { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .4px; }
.muted { color: var(--muted); }
</style>
</head>
<body>
<header>
  <div>
    <h1>Bematic</h1>
    <div class="sub">Local console &middot; Claude Code agents</div>
  </div>
  <span class="live" title="Live updates"><i id="live-dot" class="dot"></i><span id="live-text">connecting</span></span>
  <div class="totals" aria-label="Totals">
    <div><b id="t-tasks">&ndash;</b><span>Tasks</span></div>
    <div><b id="t-running">&ndash;</b><span>Running</span></div>
    <div><b id="t-cost">&ndash;</b><span>Cost</span></div>
    <div><b id="t-tokens">&ndash;</b><span>Tokens in / out</span></div>
  </div>
</header>
<main>
  <section class="panel" id="console" aria-label="Console">
    <h2>Console <span class="muted" id="channel-name"></span><span class="hint">Talk to the bots as you would in Slack</span></h2>
    <div id="messages" role="log" aria-live="polite">
      <div class="empty" id="empty">Type a request like <code>code fix the login bug in auth.ts</code> or <code>/bm status</code> below.</div>
    </div>
    <form id="composer" autocomplete="off">
      <div id="replying"><span>Replying in thread</span><button type="button" class="linkbtn" id="cancel-reply">cancel (Esc)</button></div>
      <div class="row">
        <textarea id="input" rows="1" placeholder="code fix the login bug in auth.ts" aria-label="Message"></textarea>
        <button class="btn primary" id="send" type="submit">Send</button>
      </div>
      <div class="help">Enter to send &middot; Shift+Enter for a new line &middot; &uarr;/&darr; to recall &middot; Esc to leave a thread</div>
      <div id="error" role="alert"></div>
    </form>
  </section>
  <div class="right">
    <section class="panel" aria-label="Summary">
      <h2>Summary</h2>
      <div id="stats"></div>
    </section>
    <section class="panel" aria-label="Agents">
      <h2>Agents <span class="hint" id="agents-hint"></span></h2>
      <div id="agents"><div class="muted">Loading&hellip;</div></div>
    </section>
    <section class="panel" id="tasks-panel" aria-label="Tasks">
      <h2>Tasks
        <span class="hint"><label>Status <select id="status-filter">
          <option value="">all</option><option>running</option><option>queued</option><option>submitted</option>
          <option>pending</option><option>completed</option><option>failed</option><option>cancelled</option>
        </select></label></span>
      </h2>
      <div class="tablewrap">
        <table>
          <thead><tr>
            <th>Status</th><th>Task</th><th>Bot</th><th>Model</th><th class="num">Tokens in/out</th>
            <th class="num">Cost</th><th class="num">Duration</th><th>Created</th>
          </tr></thead>
          <tbody id="tasks"></tbody>
        </table>
      </div>
    </section>
  </div>
</main>
<script>
(function () {
  'use strict';
  var CONFIG = __BEMATIC_CONFIG__;
  var state = { threads: [], tasks: [], replyTo: null, history: [], historyPos: -1, draft: '', statusFilter: '' };
  var $ = function (id) { return document.getElementById(id); };

  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'html') el.innerHTML = v;
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return el;
  }
  function esc(s) { return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'); }
  function unslack(s) { return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&'); }

  var EMOJI = { white_check_mark: '\u2705', x: '\u274c', hourglass_flowing_sand: '\u23f3', hourglass: '\u231b', eyes: '\ud83d\udc40',
    warning: '\u26a0\ufe0f', rocket: '\ud83d\ude80', gear: '\u2699\ufe0f', robot_face: '\ud83e\udd16', no_entry_sign: '\ud83d\udeab',
    stop_button: '\u23f9\ufe0f', arrows_counterclockwise: '\ud83d\udd04', memo: '\ud83d\udcdd', moneybag: '\ud83d\udcb0',
    clock1: '\ud83d\udd50', stopwatch: '\u23f1\ufe0f', zap: '\u26a1', file_folder: '\ud83d\udcc1', page_facing_up: '\ud83d\udcc4',
    hammer_and_wrench: '\ud83d\udee0\ufe0f', large_green_circle: '\ud83d\udfe2', red_circle: '\ud83d\udd34', inbox_tray: '\ud83d\udce5',
    information_source: '\u2139\ufe0f', heavy_check_mark: '\u2714\ufe0f', sparkles: '\u2728', repeat: '\ud83d\udd01', package: '\ud83d\udce6',
    wave: '\ud83d\udc4b', thinking_face: '\ud83e\udd14', construction: '\ud83d\udea7', bar_chart: '\ud83d\udcca', lock: '\ud83d\udd12',
    electric_plug: '\ud83d\udd0c', satellite: '\ud83d\udce1', zzz: '\ud83d\udca4', brain: '\ud83e\udde0', mag: '\ud83d\udd0d' };
  function emoji(name) { return EMOJI[name] || (':' + name + ':'); }

  // Slack mrkdwn to safe HTML: links first (they may contain markup characters), then escaping, then inline styles.
  function inline(s) {
    return s
      .replace(/\x60([^\x60\n]+)\x60/g, function (_, c) { return '<code>' + c + '</code>'; })
      .replace(/(^|[\s(])\*([^*\n]+)\*(?=$|[\s).,:;!?])/g, '$1<b>$2</b>')
      .replace(/(^|[\s(])_([^_\n]+)_(?=$|[\s).,:;!?])/g, '$1<i>$2</i>')
      .replace(/(^|[\s(])~([^~\n]+)~(?=$|[\s).,:;!?])/g, '$1<s>$2</s>')
      .replace(/:([a-z0-9_+\-]+):/g, function (m, n) { return EMOJI[n] || m; });
  }
  function mrkdwn(src) {
    var out = '';
    var parts = String(src || '').split(/\x60\x60\x60/);
    parts.forEach(function (part, i) {
      if (i % 2 === 1) { out += '<pre>' + esc(unslack(part.replace(/^\n/, ''))) + '</pre>'; return; }
      var re = /<([^<>|]+)(?:\|([^<>]+))?>/g, last = 0, m, seg = '';
      while ((m = re.exec(part))) {
        seg += inline(esc(unslack(part.slice(last, m.index))));
        var target = m[1], label = m[2] || m[1];
        if (/^https?:\/\//.test(target)) seg += '<a href="' + esc(target) + '" target="_blank" rel="noopener noreferrer">' + esc(unslack(label)) + '</a>';
        else if (/^[@#]/.test(target)) seg += '<b>' + esc(unslack(label.replace(/^[@#]/, ''))) + '</b>';
        else seg += esc(unslack(label));
        last = re.lastIndex;
      }
      seg += inline(esc(unslack(part.slice(last))));
      out += seg.split('\n').map(function (line) {
        return /^&gt;\s?/.test(line) ? '<blockquote>' + line.replace(/^&gt;\s?/, '') + '</blockquote>' : line;
      }).join('<br>').replace(/<\/blockquote><br>/g, '</blockquote>');
    });
    return out;
  }
  function textObj(t) {
    if (!t) return h('span');
    return t.type === 'plain_text' ? h('span', { text: t.text }) : h('span', { html: mrkdwn(t.text) });
  }
  function button(el, msg) {
    var label = el.text && el.text.text || el.action_id;
    var cls = 'btn' + (el.style === 'primary' ? ' primary' : el.style === 'danger' ? ' danger' : '');
    return h('button', { class: cls, type: 'button', onclick: function (ev) {
      var b = ev.currentTarget; b.disabled = true;
      post('/api/console/actions', { actionId: el.action_id, value: el.value, messageTs: msg.ts, channelId: msg.channelId })
        .catch(showError).then(function () { setTimeout(function () { b.disabled = false; }, 1500); });
    } }, [label]);
  }
  function renderBlocks(blocks, msg) {
    var wrap = h('div', { class: 'body' });
    blocks.forEach(function (b) {
      if (b.type === 'header') wrap.appendChild(h('div', { class: 'blk-header' }, [b.text && b.text.text || '']));
      else if (b.type === 'divider') wrap.appendChild(h('hr', { class: 'blk-divider' }));
      else if (b.type === 'section') {
        var txt = h('div', { class: 'txt' }, [b.text ? textObj(b.text) : null]);
        if (b.fields && b.fields.length) txt.appendChild(h('div', { class: 'blk-fields' }, b.fields.map(function (f) { return h('div', null, [textObj(f)]); })));
        var acc = b.accessory && b.accessory.type === 'button' ? button(b.accessory, msg) : null;
        wrap.appendChild(h('div', { class: 'blk-section' }, [txt, acc]));
      } else if (b.type === 'context') {
        wrap.appendChild(h('div', { class: 'blk-context' }, (b.elements || []).map(function (e) {
          return e.type === 'image' ? h('span', { text: e.alt_text || '' }) : textObj(e);
        })));
      } else if (b.type === 'actions') {
        wrap.appendChild(h('div', { class: 'blk-actions' }, (b.elements || []).filter(function (e) { return e.type === 'button'; }).map(function (e) { return button(e, msg); })));
      } else if (b.type === 'rich_text' || b.type === 'markdown') {
        wrap.appendChild(h('div', { html: mrkdwn(b.text || msg.text) }));
      }
    });
    return wrap;
  }
  function fmtTime(ms) { var d = new Date(ms); return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }); }
  function renderMessage(m) {
    var bot = m.userId !== CONFIG.consoleUserId;
    var head = h('div', null, [
      h('span', { class: 'who' + (bot ? ' bot' : ''), text: bot ? 'Bematic' : 'You' }),
      h('span', { class: 'when', text: fmtTime(m.postedAt), title: m.ts }),
      m.visibleTo ? h('span', { class: 'eph', text: 'only visible to you' }) : null,
      m.editedAt ? h('span', { class: 'edited', text: '(edited)' }) : null,
    ]);
    var body = m.blocks && m.blocks.length ? renderBlocks(m.blocks, m) : h('div', { class: 'body', html: mrkdwn(m.text) });
    var reactions = m.reactions && m.reactions.length ? h('div', { class: 'reactions' }, m.reactions.map(function (r) {
      return h('span', { class: 'reaction', title: ':' + r + ':', text: emoji(r) });
    })) : null;
    return h('div', { class: 'msg', 'data-ts': m.ts }, [head, body, reactions]);
  }
  function renderConsole() {
    var box = $('messages');
    var atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.textContent = '';
    if (!state.threads.length) box.appendChild(h('div', { class: 'empty', html: 'Type a request like <code>code fix the login bug in auth.ts</code> or <code>/bm status</code> below.' }));
    state.threads.forEach(function (t) {
      var el = h('div', { class: 'thread' + (state.replyTo === t.root.ts ? ' focus' : ''), id: 'thread-' + t.root.ts.replace('.', '-') }, [renderMessage(t.root)]);
      if (t.replies.length) el.appendChild(h('div', { class: 'replies' }, t.replies.map(renderMessage)));
      if (!t.root.visibleTo) el.appendChild(h('div', { class: 'thread-actions' }, [h('button', { class: 'linkbtn', type: 'button', onclick: function () { setReply(t.root.ts); } }, [t.replies.length ? 'Reply in thread (' + t.replies.length + ')' : 'Reply in thread'])]));
      box.appendChild(el);
    });
    if (atBottom) box.scrollTop = box.scrollHeight;
  }
  function applyChange(change) {
    var m = change.message;
    if (change.kind === 'message.posted') {
      if (m.threadTs === null) state.threads.push({ channelId: m.channelId, root: m, replies: [] });
      else { var t = findThread(m.threadTs); if (t) t.replies.push(m); }
    } else {
      var found = findMessage(m.ts);
      if (found) Object.assign(found, m); else return;
    }
    scheduleRender();
  }
  function findThread(ts) { for (var i = 0; i < state.threads.length; i++) if (state.threads[i].root.ts === ts) return state.threads[i]; return null; }
  function findMessage(ts) {
    for (var i = 0; i < state.threads.length; i++) {
      var t = state.threads[i];
      if (t.root.ts === ts) return t.root;
      for (var j = 0; j < t.replies.length; j++) if (t.replies[j].ts === ts) return t.replies[j];
    }
    return null;
  }
  var renderPending = false;
  function scheduleRender() { if (renderPending) return; renderPending = true; requestAnimationFrame(function () { renderPending = false; renderConsole(); }); }
  function setReply(ts) {
    state.replyTo = ts;
    $('replying').className = ts ? 'on' : '';
    renderConsole();
    $('input').focus();
  }

  function api(path) { return fetch(path, { headers: { accept: 'application/json' } }).then(json); }
  function post(path, body) {
    return fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(json);
  }
  function json(res) {
    return res.json().catch(function () { return {}; }).then(function (b) {
      if (!res.ok) throw new Error(b && b.error ? b.error.message : 'HTTP ' + res.status);
      return b;
    });
  }
  function showError(err) { $('error').textContent = err ? String(err.message || err) : ''; }

  function send() {
    var input = $('input'), text = input.value.trim();
    if (!text) return;
    showError(null);
    state.history.push(text); state.historyPos = -1; state.draft = '';
    input.value = ''; autosize();
    post('/api/console/messages', { text: text, threadTs: state.replyTo, channelId: CONFIG.consoleChannelId }).catch(function (e) {
      showError(e); input.value = text; autosize();
    });
  }
  function autosize() { var i = $('input'); i.style.height = 'auto'; i.style.height = Math.min(i.scrollHeight, 160) + 'px'; }
  $('composer').addEventListener('submit', function (e) { e.preventDefault(); send(); });
  $('cancel-reply').addEventListener('click', function () { setReply(null); });
  $('input').addEventListener('input', autosize);
  $('input').addEventListener('keydown', function (e) {
    var input = e.currentTarget;
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); return; }
    if (e.key === 'Escape') { setReply(null); return; }
    var atStart = input.selectionStart === 0 && input.selectionEnd === 0;
    var atEnd = input.selectionStart === input.value.length;
    if (e.key === 'ArrowUp' && (atStart || input.value.indexOf('\n') < 0) && state.history.length) {
      e.preventDefault();
      if (state.historyPos === -1) { state.draft = input.value; state.historyPos = state.history.length; }
      state.historyPos = Math.max(0, state.historyPos - 1);
      input.value = state.history[state.historyPos]; autosize();
    } else if (e.key === 'ArrowDown' && state.historyPos !== -1 && (atEnd || input.value.indexOf('\n') < 0)) {
      e.preventDefault();
      state.historyPos++;
      if (state.historyPos >= state.history.length) { state.historyPos = -1; input.value = state.draft; }
      else input.value = state.history[state.historyPos];
      autosize();
    }
  });

  // ---- tasks, agents, totals ----
  function money(n) { return '$' + (n || 0).toFixed(n >= 100 ? 0 : n >= 1 ? 2 : 4); }
  function count(n) { n = n || 0; return n >= 1e6 ? (n / 1e6).toFixed(1) + 'M' : n >= 1e4 ? (n / 1e3).toFixed(1) + 'k' : String(n); }
  function dur(ms) { if (!ms) return '\u2013'; var s = ms / 1000; return s < 60 ? s.toFixed(1) + 's' : Math.floor(s / 60) + 'm ' + Math.round(s % 60) + 's'; }
  function ago(ms) { var s = Math.max(0, (Date.now() - ms) / 1000); return s < 60 ? Math.round(s) + 's ago' : s < 3600 ? Math.round(s / 60) + 'm ago' : s < 86400 ? Math.round(s / 3600) + 'h ago' : new Date(ms).toLocaleDateString(); }
  function badge(status, prefix) { return h('span', { class: 'badge ' + prefix + status, text: status }); }

  function renderTasks() {
    var body = $('tasks'); body.textContent = '';
    var rows = state.tasks.filter(function (t) { return !state.statusFilter || t.status === state.statusFilter; });
    if (!rows.length) { body.appendChild(h('tr', null, [h('td', { colspan: '8', class: 'muted', text: 'No tasks yet.' })])); return; }
    rows.forEach(function (t) {
      body.appendChild(h('tr', { tabindex: '0', title: t.promptPreview, onclick: function () { focusTask(t); }, onkeydown: function (e) { if (e.key === 'Enter') focusTask(t); } }, [
        h('td', null, [badge(t.status, 's-')]),
        h('td', { class: 'prompt' }, [h('code', { text: t.id }), ' ', h('span', { class: 'muted', text: t.promptPreview })]),
        h('td', { text: t.botName + ' ' + t.command }),
        h('td', { text: t.model }),
        h('td', { class: 'num', text: count(t.inputTokens) + ' / ' + count(t.outputTokens) }),
        h('td', { class: 'num', text: money(t.costUsd) }),
        h('td', { class: 'num', text: dur(t.durationMs) }),
        h('td', { text: ago(t.createdAt), title: new Date(t.createdAt).toLocaleString() }),
      ]));
    });
  }
  function focusTask(t) {
    if (!t.threadTs || t.channelId !== CONFIG.consoleChannelId) return;
    var el = document.getElementById('thread-' + t.threadTs.replace('.', '-'));
    if (el) { el.scrollIntoView({ behavior: 'smooth', block: 'center' }); setReply(t.threadTs); }
  }
  function upsertTask(t) {
    for (var i = 0; i < state.tasks.length; i++) if (state.tasks[i].id === t.id) { state.tasks[i] = t; renderTasks(); return; }
    state.tasks.unshift(t); state.tasks = state.tasks.slice(0, 100); renderTasks();
  }
  function loadTasks() { return api('/api/tasks?limit=50').then(function (p) { state.tasks = p.tasks; renderTasks(); }).catch(function () {}); }

  function renderStats(s) {
    var c = s.counts || {};
    $('t-tasks').textContent = String(s.total);
    $('t-running').textContent = String((c.running || 0) + (c.submitted || 0));
    $('t-cost').textContent = money(s.totals.costUsd);
    $('t-tokens').textContent = count(s.totals.inputTokens) + ' / ' + count(s.totals.outputTokens);
    var box = $('stats'); box.textContent = '';
    [['completed', c.completed], ['failed', c.failed], ['cancelled', c.cancelled], ['queued', (c.queued || 0) + (c.pending || 0)],
     ['cache read', count(s.totals.cacheReadTokens)], ['archived', s.archived]].forEach(function (p) {
      box.appendChild(h('div', { class: 'stat' }, [h('b', { text: String(p[1] || 0) }), h('span', { text: p[0] })]));
    });
  }
  function loadStats() { return api('/api/stats').then(renderStats).catch(function () {}); }

  function renderAgents(agents) {
    var box = $('agents'); box.textContent = '';
    $('agents-hint').textContent = agents.filter(function (a) { return a.online; }).length + ' of ' + agents.length + ' online';
    if (!agents.length) { box.appendChild(h('div', { class: 'muted', text: 'No agent has connected yet.' })); return; }
    agents.forEach(function (a) {
      var m = a.metrics || {};
      var load = (m.activeTasks || 0) + (a.maxConcurrentTasks ? ' / ' + a.maxConcurrentTasks : '');
      box.appendChild(h('div', { class: 'agent' }, [
        h('div', { class: 'name' }, [h('i', { class: 'dot ' + (a.online ? 'on' : 'off') }), a.agentId, ' ', badge(a.circuit, 'c-'), a.overloaded ? h('span', { class: 'badge s-queued', text: 'overloaded' }) : null]),
        h('div', { class: 'kv' }, [
          'Host', h('b', { text: a.hostname || '\u2013' }),
          'Load', h('b', { text: load + (m.queuedTasks ? ' (+' + m.queuedTasks + ' queued)' : '') }),
          'RTT', h('b', { text: a.lastRttMs === null || a.lastRttMs === undefined ? '\u2013' : Math.round(a.lastRttMs) + ' ms' }),
          'Offline queue', h('b', { text: String(a.offlineQueueDepth || 0) }),
          'Last seen', h('b', { text: a.lastSeenAt ? ago(a.lastSeenAt) : '\u2013' }),
        ]),
        a.metrics ? h('div', { title: 'CPU ' + Math.round(m.cpuPercent) + '%' }, [h('div', { class: 'bar' }, [h('i', { style: 'width:' + Math.min(100, m.cpuPercent) + '%' })])]) : null,
        a.metrics ? h('div', { title: 'Memory ' + Math.round(m.memoryPercent) + '%' }, [h('div', { class: 'bar' }, [h('i', { style: 'width:' + Math.min(100, m.memoryPercent) + '%;opacity:.6' })])]) : null,
      ]));
    });
  }
  function loadAgents() { return api('/api/agents').then(function (r) { renderAgents(r.agents); }).catch(function () {}); }
  function debounce(fn, ms) { var t = null; return function () { clearTimeout(t); t = setTimeout(fn, ms); }; }
  var refreshStats = debounce(loadStats, 400), refreshAgents = debounce(loadAgents, 400);

  $('status-filter').addEventListener('change', function (e) { state.statusFilter = e.currentTarget.value; renderTasks(); });
  $('channel-name').textContent = CONFIG.consoleChannelId;

  function loadThreads() {
    return api('/api/console/threads?channel=' + encodeURIComponent(CONFIG.consoleChannelId)).then(function (r) { state.threads = r.threads; renderConsole(); $('messages').scrollTop = 1e9; });
  }
  function connect() {
    var es = new EventSource('/api/events');
    es.addEventListener('hello', function () {
      $('live-dot').className = 'dot on'; $('live-text').textContent = 'live';
      loadThreads().catch(function () {}); loadTasks(); loadStats(); loadAgents();
    });
    es.addEventListener('console', function (e) {
      var change = JSON.parse(e.data);
      if (change.message.channelId === CONFIG.consoleChannelId) applyChange(change);
    });
    es.addEventListener('task', function (e) {
      var d = JSON.parse(e.data); upsertTask(d.task); refreshStats();
    });
    es.addEventListener('agent', function () { refreshAgents(); });
    es.onerror = function () { $('live-dot').className = 'dot off'; $('live-text').textContent = 'reconnecting'; };
  }
  connect();
  setInterval(loadAgents, 10000);
  $('input').focus();
})();
</script>
</body>
</html>
`;
