// Billing: balances, escrow per instance, spend over time, the ledger's receipts and
// transactions with CSV export, and the identity to deposit QU to.

import { get } from '../api.js';
import { h, replace, qu, when, stat, panel, copyButton } from '../dom.js';
import { dataTable } from '../table.js';
import { lineChart } from '../chart.js';

/** The amount a transaction moved: the sum of its positive postings. */
const amount = (e) => e.postings.filter((p) => p.delta > 0).reduce((s, p) => s + p.delta, 0);

function csv(entries) {
  const quote = (v) => `"${String(v ?? '').replace(/"/g, '""')}"`;
  const lines = [['id', 'time', 'kind', 'agreement', 'account', 'delta'].join(',')];
  for (const e of entries) for (const p of e.postings) lines.push([e.id, new Date(e.at).toISOString(), e.kind, e.agreement_id, p.account, p.delta].map(quote).join(','));
  return `${lines.join('\n')}\n`;
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function render(ctx) {
  ctx.crumbs([['Billing']]);
  const [b, entries] = await Promise.all([get('/billing'), get('/ledger/entries?limit=1000')]);
  const escrow = dataTable([
    { key: 'id', label: 'Instance', render: (i) => h('a', { href: `#/instances/${i.id}`, class: 'mono' }, i.id.slice(0, 12)) },
    { key: 'budget', label: 'Budget', align: 'right', render: (i) => qu(i.budget) },
    { key: 'escrow', label: 'In escrow', align: 'right', render: (i) => qu(i.escrow) },
    { key: 'paid', label: 'Paid', align: 'right', render: (i) => qu(i.paid) },
    { key: 'spent', label: 'Spent', align: 'right', render: (i) => qu(i.spent) },
    { key: 'refunded', label: 'Refunded', align: 'right', render: (i) => qu(i.refunded) },
  ], { id: 'escrow-table', rows: b.instances, empty: 'No rentals.' });
  const ledger = dataTable([
    { key: 'at', label: 'Time', render: (e) => when(e.at) },
    { key: 'kind', label: 'Kind', render: (e) => h('span', { class: `kind kind-${e.kind}` }, e.kind.replace(/_/g, ' ')) },
    { key: 'agreement_id', label: 'Instance', render: (e) => (e.agreement_id ? h('a', { href: `#/instances/${e.agreement_id}`, class: 'mono' }, e.agreement_id.slice(0, 12)) : '—') },
    { key: 'postings', label: 'Postings', sortable: false, render: (e) => {
      const text = (short) => e.postings.map((p) => `${short && e.agreement_id ? p.account.replace(`/${e.agreement_id}`, '') : p.account} ${p.delta > 0 ? '+' : ''}${p.delta}`).join(' · ');
      // The row's agreement is in its own column: name its accounts without it (hover for the full names).
      return h('span', { class: 'mono small', title: text(false) }, text(true));
    } },
    { key: 'amount', label: 'Amount', align: 'right', sort: amount, render: (e) => qu(amount(e)) },
  ], { id: 'ledger-table', rows: entries, sortKey: 'at', sortDir: 'desc', pageSize: 10, empty: 'No transactions yet.' });
  const spend = lineChart({ id: 'chart-spend', title: 'Cumulative spend', unit: 'QU', series: [{ label: 'spent', color: '#FF9900' }], capacity: 1000, format: (v) => Math.round(v).toLocaleString('en-US') });
  let total = 0;
  const points = entries.filter((e) => e.kind === 'receipt').sort((x, y) => x.at - y.at).map((e) => { total += amount(e); return { t: e.at, values: [total] }; });
  const exportButton = h('button', { type: 'button', class: 'btn', id: 'export-csv', onclick: () => download('qubix-ledger.csv', csv(entries)) }, 'Export CSV');
  replace(ctx.root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Billing'), h('p', { class: 'lead' }, 'Your QU: what is free, what is locked for rentals, and where it went.'))),
    h('div', { class: 'stats' }, stat('Available', qu(b.available)), stat('In escrow', qu(b.escrow)), stat('Prepaid windows', qu(b.prepaid)), stat('Spent', qu(b.spent))),
    panel('Deposit', b.deposit_identity
      ? h('p', {}, 'Send QU to this identity to fund rentals: ', h('code', { id: 'deposit-identity', class: 'wrap' }, b.deposit_identity), ' ', copyButton(b.deposit_identity))
      : h('p', {}, 'No wallet is configured on this node.')),
    panel('Escrow per instance', escrow.el),
    panel('Spend over time', spend.el),
    panel('Receipts and transactions', ledger.el, exportButton));
  spend.set(points);
}
