// History of a webhook: counts, a chart of deliveries over time by status, the deliveries with a
// filter bar (event, event id, HTTP status, time, text in the payload), Resync, "Resync failed",
// Replay (a window of events, counted before it is confirmed), and one delivery's payload,
// request headers and attempts.

import { h, svg, fmtTime, statusBadge, pretty, field, option } from './dom.js';

const RANGES = {
  day: { label: 'Last 24 hours', bucket: 'hour', ms: 24 * 3600e3, step: 3600e3 },
  month: { label: 'Last 30 days', bucket: 'day', ms: 30 * 24 * 3600e3, step: 24 * 3600e3 },
};
const COLORS = { succeeded: '#15803d', failed: '#b91c1c', pending: '#d97706' };
const REFRESH_MS = 3000;

export async function historyPage(ctx, id) {
  const w = await ctx.api('GET', '/webhooks/' + id);
  const events = triggerEvents(w);
  const state = { range: 'day', status: '', filters: {}, items: [], next: null, truncated: false, scannedUntil: null, sig: '' };

  const counts = h('div', { class: 'stats', id: 'counts' });
  const chartBox = h('div', { class: 'card-body', id: 'chart' });
  const tbody = h('tbody');
  const moreBox = h('div', { class: 'more' });
  const table = h('table', { id: 'deliveries' },
    h('caption', { class: 'sr-only' }, 'Deliveries, newest first'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Event'), h('th', { scope: 'col' }, 'URL'),
      h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'num' }, 'Attempts'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
    tbody);
  const empty = h('p', { class: 'muted card-body', id: 'history-empty' });
  const truncatedNote = h('p', { class: 'hint card-body', id: 'search-truncated', hidden: true });
  const live = h('p', { class: 'sr-only', 'aria-live': 'polite', id: 'history-live' });

  const rangeSel = h('select', { id: 'range', onchange: () => { state.range = rangeSel.value; loadChart(); } },
    Object.entries(RANGES).map(([k, r]) => h('option', { value: k }, r.label)));
  const statusSel = h('select', { id: 'status-filter', onchange: () => { state.status = statusSel.value; state.sig = ''; loadList(); } },
    h('option', { value: '' }, 'All statuses'), h('option', { value: 'succeeded' }, 'Succeeded'),
    h('option', { value: 'failed' }, 'Failed'), h('option', { value: 'pending' }, 'Pending'));

  const resyncFailed = ctx.canManage ? h('button', {
    type: 'button', id: 'resync-failed', onclick: async () => {
      const r = RANGES[state.range];
      const until = new Date();
      const since = new Date(until.getTime() - r.ms);
      const ok = await ctx.confirm({ title: 'Resync failed deliveries?', ok: 'Resync failed', message: `Every failed delivery of “${w.name}” from the ${r.label.toLowerCase()} is sent again.` });
      if (!ok) return;
      try {
        const res = await ctx.api('POST', `/webhooks/${id}/deliveries/resync`, { status: 'failed', since: since.toISOString(), until: until.toISOString() });
        ctx.toast(res.resynced === 1 ? '1 failed delivery queued again.' : `${res.resynced} failed deliveries queued again.` + (res.more ? ' Run it again for the rest.' : ''));
        refresh();
      } catch (err) {
        ctx.toast('Could not resync: ' + err.message, true);
      }
    },
  }, '↻ Resync failed') : null;

  const replay = ctx.canManage ? h('button', {
    type: 'button', id: 'replay', onclick: () => replayDialog(ctx, w, events, replay, () => { state.sig = ''; refresh(); }),
  }, '⟲ Replay') : null;

  function renderCounts(t) {
    const stat = (cls, label, n) => h('div', { class: ['stat', cls] }, h('span', { class: 'label' }, label), h('span', { class: 'value', 'data-count': cls }, String(n)));
    counts.replaceChildren(stat('triggered', 'Triggered', t.triggered), stat('succeeded', 'Succeeded', t.succeeded),
      stat('failed', 'Failed', t.failed), stat('pending', 'Pending', t.pending));
    if (resyncFailed) resyncFailed.disabled = t.failed === 0;
  }

  function deliveryRow(d) {
    const code = d.last_status_code ? ' · ' + d.last_status_code : '';
    return h('tr', { 'data-id': d.id, 'data-state': d.state },
      h('td', {}, h('time', { datetime: d.created_at }, fmtTime(d.created_at))),
      h('td', {}, h('span', { class: 'event-key' }, d.event)),
      h('td', { class: 'url', title: d.url || w.url }, d.url || h('span', { class: 'muted' }, 'Not sent yet')),
      h('td', {}, statusBadge(d.state, { succeeded: 'Succeeded', failed: 'Failed', pending: 'Pending' }[d.state] + code),
        d.state === 'pending' && d.next_attempt_at && d.attempts > 0 ? h('span', { class: 'muted' }, ' retry ' + fmtTime(d.next_attempt_at)) : null),
      h('td', { class: 'num' }, String(d.attempts)),
      h('td', { class: 'actions' },
        h('a', { class: 'btn link', href: `#/webhooks/${id}/history/${d.id}`, 'aria-label': `Details of delivery ${d.id}` }, 'Details'),
        ctx.canManage ? h('button', {
          type: 'button', class: 'link', 'data-action': 'resync', 'aria-label': `Resync delivery ${d.id}`,
          onclick: async () => {
            try {
              await ctx.api('POST', `/deliveries/${d.id}/resync`);
              ctx.toast(`Delivery ${d.id} queued again.`);
              refresh();
            } catch (err) {
              ctx.toast('Could not resync: ' + err.message, true);
            }
          },
        }, 'Resync') : null));
  }

  function renderList() {
    tbody.replaceChildren(...state.items.map(deliveryRow));
    const filtered = !!state.status || Object.keys(state.filters).length > 0;
    empty.textContent = filtered
      ? 'No deliveries match these filters.'
      : 'No deliveries yet. They appear here when the trigger event happens while the webhook is active.';
    empty.hidden = state.items.length > 0;
    table.hidden = state.items.length === 0;
    // A text search stops after a bounded number of deliveries and says how far back it read.
    truncatedNote.hidden = !state.truncated;
    truncatedNote.textContent = state.truncated
      ? `The text search read deliveries back to ${fmtTime(state.scannedUntil)} and stopped there; “Search further” goes on.`
      : '';
    moreBox.replaceChildren();
    moreBox.hidden = !state.next;
    if (state.next) {
      moreBox.append(h('button', { type: 'button', class: 'small', id: 'load-more', onclick: loadMore }, state.truncated ? 'Search further' : 'Load more'));
    }
  }

  const query = (cursor, filters = state.filters) => {
    const q = new URLSearchParams({ limit: '50' });
    if (state.status) q.set('status', state.status);
    for (const [k, v] of Object.entries(filters)) q.set(k, v);
    if (cursor) q.set('cursor', cursor);
    return `/webhooks/${id}/deliveries?` + q;
  };

  // The filter bar: labelled controls, applied with Search (or Enter); a bad value is named
  // under the bar and the previous filters stay.
  const fEvent = h('select', {}, option('', 'All events'), events.map((k) => option(k, k)));
  const fHTTP = h('input', { type: 'text', maxlength: '4', placeholder: '404, 5xx, none', autocomplete: 'off', spellcheck: 'false' });
  const fEventID = h('input', { type: 'text', placeholder: 'evt_…', autocomplete: 'off', spellcheck: 'false' });
  const fFrom = h('input', { type: 'datetime-local', step: '1' });
  const fTo = h('input', { type: 'datetime-local', step: '1' });
  const fText = h('input', { type: 'search', maxlength: '200', placeholder: 'e.g. ada@example.com', autocomplete: 'off' });
  const filterError = h('p', { class: 'field-error', id: 'filter-error', role: 'alert' });
  const filterControls = { event: fEvent, http_status: fHTTP, event_id: fEventID, since: fFrom, until: fTo, q: fText };

  function readFilters() {
    const f = {};
    if (fEvent.value) f.event = fEvent.value;
    if (fHTTP.value.trim()) f.http_status = fHTTP.value.trim().toLowerCase();
    if (fEventID.value.trim()) f.event_id = fEventID.value.trim();
    if (fFrom.value) f.since = new Date(fFrom.value).toISOString();
    if (fTo.value) f.until = new Date(fTo.value).toISOString();
    if (fText.value.trim()) f.q = fText.value;
    return f;
  }

  async function applyFilters() {
    const f = readFilters();
    filterError.textContent = '';
    for (const c of Object.values(filterControls)) c.removeAttribute('aria-invalid');
    let page;
    try {
      page = await ctx.api('GET', query(null, f));
    } catch (err) {
      const fe = err.fields[0];
      const c = fe && filterControls[fe.field];
      if (c) c.setAttribute('aria-invalid', 'true');
      filterError.textContent = fe ? `${FILTER_LABELS[fe.field] || fe.field}: ${fe.message}` : err.message;
      return;
    }
    state.filters = f;
    showPage(page);
  }

  const filterBar = h('form', { id: 'history-filters', class: 'filters card-body', role: 'search', 'aria-label': 'Filter deliveries',
    onsubmit: (ev) => { ev.preventDefault(); applyFilters(); } },
  field({ label: FILTER_LABELS.event, id: 'filter-event', control: fEvent }),
  field({ label: FILTER_LABELS.http_status, id: 'filter-http-status', control: fHTTP }),
  field({ label: FILTER_LABELS.event_id, id: 'filter-event-id', control: fEventID }),
  field({ label: FILTER_LABELS.since, id: 'filter-since', control: fFrom }),
  field({ label: FILTER_LABELS.until, id: 'filter-until', control: fTo }),
  field({ label: FILTER_LABELS.q, id: 'filter-q', control: fText }),
  h('div', { class: 'filter-actions' },
    h('button', { type: 'submit', class: 'small primary', id: 'filter-apply' }, 'Search'),
    h('button', { type: 'button', class: 'small', id: 'filter-clear', onclick: () => { filterBar.reset(); applyFilters(); } }, 'Clear')),
  filterError);

  function showPage(page) {
    state.sig = JSON.stringify([page.items, page.next_cursor, state.status, state.filters]);
    state.items = page.items;
    state.next = page.next_cursor;
    state.truncated = !!page.truncated;
    state.scannedUntil = page.scanned_until || null;
    renderList();
  }

  // loadList refreshes the first page; the table is only rebuilt when something changed, so a
  // refresh does not move the keyboard focus or the rows under the pointer.
  async function loadList() {
    const page = await ctx.api('GET', query());
    if (!ctx.current()) return;
    renderCounts(page.totals);
    const sig = JSON.stringify([page.items, page.next_cursor, state.status, state.filters]);
    if (sig === state.sig) return;
    const had = state.items.length;
    showPage(page);
    if (had && page.items.length > had) live.textContent = `${page.items.length - had} new deliveries.`;
  }

  async function loadMore() {
    const page = await ctx.api('GET', query(state.next));
    state.items = state.items.concat(page.items);
    state.next = page.next_cursor;
    state.truncated = !!page.truncated;
    state.scannedUntil = page.scanned_until || null;
    state.sig = '';
    renderList();
    live.textContent = page.items.length === 1 ? '1 more delivery.' : `${page.items.length} more deliveries.`;
  }

  async function loadChart() {
    const r = RANGES[state.range];
    const until = new Date();
    const since = new Date(until.getTime() - r.ms);
    const q = new URLSearchParams({ bucket: r.bucket, since: since.toISOString(), until: until.toISOString() });
    const stats = await ctx.api('GET', `/webhooks/${id}/stats?` + q);
    if (!ctx.current()) return;
    chartBox.replaceChildren(chart(stats, r));
  }

  async function refresh() {
    try {
      await Promise.all([loadList(), loadChart()]);
    } catch (err) {
      if (ctx.current()) ctx.toast('Could not refresh the history: ' + err.message, true);
    }
  }

  await Promise.all([loadList(), loadChart()]);
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));

  return h('div', { class: 'page' },
    h('div', { class: 'page-head' },
      h('div', {},
        h('p', { class: 'crumbs' }, h('a', { href: '#/webhooks' }, 'Webhooks'), ' / ', w.name),
        h('h1', {}, 'History'),
        h('p', { class: 'sub' }, h('strong', {}, w.name), ' · ', h('span', { class: 'event-key' }, (w.events || [w.event]).join(', ')), ' · ',
          h('span', { class: 'method' }, w.method), ' ', h('span', { class: 'mono' }, w.url))),
      h('div', { class: 'page-actions' },
        h('a', { class: 'btn', href: '#/webhooks/' + id }, ctx.canManage ? 'Edit webhook' : 'View webhook'),
        resyncFailed, replay)),
    ctx.readOnlyNotice(),
    counts,
    h('section', { class: 'card', 'aria-labelledby': 'chart-title' },
      h('div', { class: 'card-head' }, h('h2', { id: 'chart-title' }, 'Deliveries over time'),
        h('div', { class: 'toolbar' },
          h('span', { class: 'legend', 'aria-hidden': 'true' },
            h('span', {}, h('span', { class: 'key succeeded' }), 'Succeeded'),
            h('span', {}, h('span', { class: 'key failed' }), 'Failed'),
            h('span', {}, h('span', { class: 'key pending' }), 'Pending')),
          h('label', { for: 'range', class: 'sr-only' }, 'Time range'), rangeSel)),
      chartBox),
    h('section', { class: 'card', 'aria-labelledby': 'deliveries-title' },
      h('div', { class: 'card-head' }, h('h2', { id: 'deliveries-title' }, 'Deliveries'),
        h('div', { class: 'toolbar' }, h('label', { for: 'status-filter', class: 'sr-only' }, 'Status'), statusSel,
          h('button', { type: 'button', class: 'small', id: 'refresh', onclick: () => { state.sig = ''; refresh(); } }, 'Refresh'))),
      filterBar,
      h('div', { class: 'table-wrap' }, table),
      empty, truncatedNote, moreBox),
    live);
}

