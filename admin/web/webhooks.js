// Settings → Webhooks: the listing with its row actions.

import { h, fmtTime, fmtShort, statusBadge, switchInput } from './dom.js';

export async function webhookList(ctx) {
  const first = await ctx.api('GET', '/webhooks?limit=50');
  const tbody = h('tbody');
  const moreBox = h('div', { class: 'more' });
  let next = first.next_cursor;

  const addRows = (items) => { for (const w of items) tbody.append(row(ctx, w)); };
  const renderMore = () => {
    moreBox.replaceChildren();
    if (next) {
      moreBox.append(h('button', {
        type: 'button', class: 'small', onclick: async () => {
          const page = await ctx.api('GET', '/webhooks?limit=50&cursor=' + encodeURIComponent(next));
          next = page.next_cursor;
          addRows(page.items);
          renderMore();
        },
      }, 'Load more'));
    }
    moreBox.hidden = !next;
  };
  addRows(first.items);
  renderMore();

  const add = ctx.canManage ? h('a', { class: 'btn primary', href: '#/webhooks/new', id: 'add-webhook' }, '+ Add Webhook') : null;
  const head = h('div', { class: 'page-head' },
    h('div', {}, h('p', { class: 'crumbs' }, 'Settings'), h('h1', {}, 'Webhooks'),
      h('p', { class: 'sub' }, 'Send your data to other systems the moment a trigger event happens.')),
    h('div', { class: 'page-actions' }, add));

  let body;
  if (first.items.length === 0) {
    body = h('div', { class: 'card' }, h('div', { class: 'empty-state', id: 'webhooks-empty' },
      h('div', { class: 'icon', 'aria-hidden': 'true' }, '↗'),
      h('h2', {}, 'No webhooks yet'),
      h('p', {}, 'A webhook sends an HTTP request to a URL of your choice whenever its trigger event happens — for example when a contact is created.'),
      ctx.canManage ? h('a', { class: 'btn primary', href: '#/webhooks/new' }, '+ Add Webhook') : null));
  } else {
    body = h('div', { class: 'card' }, h('div', { class: 'table-wrap' },
      h('table', { id: 'webhooks' },
        h('caption', { class: 'sr-only' }, 'Webhooks'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Trigger events'), h('th', { scope: 'col' }, 'Endpoint'),
          h('th', { scope: 'col' }, 'Deliveries'), h('th', { scope: 'col' }, 'Last sent'),
          h('th', { scope: 'col' }, 'Active'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        tbody)),
    moreBox);
  }
  return h('div', { class: 'page' }, head, ctx.readOnlyNotice(), body);
}

function row(ctx, w) {
  const tr = h('tr', { 'data-id': w.id });
  const sw = switchInput({
    id: 'active-' + w.id, checked: w.active, disabled: !ctx.canManage, label: 'Active: ' + w.name, compact: true,
    onchange: async (e) => {
      const want = e.target.checked;
      e.target.disabled = true;
      try {
        await ctx.api('PATCH', '/webhooks/' + w.id, { active: want });
        w.active = want;
        ctx.toast(`${w.name} is ${want ? 'active' : 'inactive'}.`);
      } catch (err) {
        e.target.checked = !want;
        sw.sync();
        ctx.toast('Could not change the status: ' + err.message, true);
      } finally {
        e.target.disabled = false;
      }
    },
  });
  const actions = [
    h('a', { class: 'btn link', href: '#/webhooks/' + w.id, 'aria-label': (ctx.canManage ? 'Edit ' : 'View ') + w.name }, ctx.canManage ? 'Edit' : 'View'),
  ];
  if (ctx.canManage) {
    actions.push(h('button', {
      type: 'button', class: 'link', 'aria-label': 'Duplicate ' + w.name, 'data-action': 'duplicate',
      onclick: async () => {
        try {
          const cp = await ctx.api('POST', '/webhooks/' + w.id + '/duplicate');
          ctx.toast(`Duplicated as “${cp.name}” (inactive).`);
          ctx.go('#/webhooks');
        } catch (err) {
          ctx.toast('Could not duplicate: ' + err.message, true);
        }
      },
    }, 'Duplicate'));
    actions.push(h('button', {
      type: 'button', class: 'link danger-text', 'aria-label': 'Delete ' + w.name, 'data-action': 'delete',
      onclick: async () => {
        const ok = await ctx.confirm({
          title: 'Delete webhook?', ok: 'Delete', danger: true,
          message: `“${w.name}” and its history will be deleted. Its endpoint will get no more requests. This cannot be undone.`,
        });
        if (!ok) return;
        try {
          await ctx.api('DELETE', '/webhooks/' + w.id);
          const body = tr.parentElement;
          tr.remove();
          ctx.toast(`Deleted “${w.name}”.`);
          // The last one gone, the page shows its empty state; else focus, which was on the
          // removed row, goes to the page's heading.
          if (body && !body.children.length) ctx.go('#/webhooks');
          else document.querySelector('main h1')?.focus();
        } catch (err) {
          ctx.toast('Could not delete: ' + err.message, true);
        }
      },
    }, 'Delete'));
  }
  actions.push(h('a', { class: 'btn link', href: '#/webhooks/' + w.id + '/history', 'aria-label': 'History of ' + w.name }, 'History'));

  tr.append(
    h('td', { class: 'name-cell' }, h('strong', {}, w.name),
      w.disabled_reason ? h('span', { class: 'note' }, 'Turned off: ' + w.disabled_reason) : null,
      w.secret_error ? h('span', { class: 'note' }, 'Not sending: ' + w.secret_error) : null),
    h('td', { class: 'events-cell' }, eventsCell(w.events || [w.event])),
    h('td', { class: 'endpoint' }, h('span', { class: 'method' }, w.method), ' ', h('span', { class: 'url', title: w.url }, w.url)),
    h('td', { class: 'counts' }, countChips(w.counts)),
    h('td', { class: 'last-sent' }, statusBadge(w.last_status, w.last_status ? null : '—'), ' ',
      w.last_sent_at ? h('time', { datetime: w.last_sent_at, title: fmtTime(w.last_sent_at) }, fmtShort(w.last_sent_at)) : h('span', { class: 'muted' }, 'Never')),
    h('td', {}, sw.el),
    h('td', { class: 'actions' }, h('div', { class: 'action-list' }, actions)));
  return tr;
}

/** countChips shows how many deliveries the webhook's events made, and how they ended. */
function countChips(c) {
  const n = c || { triggered: 0, succeeded: 0, failed: 0 };
  const chip = (k, label) => h('span', { class: ['count', k], 'data-count': k }, h('span', { class: 'count-n' }, String(n[k] || 0)), ' ', label);
  return h('span', { class: 'count-list' }, chip('triggered', 'triggered'), chip('succeeded', 'succeeded'), chip('failed', 'failed'));
}

/**
 * eventsCell lists a webhook's trigger events: up to three by name; more as the first two and
 * "+N more", the rest named in its title and for screen readers.
 */
export function eventsCell(keys) {
  const shown = keys.length > 3 ? keys.slice(0, 2) : keys;
  const rest = keys.slice(shown.length);
  return h('span', { class: 'event-list' },
    shown.map((k) => h('span', { class: 'event-key' }, k)),
    rest.length ? h('span', { class: 'event-more', title: rest.join(', ') }, `+${rest.length} more`,
      h('span', { class: 'sr-only' }, ': ' + rest.join(', '))) : null);
}
