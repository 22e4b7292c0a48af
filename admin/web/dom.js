// DOM helpers. Text is always set as text, never parsed as HTML, so values from the API (names,
// payloads, headers) cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * MASK is the API's stand-in for a stored secret (relay/webhook.Mask; admin's TestWebMask keeps
 * them equal). Sent back, it keeps the stored value while the destination is unchanged.
 */
export const MASK = '••••••';

function setAttrs(el, attrs, svg) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (!svg && (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled')) {
      el[k] = v;
      if (k !== 'value') el.setAttribute(k, '');
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** h builds an HTML element: h('button', {class: 'primary', onclick}, 'Save'). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs, false);
  append(el, children);
  return el;
}

/** svg builds an SVG element. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs, true);
  append(el, children);
  return el;
}

/** errId is the id of the element that shows the API's error for a field ("headers[0].key"). */
export function errId(field) {
  return 'err-' + String(field).replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '');
}

/**
 * field renders a labelled control with its hint and its error slot; the control is described by
 * both, so a screen reader reads the error when the control gets focus.
 */
export function field({ label, id, name, control, hint, required, wide }) {
  control.id = id;
  const described = [];
  const kids = [h('label', { for: id }, label, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, ' *') : null), control];
  if (hint) {
    described.push(id + '-hint');
    kids.push(h('p', { class: 'hint', id: id + '-hint' }, hint));
  }
  if (name) {
    const eid = errId(name);
    described.push(eid);
    kids.push(h('p', { class: 'field-error', id: eid, 'data-control': id }));
  }
  if (required) control.required = true;
  if (described.length) control.setAttribute('aria-describedby', described.join(' '));
  return h('div', { class: ['field', wide && 'wide'] }, kids);
}

/** switchInput is a checkbox shown as a switch, with a text state next to it. */
export function switchInput({ id, checked, disabled, label, onchange, compact }) {
  const state = h('span', { class: 'switch-state', 'aria-hidden': 'true', hidden: !!compact });
  const input = h('input', { type: 'checkbox', role: 'switch', class: 'switch', id, 'aria-label': label });
  input.checked = !!checked;
  input.disabled = !!disabled;
  const sync = () => { state.textContent = input.checked ? 'On' : 'Off'; };
  input.addEventListener('change', (e) => { sync(); if (onchange) onchange(e); });
  sync();
  return { input, el: h('span', { class: 'switch-field' }, input, state), sync };
}

/** option builds a select option. */
export function option(value, text, selected) {
  const o = h('option', { value }, text);
  if (selected) o.selected = true;
  return o;
}

/** fmtTime shows a time in the browser's locale; "Never" for none. */
export function fmtTime(iso, never = 'Never') {
  if (!iso) return never;
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** fmtShort is a compact time for tables: the year only when it is not this year. */
export function fmtShort(iso, never = 'Never') {
  if (!iso) return never;
  const d = new Date(iso);
  const opts = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
  if (d.getFullYear() !== new Date().getFullYear()) opts.year = 'numeric';
  return d.toLocaleString(undefined, opts);
}

/** pretty formats JSON (a value or a JSON string) for a <pre>. */
export function pretty(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') {
    try { return JSON.stringify(JSON.parse(v), null, 2); } catch { return v; }
  }
  return JSON.stringify(v, null, 2);
}

/** statusBadge renders a delivery or last-sent status. */
export function statusBadge(status, text) {
  if (!status) return h('span', { class: 'badge none' }, text || '—');
  const label = { succeeded: 'Succeeded', failed: 'Failed', pending: 'Pending' }[status] || status;
  return h('span', { class: ['badge', status] }, text || label);
}

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/**
 * openDialog shows dlg as a modal dialog (Escape closes it, as the browser does for any modal
 * dialog), moves focus into it (to focus, else its first control) and, when it closes, removes
 * it and gives focus back to the control that opened it. When that control is gone (a deleted
 * row), focus goes to fallback, else to the page's heading. Focus the caller moved elsewhere
 * itself before the close event ran (a field it just filled) is left where it is.
 */
export function openDialog(dlg, { focus, fallback } = {}) {
  const opener = document.activeElement;
  if (!dlg.isConnected) document.body.append(dlg);
  dlg.addEventListener('close', () => {
    dlg.remove();
    const lost = !document.activeElement || document.activeElement === document.body || dlg.contains(document.activeElement);
    if (!lost) return;
    const back = opener && opener !== document.body && opener.isConnected ? opener : (fallback || document.querySelector('main h1'));
    if (back) back.focus();
  }, { once: true });
  dlg.showModal();
  const first = focus || dlg.querySelector(FOCUSABLE);
  if (first) first.focus();
}

/**
 * stackable lets a table turn into a list of cards on a narrow screen (style.css, under 760px):
 * every cell gets its column's header as data-label, shown before the value, and rows added
 * later (refresh, Load more) get it too.
 */
export function stackable(table) {
  if (table.dataset.stack) return;
  table.dataset.stack = '1';
  table.classList.add('stack');
  const labels = [...table.querySelectorAll('thead th')].map((th) => th.textContent.trim());
  const label = () => {
    for (const tr of table.querySelectorAll('tbody tr')) {
      [...tr.children].forEach((td, i) => {
        if (td.tagName === 'TD' && labels[i] && !td.hasAttribute('data-label')) td.setAttribute('data-label', labels[i]);
      });
    }
  };
  label();
  new MutationObserver(label).observe(table, { childList: true, subtree: true });
}
