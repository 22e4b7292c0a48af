// The /v1 API client: bearer token from the browser session, problem+json errors as APIError.

const TOKEN_KEY = 'walhook.token';

/**
 * store is where the token lives: sessionStorage, gone when the tab closes and never in a cookie.
 * Inside a host application's iframe the browser may refuse storage to the page (a third-party
 * frame when the user blocks third-party cookies: reading sessionStorage throws); the token then
 * lives in this variable only, for as long as the frame shows the page, and a reload asks for a
 * new sign-in link from the host application.
 */
let memoryToken = null;
function storage() {
  try {
    const s = window.sessionStorage;
    s.getItem(TOKEN_KEY); // throws when storage is denied
    return s;
  } catch {
    return null;
  }
}

export const session = {
  get: () => { const s = storage(); return (s && s.getItem(TOKEN_KEY)) || memoryToken; },
  set: (t) => {
    memoryToken = t;
    const s = storage();
    if (s) {
      try { s.setItem(TOKEN_KEY, t); } catch { /* full or denied: the variable keeps it */ }
    }
  },
  clear: () => { memoryToken = null; const s = storage(); if (s) s.removeItem(TOKEN_KEY); },
};

/** framed tells whether the page runs inside another page (a host application's iframe). */
export function framed() {
  try {
    return window.self !== window.top;
  } catch {
    return true;
  }
}

/** APIError is a failed call: status, the problem's detail and its per-field errors. */
export class APIError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.fields = (problem && problem.errors) || [];
  }
}

/**
 * client makes an API caller. onUnauthorized runs on a 401 (token unknown, revoked or expired),
 * so the page can go back to sign-in.
 */
export function client(token, onUnauthorized) {
  return async function call(method, path, body) {
    const headers = { Accept: 'application/json', Authorization: 'Bearer ' + token };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch('/v1' + path, init);
    } catch (e) {
      throw new APIError(0, { detail: 'walhook is not reachable: ' + e.message });
    }
    if (resp.status === 204) return null;
    const text = await resp.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = { detail: text }; }
    }
    if (!resp.ok) {
      if (resp.status === 401 && onUnauthorized) onUnauthorized();
      throw new APIError(resp.status, data);
    }
    return data;
  };
}

/** whoami checks a token: the /v1/me answer, or an APIError. */
export async function whoami(token) {
  return client(token)('GET', '/me');
}

/** redeem exchanges a one-time sign-in code (from a `#login=` link) for an API token. */
export async function redeem(code) {
  let resp;
  try {
    resp = await fetch('/v1/login', {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
      cache: 'no-store',
      body: JSON.stringify({ code }),
    });
  } catch (e) {
    throw new APIError(0, { detail: 'walhook is not reachable: ' + e.message });
  }
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new APIError(resp.status, data);
  return data.token;
}
