// One instance: summary and actions (start, stop, restart, terminate, each confirmed),
// connection details, live charts from the metrics stream, and live logs with follow and
// pause.

import { get, post, del, stream } from '../api.js';
import { h, replace, qu, when, duration, shortId, simulatedBadge, stateBadge, panel, facts, copyButton, errorText } from '../dom.js';
import { confirmDialog, toast } from '../dialog.js';
import { lineChart } from '../chart.js';

const ACTIONS = [
  { id: 'start', label: 'Start', allowed: ['stopped'], ask: 'Start the container again? Billing resumes.' },
  { id: 'stop', label: 'Stop', allowed: ['running'], ask: 'Stop the container? Its data is kept, and the provider may stop billing after the current window.' },
  { id: 'restart', label: 'Restart', allowed: ['running'], ask: 'Restart the container? Running processes are killed.' },
];

function actionBar(instance, act) {
  const final = ['terminated', 'completed', 'failed'].includes(instance.state);
  const buttons = ACTIONS.map((a) => h('button', { type: 'button', class: 'btn', id: `action-${a.id}`, disabled: !a.allowed.includes(instance.state), onclick: () => act(a) }, a.label));
  buttons.push(h('button', { type: 'button', class: 'btn btn-danger', id: 'action-terminate', disabled: final, onclick: () => act({ id: 'terminate' }) }, 'Terminate'));
  return h('div', { class: 'actions', role: 'group', 'aria-label': 'Instance actions' }, buttons);
}

function connections(instance) {
  if (['terminated', 'completed', 'failed'].includes(instance.state)) return h('p', { class: 'muted' }, 'The instance has ended; its ports are closed.');
  if (!instance.connections.length) return h('p', { class: 'muted' }, instance.state === 'running' ? 'No ports published.' : 'Connection details appear when the instance runs.');
  return h('ul', { class: 'connections' }, instance.connections.map((c) => h('li', { dataset: { purpose: c.purpose } },
    h('span', { class: 'conn-kind' }, c.purpose === 'ssh' ? 'SSH' : c.purpose === 'jupyter' ? 'Jupyter' : `Port ${c.container_port}`),
    c.purpose === 'jupyter' ? h('a', { href: c.hint, target: '_blank', rel: 'noopener noreferrer', class: 'mono' }, c.hint) : h('code', { class: 'conn-hint' }, c.hint),
    copyButton(c.hint),
    h('span', { class: 'muted' }, ` container port ${c.container_port} → ${c.host}:${c.port}`))));
}

function summary(i) {
  const left = i.started_at ? Math.max(0, i.duration_secs - Math.floor((Date.now() - i.started_at) / 1000)) : i.duration_secs;
  return facts([
    ['State', h('span', {}, stateBadge(i.state), i.reason ? ` (${i.reason.replace(/_/g, ' ')})` : '')],
    ['GPUs', h('span', {}, `${i.gpus} × ${i.gpu_model} `, i.simulated && simulatedBadge())],
    ['Image', h('code', {}, i.image)],
    ['Provider', shortId(i.provider, 8)],
    ['Price', `${qu(i.price_per_gpu_hour)} per GPU-hour`],
    ['Spent / paid / budget', `${qu(i.spent)} / ${qu(i.paid)} / ${qu(i.budget)}`],
    ['Created', when(i.created_at)],
    ['Started', when(i.started_at)],
    ['Duration', `${duration(i.duration_secs)} (${duration(left)} left)`],
    ['Exit code', i.exit_code ?? '—'],
  ]);
}

function charts() {
  const c = {
    gpu: lineChart({ id: 'chart-gpu', title: 'GPU utilisation', unit: '%', max: 100, series: [{ label: 'GPU', color: '#146EB4' }] }),
    vram: lineChart({ id: 'chart-vram', title: 'GPU memory', unit: 'GiB', series: [{ label: 'used', color: '#FF9900' }], format: (v) => v.toFixed(1) }),
    temp: lineChart({ id: 'chart-temp', title: 'GPU temperature', unit: '°C', max: 100, series: [{ label: '°C', color: '#D13212' }] }),
    cpu: lineChart({ id: 'chart-cpu', title: 'CPU', unit: '%', series: [{ label: 'CPU', color: '#1E8900' }] }),
    mem: lineChart({ id: 'chart-mem', title: 'Memory', unit: 'GiB', series: [{ label: 'used', color: '#545B64' }], format: (v) => v.toFixed(1) }),
  };
  const values = (s) => {
    const g = s.gpus;
    const avg = (f) => (g.length ? g.reduce((sum, x) => sum + f(x), 0) / g.length : 0);
    return {
      gpu: [avg((x) => x.utilization_pct)], vram: [g.reduce((sum, x) => sum + x.memory_used_mib, 0) / 1024],
      temp: [avg((x) => x.temperature_c)], cpu: [s.cpu_pct], mem: [s.memory_used_mib / 1024],
    };
  };
  const push = (sample) => {
    const v = values(sample);
    for (const key of Object.keys(c)) c[key].push(sample.at, v[key]);
  };
  return { el: h('div', { class: 'charts', id: 'charts' }, Object.values(c).map((x) => x.el)), push };
}

