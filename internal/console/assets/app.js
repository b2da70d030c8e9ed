// Strait's console: links, mirror topics and their lag, read from the REST
// API every few seconds (?refresh=N sets N seconds), and the mirror
// operations. Everything from the API reaches the page as text (dom.js).

import { request, credentials, setCredentials, onCredentialsNeeded, seg } from './api.js';
import { el, clear, setText, num, ago, badge } from './dom.js';
import { drawChart, span } from './chart.js';
import { askCredentials } from './login.js';
import { confirmOperation } from './actions.js';

const params = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(1, Number(params.get('refresh')) || 5) * 1000;

const STATUSES = ['ACTIVE', 'PAUSED', 'PENDING_MIRROR', 'PENDING_STOPPED', 'STOPPED', 'FAILED',
  'LINK_PAUSED', 'LINK_FAILED', 'SOURCE_UNAVAILABLE', 'PENDING_SYNCHRONIZE',
  'PENDING_SETUP_FOR_RESTORE', 'PENDING_RESTORE'];

const state = {
  cluster: null,
  links: [],
  tasks: new Map(), // link name -> tasks
  mirrors: [],
  filter: '',
  status: '',
  sort: { key: 'name', dir: 1 },
  page: 0,
  pageSize: 50,
  selected: null, // {link, topic}
  detail: null, // the selected mirror, described
  history: null, // its lag history
  error: null,
  declined: false, // the user cancelled the sign-in: ask again only on request
  refreshedAt: 0,
};

const $ = (id) => document.getElementById(id);

function base() {
  return `kafka/v3/clusters/${seg(state.cluster)}`;
}

function totalLag(m) {
  return (m.mirror_lags || []).reduce((n, p) => n + (p.lag || 0), 0);
}

// Refreshing.

let refreshing = null;
let again = false; // a refresh was asked for while one ran: run another

function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      await load();
      render();
    } while (again);
  })().finally(() => { refreshing = null; });
  return refreshing;
}

let epoch = 0; // changes at sign-out: what was read before is dropped

async function load() {
  const mine = epoch;
  try {
    if (!state.cluster) {
      const cl = await request('GET', 'kafka/v3/clusters');
      if (mine !== epoch) return;
      state.cluster = cl.data[0].cluster_id;
    }
    const [links, mirrors] = await Promise.all([
      request('GET', `${base()}/links`),
      request('GET', `${base()}/links/-/mirrors`),
    ]);
    const tasks = await Promise.all((links.data || []).map((l) =>
      request('GET', `${base()}/links/${seg(l.link_name)}?include_tasks=true`).then((d) => d.tasks || [], () => null)));
    if (mine !== epoch) return;
    state.links = links.data || [];
    state.mirrors = mirrors.data || [];
    state.tasks = new Map(state.links.map((l, i) => [l.link_name, tasks[i]]));
    await loadDetail(mine);
    state.error = null;
    state.refreshedAt = Date.now();
  } catch (e) {
    if (mine === epoch) state.error = e;
  }
}

async function loadDetail(mine) {
  const sel = state.selected;
  if (!sel) return;
  const path = `${base()}/links/${seg(sel.link)}/mirrors/${seg(sel.topic)}?include_state_transition_errors=true`;
  const hist = `strait/v1/lag-history?link=${seg(sel.link)}&topic=${seg(sel.topic)}`;
  try {
    const [d, h] = await Promise.all([request('GET', path), request('GET', hist)]);
    if (state.selected === sel && mine === epoch) {
      state.detail = d;
      state.history = h;
    }
  } catch (e) {
    if (state.selected === sel && mine === epoch) {
      state.detail = null;
      state.history = null;
      if (e.status === 404) state.selected = null; // deleted meanwhile
      else throw e;
    }
  }
}

// Rendering.

function render() {
  renderHeader();
  renderLinks();
  renderMirrors();
  renderDetail();
}

function renderHeader() {
  setText($('cluster'), state.cluster ? `cluster ${state.cluster}` : '');
  setText($('refreshed'), state.refreshedAt ? `updated ${new Date(state.refreshedAt).toLocaleTimeString()}` : '');
  const c = credentials();
  setText($('who'), c ? (c.type === 'bearer' ? 'signed in with a token' : `signed in as ${c.key}`) : '');
  $('signout').hidden = !c;
  const unauth = state.error && state.error.status === 401;
  $('signin').hidden = !unauth;
  const banner = $('banner');
  banner.hidden = !state.error;
  setText(banner, state.error ? (unauth ? 'Not signed in: the API needs credentials.' : state.error.message) : '');
}

