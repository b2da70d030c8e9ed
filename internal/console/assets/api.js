// The REST API, as any client calls it. Credentials, when the API asks
// for them, live in this tab's sessionStorage only (nothing persistent,
// no cookie) and go out as HTTP Basic (API key and secret) or Bearer.

const STORE = 'strait.credentials';

// root is the daemon's root: the console is served at <root>console/.
export const root = new URL('../', document.baseURI);

// ApiError is a refused or failed request; message is the API's own.
export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// credentials returns the stored credentials, or null.
export function credentials() {
  try {
    const c = JSON.parse(sessionStorage.getItem(STORE));
    return c && (c.type === 'basic' || c.type === 'bearer') ? c : null;
  } catch {
    return null;
  }
}

// setCredentials stores c ({type:'basic', key, secret} or
// {type:'bearer', token}); null forgets them.
export function setCredentials(c) {
  if (c) sessionStorage.setItem(STORE, JSON.stringify(c));
  else sessionStorage.removeItem(STORE);
}

// base64 of a string's UTF-8 bytes (btoa alone takes Latin-1 only).
function base64(s) {
  let bin = '';
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

function authorization(c) {
  if (!c) return null;
  if (c.type === 'bearer') return 'Bearer ' + c.token;
  return 'Basic ' + base64(c.key + ':' + c.secret);
}

let ask = null; // async (rejected: bool) => bool, set by the page
let asking = null; // the question being asked, shared by every request

// onCredentialsNeeded sets what runs when the API answers 401: it asks
// for credentials and resolves true once new ones are stored, false when
// the user gives up.
export function onCredentialsNeeded(fn) {
  ask = fn;
}

// request sends one API call and returns its decoded JSON body (null when
// empty). A 401 asks for credentials and tries again with them.
export async function request(method, path, body) {
  for (;;) {
    const headers = { Accept: 'application/json' };
    const sent = credentials();
    const auth = authorization(sent);
    if (auth) headers.Authorization = auth;
    // credentials 'omit': no cookie, and no browser prompt of its own
    // on a 401; the page asks instead.
    const init = { method, headers, credentials: 'omit', cache: 'no-store', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(new URL(path, root), init);
    } catch (e) {
      throw new ApiError(0, 'Strait does not answer: ' + e.message);
    }
    if (res.status === 401 && ask) {
      if (!asking) asking = ask(sent !== null).finally(() => { asking = null; });
      if (await asking) continue;
      throw new ApiError(401, 'Not signed in: the API needs credentials.', 40101);
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      const msg = data && typeof data.message === 'string' ? data.message : `HTTP ${res.status} ${res.statusText}`;
      throw new ApiError(res.status, msg, data && data.error_code);
    }
    return data;
  }
}

// seg encodes one path segment.
export function seg(s) {
  return encodeURIComponent(s);
}
