// A data table in the AWS console's style: striped rows with hover, sortable columns
// (header buttons with aria-sort), and pagination. Rows are plain objects; columns say
// how to show and sort them.

import { h, replace } from './dom.js';

/**
 * columns: [{ key, label, render?(row) → node|string, sort?(row) → value, align?: 'right' }]
 * options: { rows, pageSize = 10, empty = 'Nothing to show', id, sortKey, sortDir, label }
 * Returns { el, update(rows), setEmpty(nodeOrText) }.
 */
export function dataTable(columns, options = {}) {
  const state = {
    rows: options.rows || [],
    page: 0,
    pageSize: options.pageSize || 10,
    sortKey: options.sortKey || null,
    sortDir: options.sortDir || 'asc',
    empty: options.empty || 'Nothing to show',
  };
  const thead = h('thead');
  const tbody = h('tbody');
  const table = h('table', { class: 'table', id: options.id, 'aria-label': options.label || null }, thead, tbody);
  const pager = h('div', { class: 'pager' });
  const el = h('div', { class: 'table-wrap' }, h('div', { class: 'table-scroll' }, table), pager);

  const sorted = () => {
    const column = columns.find((c) => c.key === state.sortKey);
    if (!column) return state.rows;
    const value = column.sort || ((row) => row[column.key]);
    const factor = state.sortDir === 'asc' ? 1 : -1;
    return [...state.rows].sort((a, b) => compare(value(a), value(b)) * factor);
  };

  const renderHead = () => {
    replace(thead, h('tr', {}, columns.map((c) => {
      const active = state.sortKey === c.key;
      const ariaSort = active ? (state.sortDir === 'asc' ? 'ascending' : 'descending') : 'none';
      const content = c.sortable === false ? c.label : h('button', {
        type: 'button', class: 'sort', onclick: () => toggleSort(c.key),
      }, c.label, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, active ? (state.sortDir === 'asc' ? '▲' : '▼') : '↕'));
      return h('th', { scope: 'col', 'aria-sort': ariaSort, class: c.align === 'right' ? 'right' : null }, content);
    })));
  };

  const renderBody = () => {
    const rows = sorted();
    const pages = Math.max(1, Math.ceil(rows.length / state.pageSize));
    state.page = Math.min(state.page, pages - 1);
    const slice = rows.slice(state.page * state.pageSize, (state.page + 1) * state.pageSize);
    if (slice.length === 0) {
      replace(tbody, h('tr', { class: 'empty-row' }, h('td', { colspan: columns.length }, state.empty)));
    } else {
      replace(tbody, slice.map((row) => h('tr', { dataset: options.rowData ? options.rowData(row) : {} },
        columns.map((c) => h('td', { class: c.align === 'right' ? 'right' : null, 'data-label': c.label },
          c.render ? c.render(row) : String(row[c.key] ?? '—'))))));
    }
    renderPager(rows.length, pages);
  };

  const renderPager = (count, pages) => {
    const from = count === 0 ? 0 : state.page * state.pageSize + 1;
    const to = Math.min(count, (state.page + 1) * state.pageSize);
    replace(pager,
      h('span', { class: 'pager-info' }, `${from}–${to} of ${count}`),
      h('button', { type: 'button', class: 'btn btn-small', disabled: state.page === 0, 'aria-label': 'Previous page', onclick: () => { state.page -= 1; renderBody(); } }, '‹'),
      h('span', { class: 'pager-page' }, `${state.page + 1} / ${pages}`),
      h('button', { type: 'button', class: 'btn btn-small', disabled: state.page >= pages - 1, 'aria-label': 'Next page', onclick: () => { state.page += 1; renderBody(); } }, '›'));
  };

  const toggleSort = (key) => {
    state.sortDir = state.sortKey === key && state.sortDir === 'asc' ? 'desc' : 'asc';
    state.sortKey = key;
    renderHead();
    renderBody();
  };

  renderHead();
  renderBody();
  return {
    el,
    update(rows) { state.rows = rows; renderBody(); },
    setEmpty(content) { state.empty = content; renderBody(); },
  };
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), 'en', { numeric: true });
}