function renderLinks() {
  const body = $('links').tBodies[0];
  clear(body);
  $('links-empty').hidden = state.links.length > 0;
  for (const l of state.links) {
    const tasks = state.tasks.get(l.link_name);
    const counts = new Map();
    for (const m of state.mirrors) if (m.link_name === l.link_name) counts.set(m.mirror_status, (counts.get(m.mirror_status) || 0) + 1);
    const error = l.link_error && l.link_error !== 'NO_ERROR' ? [l.link_error, l.link_error_message ? `: ${l.link_error_message}` : ''].join('') : '';
    body.append(el('tr', { dataset: { link: l.link_name } },
      el('td', null, l.link_name),
      el('td', { class: 'state' }, badge(l.link_state)),
      el('td', { class: error ? 'error' : 'muted' }, error || 'none'),
      el('td', null, l.source_cluster_id || l.remote_cluster_id || '-'),
      el('td', null, [...counts].map(([s, n]) => el('span', { class: 'count' }, badge(s), ` ${num(n)}`))),
      el('td', { class: 'tasks' }, tasks === null ? el('span', { class: 'muted' }, 'not readable')
        : (tasks || []).map((t) => el('div', { class: 'task' },
          el('span', { class: 'task-name' }, t.task_name), ' ', badge(t.state),
          (t.errors || []).map((e) => el('div', { class: 'error' }, `${e.error_code}: ${e.error_message}`)))))));
  }
}

const sorters = {
  link: (m) => m.link_name,
  name: (m) => m.mirror_topic_name,
  source: (m) => m.source_topic_name,
  status: (m) => m.mirror_status,
  partitions: (m) => m.num_partitions,
  lag: totalLag,
  error: (m) => m.mirror_topic_error,
  since: (m) => m.state_time_ms,
};

function compare(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a ?? '').localeCompare(String(b ?? ''));
}

function visibleMirrors() {
  const f = state.filter.toLowerCase();
  const rows = state.mirrors.filter((m) => (!state.status || m.mirror_status === state.status) &&
    (!f || m.mirror_topic_name.toLowerCase().includes(f) || (m.source_topic_name || '').toLowerCase().includes(f)));
  const key = sorters[state.sort.key];
  rows.sort((a, b) => state.sort.dir * compare(key(a), key(b)) ||
    compare(a.link_name, b.link_name) || compare(a.mirror_topic_name, b.mirror_topic_name));
  return rows;
}

function isSelected(m) {
  return state.selected && state.selected.link === m.link_name && state.selected.topic === m.mirror_topic_name;
}

function renderMirrors() {
  const rows = visibleMirrors();
  const pages = Math.max(1, Math.ceil(rows.length / state.pageSize));
  state.page = Math.min(state.page, pages - 1);
  const first = state.page * state.pageSize;
  const shown = rows.slice(first, first + state.pageSize);
  const now = Date.now();
  const body = $('mirrors').tBodies[0];
  clear(body);
  for (const m of shown) {
    const err = m.mirror_topic_error && m.mirror_topic_error !== 'NO_ERROR' ? m.mirror_topic_error : '';
    body.append(el('tr', { class: isSelected(m) ? 'selected' : null, dataset: { link: m.link_name, topic: m.mirror_topic_name } },
      el('td', null, m.link_name),
      el('td', { class: 'name' }, el('button', { type: 'button', class: 'linklike' }, m.mirror_topic_name)),
      el('td', null, m.source_topic_name),
      el('td', { class: 'status' }, badge(m.mirror_status)),
      el('td', { class: 'num' }, num(m.num_partitions)),
      el('td', { class: 'num lag' }, num(totalLag(m))),
      el('td', { class: err ? 'error' : 'muted' }, err || 'none'),
      el('td', { title: m.state_time_ms ? new Date(m.state_time_ms).toLocaleString() : null }, ago(m.state_time_ms, now))));
  }
  if (shown.length === 0) {
    body.append(el('tr', null, el('td', { colspan: 8, class: 'muted' }, state.mirrors.length ? 'No mirror topic matches.' : 'No mirror topics.')));
  }
  const total = state.mirrors.length;
  setText($('mirror-count'), rows.length === total ? `(${num(total)})` : `(${num(rows.length)} of ${num(total)})`);
  setText($('page-info'), rows.length ? `${num(first + 1)}-${num(first + shown.length)} of ${num(rows.length)}, page ${state.page + 1} of ${pages}` : '');
  $('prev').disabled = state.page === 0;
  $('next').disabled = state.page >= pages - 1;
  for (const th of $('mirrors').tHead.rows[0].cells) {
    th.setAttribute('aria-sort', th.dataset.sort === state.sort.key ? (state.sort.dir > 0 ? 'ascending' : 'descending') : 'none');
  }
}

