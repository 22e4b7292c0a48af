// walhook web page: sign-in, the Settings screens (Webhooks, OAuth, Permissions) and History,
// over the /v1 API. Plain ES modules, no build step; routes live in the URL fragment (#/…).

import { client, session, whoami, redeem, framed, APIError } from './api.js';
import { h, openDialog, stackable } from './dom.js';
import { webhookList } from './webhooks.js';
import { webhookForm } from './webhook-form.js';
import { oauthList, oauthPage } from './oauth.js';
import { historyPage, deliveryPage } from './history.js';
import { permissionsPage } from './permissions.js';

const routes = [
  [/^\/webhooks$/, webhookList],
  [/^\/webhooks\/new$/, (ctx) => webhookForm(ctx, null)],
  [/^\/webhooks\/(\d+)$/, (ctx, id) => webhookForm(ctx, id)],
  [/^\/webhooks\/(\d+)\/history$/, historyPage],
  // A delivery is named by its public id (msg_ and 26 base32 characters), never a row id.
  [/^\/webhooks\/(\d+)\/history\/(msg_[a-z2-7]{26})$/, deliveryPage],
  [/^\/oauth$/, oauthList],
  [/^\/oauth\/new$/, (ctx) => oauthPage(ctx, null)],
  [/^\/oauth\/(\d+)$/, (ctx, id) => oauthPage(ctx, id)],
  [/^\/permissions$/, permissionsPage],
];

const nav = [
  ['#/webhooks', 'Webhooks', /^\/webhooks/],
  ['#/oauth', 'OAuth', /^\/oauth/],
  ['#/permissions', 'Permissions', /^\/permissions/, (me) => me.member.is_owner],
];

/** App holds the signed-in session and renders the current route. */
class App {
  constructor(root) {
    this.root = root;
    this.toastEl = document.getElementById('toast');
    this.leave = [];
    this.seq = 0;
  }

  async start() {
    // A sign-in link opened in a tab that shows the page already only changes the fragment.
    window.addEventListener('hashchange', () => (location.hash.startsWith('#login=') ? this.boot() : this.route()));
    return this.boot();
  }

