// The console's shell: login (also straight from the node's login URL, `#token=…`), the top
// bar, the sidebar, breadcrumbs, and the hash router that renders one page at a time.

import { get, post, setCsrf, startEvents, stopEvents, onEvent } from './api.js';
import { h, replace, qu, shortId, errorText } from './dom.js';
import * as login from './pages/login.js';
import * as dashboard from './pages/dashboard.js';
import * as marketplace from './pages/marketplace.js';
import * as launch from './pages/launch.js';
import * as instances from './pages/instances.js';
import * as instance from './pages/instance.js';
import * as billing from './pages/billing.js';
import * as provider from './pages/provider.js';
import * as network from './pages/network.js';

const ROUTES = [
  { pattern: /^\/?$/, nav: 'dashboard', page: dashboard },
  { pattern: /^\/marketplace$/, nav: 'marketplace', page: marketplace },
  { pattern: /^\/launch$/, nav: 'marketplace', page: launch },
  { pattern: /^\/instances$/, nav: 'instances', page: instances },
  { pattern: /^\/instances\/([0-9a-f]{32})$/, nav: 'instances', page: instance },
  { pattern: /^\/billing$/, nav: 'billing', page: billing },
  { pattern: /^\/provider$/, nav: 'provider', page: provider },
  { pattern: /^\/network$/, nav: 'network', page: network },
];

const SESSION_FLAG = 'qubix.session';
let cleanups = [];
let started = false;
let firstRoute = true;

const $ = (id) => document.getElementById(id);

function setCrumbs(items) {
  const trail = [['Qubix', '#/'], ...items];
  replace($('breadcrumbs'), h('ol', {}, trail.map(([label, href], i) => h('li', {},
    i < trail.length - 1 && href ? h('a', { href }, label) : h('span', { 'aria-current': 'page' }, label)))));
  document.title = `${trail[trail.length - 1][0]} · Qubix Console`;
}

async function route() {
  cleanups.forEach((fn) => fn());
  cleanups = [];
  const [path, query] = location.hash.replace(/^#/, '').split('?');
  const found = ROUTES.map((r) => ({ r, m: r.pattern.exec(path || '/') })).find((x) => x.m);
  document.querySelectorAll('#sidebar a').forEach((a) => {
    if (found && a.dataset.nav === found.r.nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  closeMenu();
  const root = $('page');
  if (!found) {
    setCrumbs([['Not found']]);
    replace(root, h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'Back to the dashboard')));
    return;
  }
  replace(root);
  const ctx = {
    root,
    params: found.m.slice(1),
    query: new URLSearchParams(query || ''),
    crumbs: setCrumbs,
    onCleanup: (fn) => cleanups.push(fn),
    onEvent: (fn) => cleanups.push(onEvent(fn)),
    refreshTop,
  };
  try {
    await found.r.page.render(ctx);
  } catch (err) {
    replace(root, h('div', { class: 'alert alert-error', role: 'alert' }, errorText(err)));
  }
  if (!firstRoute) $('main').focus({ preventScroll: true });
  firstRoute = false;
}

async function refreshTop() {
  try {
    const node = await get('/node');
    $('network-badge').textContent = node.network;
    $('network-badge').classList.toggle('testnet', node.network !== 'mainnet');
    replace($('node-id'), shortId(node.node_id, 4));
  } catch { /* the page shows the error */ }
  try {
    const b = await get('/billing');
    $('wallet-balance').textContent = qu(b.available);
  } catch { /* likewise */ }
}

function setLive(status) {
  const el = $('live-status');
  el.textContent = status === 'live' ? 'live' : status;
  el.className = `live live-${status}`;
}

function startApp() {
  document.body.classList.remove('booting', 'logged-out');
  $('login-view').hidden = true;
  $('shell').hidden = false;
  startEvents(setLive);
  if (!started) {
    started = true;
    onEvent((e) => { if (e.type === 'billing') $('wallet-balance').textContent = qu(e.billing.available); });
    window.addEventListener('hashchange', route);
  }
  refreshTop();
  route();
}

function showLogin(message = null) {
  stopEvents();
  localStorage.removeItem(SESSION_FLAG);
  setCsrf(null);
  document.body.classList.remove('booting');
  document.body.classList.add('logged-out');
  $('shell').hidden = true;
  $('login-view').hidden = false;
  login.render($('login-view'), { onSubmit: logIn, message });
}

async function logIn(token) {
  const session = await post('/login', { token });
  setCsrf(session.csrf);
  localStorage.setItem(SESSION_FLAG, '1');
  if (!location.hash || location.hash.startsWith('#token=')) history.replaceState(null, '', `${location.pathname}#/`);
  startApp();
}

function openMenu() {
  document.body.classList.add('menu-open');
  $('menu-toggle').setAttribute('aria-expanded', 'true');
  $('scrim').hidden = false;
}

function closeMenu() {
  document.body.classList.remove('menu-open');
  $('menu-toggle').setAttribute('aria-expanded', 'false');
  $('scrim').hidden = true;
}

function wireShell() {
  $('menu-toggle').addEventListener('click', () => (document.body.classList.contains('menu-open') ? closeMenu() : openMenu()));
  $('scrim').addEventListener('click', closeMenu);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeMenu(); });
  $('logout').addEventListener('click', async () => {
    try { await post('/logout'); } catch { /* the session is gone either way */ }
    showLogin('You are signed out.');
  });
  window.addEventListener('qubix:logged-out', () => showLogin('Your session ended; sign in again.'));
}

async function boot() {
  wireShell();
  const fragment = location.hash.match(/^#token=([0-9a-fA-F]+)/);
  if (fragment) {
    // The token must not stay in the address bar or the history.
    history.replaceState(null, '', `${location.pathname}#/`);
    try { await logIn(fragment[1]); } catch (err) { showLogin(errorText(err)); }
    return;
  }
  if (localStorage.getItem(SESSION_FLAG) === '1') {
    try {
      const session = await get('/session');
      setCsrf(session.csrf);
      startApp();
      return;
    } catch { /* fall through to the login form */ }
  }
  showLogin();
}

boot();
