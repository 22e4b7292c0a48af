// Settings → OAuth: the credentials list (two "Add OAuth" buttons when empty) and the form.

import { h, field, option, fmtTime, fmtShort, errId, MASK } from './dom.js';
import { showErrors } from './form.js';

const GRANTS = [
  ['authorization_code', 'authorization_code'],
  ['client_credentials', 'client_credentials'],
  ['refresh_token', 'refresh_token'],
];

export async function oauthList(ctx) {
  const { items } = await ctx.api('GET', '/oauth');
  const add = (id) => ctx.canManage ? h('a', { class: 'btn primary', href: '#/oauth/new', id }, '+ Add OAuth') : null;
  const head = h('div', { class: 'page-head' },
    h('div', {}, h('p', { class: 'crumbs' }, 'Settings'), h('h1', {}, 'OAuth'),
      h('p', { class: 'sub' }, 'Credentials walhook uses to fetch a bearer token for webhooks whose endpoint needs one.')),
    h('div', { class: 'page-actions' }, add('add-oauth-top')));
  let body;
  if (!items.length) {
    body = h('div', { class: 'card' }, h('div', { class: 'empty-state', id: 'oauth-empty' },
      h('div', { class: 'icon', 'aria-hidden': 'true' }, '🔑'),
      h('h2', {}, 'No OAuth credentials yet'),
      h('p', {}, 'Create an OAuth credential, then choose it in a webhook’s OAuth dropdown. This is optional: webhooks work without one.'),
      add('add-oauth-center')));
  } else {
    body = h('div', { class: 'card' }, h('div', { class: 'table-wrap' }, h('table', { id: 'oauth' },
      h('caption', { class: 'sr-only' }, 'OAuth credentials'),
      h('thead', {}, h('tr', {}, ['Name', 'OAuth URL', 'Method', 'Grant type', 'Client ID', 'Client secret', 'Updated'].map((t) => h('th', { scope: 'col' }, t)),
        h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
      h('tbody', {}, items.map((c) => {
        const tr = h('tr', { 'data-id': c.id });
        tr.append(
          h('td', { class: 'name-cell' }, h('strong', {}, c.name),
            c.secret_error ? h('span', { class: 'note' }, 'Not usable: ' + c.secret_error) : null),
          h('td', { class: 'url', title: c.token_url }, c.token_url),
          h('td', {}, h('span', { class: 'method' }, c.method)),
          h('td', {}, h('span', { class: 'event-key' }, c.grant_type)),
          h('td', { class: 'mono' }, c.client_id || '—'),
          h('td', { class: 'mono' }, c.client_secret_set ? MASK : '—'),
          h('td', { class: 'nowrap' }, h('time', { datetime: c.updated_at, title: fmtTime(c.updated_at) }, fmtShort(c.updated_at))),
          h('td', { class: 'actions' },
            h('a', { class: 'btn link', href: '#/oauth/' + c.id, 'aria-label': (ctx.canManage ? 'Edit ' : 'View ') + c.name }, ctx.canManage ? 'Edit' : 'View'),
            ctx.canManage ? h('button', {
              type: 'button', class: 'link danger-text', 'aria-label': 'Delete ' + c.name,
              onclick: async () => {
                if (!await ctx.confirm({ title: 'Delete OAuth credential?', ok: 'Delete', danger: true, message: `“${c.name}” will be deleted. Webhooks that use it must be changed first.` })) return;
                try {
                  await ctx.api('DELETE', '/oauth/' + c.id);
                  ctx.toast(`Deleted “${c.name}”.`);
                  ctx.go('#/oauth');
                } catch (err) {
                  ctx.toast('Could not delete: ' + err.message, true);
                }
              },
            }, 'Delete') : null));
        return tr;
      })))));
  }
  return h('div', { class: 'page' }, head, ctx.readOnlyNotice(), body);
}

export async function oauthPage(ctx, id) {
  const existing = id ? await ctx.api('GET', '/oauth/' + id) : null;
  const form = await oauthForm(ctx, existing, {
    onSaved: (c) => { ctx.toast(`Saved “${c.name}”.`); ctx.go('#/oauth'); },
    onCancel: () => ctx.go('#/oauth'),
  });
  const title = id ? (ctx.canManage ? 'Edit OAuth' : 'OAuth') : 'Add OAuth';
  return h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('div', {},
      h('p', { class: 'crumbs' }, h('a', { href: '#/oauth' }, 'OAuth'), ' / ', existing ? existing.name : 'New'),
      h('h1', {}, title))),
    ctx.readOnlyNotice(),
    h('div', { class: 'card' }, h('div', { class: 'card-body' }, form)));
}

/**
 * oauthForm is the credential form, used on its page and in the webhook form's dialog. Saved
 * secrets come back masked; leaving the mask in place keeps the stored value.
 */
