// Provider: the onboarding checklist, this node's GPUs, the pricing editor, earnings, the
// jobs run for others, and withdrawals.

import { get, put, postOnce, newIdempotencyKey, isTransient } from '../api.js';
import { h, replace, qu, gib, when, shortId, stat, panel, simulatedBadge, stateBadge, alertBox, errorText } from '../dom.js';
import { dataTable } from '../table.js';
import { barChart } from '../chart.js';
import { confirmDialog, toast } from '../dialog.js';

const CHECK_LABELS = { gpu: 'GPU found', docker: 'Docker reachable', nvidia_runtime: 'NVIDIA container runtime', wallet: 'Wallet configured', pricing: 'Pricing set' };

function checklist(status) {
  return h('ul', { class: 'checklist', id: 'checklist' }, status.checks.map((c) => h('li', { class: c.ok ? 'ok' : 'todo', dataset: { check: c.kind } },
    h('span', { class: 'check-mark', 'aria-hidden': 'true' }, c.ok ? '✓' : '!'),
    h('span', { class: 'check-label' }, CHECK_LABELS[c.kind] || c.kind, h('span', { class: 'sr-only' }, c.ok ? ' (done)' : ' (to do)')),
    h('span', { class: 'check-detail' }, c.detail))));
}

function gpuTable(view) {
  if (!view.gpus.length) return alertBox('warn', `No GPU found${view.reason ? `: ${view.reason}` : ''}.`);
  return dataTable([
    { key: 'index', label: '#', align: 'right' },
    { key: 'model', label: 'Model', render: (g) => h('span', { class: 'gpu-cell' }, g.model, g.simulated && simulatedBadge()) },
    { key: 'vram_mib', label: 'VRAM', align: 'right', render: (g) => gib(g.vram_mib) },
    { key: 'cuda_version', label: 'CUDA' },
    { key: 'driver_version', label: 'Driver' },
    { key: 'allocated_to', label: 'In use by', render: (g) => (g.allocated_to ? h('span', { class: 'mono' }, g.allocated_to.slice(0, 12)) : h('span', { class: 'muted' }, 'free')) },
  ], { id: 'gpus-table', rows: view.gpus }).el;
}

function pricingForm(pricing) {
  const models = Object.entries(pricing.per_model);
  const rows = h('div', { class: 'model-prices' });
  const addRow = (model = '', price = '') => {
    const row = h('div', { class: 'model-row' },
      h('input', { type: 'text', class: 'model-name', value: model, placeholder: 'GPU model', 'aria-label': 'GPU model' }),
      h('input', { type: 'number', class: 'model-price', value: price, min: 1, placeholder: 'QU/GPU-h', 'aria-label': 'Price per GPU-hour' }),
      h('button', { type: 'button', class: 'btn btn-small', 'aria-label': 'Remove this model', onclick: () => row.remove() }, 'Remove'));
    rows.append(row);
  };
  models.forEach(([m, p]) => addRow(m, p));
  const field = (id, label, value, attrs = {}) => h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, type: 'number', value, min: 1, required: true, ...attrs }));
  const error = h('p', { class: 'field-error', role: 'alert', id: 'pricing-error' });
  const form = h('form', { id: 'pricing-form', class: 'form-grid' },
    field('price-default', 'Default price (QU/GPU-h)', pricing.default_price_per_gpu_hour),
    field('rental-min', 'Shortest rental (hours)', pricing.min_rental_secs / 3600, { step: 'any', min: 0 }),
    field('rental-max', 'Longest rental (hours)', pricing.max_rental_secs / 3600, { step: 'any', min: 0.01 }),
    h('div', { class: 'field wide' }, h('span', { class: 'label' }, 'Price by GPU model'), rows, h('button', { type: 'button', class: 'btn btn-small', onclick: () => addRow() }, 'Add model')),
    error,
    h('div', { class: 'wide' }, h('button', { type: 'submit', class: 'btn btn-primary', id: 'pricing-save' }, 'Save pricing')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const per_model = {};
    rows.querySelectorAll('.model-row').forEach((r) => {
      const name = r.querySelector('.model-name').value.trim();
      if (name) per_model[name] = Number(r.querySelector('.model-price').value);
    });
    const body = {
      default_price_per_gpu_hour: Number(form.querySelector('#price-default').value), per_model,
      min_rental_secs: Math.round(Number(form.querySelector('#rental-min').value) * 3600),
      max_rental_secs: Math.round(Number(form.querySelector('#rental-max').value) * 3600),
    };
    try {
      await put('/provider/pricing', body);
      error.textContent = '';
      toast('Pricing saved; offers are republished.', 'ok');
    } catch (err) { error.textContent = errorText(err); }
  });
  return form;
}

