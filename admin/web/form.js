// Showing the API's field errors next to their fields.

import { h, errId } from './dom.js';

/** clearErrors empties every field error in root and its summary. */
export function clearErrors(root, summary) {
  for (const el of root.querySelectorAll('.field-error')) {
    el.textContent = '';
    const c = el.dataset.control && document.getElementById(el.dataset.control);
    if (c) c.removeAttribute('aria-invalid');
  }
  if (summary) summary.replaceChildren();
}

/**
 * showErrors puts each field error of err (an APIError) next to its field, marks the control
 * invalid, lists the rest in the summary (role=alert, so it is announced) and focuses the first
 * invalid control. mapField maps an API field name to the one shown (rows the page dropped).
 */
export function showErrors(root, summary, err, mapField = (f) => f) {
  clearErrors(root, summary);
  const loose = [];
  let first = null;
  for (const fe of err.fields || []) {
    const name = mapField(fe.field);
    const slot = name != null && root.querySelector('#' + CSS.escape(errId(name)));
    if (!slot) {
      loose.push((fe.field ? fe.field + ': ' : '') + fe.message);
      continue;
    }
    slot.textContent = slot.textContent ? slot.textContent + '; ' + fe.message : fe.message;
    const c = slot.dataset.control && document.getElementById(slot.dataset.control);
    if (c) {
      c.setAttribute('aria-invalid', 'true');
      first = first || c;
    }
  }
  const n = (err.fields || []).length;
  const head = n ? `Please correct ${n === 1 ? 'the field' : 'the ' + n + ' fields'} marked below.` : err.message;
  if (summary) {
    summary.replaceChildren(...[h('strong', {}, head), loose.length ? h('ul', {}, loose.map((m) => h('li', {}, m))) : null].filter(Boolean));
  }
  if (first) first.focus();
  else if (summary) summary.focus();
}
