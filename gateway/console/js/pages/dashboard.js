// Dashboard: the figures that matter at a glance, and the latest instances.

import { get } from '../api.js';
import { h, replace, qu, num, stat, panel, alertBox } from '../dom.js';
import { dataTable } from '../table.js';
import { instanceColumns } from './instances.js';

export async function render(ctx) {
  ctx.crumbs([['Dashboard']]);
  const [node, billing, list, offers] = await Promise.all([get('/node'), get('/billing'), get('/instances'), get('/offers?limit=1')]);
  const running = list.filter((i) => i.state === 'running').length;
  const table = dataTable(instanceColumns(), { id: 'recent-instances', rows: list.slice(0, 5), pageSize: 5, sortKey: 'created', sortDir: 'desc', empty: 'No instances yet.' });
  const simulated = list.some((i) => i.simulated);
  replace(ctx.root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Dashboard'), h('p', { class: 'lead' }, `Node on ${node.network}, up since ${new Date(node.started_at).toLocaleString('en-GB')}.`)),
      h('a', { class: 'btn btn-primary', href: '#/marketplace' }, 'Find GPUs')),
    node.network !== 'mainnet' || simulated ? alertBox('info', `This is the ${node.network} network. Offers marked `, h('span', { class: 'badge simulated' }, 'simulated'), ' run on simulated GPUs: no real hardware, for trying things out.') : null,
    h('div', { class: 'stats' },
      stat('Running instances', num(running), `${list.length} in total`, { id: 'stat-running' }),
      stat('Available', qu(billing.available), 'free to spend'),
      stat('In escrow', qu(billing.escrow), 'locked for rentals'),
      stat('Offers', num(offers.total), `from ${node.peers} peers`)),
    panel('Recent instances', table.el, h('a', { href: '#/instances' }, 'View all')));
  ctx.onEvent((e) => { if (e.type === 'instance_state') get('/instances').then((l) => table.update(l.slice(0, 5))).catch(() => {}); });
}
