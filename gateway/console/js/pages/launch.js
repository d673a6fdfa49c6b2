// The launch wizard: template → configure (GPUs, disk, env, ports, duration, budget with the
// cost estimate) → review → launch, then progress through negotiation, payment, pull and
// start from the instance's events, with polling as a fallback.

import { get, postOnce, newIdempotencyKey, isTransient } from '../api.js';
import { h, replace, qu, gib, simulatedBadge, facts, panel, errorText, shortId } from '../dom.js';

const TEMPLATES = [
  { id: 'pytorch', name: 'PyTorch + Jupyter', detail: 'PyTorch with CUDA and JupyterLab on port 8888.',
    image: 'pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime',
    command: 'bash -c "pip install -q jupyterlab && jupyter lab --ip=0.0.0.0 --port=8888 --allow-root --no-browser"',
    ports: '8888:jupyter' },
  { id: 'ssh', name: 'SSH server', detail: 'Ubuntu with an OpenSSH server on port 22; put your key in PUBLIC_KEY.',
    image: 'lscr.io/linuxserver/openssh-server:latest', command: '', ports: '2222:ssh', env: 'PUBLIC_KEY=' },
  { id: 'custom', name: 'Custom image', detail: 'Any image and command you choose.', image: '', command: '', ports: '' },
];

const STEPS = ['Template', 'Configure', 'Review', 'Launch'];
const PHASES = ['negotiating', 'paying', 'pulling', 'starting', 'running'];

/** Splits a command line into arguments, honouring double quotes. */
function splitArgs(line) {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

function parseEnv(text) {
  const env = {};
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf('=');
    if (at < 1) throw new Error(`Environment line "${line}" is not NAME=value`);
    env[line.slice(0, at)] = line.slice(at + 1);
  }
  return env;
}

function parsePorts(text) {
  return text.split(/[\s,]+/).filter(Boolean).map((item) => {
    const [port, purpose = 'tcp'] = item.split(':');
    const container_port = Number(port);
    if (!Number.isInteger(container_port) || container_port < 1 || container_port > 65535) throw new Error(`Port "${item}" is not a port number`);
    if (!['ssh', 'jupyter', 'tcp'].includes(purpose)) throw new Error(`Port purpose "${purpose}" must be ssh, jupyter or tcp`);
    return { container_port, purpose };
  });
}

function stepper(current) {
  return h('ol', { class: 'stepper', 'aria-label': 'Launch steps' }, STEPS.map((s, i) => h('li', {
    class: i < current ? 'done' : i === current ? 'current' : null, 'aria-current': i === current ? 'step' : null,
  }, h('span', { class: 'step-num' }, String(i + 1)), s)));
}

function wide(el) {
  el.classList.add('wide');
  return el;
}

function field(id, label, input, help = null) {
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, help && h('p', { class: 'help' }, help));
}