// The filter bar's labels, also used to name a refused value.
const FILTER_LABELS = { event: 'Event', http_status: 'HTTP status', event_id: 'Event id', since: 'From', until: 'To', q: 'Text in payload' };

/** triggerEvents are a webhook's trigger events: `events` when the API gives several, else `event`. */
function triggerEvents(w) {
  return Array.isArray(w.events) && w.events.length ? w.events : [w.event];
}

/** localInput is a time as a datetime-local input's value (local time, to the second). */
function localInput(d) {
  return new Date(d.getTime() - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
}

const REPLAY_MODES = [
  ['all', 'Every event', 'also those already delivered'],
  ['failed', 'Failed only', 'events whose delivery to this webhook failed'],
  ['never_sent', 'Never sent', 'events this webhook never got: from before it existed or while it was off'],
];

/**
 * replayDialog asks for a window and a mode, shows how many events a replay would send (the
 * preview, asked again on every change) and replays them on confirm. Focus goes back to the
 * opener when it closes.
 */
function replayDialog(ctx, w, events, opener, done) {
  const now = new Date();
  const from = h('input', { type: 'datetime-local', step: '1', required: true, value: localInput(new Date(now.getTime() - 24 * 3600e3)) });
  const to = h('input', { type: 'datetime-local', step: '1', required: true, value: localInput(now) });
  const count = h('p', { id: 'replay-count', class: 'replay-count', 'aria-live': 'polite' }, 'Counting…');
  const ok = h('button', { type: 'submit', class: 'primary', id: 'replay-confirm', disabled: true }, 'Replay');
  const dlg = h('dialog', { 'aria-labelledby': 'replay-title', id: 'replay-dialog', class: 'small' });
  const form = h('form', { class: 'dialog-body', onsubmit: confirm },
    h('h2', { id: 'replay-title' }, 'Replay events'),
    h('p', { class: 'hint' }, `Send “${w.name}” the ${events.join(', ')} events that happened in a time window again. Nothing is sent until you confirm.`),
    field({ label: 'From', id: 'replay-since', control: from, required: true }),
    field({ label: 'To', id: 'replay-until', control: to, required: true }),
    h('fieldset', {}, h('legend', {}, 'Send again'),
      REPLAY_MODES.map(([v, label, hint], i) => h('label', { class: 'radio', for: 'replay-mode-' + v },
        h('input', { type: 'radio', name: 'mode', value: v, id: 'replay-mode-' + v, checked: i === 0 }),
        ' ', label, h('span', { class: 'hint' }, ' — ' + hint)))),
    count,
    h('div', { class: 'dialog-actions' },
      h('button', { type: 'button', id: 'replay-cancel', onclick: () => dlg.close() }, 'Cancel'), ok));
  dlg.append(form);

  let asked = 0;
  let body = null;
  const problem = (err) => err.message + (err.fields.length ? ' (' + err.fields.map((f) => `${f.field}: ${f.message}`).join('; ') + ')' : '');
  async function preview() {
    const mine = ++asked;
    ok.disabled = true;
    count.classList.remove('field-error');
    delete count.dataset.count;
    const since = new Date(from.value);
    const until = new Date(to.value);
    if (Number.isNaN(since.getTime()) || Number.isNaN(until.getTime())) {
      count.textContent = 'Choose both times.';
      return;
    }
    body = { mode: form.elements.mode.value, since: since.toISOString(), until: until.toISOString() };
    count.textContent = 'Counting…';
    try {
      const r = await ctx.api('POST', `/webhooks/${w.id}/replay/preview`, body);
      if (mine !== asked) return;
      count.dataset.count = String(r.count);
      count.textContent = r.count === 0 ? 'No events to send in this window.'
        : r.count === 1 ? '1 event will be sent again.' : `${r.count} events will be sent again.`;
      ok.textContent = r.count ? `Replay ${r.count}` : 'Replay';
      ok.disabled = r.count === 0;
    } catch (err) {
      if (mine !== asked) return;
      count.classList.add('field-error');
      count.textContent = problem(err);
    }
  }
  async function confirm(ev) {
    ev.preventDefault();
    if (ok.disabled || !body) return;
    ok.disabled = true; // one click, one replay (and a second one would queue nothing anyway)
    try {
      const r = await ctx.api('POST', `/webhooks/${w.id}/replay`, body);
      ctx.toast(r.queued === 1 ? '1 event queued to be sent again.' : `${r.queued} events queued to be sent again.`);
      dlg.close();
      done();
    } catch (err) {
      count.classList.add('field-error');
      count.textContent = problem(err);
    }
  }
  for (const el of [from, to]) el.addEventListener('change', preview);
  form.addEventListener('change', (ev) => { if (ev.target.name === 'mode') preview(); });
  dlg.addEventListener('close', () => { dlg.remove(); opener.focus(); });
  document.body.append(dlg);
  dlg.showModal();
  from.focus();
  preview();
}

/** chart draws stacked bars per bucket (succeeded, failed, pending) as inline SVG. */
function chart(stats, r) {
  const step = r.step;
  const until = Date.parse(stats.until);
  const start = Math.floor(Date.parse(stats.since) / step) * step;
  const n = Math.max(1, Math.ceil((until - start) / step));
  const buckets = Array.from({ length: n }, (_, i) => ({ at: start + i * step, succeeded: 0, failed: 0, pending: 0 }));
  for (const s of stats.series || []) {
    const i = Math.min(n - 1, Math.max(0, Math.floor((Date.parse(s.at) - start) / step)));
    buckets[i].succeeded += s.succeeded; buckets[i].failed += s.failed; buckets[i].pending += s.pending;
  }
  const total = buckets.reduce((a, b) => a + b.succeeded + b.failed + b.pending, 0);
  const max = Math.max(1, ...buckets.map((b) => b.succeeded + b.failed + b.pending));
  const nice = niceMax(max);
  const W = 1000, H = 190, L = 40, R = 10, T = 10, B = 26;
  const pw = W - L - R, ph = H - T - B;
  const bw = pw / n;
  const y = (v) => T + ph - (v / nice) * ph;
  const fmt = (t) => r.bucket === 'hour'
    ? new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : new Date(t).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  const sum = buckets.reduce((a, b) => ({ s: a.s + b.succeeded, f: a.f + b.failed, p: a.p + b.pending }), { s: 0, f: 0, p: 0 });
  const desc = total
    ? `${total} ${total === 1 ? 'delivery' : 'deliveries'} in the ${r.label.toLowerCase()}: ${sum.s} succeeded, ${sum.f} failed, ${sum.p} pending.`
    : `No deliveries in the ${r.label.toLowerCase()}.`;
  const el = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-labelledby': 'chart-svg-title chart-svg-desc', id: 'chart-svg' },
    svg('title', { id: 'chart-svg-title' }, 'Deliveries over time by status'),
    svg('desc', { id: 'chart-svg-desc' }, desc));
  for (const v of [0, nice / 2, nice]) {
    el.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#e5e7eb', 'stroke-width': 1 }));
    el.append(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, String(v)));
  }
  const every = Math.ceil(n / 8);
  buckets.forEach((b, i) => {
    const x = L + i * bw + bw * 0.15;
    let acc = 0;
    for (const k of ['succeeded', 'failed', 'pending']) {
      if (!b[k]) continue;
      const y0 = y(acc), y1 = y(acc + b[k]);
      el.append(svg('rect', { x, y: y1, width: Math.max(1, bw * 0.7), height: Math.max(1, y0 - y1), fill: COLORS[k], 'data-status': k },
        svg('title', {}, `${fmt(b.at)}: ${b[k]} ${k}`)));
      acc += b[k];
    }
    if (i % every === 0) el.append(svg('text', { x: L + i * bw + bw / 2, y: H - 8, 'text-anchor': 'middle' }, fmt(b.at)));
  });
  return h('div', {}, el, h('p', { class: 'hint', id: 'chart-summary' }, desc));
}

