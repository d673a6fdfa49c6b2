// Confirmation dialogs (a modal <dialog>: focus is trapped, Escape cancels) and toasts.

import { h, replace } from './dom.js';

/**
 * Asks before doing something. Resolves true when confirmed. With `typed`, the user must type
 * that word first (for destructive actions).
 */
export function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false, typed = null }) {
  return new Promise((resolve) => {
    const input = typed ? h('input', { type: 'text', id: 'confirm-typed', autocomplete: 'off', 'aria-label': `Type ${typed} to confirm` }) : null;
    const ok = h('button', { type: 'submit', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, id: 'confirm-ok', disabled: Boolean(typed) }, confirmLabel);
    const cancel = h('button', { type: 'button', class: 'btn', id: 'confirm-cancel' }, 'Cancel');
    const form = h('form', { method: 'dialog', class: 'dialog-form' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', {}, message),
      typed && h('label', { for: 'confirm-typed' }, 'To confirm, type ', h('strong', {}, typed), ':'),
      input,
      h('div', { class: 'dialog-actions' }, cancel, ok));
    const dialog = h('dialog', { class: 'dialog', id: 'confirm-dialog', 'aria-labelledby': 'confirm-title' }, form);
    if (input) input.addEventListener('input', () => { ok.disabled = input.value.trim() !== typed; });
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    dialog.addEventListener('cancel', (e) => { e.preventDefault(); finish(false); });
    form.addEventListener('submit', (e) => { e.preventDefault(); finish(true); });
    document.body.append(dialog);
    dialog.showModal();
    (input || cancel).focus();
  });
}

/** Shows a short message at the top right; kind is ok, error or info. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message,
    h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, '×'));
  item.querySelector('button').addEventListener('click', () => item.remove());
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 10000 : 5000);
}

/** Shows an API error in a container (inline, next to what failed). */
export function showError(container, err) {
  replace(container, h('div', { class: 'alert alert-error', role: 'alert' }, err && err.message ? err.message : String(err)));
}