export async function oauthForm(ctx, c, { onSaved, onCancel }) {
  const ro = !ctx.canManage;
  const v = c || { name: '', token_url: '', method: 'POST', grant_type: 'authorization_code', client_id: '', scope: '' };
  const p = c ? 'o-' + c.id : 'o-new';
  const secretInput = (name, set) => h('input', {
    type: 'password', name, value: set ? MASK : '', autocomplete: 'new-password', spellcheck: 'false', disabled: ro,
    placeholder: set ? 'Saved — type to replace' : '',
  });
  const name = h('input', { type: 'text', name: 'name', value: v.name, maxlength: '100', autocomplete: 'off', disabled: ro });
  const url = h('input', { type: 'url', name: 'token_url', value: v.token_url, placeholder: 'https://auth.example.com/oauth/token', autocomplete: 'off', spellcheck: 'false', disabled: ro });
  const method = h('select', { name: 'method', disabled: ro }, ['POST', 'GET'].map((m) => option(m, m, m === v.method)));
  const clientID = h('input', { type: 'text', name: 'client_id', value: v.client_id, autocomplete: 'off', spellcheck: 'false', disabled: ro });
  const clientSecret = secretInput('client_secret', c && c.client_secret_set);
  const grant = h('select', { name: 'grant_type', disabled: ro }, GRANTS.map(([val, text]) => option(val, text, val === v.grant_type)));
  const code = secretInput('code', c && c.code_set);
  const refresh = secretInput('refresh_token', c && c.refresh_token_set);
  const scope = h('input', { type: 'text', name: 'scope', value: v.scope, autocomplete: 'off', disabled: ro });
  // A saved secret is never sent to a token URL chosen after it was stored: when the URL changes,
  // the masked secrets are cleared and must be typed again; back to the saved URL, they are kept.
  const secretsAgain = h('p', { class: 'hint warn wide', id: p + '-secrets-again', role: 'status', hidden: true },
    'The OAuth URL changed: type the hidden secrets and parameter values again. walhook never sends a saved secret to a new address.');
  url.addEventListener('input', () => {
    if (!c) return;
    const changed = url.value.trim() !== c.token_url;
    let again = false;
    for (const [input, set] of [[clientSecret, c.client_secret_set], [code, c.code_set], [refresh, c.refresh_token_set]]) {
      if (!set) continue;
      if (changed && input.value === MASK) { input.value = ''; input.dataset.again = '1'; input.placeholder = 'Type it again: the OAuth URL changed'; }
      if (!changed && input.dataset.again && input.value === '') { input.value = MASK; delete input.dataset.again; input.placeholder = 'Saved — type to replace'; }
      again = again || !!input.dataset.again;
    }
    for (const x of extras) {
      if (changed && x.value === MASK) { x.value = ''; x.again = true; }
      if (!changed && x.again && x.value === '') { x.value = MASK; x.again = false; }
      again = again || !!x.again;
    }
    secretsAgain.hidden = !(again && changed);
    renderExtras();
  });
  const refreshField = field({ label: 'refresh_token', id: p + '-refresh', name: 'refresh_token', control: refresh, hint: 'Needed for the refresh_token grant.' });
  const syncGrant = () => { refreshField.hidden = grant.value !== 'refresh_token' && !(c && c.refresh_token_set); };
  grant.addEventListener('change', syncGrant);
  syncGrant();

  // Extra parameters: more key–value pairs for the token request (audience, resource, password,
  // client_assertion…). A value marked secret, or whose key looks like a credential, is stored
  // encrypted and comes back masked; leaving the mask in place keeps it (as for headers).
  const extras = (v.extra_params || []).map((x) => ({ key: x.key, value: x.value, secret: !!x.secret }));
  const extraRows = h('div', { class: 'rows', id: p + '-extra-rows' });
  const renderExtras = () => {
    extraRows.replaceChildren(...extras.map((x, i) => {
      const k = h('input', { type: 'text', id: `${p}-x-key-${i}`, value: x.key, placeholder: 'audience', autocomplete: 'off', spellcheck: 'false', disabled: ro,
        'aria-describedby': errId(`extra_params[${i}].key`), oninput: (e) => { x.key = e.target.value; } });
      const masked = x.value === MASK;
      const val = h('input', { type: x.secret || masked || x.again ? 'password' : 'text', id: `${p}-x-val-${i}`, value: x.value, autocomplete: 'off', spellcheck: 'false', disabled: ro,
        placeholder: x.again ? 'Type the value again: the OAuth URL changed' : masked ? 'Saved — type to replace' : '',
        'aria-describedby': errId(`extra_params[${i}].value`), oninput: (e) => { x.value = e.target.value; } });
      if (masked) val.addEventListener('focus', () => { if (val.value === MASK) val.select(); });
      const sec = h('input', { type: 'checkbox', id: `${p}-x-sec-${i}`, disabled: ro,
        onchange: (e) => { x.secret = e.target.checked; val.type = x.secret || val.value === MASK ? 'password' : 'text'; } });
      sec.checked = x.secret;
      return h('div', { class: 'row extra-row' },
        h('div', { class: 'cell' }, h('label', { class: 'sr-only', for: k.id }, `Extra parameter ${i + 1} key`), k,
          h('p', { class: 'field-error', id: errId(`extra_params[${i}].key`), 'data-control': k.id })),
        h('div', { class: 'cell' }, h('label', { class: 'sr-only', for: val.id }, `Extra parameter ${i + 1} value`), val,
          h('p', { class: 'field-error', id: errId(`extra_params[${i}].value`), 'data-control': val.id })),
        h('label', { class: 'check', for: sec.id }, sec, 'Secret', h('span', { class: 'sr-only' }, ` (extra parameter ${i + 1})`)),
        ro ? h('span') : h('button', { type: 'button', class: 'link danger-text', 'aria-label': `Remove extra parameter ${i + 1}`,
          onclick: () => { extras.splice(i, 1); renderExtras(); (extraRows.querySelector('input') || addExtra).focus(); } }, 'Remove'));
    }));
    if (!extras.length) extraRows.append(h('p', { class: 'hint' }, 'No extra parameters.'));
  };
  const addExtra = h('button', { type: 'button', class: 'small', id: p + '-add-extra', disabled: ro,
    onclick: () => { extras.push({ key: '', value: '', secret: false }); renderExtras(); extraRows.querySelector('.extra-row:last-child input').focus(); } }, '+ Add parameter');
  renderExtras();

  const summary = h('div', { class: 'summary', role: 'alert', tabindex: '-1' });
  const save = h('button', { type: 'submit', class: 'primary', id: 'oauth-save' }, 'Save');
  const form = h('form', {
    class: 'grid', id: 'oauth-form', novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      if (ro) return;
      const body = {
        name: name.value.trim(), token_url: url.value.trim(), method: method.value, grant_type: grant.value,
        client_id: clientID.value.trim(), client_secret: clientSecret.value, code: code.value, scope: scope.value.trim(),
      };
      if (!refreshField.hidden) body.refresh_token = refresh.value;
      // Rows left entirely empty are dropped; the API's row numbers then match the rows shown
      // only when none is, so a blank row in the middle is kept for the API to name.
      const before = extras.length;
      while (extras.length && !extras[extras.length - 1].key && !extras[extras.length - 1].value) extras.pop();
      if (extras.length !== before) renderExtras();
      // A hidden value left empty after the URL changed goes as the mask: the API then names the
      // row whose value must be typed again.
      body.extra_params = extras.map((x) => ({ key: x.key.trim(), value: x.again && x.value === '' ? MASK : x.value, secret: x.secret }));
      save.disabled = true;
      try {
        const saved = c ? await ctx.api('PUT', '/oauth/' + c.id, body) : await ctx.api('POST', '/oauth', body);
        await onSaved(saved);
      } catch (err) {
        showErrors(form, summary, err);
      } finally {
        save.disabled = false;
      }
    },
  },
  summary,
  field({ label: 'OAuth name', id: p + '-name', name: 'name', control: name, required: true }),
  field({ label: 'OAuth URL', id: p + '-url', name: 'token_url', control: url, required: true, hint: 'The token endpoint.' }),
  field({ label: 'Method', id: p + '-method', name: 'method', control: method }),
  secretsAgain,
  h('fieldset', { class: 'wide' },
    h('legend', {}, 'Query parameters'),
    h('div', { class: 'inner-grid' },
      field({ label: 'client_id', id: p + '-client-id', name: 'client_id', control: clientID }),
      field({ label: 'client_secret', id: p + '-client-secret', name: 'client_secret', control: clientSecret, hint: c && c.client_secret_set ? 'Saved and hidden. Type a new value to replace it.' : 'Stored encrypted; never shown again.' }),
      field({ label: 'grant_type', id: p + '-grant', name: 'grant_type', control: grant, required: true }),
      field({ label: 'code', id: p + '-code', name: 'code', control: code, hint: c && c.code_set ? 'Saved and hidden. Type a new value to replace it.' : 'The authorization code, for the authorization_code grant.' }),
      field({ label: 'scope', id: p + '-scope', name: 'scope', control: scope, hint: 'Optional, space-separated.' }),
      refreshField)),
  h('fieldset', { class: 'wide', id: p + '-extras' },
    h('legend', {}, 'Extra parameters'),
    h('p', { class: 'hint' }, 'More parameters for the token request, such as audience, resource, password or client_assertion. Mark a value secret to store it encrypted and never show it again; a key that looks like a credential (password, assertion, api_key, anything with token, secret or auth) is hidden the same way.'),
    h('div', { class: 'row-head row extra-row', 'aria-hidden': 'true' }, h('span', {}, 'Key'), h('span', {}, 'Value'), h('span'), h('span')),
    extraRows,
    h('p', { class: 'field-error', id: errId('extra_params') }),
    ro ? null : addExtra),
  h('div', { class: 'form-actions' },
    h('span', { class: 'spacer' }),
    h('button', { type: 'button', onclick: () => onCancel() }, ro ? 'Back' : 'Cancel'),
    ro ? null : save));
  return form;
}
