// DOM helpers. Everything that comes from the API reaches the page through
// these as text nodes, text content or attribute values: never as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(node, props, children) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.setAttribute('class', v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// el creates an HTML element; string children become text nodes.
export function el(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

// svg creates an SVG element.
export function svg(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

// clear removes every child of node.
export function clear(node) {
  node.replaceChildren();
  return node;
}

// setText replaces node's content with text.
export function setText(node, text) {
  node.textContent = text == null ? '' : String(text);
  return node;
}

const numberFormat = new Intl.NumberFormat('en-US');

// num formats an integer with thousands separators; '-' when unknown.
export function num(n) {
  return typeof n === 'number' && Number.isFinite(n) ? numberFormat.format(n) : '-';
}

// ago says how long ago a time in milliseconds was.
export function ago(ms, now = Date.now()) {
  if (!ms || ms <= 0) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// Statuses the console colours; any other shows as plain text.
const KNOWN = new Set([
  'ACTIVE', 'PAUSED', 'PENDING_MIRROR', 'PENDING_STOPPED', 'STOPPED', 'FAILED', 'LINK_PAUSED',
  'LINK_FAILED', 'SOURCE_UNAVAILABLE', 'PENDING_SYNCHRONIZE', 'PENDING_SETUP_FOR_RESTORE',
  'PENDING_RESTORE', 'AVAILABLE', 'UNAVAILABLE', 'IN_ERROR', 'NOT_CONFIGURED', 'LINK_UNAVAILABLE',
]);

// badge shows a status; its class comes from a fixed list, never from data.
export function badge(status) {
  const cls = KNOWN.has(status) ? 'badge s-' + status.toLowerCase().replaceAll('_', '-') : 'badge';
  return el('span', { class: cls }, status || '-');
}
