// Add / Edit Webhook: every field of the product's form, Test with the response inline, Save.

import { h, field, option, switchInput, errId, pretty, MASK, openDialog } from './dom.js';
import { showErrors, clearErrors } from './form.js';
import { oauthForm } from './oauth.js';

const METHODS = ['POST', 'GET', 'PUT', 'PATCH', 'DELETE'];

/**
 * fieldOptions turns the API's fields (GET /events/fields: those every chosen event has) into the
 * parameter picker's [value, text] options.
 */
export function fieldOptions(fields) {
  return fields.map((f) => {
    if (f.description) return [f.path, `${f.path} — ${f.description}`];
    if (f.kind === 'object') return [f.path, `${f.path} — object`];
    let ex = JSON.stringify(f.example);
    if (ex && ex.length > 40) ex = ex.slice(0, 37) + '…';
    return [f.path, ex === undefined ? f.path : `${f.path} — e.g. ${ex}`];
  });
}

export async function webhookForm(ctx, id) {
  const [events, creds, existing] = await Promise.all([
    ctx.api('GET', '/events'),
    ctx.api('GET', '/oauth'),
    id ? ctx.api('GET', '/webhooks/' + id) : Promise.resolve(null),
  ]);
  const ro = !ctx.canManage;
  const w = existing || { name: '', url: '', method: 'POST', events: events.items[0] ? [events.items[0].key] : [], oauth_id: null, headers: [], raw_data: true, params: [], active: false };
  const state = {
    headers: w.headers.map((x) => ({ key: x.key, value: x.value, secret: !!x.secret })),
    params: w.params.map((x) => ({ key: x.key, path: x.path })),
    // The trigger events in the order they were chosen (the first is what Test sends).
    events: [...(w.events || (w.event ? [w.event] : []))],
    paths: [],
    dirty: false,
  };
  let credList = creds.items;

  const summary = h('div', { class: 'summary', role: 'alert', tabindex: '-1', id: 'form-summary' });
  const name = h('input', { type: 'text', name: 'name', value: w.name, maxlength: '100', autocomplete: 'off', disabled: ro });
  const url = h('input', { type: 'url', name: 'url', value: w.url, placeholder: 'https://example.com/hooks/contacts', autocomplete: 'off', spellcheck: 'false', disabled: ro });
  const method = h('select', { name: 'method', disabled: ro }, METHODS.map((m) => option(m, m, m === w.method)));
  // Trigger events: one labelled checkbox per catalog entry in a fieldset (a retired event the
  // webhook still has is listed too, marked so).
  const eventChoices = [...events.items.map((e) => ({ key: e.key, description: e.description }))];
  for (const k of state.events) if (!events.items.some((e) => e.key === k)) eventChoices.push({ key: k, description: '(retired)' });
  const eventBoxes = eventChoices.map((e, i) => {
    const box = h('input', { type: 'checkbox', name: 'events', value: e.key, id: `f-event-${i}`, disabled: ro,
      'aria-describedby': `f-event-${i}-desc`, onchange: () => {
        state.events = state.events.filter((k) => k !== e.key);
        if (box.checked) state.events.push(e.key);
        loadFields();
      } });
    box.checked = state.events.includes(e.key);
    return h('div', { class: 'event-choice' }, box, h('label', { for: box.id, class: 'event-key' }, e.key),
      h('span', { class: 'hint', id: `f-event-${i}-desc` }, e.description || ''));
  });
  const eventsBox = h('fieldset', { class: 'wide field', id: 'f-events', 'aria-describedby': 'f-events-hint ' + errId('events') },
    h('legend', {}, 'Trigger events', h('span', { class: 'req', 'aria-hidden': 'true' }, ' *')),
    h('p', { class: 'hint', id: 'f-events-hint' }, 'The webhook sends when any of these happens. Choose one or more.'),
    h('div', { class: 'event-choices' }, eventBoxes),
    h('p', { class: 'field-error', id: errId('events'), 'data-control': eventBoxes.length ? 'f-event-0' : null }));
  const oauth = h('select', { name: 'oauth_id', disabled: ro });
  const fillOAuth = (selected) => {
    oauth.replaceChildren(option('', 'None', selected == null), ...credList.map((c) => option(String(c.id), c.name, c.id === selected)));
  };
  fillOAuth(w.oauth_id);
  const active = switchInput({ id: 'f-active', checked: w.active, disabled: ro, label: 'Status (active)' });
  const raw = switchInput({ id: 'f-raw', checked: w.raw_data, disabled: ro, label: 'Raw data' });
  const rateLimit = h('input', { type: 'number', name: 'rate_limit', min: '1', max: '1000', step: '1', inputmode: 'numeric', placeholder: 'No limit', value: w.rate_limit == null ? '' : String(w.rate_limit), disabled: ro });
  // The rate limit as the API takes it: empty is no limit (null); what the browser could not read
  // as a number goes as typed, so the API names the field instead of the limit silently going.
  const rateValue = () => {
    if (rateLimit.validity.badInput) return 'not a number';
    return rateLimit.value.trim() === '' ? null : Number(rateLimit.value);
  };

  const headerRows = h('div', { class: 'rows', id: 'header-rows' });
  const paramRows = h('div', { class: 'rows', id: 'param-rows' });
  const paramsBox = h('fieldset', { class: 'wide field', id: 'params-box' },
    h('legend', {}, 'Parameters'),
    h('p', { class: 'hint', id: 'params-hint' }, 'With Raw data off the body holds only these parameters: each key gets the value of a field of the event.'),
    h('div', { class: 'row-head row param-row', 'aria-hidden': 'true' }, h('span', {}, 'Key'), h('span', {}, 'Field'), h('span')),
    paramRows,
    h('p', { class: 'field-error', id: errId('params') }),
    ro ? null : h('button', { type: 'button', class: 'small', id: 'add-param', onclick: () => { state.params.push({ key: '', path: '' }); renderParams(); paramRows.querySelector('.param-row:last-child input').focus(); } }, '+ Add parameter'));

  // The fields a parameter can take are those every chosen event has (the API says which).
  let fieldsAsked = '';
  async function loadFields() {
    const q = state.events.join(',');
    fieldsAsked = q;
    let paths = [];
    if (q) {
      try {
        paths = fieldOptions((await ctx.api('GET', '/events/fields?events=' + encodeURIComponent(q))).items);
      } catch {
        paths = [];
      }
    }
    if (fieldsAsked !== q) return; // a later choice answered first
    state.paths = paths;
    renderParams();
  }

  function renderHeaders() {
    headerRows.replaceChildren(...state.headers.map((hd, i) => {
      const k = h('input', { type: 'text', id: `h-key-${i}`, value: hd.key, placeholder: 'X-Api-Key', autocomplete: 'off', spellcheck: 'false', disabled: ro, 'aria-describedby': errId(`headers[${i}].key`), oninput: (e) => { hd.key = e.target.value; } });
      const masked = hd.value === MASK;
      const v = h('input', { type: hd.secret || masked || hd.again ? 'password' : 'text', id: `h-val-${i}`, value: hd.value, autocomplete: 'off', spellcheck: 'false', disabled: ro,
        placeholder: hd.again ? 'Type the value again: the URL changed' : masked ? 'Saved — type to replace' : 'value',
        'aria-describedby': errId(`headers[${i}].value`), oninput: (e) => { hd.value = e.target.value; } });
      if (masked) v.addEventListener('focus', () => { if (v.value === MASK) v.select(); });
      const sec = h('input', { type: 'checkbox', id: `h-sec-${i}`, disabled: ro, onchange: (e) => { hd.secret = e.target.checked; v.type = hd.secret ? 'password' : 'text'; } });
      sec.checked = hd.secret;
      return h('div', { class: 'row header-row' },
        h('div', { class: 'cell' }, h('label', { class: 'sr-only', for: k.id }, `Header ${i + 1} key`), k,
          h('p', { class: 'field-error', id: errId(`headers[${i}].key`), 'data-control': k.id })),
        h('div', { class: 'cell' }, h('label', { class: 'sr-only', for: v.id }, `Header ${i + 1} value`), v,
          h('p', { class: 'field-error', id: errId(`headers[${i}].value`), 'data-control': v.id })),
        h('label', { class: 'check', for: sec.id }, sec, 'Secret'),
        ro ? h('span') : h('button', { type: 'button', class: 'link danger-text', 'aria-label': `Remove header ${i + 1}`, onclick: () => { state.headers.splice(i, 1); renderHeaders(); } }, 'Remove'));
    }));
    if (!state.headers.length) headerRows.append(h('p', { class: 'hint' }, 'No custom headers.'));
  }

  function renderParams() {
    const paths = state.paths;
    paramRows.replaceChildren(...state.params.map((p, i) => {
      const k = h('input', { type: 'text', id: `p-key-${i}`, value: p.key, placeholder: 'email', autocomplete: 'off', disabled: ro, 'aria-describedby': errId(`params[${i}].key`), oninput: (e) => { p.key = e.target.value; } });
      const sel = h('select', { id: `p-path-${i}`, disabled: ro, 'aria-describedby': errId(`params[${i}].path`), onchange: (e) => { p.path = e.target.value; if (!p.key) { p.key = p.path.split('.').pop(); k.value = p.key; } } },
        option('', 'Choose a field…', !p.path),
        paths.map(([val, text]) => option(val, text, val === p.path)));
      if (p.path && !paths.some(([val]) => val === p.path)) sel.append(option(p.path, p.path, true));
      return h('div', { class: 'row param-row' },
        h('div', { class: 'cell' }, h('label', { class: 'sr-only', for: k.id }, `Parameter ${i + 1} key`), k,
          h('p', { class: 'field-error', id: errId(`params[${i}].key`), 'data-control': k.id })),
        h('div', { class: 'cell' }, h('label', { class: 'sr-only', for: sel.id }, `Parameter ${i + 1} field`), sel,
          h('p', { class: 'field-error', id: errId(`params[${i}].path`), 'data-control': sel.id })),
        ro ? h('span') : h('button', { type: 'button', class: 'link danger-text', 'aria-label': `Remove parameter ${i + 1}`, onclick: () => { state.params.splice(i, 1); renderParams(); } }, 'Remove'));
    }));
    if (!state.params.length) paramRows.append(h('p', { class: 'hint' }, 'No parameters yet.'));
  }

  const syncRaw = () => { paramsBox.hidden = raw.input.checked; };
  raw.input.addEventListener('change', () => {
    syncRaw();
    if (!raw.input.checked && !state.params.length) { state.params.push({ key: '', path: '' }); renderParams(); }
  });

  // A stored (masked) header value is never sent to a destination chosen after it was stored: when
  // the URL changes, the masked values are cleared and must be typed again; back to the saved URL,
  // they are kept again.
  const secretsAgain = h('p', { class: 'hint warn', id: 'secrets-again', role: 'status', hidden: true },
    'The URL changed: type the hidden header values again. walhook never sends a saved secret to a new address.');
  url.addEventListener('input', () => {
    if (!existing) return;
    const changed = url.value.trim() !== w.url;
    let again = false;
    state.headers.forEach((hd) => {
      if (changed && hd.value === MASK) { hd.value = ''; hd.again = true; }
      if (!changed && hd.again && hd.value === '') { hd.value = MASK; hd.again = false; }
      again = again || (hd.again && changed);
    });
    secretsAgain.hidden = !again;
    renderHeaders();
  });
  renderHeaders();
  await loadFields();
  syncRaw();

  // body is the webhook as the API takes it; rows left entirely empty are dropped, and index maps
  // the API's row numbers back to the rows on the page.
  const index = { headers: [], params: [] };
  function body() {
    index.headers = []; index.params = [];
    const headers = [];
    state.headers.forEach((hd, i) => { if (hd.key || hd.value) { index.headers.push(i); headers.push({ key: hd.key.trim(), value: hd.again && hd.value === '' ? MASK : hd.value, secret: hd.secret }); } });
    const params = [];
    if (!raw.input.checked) state.params.forEach((p, i) => { if (p.key || p.path) { index.params.push(i); params.push({ key: p.key.trim(), path: p.path }); } });
    return {
      name: name.value.trim(), url: url.value.trim(), method: method.value, events: [...state.events],
      oauth_id: oauth.value ? Number(oauth.value) : null, headers, raw_data: raw.input.checked, params, active: active.input.checked,
      rate_limit: rateValue(),
    };
  }
  const mapField = (f) => (/^events?(\[\d+\])?$/.test(f) ? 'events' : f.replace(/^(headers|params)\[(\d+)\]/, (m, list, n) => {
    const i = index[list][Number(n)];
    return i === undefined ? m : `${list}[${i}]`;
  }));

  const testResult = h('div', { class: 'test-result', id: 'test-result', 'aria-live': 'polite' });
  const saveBtn = h('button', { type: 'submit', class: 'primary', id: 'save' }, 'Save');
  const testBtn = h('button', { type: 'button', id: 'test', onclick: () => runTest() }, 'Test');

  async function runTest() {
    clearErrors(form, summary);
    testBtn.disabled = true;
    testResult.replaceChildren(h('p', { class: 'muted' }, 'Sending a test request…'));
    try {
      const b = body();
      // A saved webhook is tested as stored when its form is unchanged, else as the form is now
      // (the mask keeps a saved header value while the URL is the saved one); a new one as the form.
      const res = id ? await ctx.api('POST', `/webhooks/${id}/test`, state.dirty ? b : undefined) : await ctx.api('POST', '/webhooks/test', b);
      testResult.replaceChildren(renderTest(res));
    } catch (err) {
      if (err.fields && err.fields.length) showErrors(form, summary, err, mapField);
      testResult.replaceChildren(h('div', { class: 'result bad' }, h('div', { class: 'result-line' }, h('span', { class: 'badge failed' }, 'Test not sent'), h('span', {}, err.message))));
    } finally {
      testBtn.disabled = false;
    }
  }

  const secretBox = existing && existing.secret ? secretField(existing.secret) : null;

  const form = h('form', {
    class: 'grid', id: 'webhook-form', novalidate: true,
    oninput: () => { state.dirty = true; }, onchange: () => { state.dirty = true; },
    onsubmit: async (e) => {
      e.preventDefault();
      if (ro) return;
      saveBtn.disabled = true;
      try {
        const b = body();
        const saved = id ? await ctx.api('PUT', '/webhooks/' + id, b) : await ctx.api('POST', '/webhooks', b);
        ctx.toast(`Saved “${saved.name}”.`);
        ctx.go('#/webhooks');
      } catch (err) {
        showErrors(form, summary, err, mapField);
      } finally {
        saveBtn.disabled = false;
      }
    },
  },
  summary,
  field({ label: 'Webhook name', id: 'f-name', name: 'name', control: name, required: true }),
  field({ label: 'URL', id: 'f-url', name: 'url', control: url, required: true, hint: 'The endpoint the data is pushed to.' }),
  field({ label: 'Method', id: 'f-method', name: 'method', control: method, hint: 'GET and DELETE send the data as query parameters.' }),
  eventsBox,
  h('div', { class: 'field' },
    h('label', { for: 'f-oauth' }, 'OAuth'),
    h('div', { class: 'with-action' }, oauth, ro ? null : h('button', { type: 'button', class: 'small', id: 'new-oauth', onclick: () => newOAuth() }, '+ New')),
    h('p', { class: 'hint', id: 'f-oauth-hint' }, 'Optional. walhook fetches a token and sends it as Authorization: Bearer.'),
    h('p', { class: 'field-error', id: errId('oauth_id'), 'data-control': 'f-oauth' })),
  h('div', { class: 'field' },
    h('span', { class: 'label', id: 'f-active-label' }, 'Status'),
    active.el,
    h('p', { class: 'hint' }, 'Off by default: an inactive webhook sends nothing.')),
  field({ label: 'Rate limit (requests per second)', id: 'f-rate-limit', name: 'rate_limit', control: rateLimit,
    hint: 'Optional, 1 to 1000. walhook sends at most this many requests a second to the endpoint; the others wait their turn, they do not fail. Empty: no limit.' }),
  h('fieldset', { class: 'wide field', id: 'headers-box' },
    h('legend', {}, 'Request headers'),
    h('div', { class: 'row-head row header-row', 'aria-hidden': 'true' }, h('span', {}, 'Key'), h('span', {}, 'Value'), h('span', {}, ''), h('span')),
    secretsAgain,
    headerRows,
    h('p', { class: 'field-error', id: errId('headers') }),
    ro ? null : h('button', { type: 'button', class: 'small', id: 'add-header', onclick: () => { state.headers.push({ key: '', value: '', secret: false }); renderHeaders(); headerRows.querySelector('.header-row:last-child input').focus(); } }, '+ Add header')),
  h('div', { class: 'field wide' },
    h('span', { class: 'label' }, 'Raw data'),
    raw.el,
    h('p', { class: 'hint' }, 'On: the request carries all the data of the event. Off: choose the parameters to send.')),
  paramsBox,
  secretBox,
  testResult,
  h('div', { class: 'form-actions' },
    ro ? null : testBtn,
    h('span', { class: 'spacer' }),
    h('a', { class: 'btn', href: '#/webhooks' }, ro ? 'Back' : 'Cancel'),
    ro ? null : saveBtn));
  oauth.id = 'f-oauth';
  oauth.setAttribute('aria-describedby', 'f-oauth-hint ' + errId('oauth_id'));
  active.input.setAttribute('aria-labelledby', 'f-active-label');
  active.input.removeAttribute('aria-label');

  async function newOAuth() {
    const dlg = h('dialog', { 'aria-labelledby': 'oauth-dlg-title', id: 'oauth-dialog' });
    const done = () => dlg.close();
    const f = await oauthForm(ctx, null, {
      onSaved: async (c) => {
        credList = (await ctx.api('GET', '/oauth')).items;
        fillOAuth(c.id);
        state.dirty = true;
        done();
        oauth.focus();
        ctx.toast(`OAuth “${c.name}” created and selected.`);
      },
      onCancel: done,
    });
    dlg.append(h('div', { class: 'dialog-body' }, h('h2', { id: 'oauth-dlg-title' }, 'Add OAuth'), f));
    openDialog(dlg, { focus: dlg.querySelector('input') });
  }

  const title = id ? (ro ? 'Webhook' : 'Edit Webhook') : 'Add Webhook';
  return h('div', { class: 'page' },
    h('div', { class: 'page-head' },
      h('div', {}, h('p', { class: 'crumbs' }, h('a', { href: '#/webhooks' }, 'Webhooks'), ' / ', id ? w.name : 'New'), h('h1', {}, title)),
      id ? h('div', { class: 'page-actions' }, h('a', { class: 'btn', href: `#/webhooks/${id}/history` }, 'History')) : null),
    ctx.readOnlyNotice(),
    h('div', { class: 'card' }, h('div', { class: 'card-body' }, form)));
}

