// A line chart of one series over the last hour, drawn as SVG elements
// (no markup strings). The element gets data-points: how many samples it
// draws, which the tests read.

import { svg, clear, num } from './dom.js';

const W = 520;
const H = 170;
const PAD = { l: 64, r: 12, t: 10, b: 24 };
const SAMPLES = 360; // the history's length (console.HistoryPoints)

// span says a duration in minutes or seconds.
export function span(ms) {
  return ms >= 120000 ? `${Math.round(ms / 60000)} min` : `${Math.round(ms / 1000)} s`;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(v, least) {
  if (!(v > least)) return least;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

// drawChart draws points ({time_ms, value}) of the history's window (360
// samples: an hour at the default interval of 10 s) ending at nowMs into
// the <svg> node. Samples further apart than 2.5 intervals are not joined:
// the sampler was not running in between.
export function drawChart(node, points, { nowMs, intervalMs, unit, empty, least = 1 }) {
  clear(node);
  node.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const every = Math.max(intervalMs || 10000, 100);
  const window = every * SAMPLES;
  const t0 = nowMs - window;
  const pts = points.filter((p) => p.time_ms >= t0 && p.time_ms <= nowMs + every && typeof p.value === 'number');
  node.dataset.points = String(pts.length);
  const max = niceMax(Math.max(0, ...pts.map((p) => p.value)), least);
  const x = (t) => PAD.l + ((t - t0) / window) * (W - PAD.l - PAD.r);
  const y = (v) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);

  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    node.append(
      svg('line', { class: 'grid', x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }),
      svg('text', { class: 'tick', x: PAD.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, num(v) + (unit ? ' ' + unit : '')),
    );
  }
  for (const [f, label] of [[0, '-' + span(window)], [0.5, '-' + span(window / 2)], [1, 'now']]) {
    node.append(svg('text', { class: 'tick', x: x(t0 + f * window), y: H - 6, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle' }, label));
  }
  if (pts.length === 0) {
    node.append(svg('text', { class: 'empty', x: (W + PAD.l) / 2, y: H / 2, 'text-anchor': 'middle' }, empty));
    return;
  }
  const gap = every * 2.5;
  let seg = [];
  const flush = () => {
    if (seg.length === 1) {
      node.append(svg('circle', { class: 'dot', cx: x(seg[0].time_ms), cy: y(seg[0].value), r: 2.5 }));
    } else if (seg.length > 1) {
      node.append(svg('polyline', { class: 'line', points: seg.map((p) => `${x(p.time_ms).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ') }));
    }
    seg = [];
  };
  for (const p of pts) {
    if (seg.length > 0 && p.time_ms - seg[seg.length - 1].time_ms > gap) flush();
    seg.push(p);
  }
  flush();
  const last = pts[pts.length - 1];
  node.append(svg('circle', { class: 'dot last', cx: x(last.time_ms), cy: y(last.value), r: 3 }));
}
