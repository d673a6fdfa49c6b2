// Small charts drawn on <canvas>: a rolling line chart for live metrics and a bar chart for
// per-day figures. Sharp on high-DPI screens, redrawn on resize, described for screen
// readers by the latest value.

import { h } from './dom.js';

const AXIS = '#545B64';
const GRID = '#EAEDED';
const FONT = '11px -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, Helvetica, Arial, sans-serif';

function frame(title, figure) {
  const canvas = h('canvas', { role: 'img', 'aria-label': title });
  const value = h('span', { class: 'chart-value' }, '—');
  const el = h('figure', { class: 'chart', ...figure }, h('figcaption', {}, h('span', {}, title), value), h('div', { class: 'chart-box' }, canvas));
  return { el, canvas, value };
}

function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 300;
  const height = canvas.clientHeight || 140;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = FONT;
  return { ctx, width, height };
}

function gridAndAxis(ctx, box, lo, hi, format) {
  ctx.strokeStyle = GRID;
  ctx.fillStyle = AXIS;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i += 1) {
    const y = box.top + (box.height * i) / 4;
    ctx.beginPath();
    ctx.moveTo(box.left, Math.round(y) + 0.5);
    ctx.lineTo(box.left + box.width, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.fillText(format(hi - ((hi - lo) * i) / 4), box.left - 6, y);
  }
}

function observe(canvas, draw) {
  if ('ResizeObserver' in window) new ResizeObserver(() => draw()).observe(canvas);
}

/**
 * A rolling line chart. series: [{ label, color }]. Returns { el, push(t, values), set(points) }
 * where a point is { t, values: [number per series] }.
 */
export function lineChart({ title, unit = '', series, max = null, capacity = 120, format = (v) => v.toFixed(0), id }) {
  const { el, canvas, value } = frame(title, { id, dataset: { chart: id || title } });
  let points = [];
  const legend = series.length > 1
    ? h('div', { class: 'chart-legend' }, series.map((s) => h('span', {}, h('i', { style: null, class: 'swatch', dataset: { color: s.color } }), s.label)))
    : null;
  if (legend) {
    el.append(legend);
    legend.querySelectorAll('.swatch').forEach((sw) => { sw.style.background = sw.dataset.color; });
  }
  const draw = () => {
    const { ctx, width, height } = prepare(canvas);
    const box = { left: 44, top: 8, width: width - 52, height: height - 26 };
    const all = points.flatMap((p) => p.values);
    const hi = max ?? Math.max(1, ...all) * 1.15;
    gridAndAxis(ctx, box, 0, hi, format);
    if (points.length === 0) return;
    const t0 = points[0].t;
    const span = Math.max(1, points[points.length - 1].t - t0);
    series.forEach((s, i) => {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      points.forEach((p, j) => {
        const x = box.left + ((p.t - t0) / span) * box.width;
        const y = box.top + box.height - (Math.min(p.values[i], hi) / hi) * box.height;
        if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      });
      ctx.stroke();
    });
    ctx.textAlign = 'left';
    ctx.fillStyle = AXIS;
    ctx.fillText(new Date(t0).toLocaleTimeString('en-GB'), box.left, height - 8);
    ctx.textAlign = 'right';
    ctx.fillText(new Date(points[points.length - 1].t).toLocaleTimeString('en-GB'), box.left + box.width, height - 8);
  };
  const describe = () => {
    const last = points[points.length - 1];
    const text = last ? series.map((s, i) => `${series.length > 1 ? `${s.label} ` : ''}${format(last.values[i])} ${unit}`).join(' · ') : '—';
    value.textContent = text;
    canvas.setAttribute('aria-label', `${title}: ${text}`);
    el.dataset.points = String(points.length);
  };
  observe(canvas, draw);
  return {
    el,
    push(t, values) {
      points.push({ t, values });
      if (points.length > capacity) points = points.slice(-capacity);
      describe();
      draw();
    },
    set(next) {
      points = next.slice(-capacity);
      describe();
      draw();
    },
  };
}

/** A bar chart of labelled values. Returns { el, set([[label, value]]) }. */
export function barChart({ title, unit = '', color = '#146EB4', format = (v) => String(v), id }) {
  const { el, canvas, value } = frame(title, { id });
  let bars = [];
  const draw = () => {
    const { ctx, width, height } = prepare(canvas);
    const box = { left: 56, top: 8, width: width - 64, height: height - 26 };
    const hi = Math.max(1, ...bars.map((b) => b[1])) * 1.15;
    gridAndAxis(ctx, box, 0, hi, format);
    const slot = box.width / Math.max(1, bars.length);
    ctx.textAlign = 'center';
    bars.forEach(([label, v], i) => {
      const barHeight = (v / hi) * box.height;
      const x = box.left + i * slot + slot * 0.15;
      ctx.fillStyle = color;
      ctx.fillRect(x, box.top + box.height - barHeight, slot * 0.7, barHeight);
      ctx.fillStyle = AXIS;
      ctx.fillText(label, x + slot * 0.35, height - 8);
    });
  };
  observe(canvas, draw);
  return {
    el,
    set(next) {
      bars = next;
      const total = bars.reduce((sum, b) => sum + b[1], 0);
      value.textContent = `${format(total)} ${unit} total`;
      canvas.setAttribute('aria-label', `${title}: ${value.textContent}`);
      draw();
    },
  };
}
