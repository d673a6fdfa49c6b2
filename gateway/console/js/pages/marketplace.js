// Marketplace: the live offer table, column filters and a query box in the offer query
// language (errors shown inline, as the node reports them), and "why nothing matched" from
// explain when no offer matches.

import { get, post } from '../api.js';
import { h, replace, qu, gib, shortId, simulatedBadge, clock, panel, errorText } from '../dom.js';
import { dataTable } from '../table.js';

const FILTERS = [
  { id: 'f-gpu', label: 'GPU model', type: 'text', placeholder: 'RTX 4090', term: (v) => `gpu_name=${v.trim().replace(/\s+/g, '_')}` },
  { id: 'f-gpus', label: 'Min GPUs', type: 'number', min: 1, placeholder: '1', term: (v) => `num_gpus>=${v}` },
  { id: 'f-vram', label: 'Min VRAM (GiB)', type: 'number', min: 1, placeholder: '24', term: (v) => `gpu_ram>=${v}` },
  { id: 'f-price', label: 'Max price (QU/h)', type: 'number', min: 1, placeholder: '1500', term: (v) => `price<=${v}` },
  { id: 'f-cuda', label: 'Min CUDA', type: 'text', placeholder: '12.2', term: (v) => `cuda>=${v.trim()}` },
  { id: 'f-location', label: 'Location', type: 'text', placeholder: 'DE, FR', term: (v) => `location in [${v.split(/[\s,]+/).filter(Boolean).join(',').toUpperCase()}]` },
  { id: 'f-reliability', label: 'Min reliability', type: 'number', min: 0, max: 1, step: 0.01, placeholder: '0.95', term: (v) => `reliability>=${v}` },
];

function columns() {
  return [
    { key: 'gpu', label: 'GPU', sort: (o) => o.offer.gpu.model, render: (o) => h('span', { class: 'gpu-cell' }, o.offer.gpu.model.replace(/^NVIDIA (GeForce )?/, ''), o.offer.simulated && simulatedBadge()) },
    { key: 'count', label: 'GPUs', align: 'right', sort: (o) => o.offer.gpu_count, render: (o) => String(o.offer.gpu_count) },
    { key: 'vram', label: 'VRAM', align: 'right', sort: (o) => o.offer.gpu.vram_mib, render: (o) => gib(o.offer.gpu.vram_mib) },
    { key: 'cuda', label: 'CUDA', sort: (o) => o.offer.gpu.cuda_version.major * 100 + o.offer.gpu.cuda_version.minor, render: (o) => `${o.offer.gpu.cuda_version.major}.${o.offer.gpu.cuda_version.minor}` },
    { key: 'location', label: 'Location', sort: (o) => o.offer.location.country, render: (o) => [o.offer.location.country, o.offer.location.region ? ` · ${o.offer.location.region}` : ''] },
    { key: 'price', label: 'Price / GPU-h', align: 'right', sort: (o) => o.offer.price_per_gpu_hour, render: (o) => h('strong', {}, qu(o.offer.price_per_gpu_hour)) },
    { key: 'reliability', label: 'Reliability', align: 'right', sort: (o) => o.reliability ?? -1, render: reliability },
    { key: 'provider', label: 'Provider', sort: (o) => o.offer.provider, render: (o) => shortId(o.offer.provider, 4) },
    { key: 'action', label: 'Action', sortable: false, render: (o) => h('a', { class: 'btn btn-small btn-primary', href: `#/launch?offer=${encodeURIComponent(o.id)}` }, 'Launch') },
  ];
}

function reliability(o) {
  if (o.reliability === null || o.reliability === undefined) return h('span', { class: 'muted' }, 'new');
  const pct = Math.round(o.reliability * 100);
  const meter = h('span', { class: 'meter', 'aria-hidden': 'true' }, h('span', { class: 'meter-fill' }));
  meter.firstChild.style.width = `${pct}%`;
  return h('span', { class: 'reliability' }, meter, `${pct}%`);
}

function filterBar(onChange) {
  const inputs = FILTERS.map((f) => {
    const input = h('input', { id: f.id, type: f.type, min: f.min, max: f.max, step: f.step, placeholder: f.placeholder, inputmode: f.type === 'number' ? 'decimal' : null });
    input.addEventListener('input', onChange);
    return h('div', { class: 'field' }, h('label', { for: f.id }, f.label), input);
  });
  return h('div', { class: 'filters', role: 'group', 'aria-label': 'Filters' }, inputs);
}

function filterTerms() {
  return FILTERS.map((f) => [f, document.getElementById(f.id).value]).filter(([, v]) => v.trim() !== '').map(([f, v]) => f.term(v));
}

