// Mirror operations with a confirmation: the dialog first runs the
// operation with validate_only=true (the dry run) and shows its result for
// each topic; only a confirm runs it for real.

import { request } from './api.js';
import { el, clear, setText, num } from './dom.js';

export const OPS = {
  pause: {
    label: 'Pause',
    text: 'Pausing stops copying into {t}; its lag grows until it is resumed.',
  },
  resume: {
    label: 'Resume',
    text: 'Resuming copies into {t} again from where it stopped.',
  },
  promote: {
    label: 'Promote',
    text: 'Promoting waits until {t} holds everything its source has (up to a minute), then stops the mirror: {t} becomes a writable topic. This cannot be undone.',
  },
  failover: {
    label: 'Fail over',
    text: 'Failing over stops the mirror at once, whatever its lag: records not copied yet are left behind and {t} becomes a writable topic. This cannot be undone.',
  },
};

const dialog = document.getElementById('confirm');
const title = document.getElementById('confirm-title');
const text = document.getElementById('confirm-text');
const phase = document.getElementById('confirm-phase');
const results = document.querySelector('#confirm-results tbody');
const ok = document.getElementById('confirm-ok');
const cancel = document.getElementById('confirm-cancel');

let current = null; // the operation the dialog is about

function lagOf(r) {
  return (r.mirror_lags || []).reduce((n, p) => n + (p.lag || 0), 0);
}

function showResults(data) {
  clear(results);
  let failed = 0;
  for (const r of data || []) {
    const bad = r.error_code !== null && r.error_code !== undefined;
    if (bad) failed++;
    results.append(el('tr', { class: bad ? 'bad' : 'good' },
      el('td', null, r.mirror_topic_name),
      el('td', null, bad ? `refused (${r.error_code}): ${r.error_message || ''}` : 'OK'),
      el('td', { class: 'num' }, num(lagOf(r)))));
  }
  return failed === 0 && (data || []).length > 0;
}

async function call(op, validateOnly) {
  const q = validateOnly ? '?validate_only=true' : '';
  const body = await request('POST', `${op.path}:${op.name}${q}`, { mirror_topic_names: [op.topic] });
  return body && body.data;
}

dialog.addEventListener('close', () => { current = null; });
cancel.addEventListener('click', () => dialog.close());
ok.addEventListener('click', async () => {
  const op = current;
  if (!op) return;
  ok.disabled = true;
  setText(cancel, 'Close');
  setText(phase, `Running ${op.label.toLowerCase()}...`);
  try {
    const data = await call(op, false);
    if (current !== op) return;
    if (showResults(data)) {
      setText(phase, 'Done.');
      dialog.close();
    } else {
      setText(phase, 'Refused: nothing was changed for the topics marked refused.');
    }
  } catch (e) {
    if (current === op) setText(phase, `Failed: ${e.message}`);
  } finally {
    op.done();
  }
});

// confirmOperation opens the dialog for operation name on topic, whose
// mirrors endpoint is path (.../links/{l}/mirrors); done runs after the
// real operation.
export async function confirmOperation(name, path, topic, done) {
  const spec = OPS[name];
  const op = { name, path, topic, label: spec.label, done };
  current = op;
  setText(title, `${spec.label} ${topic}?`);
  setText(text, spec.text.replaceAll('{t}', topic));
  setText(ok, spec.label);
  setText(cancel, 'Cancel');
  ok.disabled = true;
  clear(results);
  setText(phase, 'Dry run (validate_only=true)...');
  if (!dialog.open) dialog.showModal();
  try {
    const data = await call(op, true);
    if (current !== op) return;
    const fine = showResults(data);
    setText(phase, fine
      ? `Dry run: ${spec.label.toLowerCase()} would succeed. Nothing has changed yet.`
      : 'Dry run: refused. Nothing has changed.');
    ok.disabled = !fine;
    if (fine) ok.focus();
  } catch (e) {
    if (current === op) setText(phase, `Dry run failed: ${e.message}`);
  }
}