function renderDetail() {
  const d = state.detail;
  const section = $('detail');
  section.hidden = !state.selected || !d;
  if (section.hidden) return;
  setText($('detail-name'), `${d.link_name} / ${d.mirror_topic_name}`);
  clear($('detail-status')).append(badge(d.mirror_status));
  const facts = clear($('detail-facts'));
  const fact = (k, v) => facts.append(el('dt', null, k), el('dd', null, v));
  fact('Source topic', d.source_topic_name);
  fact('Partitions', num(d.num_partitions));
  fact('Lag', `${num(totalLag(d))} records`);
  fact('Error', d.mirror_topic_error || '-');
  fact('Status since', d.state_time_ms ? new Date(d.state_time_ms).toLocaleString() : '-');

  const points = (state.history && state.history.points) || [];
  const intervalMs = (state.history && state.history.interval_ms) || 10000;
  const opts = { nowMs: Date.now(), intervalMs };
  const last = span(intervalMs * 360);
  setText($('caption-records'), `Lag in records, last ${last}`);
  setText($('caption-seconds'), `Lag in seconds (age of the oldest record not copied yet), last ${last}`);
  drawChart($('chart-records'), points.map((p) => ({ time_ms: p.time_ms, value: p.lag_records })),
    { ...opts, unit: '', least: 10, empty: `No samples yet: one is taken every ${span(intervalMs)}.` });
  drawChart($('chart-seconds'), points.filter((p) => p.lag_seconds !== null).map((p) => ({ time_ms: p.time_ms, value: p.lag_seconds })),
    { ...opts, unit: 's', empty: 'No lag in seconds known yet.' });

  // Which instance copies each partition, when several share the work.
  const shared = (d.mirror_lags || []).some((p) => p.strait_instance);
  $('partitions-instance').hidden = !shared;
  const body = clear($('partitions').tBodies[0]);
  for (const p of d.mirror_lags || []) {
    body.append(el('tr', null, el('td', { class: 'num' }, num(p.partition)), el('td', { class: 'num' }, num(p.lag)),
      el('td', { class: 'num' }, p.last_source_fetch_offset >= 0 ? num(p.last_source_fetch_offset) : 'not seen yet'),
      shared ? el('td', null, p.strait_instance || '-') : null));
  }
  const errs = clear($('transition-errors'));
  const te = d.mirror_state_transition_errors || [];
  if (te.length) {
    errs.append(el('h3', null, 'State transition errors'),
      el('ul', null, te.map((e) => el('li', { class: 'error' }, `${e.error_code}: ${e.error_message}`))));
  }
}

// Events.

function select(link, topic) {
  state.selected = { link, topic };
  state.detail = null;
  state.history = null;
  history.replaceState(null, '', `#${seg(link)}/${seg(topic)}`);
  render();
  refresh();
}

$('mirrors').tBodies[0].addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-topic]');
  if (tr) select(tr.dataset.link, tr.dataset.topic);
});
for (const th of $('mirrors').tHead.rows[0].cells) {
  th.querySelector('button').addEventListener('click', () => {
    const key = th.dataset.sort;
    state.sort = state.sort.key === key ? { key, dir: -state.sort.dir } : { key, dir: key === 'lag' ? -1 : 1 };
    render();
  });
}
$('filter').addEventListener('input', (e) => {
  state.filter = e.target.value.trim();
  state.page = 0;
  renderMirrors();
});
for (const s of STATUSES) $('status-filter').append(el('option', { value: s }, s));
$('status-filter').addEventListener('change', (e) => {
  state.status = e.target.value;
  state.page = 0;
  renderMirrors();
});
$('page-size').addEventListener('change', (e) => {
  state.pageSize = Number(e.target.value) || 50;
  state.page = 0;
  renderMirrors();
});
$('prev').addEventListener('click', () => { state.page--; renderMirrors(); });
$('next').addEventListener('click', () => { state.page++; renderMirrors(); });
$('detail-close').addEventListener('click', () => {
  state.selected = null;
  state.detail = null;
  history.replaceState(null, '', location.pathname + location.search);
  render();
});
for (const b of document.querySelectorAll('#detail .actions button[data-op]')) {
  b.addEventListener('click', () => {
    const sel = state.selected;
    if (!sel || !state.cluster) return;
    confirmOperation(b.dataset.op, `${base()}/links/${seg(sel.link)}/mirrors`, sel.topic, () => refresh());
  });
}
$('signout').addEventListener('click', () => {
  setCredentials(null);
  // What the old credentials could read goes at once, and what they are
  // reading still is dropped when it comes.
  epoch++;
  state.cluster = null;
  state.links = [];
  state.tasks = new Map();
  state.mirrors = [];
  state.detail = null;
  state.history = null;
  state.refreshedAt = 0;
  render();
  refresh();
});
$('signin').addEventListener('click', () => {
  state.declined = false;
  refresh();
});

onCredentialsNeeded(async (rejected) => {
  if (state.declined) return false;
  const ok = await askCredentials(rejected);
  state.declined = !ok;
  return ok;
});

// Start: a mirror named in the address (#link/topic) is selected.
if (location.hash.length > 1) {
  const [l, t] = location.hash.slice(1).split('/');
  try {
    if (l && t) state.selected = { link: decodeURIComponent(l), topic: decodeURIComponent(t) };
  } catch {
    // not a mirror's address: nothing selected
  }
}
async function poll() {
  await refresh();
  setTimeout(poll, REFRESH_MS);
}
poll();