function explainView(x) {
  const rows = x.constraints.map((c) => h('tr', {}, h('td', {}, h('code', {}, c.constraint)), h('td', { class: 'right' }, String(c.excluded)), h('td', { class: 'right' }, String(c.only_blocker))));
  const misses = x.near_misses.map((n) => h('li', {}, `${n.offer.offer.gpu.model} × ${n.offer.offer.gpu_count} at ${qu(n.offer.offer.price_per_gpu_hour)}/GPU-h fails `,
    n.failed.map((f, i) => [i ? ', ' : '', h('code', {}, f)])));
  return [
    h('p', { class: 'explain-summary' }, x.summary, ` (${x.matched} of ${x.total} offers match).`),
    rows.length ? h('table', { class: 'table compact' }, h('thead', {}, h('tr', {}, h('th', {}, 'Constraint'), h('th', { class: 'right' }, 'Excluded'), h('th', { class: 'right' }, 'Only blocker'))), h('tbody', {}, rows)) : null,
    misses.length ? [h('h3', {}, 'Closest offers'), h('ul', { class: 'near-misses' }, misses)] : null,
  ];
}

export async function render(ctx) {
  ctx.crumbs([['Marketplace']]);
  const table = dataTable(columns(), { id: 'offers-table', label: 'Offers', pageSize: 10, sortKey: 'price', empty: 'No offer matches.', rowData: (o) => ({ offer: o.id }) });
  const queryInput = h('input', { id: 'query', type: 'search', spellcheck: 'false', autocomplete: 'off', placeholder: 'gpu_name=RTX_4090 num_gpus>=2 price<=1500 location in [DE,FR]', 'aria-describedby': 'query-error query-help' });
  const queryError = h('p', { id: 'query-error', class: 'field-error', role: 'alert' });
  const effective = h('code', { id: 'effective-query' });
  const count = h('span', { id: 'offers-count', class: 'muted' });
  const updated = h('span', { id: 'offers-updated', class: 'muted' });
  const explain = h('div', { id: 'explain' });
  const explainPanel = panel('Why nothing matched', explain, null, { id: 'explain-panel', hidden: true });
  let timer = null;
  let generation = 0;

  const refresh = async () => {
    const q = [...filterTerms(), queryInput.value.trim()].filter(Boolean).join(' ');
    effective.textContent = q || '(all offers)';
    const mine = ++generation;
    try {
      const page = await get(`/offers?q=${encodeURIComponent(q)}&limit=1000`);
      if (mine !== generation) return;
      queryError.textContent = '';
      queryInput.removeAttribute('aria-invalid');
      table.update(page.offers);
      count.textContent = `${page.total} offer${page.total === 1 ? '' : 's'}`;
      updated.textContent = `Updated ${clock(Date.now())}`;
      table.setEmpty(page.total === 0 ? 'No offer matches; see why below.' : 'No offer matches.');
      if (page.total === 0) showExplain(q); else explainPanel.hidden = true;
    } catch (err) {
      if (mine !== generation) return;
      queryError.textContent = errorText(err);
      if (err.code === 'invalid_query' || err.code === 'invalid_value') queryInput.setAttribute('aria-invalid', 'true');
      table.setEmpty('Fix the query to see offers.');
      table.update([]);
      count.textContent = '';
      explainPanel.hidden = true;
    }
  };
  const showExplain = async (q) => {
    try {
      replace(explain, explainView(await post('/offers/explain', { q })));
      explainPanel.hidden = false;
    } catch (err) {
      replace(explain, h('p', {}, errorText(err)));
      explainPanel.hidden = false;
    }
  };
  const soon = (ms = 350) => { clearTimeout(timer); timer = setTimeout(refresh, ms); };
  ctx.onCleanup(() => clearTimeout(timer));

  queryInput.addEventListener('input', () => soon());
  queryInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') { clearTimeout(timer); refresh(); } });
  const clear = h('button', { type: 'button', class: 'btn', id: 'filters-clear' }, 'Clear filters');
  clear.addEventListener('click', () => { FILTERS.forEach((f) => { document.getElementById(f.id).value = ''; }); queryInput.value = ''; refresh(); });
  ctx.onEvent((e) => { if (e.type === 'offer_updated' || e.type === 'offer_removed' || e.type === 'lagged') soon(200); });

  replace(ctx.root,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Marketplace'), h('p', { class: 'lead' }, 'GPU offers gossiped by providers on this network, verified by your node and updated live.')),
      h('a', { class: 'btn btn-primary', href: '#/launch' }, 'Launch instance')),
    panel('Find offers', [
      filterBar(() => soon()),
      h('div', { class: 'field query-field' },
        h('label', { for: 'query' }, 'Query'),
        h('div', { class: 'query-row' }, queryInput, clear),
        h('p', { id: 'query-help', class: 'help' }, 'Operators = != < <= > >= in notin. Effective query: ', effective),
        queryError),
    ]),
    panel(h('span', {}, 'Offers ', count), table.el, updated, { id: 'offers-panel' }),
    explainPanel);
  await refresh();
}
