// Network: this node, its listen addresses, its peers and the offers each has in the book.

import { get } from '../api.js';
import { h, replace, num, when, shortId, panel, facts, copyButton } from '../dom.js';
import { dataTable } from '../table.js';

export async function render(ctx) {
  ctx.crumbs([['Network']]);
  const [node, peers, offers] = await Promise.all([get('/node'), get('/peers'), get('/offers?limit=1000')]);
  const peerTable = dataTable([
    { key: 'node_id', label: 'Peer', render: (p) => shortId(p.node_id, 8) },
    { key: 'addresses', label: 'Addresses', sort: (p) => p.addresses[0], render: (p) => h('span', { class: 'mono small' }, p.addresses.join(' ')) },
    { key: 'rtt_ms', label: 'RTT', align: 'right', render: (p) => (p.rtt_ms === null ? '—' : `${p.rtt_ms} ms`) },
    { key: 'agent', label: 'Agent', render: (p) => p.agent || '—' },
    { key: 'offers', label: 'Offers', align: 'right', render: (p) => num(p.offers) },
  ], { id: 'peers-table', rows: peers, sortKey: 'rtt_ms', empty: 'No peers connected.' });
  const byProvider = new Map();
  for (const o of offers.offers) byProvider.set(o.offer.provider, (byProvider.get(o.offer.provider) || 0) + o.offer.gpu_count);
  replace(ctx.root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Network'), h('p', { class: 'lead' }, 'Your node in the peer-to-peer network.'))),
    panel('This node', facts([
      ['Node id', h('span', {}, h('code', { id: 'network-node-id' }, node.node_id), ' ', copyButton(node.node_id))],
      ['Network', node.network],
      ['Version', node.version],
      ['Provider', node.provider ? 'yes' : 'no'],
      ['Listening on', h('ul', { class: 'plain' }, node.listen_addrs.map((a) => h('li', { class: 'mono small' }, a)))],
      ['Started', when(node.started_at)],
      ['Offers in the book', `${num(offers.total)} (${[...byProvider.values()].reduce((a, b) => a + b, 0)} GPUs from ${byProvider.size} providers)`],
    ])),
    panel(`Peers (${peers.length})`, peerTable.el));
  ctx.onEvent((e) => { if (e.type === 'peer') get('/peers').then(peerTable.update).catch(() => {}); });
}
