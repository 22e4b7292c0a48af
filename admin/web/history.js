// History of a webhook: counts, a chart of deliveries over time by status, the deliveries with
// Resync, "Resync failed", and one delivery's payload, request headers and attempts.

import { h, svg, fmtTime, statusBadge, pretty } from './dom.js';

const RANGES = {
  day: { label: 'Last 24 hours', bucket: 'hour', ms: 24 * 3600e3, step: 3600e3 },
  month: { label: 'Last 30 days', bucket: 'day', ms: 30 * 24 * 3600e3, step: 24 * 3600e3 },
};
const COLORS = { succeeded: '#15803d', failed: '#b91c1c', pending: '#d97706' };
const REFRESH_MS = 3000;

export async function historyPage(ctx, id) {
  const w = await ctx.api('GET', '/webhooks/' + id);
  const state = { range: 'day', status: '', items: [], next: null, sig: '' };

  const counts = h('div', { class: 'stats', id: 'counts' });
  const chartBox = h('div', { class: 'card-body', id: 'chart' });
  const tbody = h('tbody');
  const moreBox = h('div', { class: 'more' });
  const table = h('table', { id: 'deliveries' },
    h('caption', { class: 'sr-only' }, 'Deliveries, newest first'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Event'), h('th', { scope: 'col' }, 'URL'),
      h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col', class: 'num' }, 'Attempts'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
    tbody);
  const empty = h('p', { class: 'muted card-body', id: 'history-empty' }, 'No deliveries yet. They appear here when the trigger event happens while the webhook is active.');
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
    empty.hidden = state.items.length > 0;
    table.hidden = state.items.length === 0;
    moreBox.replaceChildren();
    moreBox.hidden = !state.next;
    if (state.next) {
      moreBox.append(h('button', { type: 'button', class: 'small', onclick: loadMore }, 'Load more'));
    }
  }

  const query = (cursor) => {
    const q = new URLSearchParams({ limit: '50' });
    if (state.status) q.set('status', state.status);
    if (cursor) q.set('cursor', cursor);
    return `/webhooks/${id}/deliveries?` + q;
  };

  // loadList refreshes the first page; the table is only rebuilt when something changed, so a
  // refresh does not move the keyboard focus or the rows under the pointer.
  async function loadList() {
    const page = await ctx.api('GET', query());
    if (!ctx.current()) return;
    renderCounts(page.totals);
    const sig = JSON.stringify([page.items, page.next_cursor, state.status]);
    if (sig === state.sig) return;
    const had = state.items.length;
    state.sig = sig;
    state.items = page.items;
    state.next = page.next_cursor;
    renderList();
    if (had && page.items.length > had) live.textContent = `${page.items.length - had} new deliveries.`;
  }

  async function loadMore() {
    const page = await ctx.api('GET', query(state.next));
    state.items = state.items.concat(page.items);
    state.next = page.next_cursor;
    state.sig = '';
    renderList();
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
        resyncFailed)),
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
      h('div', { class: 'table-wrap' }, table),
      empty, moreBox),
    live);
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
