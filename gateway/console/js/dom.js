// Building DOM nodes and formatting values. No innerHTML with data: every text goes through
// text nodes, so nothing from the network can inject markup.

/** Creates an element: h('a', { href: '#/', class: 'x', onclick: fn }, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'value') el.value = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const grouping = new Intl.NumberFormat('en-US');

/** 1200 → "1,200 QU". */
export const qu = (n) => (n === null || n === undefined ? '—' : `${grouping.format(n)} QU`);

/** A plain grouped number. */
export const num = (n) => (n === null || n === undefined ? '—' : grouping.format(n));

/** MiB → "24 GiB". */
export const gib = (mib) => `${grouping.format(Math.round((mib / 1024) * 10) / 10)} GiB`;

/** Unix ms → local date and time. */
export const when = (ms) => (ms ? new Date(ms).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' }) : '—');

/** Unix ms → local time of day with seconds. */
export const clock = (ms) => new Date(ms).toLocaleTimeString('en-GB');

/** Seconds → "2 h 30 min". */
export function duration(secs) {
  if (secs < 60) return `${secs} s`;
  const days = Math.floor(secs / 86400);
  const hours = Math.floor((secs % 86400) / 3600);
  const mins = Math.floor((secs % 3600) / 60);
  return [days && `${days} d`, hours && `${hours} h`, mins && `${mins} min`].filter(Boolean).join(' ');
}

/** "12D3KooWAbc…xyz" for long ids; the full id is in the title. */
export function shortId(id, keep = 6) {
  const s = String(id ?? '');
  const short = s.length > keep * 2 + 1 ? `${s.slice(0, keep + 2)}…${s.slice(-keep)}` : s;
  return h('span', { class: 'mono', title: s }, short);
}

/** The "simulated" badge every simulated GPU, offer and instance carries. */
export const simulatedBadge = () => h('span', { class: 'badge simulated', title: 'Simulated GPU (testnet): no real hardware' }, 'simulated');

const STATE_KIND = {
  running: 'ok', completed: 'ok', stopped: 'muted', terminated: 'muted',
  failed: 'bad', negotiated: 'info', funded: 'info', pulling: 'info', migrating: 'info',
};

/** A coloured lifecycle state. */
export const stateBadge = (state) => h('span', { class: `state state-${STATE_KIND[state] || 'info'}`, dataset: { state } }, state);

/** A button that copies `text` to the clipboard. */
export function copyButton(text, label = 'Copy') {
  const button = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `${label}: ${text}` }, label);
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Select and copy';
    }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}

/** A titled panel like the AWS console's containers. */
export function panel(title, body, actions = null, attrs = {}) {
  return h('section', { class: 'panel', ...attrs },
    h('header', { class: 'panel-head' }, h('h2', {}, title), actions && h('div', { class: 'panel-actions' }, actions)),
    h('div', { class: 'panel-body' }, body));
}

/** A key/value grid. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** A summary figure card. */
export const stat = (label, value, hint = null, attrs = {}) =>
  h('div', { class: 'stat', ...attrs }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), hint && h('div', { class: 'stat-hint' }, hint));

/** An alert box: kind is info, warn, error or ok. */
export const alertBox = (kind, ...children) => h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, children);

/** The message of an API error, or of anything thrown. */
export const errorText = (err) => (err && err.message) || String(err);

/** A loading line. */
export const loading = (what = 'Loading') => h('p', { class: 'loading', role: 'status' }, `${what}…`);