export async function render(ctx) {
  ctx.crumbs([['Marketplace', '#/marketplace'], ['Launch instance']]);
  const page = await get('/offers?limit=1000');
  const wanted = ctx.query.get('offer');
  const offers = page.offers;
  // Offers are named `<offer id>@<provider>`; an older link may carry the offer id alone.
  const state = { step: 0, template: TEMPLATES[0], offerId: wanted || (offers[0] && offers[0].id), form: null };
  if (offers.length === 0) {
    replace(ctx.root, h('h1', {}, 'Launch instance'), h('div', { class: 'alert alert-warn' }, 'No offers are known yet. ', h('a', { href: '#/marketplace' }, 'Open the marketplace'), ' and wait for providers to appear.'));
    return;
  }
  const body = h('div', { class: 'wizard-body' });
  replace(ctx.root, h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Launch instance'), h('p', { class: 'lead' }, 'Rent GPUs from a provider and run a container on them.'))), h('div', { id: 'wizard-steps' }), body);
  const offerOf = () => offers.find((o) => o.id === state.offerId || o.offer.offer_id === state.offerId) || offers[0];
  state.offerId = offerOf().id;
  const show = () => {
    replace(document.getElementById('wizard-steps'), stepper(state.step));
    const views = [templateStep, configureStep, reviewStep];
    replace(body, views[state.step](state, offerOf, offers, go));
    const first = body.querySelector('input, select, textarea, button');
    if (first) first.focus();
  };
  const go = (step) => {
    if (step === 3) { launchStep(state, offerOf().offer, body, ctx, go); replace(document.getElementById('wizard-steps'), stepper(3)); return; }
    state.step = step;
    show();
  };
  show();
}

function templateStep(state, offerOf, offers, go) {
  const cards = TEMPLATES.map((t) => h('label', { class: `choice ${state.template.id === t.id ? 'selected' : ''}` },
    h('input', { type: 'radio', name: 'template', value: t.id, checked: state.template.id === t.id, id: `template-${t.id}`,
      onchange: () => { state.template = t; state.form = null; go(0); } }),
    h('span', { class: 'choice-title' }, t.name), h('span', { class: 'choice-detail' }, t.detail),
    t.image && h('code', { class: 'choice-image' }, t.image)));
  return [
    panel('Choose a template', h('div', { class: 'choices', role: 'radiogroup', 'aria-label': 'Template' }, cards)),
    h('div', { class: 'wizard-actions' }, h('a', { class: 'btn', href: '#/marketplace' }, 'Cancel'), h('button', { type: 'button', class: 'btn btn-primary', id: 'wizard-next', onclick: () => go(1) }, 'Next')),
  ];
}

function configureStep(state, offerOf, offers, go) {
  const t = state.template;
  const f = state.form || { image: t.image, command: t.command, env: t.env || '', ports: t.ports, gpus: 1, disk: 50, hours: 2, maxPrice: '' };
  state.form = f;
  const offer = offerOf().offer;
  const select = h('select', {}, offers.map((o) => h('option', { value: o.id, selected: o.id === state.offerId },
    `${o.offer.gpu.model} × ${o.offer.gpu_count} · ${o.offer.location.country} · ${qu(o.offer.price_per_gpu_hour)}/GPU-h${o.offer.simulated ? ' · simulated' : ''}`)));
  select.addEventListener('change', () => { state.offerId = select.value; go(1); });
  const input = (key, attrs) => {
    const el = h(attrs.tag || 'input', { ...attrs, tag: null, value: f[key] });
    el.addEventListener('input', () => { f[key] = el.value; estimate(); });
    return el;
  };
  const est = h('output', { id: 'estimate', class: 'estimate', for: 'gpus hours' });
  const error = h('p', { id: 'config-error', class: 'field-error', role: 'alert' });
  const estimate = () => {
    const gpus = Number(f.gpus) || 0;
    const hours = Number(f.hours) || 0;
    const price = Number(f.maxPrice) || offer.price_per_gpu_hour;
    replace(est, h('span', { class: 'estimate-label' }, 'Estimated cost '), h('strong', {}, qu(Math.ceil(price * gpus * hours))),
      h('span', { class: 'muted' }, ` = ${qu(price)} × ${gpus} GPU${gpus === 1 ? '' : 's'} × ${hours} h`));
  };
  estimate();
  const next = () => {
    try {
      buildRequest(state, offer);
      go(2);
    } catch (err) { error.textContent = errorText(err); }
  };
  return [
    panel(h('span', {}, 'Offer ', offer.simulated ? simulatedBadge() : null), field('offer-select', 'Offer', select)),
    panel('Container', h('div', { class: 'form-grid' },
      wide(field('image', 'Image', input('image', { type: 'text', required: true, spellcheck: 'false' }))),
      wide(field('command', 'Command', input('command', { type: 'text', spellcheck: 'false' }), 'Empty runs the image’s default command.')),
      field('env', 'Environment', input('env', { tag: 'textarea', rows: 3, spellcheck: 'false', placeholder: 'NAME=value, one per line' })),
      field('ports', 'Ports', input('ports', { type: 'text', placeholder: '8888:jupyter 22:ssh 6006:tcp' }), 'port:purpose, purpose is ssh, jupyter or tcp.'))),
    panel('Resources and budget', [h('div', { class: 'form-grid' },
      field('gpus', `GPUs (1–${offer.gpu_count})`, input('gpus', { type: 'number', min: 1, max: offer.gpu_count, required: true })),
      field('disk', 'Disk (GiB)', input('disk', { type: 'number', min: 1 })),
      field('hours', 'Duration (hours)', input('hours', { type: 'number', min: 0.1, step: 0.5, required: true })),
      field('max-price', 'Max price (QU/GPU-h)', input('maxPrice', { type: 'number', min: 1, placeholder: String(offer.price_per_gpu_hour) }), 'Defaults to the offer’s price.')),
    est]),
    error,
    h('div', { class: 'wizard-actions' }, h('button', { type: 'button', class: 'btn', onclick: () => go(0) }, 'Back'), h('button', { type: 'button', class: 'btn btn-primary', id: 'wizard-next', onclick: next }, 'Review')),
  ];
}

function buildRequest(state, offer) {
  const f = state.form;
  const gpus = Number(f.gpus);
  const hours = Number(f.hours);
  if (!f.image.trim()) throw new Error('Choose an image.');
  if (!Number.isInteger(gpus) || gpus < 1 || gpus > offer.gpu_count) throw new Error(`GPUs must be 1 to ${offer.gpu_count}.`);
  if (!(hours > 0)) throw new Error('The duration must be above 0 hours.');
  const request = {
    offer_id: state.offerId, image: f.image.trim(), command: splitArgs(f.command), env: parseEnv(f.env),
    ports: parsePorts(f.ports), gpus, duration_secs: Math.round(hours * 3600),
  };
  if (Number(f.disk) > 0) request.disk_gib = Number(f.disk);
  if (Number(f.maxPrice) > 0) request.max_price_per_gpu_hour = Number(f.maxPrice);
  return request;
}

function reviewStep(state, offerOf, offers, go) {
  const offer = offerOf().offer;
  const r = buildRequest(state, offer);
  const price = r.max_price_per_gpu_hour || offer.price_per_gpu_hour;
  const total = Math.ceil((price * r.gpus * r.duration_secs) / 3600);
  return [
    panel('Review', facts([
      ['Offer', h('span', {}, `${offer.gpu.model} · ${offer.location.country} · `, shortId(offer.provider, 4), ' ', offer.simulated && simulatedBadge())],
      ['Image', h('code', {}, r.image)],
      ['Command', r.command.length ? h('code', {}, r.command.map((a) => (/[\s"]/.test(a) ? JSON.stringify(a) : a)).join(' ')) : 'image default'],
      ['Ports', r.ports.map((p) => `${p.container_port} (${p.purpose})`).join(', ') || 'none'],
      ['Environment', Object.keys(r.env).join(', ') || 'none'],
      ['GPUs', `${r.gpus} × ${offer.gpu.model} (${gib(offer.gpu.vram_mib)} each)`],
      ['Duration', `${r.duration_secs / 3600} h`],
      ['Price', `${qu(price)} per GPU-hour`],
      ['Budget locked in escrow', h('strong', { id: 'review-total' }, qu(total))],
    ])),
    h('p', { class: 'help' }, 'The budget is locked in escrow and paid to the provider in prepaid windows; unused escrow returns when the instance ends.'),
    h('div', { class: 'wizard-actions' }, h('button', { type: 'button', class: 'btn', onclick: () => go(1) }, 'Back'),
      h('button', { type: 'button', class: 'btn btn-primary', id: 'launch-submit', onclick: () => go(3) }, 'Launch')),
  ];
}

function launchStep(state, offer, body, ctx, go) {
  const list = h('ol', { class: 'progress-steps', id: 'launch-progress' }, PHASES.map((p) => h('li', { dataset: { phase: p } }, h('span', { class: 'dot' }), p)));
  const detail = h('p', { id: 'launch-detail', class: 'muted', role: 'status' }, 'Asking the provider…');
  const result = h('div', { id: 'launch-result' });
  replace(body, panel('Launching', [list, detail, result]));
  let id = null;
  let timer = null;
  const mark = (phase, text) => {
    const at = PHASES.indexOf(phase);
    list.querySelectorAll('li').forEach((li, i) => { li.className = i < at ? 'done' : i === at ? (phase === 'running' ? 'done' : 'current') : ''; });
    if (text) detail.textContent = text;
    if (phase === 'running') {
      clearInterval(timer);
      replace(result, h('div', { class: 'alert alert-ok' }, 'The instance is running. ', h('a', { href: `#/instances/${id}`, id: 'open-instance', class: 'btn btn-primary' }, 'Open instance')));
    }
  };
  const follow = (instance) => {
    if (instance.progress) mark(instance.progress.phase, instance.progress.detail);
    if (instance.state === 'running') mark('running', 'Running.');
    if (['failed', 'terminated'].includes(instance.state)) {
      clearInterval(timer);
      replace(result, h('div', { class: 'alert alert-error', role: 'alert' }, `The instance ${instance.state}${instance.reason ? `: ${instance.reason.replace(/_/g, ' ')}` : ''}.`));
    }
  };
  ctx.onEvent((e) => {
    if (!id || e.id !== id) return;
    if (e.type === 'instance_progress') mark(e.progress.phase, e.progress.detail);
    if (e.type === 'instance_state') follow({ state: e.state });
  });
  ctx.onCleanup(() => clearInterval(timer));
  // One key per launch the user means: kept for a resubmit after a failure that may have
  // gone through (timeout, node unreachable), so a second click never rents twice; a new
  // request (other settings) gets a new key.
  const request = buildRequest(state, offer);
  const requestText = JSON.stringify(request);
  if (!state.launchKey || state.launchBody !== requestText) {
    state.launchKey = newIdempotencyKey();
    state.launchBody = requestText;
  }
  postOnce('/instances', request, state.launchKey).then((instance) => {
    state.launchKey = null;
    id = instance.id;
    ctx.refreshTop();
    mark('negotiating', 'Agreement signed with the provider.');
    follow(instance);
    timer = setInterval(() => get(`/instances/${id}`).then(follow).catch(() => {}), 2000);
  }).catch((err) => {
    if (!isTransient(err)) state.launchKey = null;
    mark('negotiating');
    replace(result, h('div', { class: 'alert alert-error', role: 'alert', id: 'launch-error' }, errorText(err)),
      h('button', { type: 'button', class: 'btn', id: 'launch-back', onclick: () => go(2) }, 'Back to review'));
  });
}