function secretField(secret) {
  const input = h('input', { type: 'password', id: 'f-secret', value: secret, readonly: true, 'aria-describedby': 'f-secret-hint' });
  const show = h('button', { type: 'button', class: 'small', 'aria-pressed': 'false', onclick: () => {
    const on = input.type === 'password';
    input.type = on ? 'text' : 'password';
    show.setAttribute('aria-pressed', String(on));
    show.textContent = on ? 'Hide' : 'Show';
  } }, 'Show');
  return h('div', { class: 'field wide' },
    h('label', { for: 'f-secret' }, 'Signing secret'),
    h('div', { class: 'secret-box' }, input, show),
    h('p', { class: 'hint', id: 'f-secret-hint' }, 'Receivers verify the webhook-signature header with this secret (Standard Webhooks): over the body, or for GET and DELETE over the raw query string.'));
}

function renderTest(res) {
  const ok = res.succeeded;
  const req = res.request || {};
  return h('div', { class: ['result', ok ? 'ok' : 'bad'] },
    h('div', { class: 'result-line' },
      h('span', { class: ['badge', ok ? 'succeeded' : 'failed'] }, ok ? 'Test succeeded' : 'Test failed'),
      res.status ? h('span', {}, 'HTTP ' + res.status) : null,
      h('span', { class: 'muted' }, (res.duration_ms || 0) + ' ms'),
      res.error ? h('span', {}, res.error) : null),
    res.body ? h('pre', { class: 'code', 'aria-label': 'Response body' }, pretty(res.body)) : null,
    h('details', {}, h('summary', {}, 'Request sent'),
      h('pre', { class: 'code' }, `${req.method || ''} ${req.url || ''}\n` +
        Object.entries(req.headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n') + (req.body ? '\n\n' + pretty(req.body) : ''))));
}