function logView(ctx, id) {
  const pre = h('pre', { class: 'logs', id: 'logs', tabindex: 0, 'aria-label': 'Logs', 'aria-live': 'off' });
  const follow = h('input', { type: 'checkbox', id: 'logs-follow', checked: true });
  const pause = h('button', { type: 'button', class: 'btn btn-small', id: 'logs-pause', 'aria-pressed': 'false' }, 'Pause');
  const status = h('span', { class: 'muted', id: 'logs-status' }, 'connecting');
  let paused = false;
  let held = [];
  const add = (line, cls) => {
    pre.append(h('span', { class: `log-line ${cls}` }, line), '\n');
    while (pre.childNodes.length > 4000) pre.firstChild.remove();
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  };
  const show = (m) => {
    if (m.type === 'lagged') add(`… ${m.missed} lines skipped (the connection was too slow)`, 'log-system');
    else add(`${new Date(m.at).toLocaleTimeString('en-GB')} ${m.line}`, `log-${m.stream}`);
  };
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    if (!paused) { held.forEach(show); held = []; }
  });
  const s = stream(`/instances/${id}/logs?tail=500`, (m) => { if (paused) held.push(m); else show(m); }, (st) => { status.textContent = st; });
  ctx.onCleanup(() => s.close());
  const tools = h('div', { class: 'log-tools' }, h('label', { class: 'check' }, follow, ' Follow'), pause,
    h('button', { type: 'button', class: 'btn btn-small', onclick: () => replace(pre) }, 'Clear'), status);
  return [tools, pre];
}

function tabs(sections) {
  const list = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Instance' });
  const panes = sections.map(([key, label, content], i) => {
    const tab = h('button', { type: 'button', role: 'tab', id: `tab-${key}`, 'aria-controls': `pane-${key}`, 'aria-selected': String(i === 0), tabindex: i === 0 ? 0 : -1 }, label);
    const pane = h('div', { role: 'tabpanel', id: `pane-${key}`, 'aria-labelledby': `tab-${key}`, hidden: i !== 0 }, content);
    tab.addEventListener('click', () => {
      list.querySelectorAll('[role=tab]').forEach((t) => { t.setAttribute('aria-selected', String(t === tab)); t.tabIndex = t === tab ? 0 : -1; });
      panes.forEach((p) => { p.hidden = p !== pane; });
      window.dispatchEvent(new Event('resize'));
    });
    list.append(tab);
    return pane;
  });
  list.addEventListener('keydown', (e) => {
    const all = [...list.querySelectorAll('[role=tab]')];
    const at = all.indexOf(document.activeElement);
    const next = e.key === 'ArrowRight' ? at + 1 : e.key === 'ArrowLeft' ? at - 1 : null;
    if (next === null || at < 0) return;
    const tab = all[(next + all.length) % all.length];
    tab.focus();
    tab.click();
  });
  return [list, panes];
}

export async function render(ctx) {
  const id = ctx.params[0];
  let instance = await get(`/instances/${id}`);
  ctx.crumbs([['Instances', '#/instances'], [id.slice(0, 12)]]);
  const head = h('div', { class: 'page-head' });
  const details = h('div');
  const chart = charts();
  const act = async (a) => {
    const terminate = a.id === 'terminate';
    const ok = await confirmDialog(terminate
      ? { title: 'Terminate instance?', message: 'The container and its data are removed and billing ends. Unused escrow returns to your balance. This cannot be undone.', confirmLabel: 'Terminate', danger: true, typed: 'terminate' }
      : { title: `${a.label} instance?`, message: a.ask, confirmLabel: a.label });
    if (!ok) return;
    try {
      instance = terminate ? await del(`/instances/${id}`) : await post(`/instances/${id}/${a.id}`);
      toast(`Instance ${instance.state}.`, 'ok');
      draw();
      ctx.refreshTop();
    } catch (err) { toast(errorText(err), 'error'); }
  };
  const draw = () => {
    replace(head, h('div', {}, h('h1', {}, h('span', { class: 'mono' }, id.slice(0, 12)), ' ', stateBadge(instance.state), ' ', instance.simulated && simulatedBadge()),
      h('p', { class: 'lead' }, instance.image)), actionBar(instance, act));
    replace(details, panel('Summary', summary(instance)), panel('Connect', connections(instance), null, { id: 'connect-panel' }));
  };
  ctx.onEvent((e) => {
    if ((e.type === 'instance_state' && e.id === id) || e.type === 'lagged') get(`/instances/${id}`).then((i) => { instance = i; draw(); }).catch(() => {});
  });
  const metrics = stream(`/instances/${id}/metrics?history=120`, (m) => { if (m.type === 'sample') chart.push(m); });
  ctx.onCleanup(() => metrics.close());
  const [tabList, panes] = tabs([
    ['details', 'Details', details],
    ['monitoring', 'Monitoring', panel('Metrics', chart.el, instance.simulated ? h('span', { class: 'muted' }, 'Simulated GPU figures') : null)],
    ['logs', 'Logs', panel('Logs', logView(ctx, id))],
  ]);
  draw();
  replace(ctx.root, head, tabList, panes);
}
