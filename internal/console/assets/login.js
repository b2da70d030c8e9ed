// The sign-in dialog: asked for when the API answers 401.

import { setCredentials } from './api.js';
import { setText } from './dom.js';

const dialog = document.getElementById('login');
const form = document.getElementById('login-form');
const basic = document.getElementById('login-basic');
const bearer = document.getElementById('login-bearer');
const key = document.getElementById('login-key');
const secret = document.getElementById('login-secret');
const token = document.getElementById('login-token');

function method() {
  return form.elements.method.value;
}

function showMethod() {
  basic.hidden = method() !== 'basic';
  bearer.hidden = method() !== 'bearer';
}

for (const r of form.elements.method) r.addEventListener('change', showMethod);

let settle = null; // resolves the pending askCredentials

function finish(ok) {
  if (dialog.open) dialog.close();
  secret.value = '';
  token.value = '';
  if (settle) {
    const s = settle;
    settle = null;
    s(ok);
  }
}

form.addEventListener('submit', (e) => {
  // Never submitted: the values go to sessionStorage, not to a URL.
  e.preventDefault();
  if (method() === 'bearer') {
    const t = token.value.trim();
    if (!t) return;
    setCredentials({ type: 'bearer', token: t });
  } else {
    if (!key.value) return;
    setCredentials({ type: 'basic', key: key.value, secret: secret.value });
  }
  finish(true);
});
document.getElementById('login-cancel').addEventListener('click', () => finish(false));
dialog.addEventListener('cancel', (e) => {
  e.preventDefault();
  finish(false);
});

// askCredentials shows the dialog and resolves true once credentials are
// stored, false when the user cancels. rejected says the last ones were
// refused.
export function askCredentials(rejected) {
  if (settle) return Promise.resolve(false);
  setText(document.getElementById('login-why'), rejected
    ? 'Strait refused these credentials. Check them and try again.'
    : 'This Strait needs credentials: an API key and its secret, or a bearer token.');
  showMethod();
  return new Promise((resolve) => {
    settle = resolve;
    dialog.showModal();
    (method() === 'bearer' ? token : key).focus();
  });
}