function withdrawForm() {
  const error = h('p', { class: 'field-error', role: 'alert', id: 'withdraw-error' });
  const form = h('form', { id: 'withdraw-form', class: 'form-grid' },
    h('div', { class: 'field wide' }, h('label', { for: 'withdraw-to' }, 'Destination identity'), h('input', { id: 'withdraw-to', type: 'text', required: true, maxlength: 60, spellcheck: 'false', placeholder: '60 upper-case letters' })),
    h('div', { class: 'field' }, h('label', { for: 'withdraw-amount' }, 'Amount (QU)'), h('input', { id: 'withdraw-amount', type: 'number', min: 1, required: true })),
    error,
    h('div', { class: 'wide' }, h('button', { type: 'submit', class: 'btn btn-primary', id: 'withdraw-submit' }, 'Withdraw')));
  // The key is kept while the same withdrawal is submitted again after a failure that may
  // have gone through (timeout, node unreachable): resubmitting never sends twice.
  let pending = null;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const to = form.querySelector('#withdraw-to').value.trim();
    const amount = Number(form.querySelector('#withdraw-amount').value);
    if (!(await confirmDialog({ title: 'Withdraw QU?', message: `Send ${qu(amount)} to ${to}? Qubic transfers are final.`, confirmLabel: 'Withdraw' }))) return;
    if (!pending || pending.to !== to || pending.amount !== amount) pending = { to, amount, key: newIdempotencyKey() };
    try {
      const t = await postOnce('/wallet/withdraw', { to, amount }, pending.key);
      pending = null;
      error.textContent = '';
      toast(`Transfer ${t.tx_id.slice(0, 12)}… ${t.status}, target tick ${t.target_tick}.`, 'ok');
    } catch (err) {
      if (!isTransient(err)) pending = null;
      error.textContent = errorText(err);
    }
  });
  return form;
}

export async function render(ctx) {
  ctx.crumbs([['Provider']]);
  const [status, gpus] = await Promise.all([get('/provider/status'), get('/gpus')]);
  const parts = [
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Provider'), h('p', { class: 'lead' }, 'Rent out this machine’s GPUs and get paid in QU.'))),
    panel('Onboarding checklist', checklist(status)),
    panel(`GPUs (probe: ${gpus.probe})`, gpuTable(gpus)),
  ];
  if (!status.provider) {
    parts.push(alertBox('info', 'This node does not offer its GPUs. Start it with ', h('code', {}, 'qubix node --provider'), ' once the checklist is complete.'));
    replace(ctx.root, parts);
    return;
  }
  const [pricing, earnings, jobs] = await Promise.all([get('/provider/pricing'), get('/provider/earnings'), get('/provider/jobs')]);
  const chart = barChart({ id: 'chart-earnings', title: 'Earnings per day', unit: 'QU', color: '#1E8900', format: (v) => Math.round(v).toLocaleString('en-US') });
  const jobTable = dataTable([
    { key: 'id', label: 'Job', render: (j) => h('span', { class: 'mono' }, j.id.slice(0, 12)) },
    { key: 'state', label: 'State', render: (j) => stateBadge(j.state) },
    { key: 'consumer', label: 'Consumer', render: (j) => shortId(j.consumer, 4) },
    { key: 'image', label: 'Image', render: (j) => h('code', { class: 'truncate' }, j.image) },
    { key: 'gpus', label: 'GPUs', align: 'right' },
    { key: 'price_per_gpu_hour', label: 'Price', align: 'right', render: (j) => qu(j.price_per_gpu_hour) },
    { key: 'earned', label: 'Earned', align: 'right', render: (j) => qu(j.earned) },
    { key: 'created_at', label: 'Created', render: (j) => when(j.created_at) },
  ], { id: 'jobs-table', rows: jobs, sortKey: 'created_at', sortDir: 'desc', empty: 'No jobs yet.' });
  parts.push(
    h('div', { class: 'stats' }, stat('Earned', qu(earnings.earned)), stat('Prepaid held', qu(earnings.prepaid_held)), stat('Refunds due', qu(earnings.refunds_due))),
    h('div', { class: 'two-col' }, panel('Earnings', chart.el), panel('Pricing', pricingForm(pricing))),
    panel('Job history', jobTable.el),
    panel('Withdraw', withdrawForm()));
  replace(ctx.root, parts);
  chart.set(earnings.by_day.map(([day, v]) => [day.slice(5), v]));
}
