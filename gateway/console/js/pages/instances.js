// Instances: every rental of this node with its state and cost so far, updated live.

import { get } from '../api.js';
import { h, replace, qu, when, shortId, simulatedBadge, stateBadge, panel } from '../dom.js';
import { dataTable } from '../table.js';

/** The table columns, shared with the dashboard. */
export function instanceColumns() {
  return [
    { key: 'id', label: 'Instance', sort: (i) => i.id, render: (i) => h('a', { href: `#/instances/${i.id}`, class: 'mono', title: i.id }, i.id.slice(0, 12)) },
    { key: 'state', label: 'State', sort: (i) => i.state, render: (i) => stateBadge(i.state) },
    { key: 'gpu', label: 'GPUs', sort: (i) => i.gpu_model, render: (i) => h('span', { class: 'gpu-cell' }, `${i.gpus} × ${i.gpu_model.replace(/^NVIDIA (GeForce )?/, '')}`, i.simulated && simulatedBadge()) },
    { key: 'image', label: 'Image', sort: (i) => i.image, render: (i) => h('code', { class: 'truncate', title: i.image }, i.image) },
    { key: 'cost', label: 'Cost so far', align: 'right', sort: (i) => i.spent, render: (i) => h('span', {}, qu(i.spent), h('span', { class: 'muted' }, ` / ${qu(i.budget)}`)) },
    { key: 'provider', label: 'Provider', sort: (i) => i.provider, render: (i) => shortId(i.provider, 4) },
    { key: 'created', label: 'Created', sort: (i) => i.created_at, render: (i) => when(i.created_at) },
  ];
}

export async function render(ctx) {
  ctx.crumbs([['Instances']]);
  const table = dataTable(instanceColumns(), { id: 'instances-table', label: 'Instances', sortKey: 'created', sortDir: 'desc', empty: 'No instances yet. Launch one from the marketplace.', rowData: (i) => ({ instance: i.id }) });
  const load = async () => table.update(await get('/instances'));
  ctx.onEvent((e) => { if (e.type === 'instance_state' || e.type === 'lagged') load(); });
  replace(ctx.root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Instances'), h('p', { class: 'lead' }, 'Containers running on GPUs you rent.')),
      h('a', { class: 'btn btn-primary', href: '#/launch' }, 'Launch instance')),
    panel('All instances', table.el));
  await load();
}
