// The sign-in page: paste the API token (from <data-dir>/api-token), or open the login URL
// the node printed, which signs in without this page.

import { h, replace, errorText } from '../dom.js';

/** Renders the form into `root`; onSubmit(token) resolves on success or throws. */
export function render(root, { onSubmit, message }) {
  const input = h('input', {
    id: 'login-token', name: 'token', type: 'password', required: true, autocomplete: 'current-password',
    spellcheck: 'false', placeholder: '64 hexadecimal characters', 'aria-describedby': 'login-help login-error',
  });
  const error = h('p', { id: 'login-error', class: 'field-error', role: 'alert' }, message && !message.startsWith('You are') ? message : '');
  const notice = message && message.startsWith('You are') ? h('p', { class: 'login-notice', role: 'status' }, message) : null;
  const button = h('button', { type: 'submit', id: 'login-submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const form = h('form', { id: 'login-form', class: 'login-card', novalidate: true },
    h('div', { class: 'login-brand' }, h('img', { src: '/assets/logo.svg', alt: '', width: 40, height: 40 }), h('span', {}, 'Qubix')),
    h('h1', { id: 'login-title' }, 'Sign in to the console'),
    notice,
    h('label', { for: 'login-token' }, 'API token'),
    input,
    h('p', { id: 'login-help', class: 'help' }, 'The token is in ', h('code', {}, '<data-dir>/api-token'),
      '. The node also prints a login URL that signs you in directly.'),
    error,
    button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) {
      error.textContent = 'Paste the API token first.';
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      await onSubmit(token);
    } catch (err) {
      error.textContent = err.code === 'unauthorized' ? 'That token is not this node’s API token.' : errorText(err);
      input.setAttribute('aria-invalid', 'true');
      input.select();
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  replace(root, h('div', { class: 'login-wrap' }, form, h('p', { class: 'login-foot' }, 'Peer-to-peer GPU compute · ', h('span', { class: 'mono' }, location.host))));
  input.focus();
}