function niceMax(v) {
  if (v <= 4) return 4;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [2, 4, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export async function deliveryPage(ctx, wid, did) {
  const [w, d] = await Promise.all([ctx.api('GET', '/webhooks/' + wid), ctx.api('GET', '/deliveries/' + did)]);
  const req = d.request ? (typeof d.request === 'string' ? JSON.parse(d.request) : d.request) : null;
  const headers = req && req.headers ? Object.entries(req.headers) : [];
  const kv = (rows) => rows.length
    ? h('table', { class: 'kv' }, h('tbody', {}, rows.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, Array.isArray(v) ? v.join(', ') : String(v))))))
    : h('p', { class: 'muted' }, 'Not sent yet.');
  const meta = (label, value) => [h('dt', {}, label), h('dd', {}, value)];
  const attempts = (d.attempt_list || []).slice().reverse();
  return h('div', { class: 'page' },
    h('div', { class: 'page-head' },
      h('div', {},
        h('p', { class: 'crumbs' }, h('a', { href: '#/webhooks' }, 'Webhooks'), ' / ', h('a', { href: `#/webhooks/${wid}/history` }, w.name), ' / ', 'Delivery ' + d.id),
        h('h1', {}, 'Delivery ' + d.id)),
      h('div', { class: 'page-actions' },
        h('a', { class: 'btn', href: `#/webhooks/${wid}/history` }, 'Back to history'),
        ctx.canManage ? h('button', {
          type: 'button', class: 'primary', id: 'resync-one', onclick: async () => {
            try {
              await ctx.api('POST', `/deliveries/${d.id}/resync`);
              ctx.toast(`Delivery ${d.id} queued again.`);
              ctx.go(`#/webhooks/${wid}/history/${did}`);
            } catch (err) {
              ctx.toast('Could not resync: ' + err.message, true);
            }
          },
        }, '↻ Resync') : null)),
    h('div', { class: 'card' }, h('dl', { class: 'card-body meta' },
      meta('Status', statusBadge(d.state)), meta('Trigger event', h('span', { class: 'event-key' }, d.event)),
      meta('Attempts', String(d.attempts)), meta('Created', fmtTime(d.created_at)),
      meta('Sent to', req ? h('span', { class: 'mono' }, req.url) : h('span', { class: 'muted' }, 'Not sent yet')), meta('Last HTTP status', d.last_status_code ? String(d.last_status_code) : '—'),
      meta('Last attempt', fmtTime(d.last_attempt_at, '—')),
      meta(d.state === 'pending' ? 'Next attempt' : 'Last error', d.state === 'pending' ? fmtTime(d.next_attempt_at, '—') : (d.last_error || '—')))),
    h('div', { class: 'two-col' },
      h('section', { class: 'card', 'aria-labelledby': 'sent-title', id: 'sent' },
        h('div', { class: 'card-head' }, h('h2', { id: 'sent-title' }, 'Sent')),
        h('div', { class: 'card-body', id: 'request-headers' },
          req ? h('p', { class: 'mono', id: 'sent-line' }, `${req.method || ''} ${req.url || ''}`) : null,
          req ? h('p', { class: 'hint' }, 'The request of the latest attempt, as it went out (secret values masked).') : null,
          kv(headers),
          req && req.body ? h('pre', { class: 'code', id: 'sent-body', tabindex: '0', 'aria-label': 'Body sent' }, pretty(req.body)) : null)),
      h('section', { class: 'card', 'aria-labelledby': 'payload-title' },
        h('div', { class: 'card-head' }, h('h2', { id: 'payload-title' }, 'Event')),
        h('div', { class: 'card-body' },
          h('p', { class: 'hint' }, 'The event the delivery carries.'),
          h('pre', { class: 'code', id: 'payload', tabindex: '0', 'aria-labelledby': 'payload-title' }, pretty(d.payload))))),
    h('section', { class: 'card', 'aria-labelledby': 'attempts-title', id: 'attempts' },
      h('div', { class: 'card-head' }, h('h2', { id: 'attempts-title' }, `Attempts (${attempts.length})`)),
      attempts.length ? attempts.map((a) => h('div', { class: 'attempt' },
        h('div', { class: 'result-line' },
          h('span', {}, '#' + a.n),
          statusBadge(a.outcome === 'succeeded' ? 'succeeded' : 'failed', a.outcome + (a.response_status ? ' · HTTP ' + a.response_status : '')),
          h('span', { class: 'muted' }, fmtTime(a.started_at) + ' · ' + a.duration_ms + ' ms · ' + a.trigger)),
        a.error ? h('p', { class: 'field-error' }, a.error) : null,
        a.request ? h('details', {}, h('summary', {}, 'Request sent'),
          h('p', { class: 'mono' }, `${a.request.method || ''} ${a.request.url || ''}`),
          kv(Object.entries(a.request.headers || {})),
          a.request.body ? h('pre', { class: 'code' }, pretty(a.request.body)) : null) : null,
        a.response_body ? h('details', {}, h('summary', {}, 'Response body'), h('pre', { class: 'code' }, pretty(a.response_body))) : null))
        : h('p', { class: 'card-body muted' }, 'No attempt yet.')));
}