  async boot() {
    this.me = null;
    const m = location.hash.match(/^#login=([^&]+)/);
    if (m) {
      // A one-time sign-in link (printed by `walhook dev`): the code is in the fragment, which
      // browsers never send to a server. Take it out of the address bar and history at once, then
      // exchange it (once) for a session token.
      const code = decodeURIComponent(m[1]);
      history.replaceState(null, '', location.pathname + '#/webhooks');
      try {
        const token = await redeem(code);
        this.me = await whoami(token);
        session.set(token);
      } catch (e) {
        session.clear();
        // In a host application's frame the way back is the host's own screen, which mints a
        // new link; on its own, the page offers the token form.
        const again = framed() ? 'Open this screen again from your application.' : 'Sign in with an API token.';
        return this.signIn(e instanceof APIError && e.status === 401 ? 'This sign-in link was already used or has expired. ' + again : e.message);
      }
    }
    const token = session.get();
    if (!token) return this.signIn();
    if (!this.me) {
      try {
        this.me = await whoami(token);
      } catch (e) {
        if (e.status === 401) session.clear();
        return this.signIn(e.status === 401 ? 'Your session has ended. Sign in again.' : e.message);
      }
    }
    this.begin(token);
  }

  /** signOut revokes the session's token on the server (POST /v1/logout), then forgets it. */
  async signOut() {
    const api = this.api;
    this.api = null;
    try {
      await client(session.get())('POST', '/logout');
    } catch (e) {
      // Already revoked or expired, or the server is unreachable: the browser forgets it anyway.
    }
    session.clear();
    this.me = null;
    history.replaceState(null, '', location.pathname);
    this.signIn(api ? 'You are signed out; the token no longer works.' : undefined);
  }

  begin(token) {
    this.api = client(token, () => {
      session.clear();
      this.me = null;
      this.signIn('Your session has ended. Sign in again.');
    });
    this.canManage = this.me.permissions.includes('manage_webhooks');
    this.isOwner = this.me.member.is_owner;
    this.layout();
    if (!location.hash || location.hash === '#' || location.hash === '#/') {
      history.replaceState(null, '', location.pathname + '#/webhooks');
    }
    this.route();
  }

  signIn(message) {
    this.cleanup();
    this.root.className = 'app bare';
    const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'token-hint signin-error', required: true });
    const error = h('p', { class: 'error', id: 'signin-error', role: 'alert' }, message || '');
    const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
    const form = h('form', {
      novalidate: true,
      onsubmit: async (e) => {
        e.preventDefault();
        const token = input.value.trim();
        if (!token) {
          error.textContent = 'Enter your API token.';
          input.setAttribute('aria-invalid', 'true');
          input.focus();
          return;
        }
        button.disabled = true;
        error.textContent = '';
        try {
          this.me = await whoami(token);
          session.set(token);
          history.replaceState(null, '', location.pathname + '#/webhooks');
          this.begin(token);
        } catch (err) {
          error.textContent = err.status === 401 ? 'This token is unknown, revoked or expired.' : err.message;
          input.setAttribute('aria-invalid', 'true');
          input.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    h('div', { class: 'field' },
      h('label', { for: 'token' }, 'API token'),
      input,
      h('p', { class: 'hint', id: 'token-hint' }, 'A token starts with whk_. Create one with ', h('code', {}, 'walhook token create'), ', or open the sign-in link that ', h('code', {}, 'walhook dev'), ' prints. Signing out revokes the token the page holds.')),
    error,
    button);
    this.root.replaceChildren(h('main', { id: 'main', class: 'signin' },
      h('div', { class: 'card' }, h('div', { class: 'card-body' },
        h('span', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'walhook'),
        h('h1', {}, 'Sign in'),
        h('p', { class: 'muted' }, 'Manage your company’s webhooks and see what was sent.'),
        form))));
    input.focus();
  }

  layout() {
    this.root.className = 'app';
    const me = this.me;
    this.navLinks = nav.filter((n) => !n[3] || n[3](me)).map(([href, text, re]) => {
      const a = h('a', { href }, text);
      a.dataset.match = re.source;
      return a;
    });
    this.main = h('main', { id: 'main', tabindex: '-1' });
    const role = me.member.is_owner ? 'Owner' : (me.role ? me.role.name : 'No role');
    this.root.replaceChildren(
      h('header', { class: 'topbar' },
        h('a', { class: 'brand', href: '#/webhooks' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'walhook'),
        h('span', { class: 'company' }, me.company.name),
        h('span', { class: 'spacer' }),
        h('span', { class: 'who' }, h('strong', {}, me.member.name || me.member.email), h('br'), role),
        h('button', { type: 'button', class: 'small', id: 'signout', onclick: () => this.signOut() }, 'Sign out')),
      h('nav', { class: 'sidenav', 'aria-label': 'Main' },
        h('h2', {}, 'Settings'),
        h('ul', {}, this.navLinks.map((a) => h('li', {}, a)))),
      this.main);
  }

  cleanup() {
    for (const f of this.leave.splice(0)) f();
  }

  async route() {
    if (!this.api || !this.main) return;
    const path = location.hash.replace(/^#/, '') || '/webhooks';
    this.cleanup();
    const seq = ++this.seq;
    for (const a of this.navLinks) {
      if (new RegExp(a.dataset.match).test(path)) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const ctx = this.context(seq);
    let view = null;
    let args = [];
    for (const [re, v] of routes) {
      const m = path.match(re);
      if (m) { view = v; args = m.slice(1); break; }
    }
    this.main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
    let node;
    try {
      node = view ? await view(ctx, ...args) : notFoundPage();
    } catch (e) {
      if (e instanceof APIError && e.status === 401) return;
      node = h('div', { class: 'page' }, h('h1', { tabindex: '-1' }, e.status === 404 ? 'Not found' : 'Something went wrong'),
        h('p', { class: 'page-error', role: 'alert' }, e.message));
    }
    if (seq !== this.seq) return; // the route changed while this one loaded
    this.main.replaceChildren(node);
    // Data tables become cards on a narrow screen, so every row's actions stay in reach.
    for (const t of this.main.querySelectorAll('table:not(.kv)')) stackable(t);
    const h1 = this.main.querySelector('h1');
    if (h1) { // move focus to the new page's heading, for keyboard and screen-reader users
      h1.tabIndex = -1;
      h1.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }

  /** context is what a view gets: the API, who is signed in, and page services. */
  context(seq) {
    return {
      api: this.api,
      me: this.me,
      canManage: this.canManage,
      isOwner: this.isOwner,
      go: (hash) => { if (location.hash === hash) this.route(); else location.hash = hash; },
      current: () => seq === this.seq,
      onLeave: (f) => this.leave.push(f),
      toast: (msg, error) => this.toast(msg, error),
      confirm: (opts) => confirmDialog(opts),
      readOnlyNotice: () => this.canManage ? null : h('p', { class: 'notice', id: 'readonly-notice' },
        'Read only: changing webhooks and OAuth credentials needs the Manage Webhooks permission. Ask the company owner to grant it to your role.'),
    };
  }

  toast(msg, error) {
    clearTimeout(this.toastTimer);
    this.toastEl.className = error ? 'toast error' : 'toast';
    this.toastEl.textContent = msg;
    this.toastTimer = setTimeout(() => { this.toastEl.textContent = ''; }, error ? 8000 : 4000);
  }
}

function notFoundPage() {
  return h('div', { class: 'page' }, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/webhooks' }, 'Back to webhooks')));
}

/** confirmDialog asks a yes/no question in a modal dialog; resolves true when confirmed. */
export function confirmDialog({ title, message, ok = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const titleId = 'dlg-title-' + Math.random().toString(36).slice(2);
    const dlg = h('dialog', { class: 'small', 'aria-labelledby': titleId, 'aria-describedby': titleId + '-msg', id: 'confirm-dialog' },
      h('form', { method: 'dialog', class: 'dialog-body' },
        h('h2', { id: titleId }, title),
        h('p', { id: titleId + '-msg' }, message),
        h('div', { class: 'dialog-actions' },
          h('button', { value: 'cancel', id: 'confirm-cancel' }, 'Cancel'),
          h('button', { value: 'ok', class: danger ? 'danger' : 'primary', id: 'confirm-ok' }, ok))));
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'));
    openDialog(dlg, { focus: dlg.querySelector('#confirm-cancel') });
  });
}

// The skip link moves focus to the content without touching the fragment, which holds the route.
document.querySelector('.skip-link').addEventListener('click', (e) => {
  e.preventDefault();
  const main = document.getElementById('main');
  if (main) { main.tabIndex = -1; main.focus(); }
});

new App(document.getElementById('app')).start();
