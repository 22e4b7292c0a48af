// The /v1 API client: bearer token from the browser session, problem+json errors as APIError.

const TOKEN_KEY = 'walhook.token';

/** The token lives in sessionStorage: gone when the tab closes, never in a cookie. */
export const session = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

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
