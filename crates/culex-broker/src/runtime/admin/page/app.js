// The culex dashboard: one page over the broker's /api/, polled once a
// second for what changed (deltas), charts drawn on canvas by the small
// plotter below. Data from the broker is only ever put in the page as
// text (textContent), never as markup.
'use strict';

// ---- helpers ----------------------------------------------------------

const $ = (selector) => document.querySelector(selector);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const enc = encodeURIComponent;

function fmtNumber(n) {
  if (n === null || n === undefined) return '–';
  if (Math.abs(n) >= 1e9) return (n / 1e9).toFixed(2) + ' G';
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(2) + ' M';
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + ' k';
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(Math.abs(n) < 10 ? 2 : 1);
}

// A value from a payload: as precise as it came, within reason.
function fmtValue(n) {
  if (n === null || n === undefined) return '–';
  return String(Number(n.toPrecision(6)));
}

function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(1)) + ' ' + units[i];
}

function fmtAgo(ms) {
  if (!ms) return '–';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return Math.floor(s / 86400) + ' d ago';
}

function fmtClock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour12: false });
}

function payloadText(p) {
  if (!p) return '';
  if (p.text !== undefined) return p.text + (p.truncated ? '…' : '');
  return '(binary, ' + fmtBytes(p.size) + ')';
}

function pretty(p) {
  if (!p || p.text === undefined) return payloadText(p);
  try { return JSON.stringify(JSON.parse(p.text), null, 2); } catch (e) { return payloadText(p); }
}

async function getJson(path) {
  const response = await fetch(path, { headers: { accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// Actions carry the header the broker requires of them (a page of
// another origin cannot send it).
async function act(method, path) {
  const response = await fetch(path, { method, headers: { 'x-culex-admin': '1' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// A button that asks for a second click before it acts.
function armedButton(label, onConfirm) {
  const button = el('button', { class: 'danger', text: label });
  let timer = null;
  button.addEventListener('click', async () => {
    if (!button.classList.contains('armed')) {
      button.classList.add('armed');
      button.textContent = 'Click again to ' + label.toLowerCase();
      timer = setTimeout(() => { button.classList.remove('armed'); button.textContent = label; }, 4000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    try { await onConfirm(); } catch (e) { button.textContent = String(e.message || e); }
  });
  return button;
}

// ---- charts -------------------------------------------------------------

const COLORS = ['#2f6fdf', '#1e9e5a', '#d0453a', '#c98a12', '#8a4fd0', '#1597a8', '#b8478f', '#5b6478'];

function niceStep(range, ticks) {
  const raw = range / Math.max(1, ticks);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

// Draws `series` ([{label, color, points: [[timeMs, value], …]}]) as lines.
// Options: span (ms shown up to now, else the data's range), zero (the y
// axis starts at 0), format (y labels).
function drawChart(canvas, series, options) {
  const opts = Object.assign({ zero: true, format: fmtNumber }, options);
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 400;
  const height = canvas.clientHeight || 180;
  if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
  if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, width, height);
  const all = series.flatMap((s) => s.points);
  canvas.dataset.points = String(all.length);
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#6b7383';
  if (all.length === 0) {
    g.fillText('no data yet', width / 2 - 28, height / 2);
    return;
  }
  let x1 = Math.max(...all.map((p) => p[0]));
  let x0 = opts.span ? x1 - opts.span : Math.min(...all.map((p) => p[0]));
  if (x1 - x0 < 1000) { x0 -= 500; x1 += 500; }
  let y0 = Math.min(...all.map((p) => p[1]));
  let y1 = Math.max(...all.map((p) => p[1]));
  if (opts.zero) y0 = Math.min(0, y0);
  if (y1 - y0 < 1e-9) { y1 += 1; if (!opts.zero) y0 -= 1; }
  const step = niceStep(y1 - y0, 4);
  y0 = Math.floor(y0 / step) * step;
  y1 = Math.ceil(y1 / step) * step;
  const left = 56, right = 8, top = 8, bottom = 20;
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const py = (y) => height - bottom - ((y - y0) / (y1 - y0)) * (height - top - bottom);
  g.strokeStyle = '#e6e9ee';
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let y = y0; y <= y1 + step / 2; y += step) {
    g.beginPath();
    g.moveTo(left, Math.round(py(y)) + 0.5);
    g.lineTo(width - right, Math.round(py(y)) + 0.5);
    g.stroke();
    g.fillText(opts.format(Math.round(y / step) * step), left - 6, py(y));
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  let lastLabel = '';
  for (let i = 0; i <= 3; i++) {
    const x = x0 + ((x1 - x0) * i) / 3;
    const label = fmtClock(x);
    if (label !== lastLabel) g.fillText(label, Math.min(width - 30, Math.max(left + 20, px(x))), height - bottom + 5);
    lastLabel = label;
  }
  series.forEach((s, i) => {
    g.strokeStyle = s.color || COLORS[i % COLORS.length];
    g.lineWidth = 2;
    g.lineJoin = 'round';
    g.beginPath();
    let started = false;
    for (const [x, y] of s.points) {
      if (x < x0) continue;
      if (started) g.lineTo(px(x), py(y)); else { g.moveTo(px(x), py(y)); started = true; }
    }
    g.stroke();
    if (s.points.length === 1) {
      const [x, y] = s.points[0];
      g.fillStyle = g.strokeStyle;
      g.beginPath();
      g.arc(px(x), py(y), 3, 0, 2 * Math.PI);
      g.fill();
    }
  });
}

function legendItem(s, i) {
  const span = el('span', { class: 'field-name', text: s.label });
  span.style.setProperty('--c', s.color || COLORS[i % COLORS.length]);
  return span;
}

// ---- overview -----------------------------------------------------------

const overview = {
  samples: [],
  last: null,

  async refresh() {
    const since = this.samples.length ? this.samples[this.samples.length - 1].seq : 0;
    const [stats, info] = await Promise.all([getJson('/api/stats?since=' + since), getJson('/api/overview')]);
    this.samples.push(...stats.samples);
    if (this.samples.length > 300) this.samples.splice(0, this.samples.length - 300);
    this.last = info;
    this.render();
  },

  rates(key) {
    const out = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1], b = this.samples[i];
      const dt = (b.time_ms - a.time_ms) / 1000;
      if (dt > 0) out.push([b.time_ms, Math.max(0, b[key] - a[key]) / dt]);
    }
    return out;
  },

  render() {
    const o = this.last;
    if (!o) return;
    const tiles = [
      ['connected', fmtNumber(o.connected)], ['sessions', fmtNumber(o.sessions)],
      ['subscriptions', fmtNumber(o.subscriptions)], ['retained', fmtNumber(o.retained) + ' · ' + fmtBytes(o.retained_bytes)],
      ['messages in', fmtNumber(o.messages_in)], ['messages out', fmtNumber(o.messages_out)],
      ['dropped', fmtNumber(o.dropped.total)], ['memory', fmtBytes(o.resident_bytes)],
    ];
    $('#tiles').replaceChildren(...tiles.map(([label, value]) =>
      el('div', { class: 'tile' }, el('div', { class: 'value', text: value }), el('div', { class: 'label', text: label }))));
    // Five minutes at most, one at least.
    const first = this.samples.length ? this.samples[0].time_ms : Date.now();
    const span = Math.min(5 * 60 * 1000, Math.max(60 * 1000, Date.now() - first));
    drawChart($('#chart-connections'), [{ label: 'connected', points: this.samples.map((s) => [s.time_ms, s.connected]) }], { span });
    drawChart($('#chart-messages'), [
      { label: 'in', points: this.rates('messages_in') },
      { label: 'out', points: this.rates('messages_out'), color: COLORS[1] },
    ], { span });
    drawChart($('#chart-drops'), [{ label: 'dropped', points: this.rates('dropped'), color: COLORS[2] }], { span });
    drawChart($('#chart-memory'), [{ label: 'resident', points: this.samples.map((s) => [s.time_ms, s.resident_bytes]), color: COLORS[4] }],
      { span, format: fmtBytes });
    $('#drops').replaceChildren(...Object.entries(o.dropped).filter(([k]) => k !== 'total')
      .map(([reason, n]) => el('tr', {}, el('td', { text: reason.replace(/_/g, ' ') }), el('td', { text: fmtNumber(n) }))));
    $('#listeners').replaceChildren(
      el('tr', {}, el('th', { text: 'listener' }), ...['3.1', '3.1.1', '5.0'].map((p) => el('th', { text: 'MQTT ' + p }))),
      ...o.listeners.map((l) => el('tr', {}, el('td', { text: l.listener }),
        ...['3.1', '3.1.1', '5.0'].map((p) => el('td', { text: fmtNumber(l.connected[p]) })))));
  },
};

// ---- clients ------------------------------------------------------------

const clients = {
  items: [],
  more: false,
  selected: null,

  query(after, limit) {
    const search = $('#client-search').value.trim();
    const connected = $('#client-connected').checked ? '1' : '';
    return '/api/clients?limit=' + limit + '&search=' + enc(search) + '&connected=' + connected +
      (after ? '&after=' + enc(after) : '');
  },

  async refresh() {
    const limit = Math.min(500, Math.max(100, this.items.length));
    const page = await getJson(this.query(null, limit));
    this.items = page.clients;
    this.more = page.more;
    $('#client-count').textContent = page.matched + ' client' + (page.matched === 1 ? '' : 's');
    this.render();
    if (this.selected) await this.showDetail();
  },

  async loadMore() {
    const last = this.items[this.items.length - 1];
    const page = await getJson(this.query(last && last.client_id, 100));
    this.items.push(...page.clients);
    this.more = page.more;
    this.render();
  },

  render() {
    const rows = this.items.map((c) => el('tr', {
      dataset: { clientId: c.client_id },
      class: c.client_id === this.selected ? 'selected' : null,
      onclick: () => { this.selected = c.client_id; this.render(); this.showDetail(); },
    },
    el('td', { text: c.client_id }),
    el('td', { class: c.connected ? 'on' : 'off', text: c.connected ? 'connected' : 'offline' }),
    el('td', { text: c.address || '–' }),
    el('td', { text: c.protocol }),
    el('td', { text: c.username || '' }),
    el('td', { text: c.subscription_count }),
    el('td', { text: c.inflight }),
    el('td', { text: c.queued }),
    el('td', { text: c.dropped })));
    $('#client-table tbody').replaceChildren(...rows);
    $('#client-more').hidden = !this.more;
  },

  async showDetail() {
    const id = this.selected;
    let c;
    try {
      c = await getJson('/api/clients/' + enc(id));
    } catch (e) {
      $('#client-detail').replaceChildren(el('h3', { text: id }), el('p', { class: 'muted', text: 'The session is gone.' }));
      return;
    }
    if (id !== this.selected) return;
    const expiry = c.session_expiry === null ? 'never' : c.session_expiry + ' s';
    const fields = [
      ['state', c.connected ? 'connected' : 'offline'], ['address', c.address || '–'], ['protocol', 'MQTT ' + c.protocol],
      ['user', c.username || '–'], ['listener', c.listener || '–'], ['keep-alive', c.keep_alive + ' s'],
      ['session expiry', expiry],
      [c.connected ? 'connected' : 'disconnected', fmtAgo(c.connected ? c.connected_at_ms : c.disconnected_at_ms)],
      ['in flight', c.inflight], ['queued', c.queued],
      ['dropped', Object.entries(c.drops).filter(([k, n]) => k !== 'total' && n > 0)
        .map(([k, n]) => k.replace(/_/g, ' ') + ' ' + n).join(', ') || '0'],
      ['will', c.will ? c.will.topic + ' (QoS ' + c.will.qos + (c.will.retain ? ', retained' : '') + ', ' +
        fmtBytes(c.will.payload_bytes) + (c.will.delay ? ', delay ' + c.will.delay + ' s' : '') + ')' : 'none'],
    ];
    const subs = c.subscriptions.map((s) => el('tr', { dataset: { filter: s.filter } },
      el('td', { text: s.filter }), el('td', { text: 'QoS ' + s.qos }),
      el('td', {}, el('button', {
        class: 'danger unsubscribe', text: 'remove',
        onclick: async () => {
          await act('DELETE', '/api/clients/' + enc(id) + '/subscriptions?filter=' + enc(s.filter));
          await this.showDetail();
        },
      }))));
    const kick = c.connected ? armedButton('Kick', async () => {
      await act('POST', '/api/clients/' + enc(id) + '/kick');
      await this.refresh();
    }) : null;
    if (kick) kick.id = 'kick';
    $('#client-detail').replaceChildren(
      el('h3', { text: id }),
      el('dl', {}, fields.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })])),
      el('h2', { text: 'Subscriptions (' + c.subscriptions.length + ')' }),
      el('table', { class: 'compact', id: 'client-subscriptions' }, subs),
      el('p', {}, kick));
  },
};

// ---- topics -------------------------------------------------------------

const ROOT = '\u0000';

const topics = {
  // Each expanded node, by path (ROOT for the root): its children as
  // loaded (the first ones by name), whether that is all of them, and the
  // tree's sequence number it is up to date with.
  nodes: new Map(),
  expanded: new Set([ROOT]),
  selected: null,
  history: new Map(),

  childPath(parent, name) { return parent === ROOT ? name : parent + '/' + name; },

  url(path, since, after, limit) {
    return '/api/topics?limit=' + limit + '&since=' + since + (path === ROOT ? '' : '&path=' + enc(path)) +
      (after !== null ? '&after=' + enc(after) : '');
  },

  async refresh() {
    for (const path of [...this.expanded]) await this.update(path);
    this.render();
    if (this.selected) await this.showDetail();
  },

  // Brings one expanded node's loaded children up to date.
  async update(path) {
    let node = this.nodes.get(path);
    if (!node) {
      const page = await getJson(this.url(path, 0, null, 200));
      node = { rows: new Map(), complete: !page.more, seq: page.seq, info: page };
      for (const r of page.rows) node.rows.set(r.name, r);
      this.nodes.set(path, node);
      $('#topic-info').textContent = page.nodes + ' nodes' + (page.untracked ? ', ' + page.untracked + ' messages beyond the limit' : '') +
        ' · counts since this page started watching';
      return;
    }
    const names = [...node.rows.keys()].sort();
    const lastLoaded = names[names.length - 1];
    let after = null;
    let seq = null;
    // Changes past the rows loaded are not shown: ask only for as many.
    const wanted = node.complete ? 500 : Math.min(500, node.rows.size + 1);
    for (let pageNo = 0; pageNo < 10; pageNo++) {
      const page = await getJson(this.url(path, node.seq, after, wanted));
      if (seq === null) seq = page.seq;
      for (const r of page.rows) {
        if (node.complete || node.rows.has(r.name) || r.name < lastLoaded) {
          const old = node.rows.get(r.name);
          r.flash = old && old.total !== r.total;
          node.rows.set(r.name, r);
        }
      }
      const last = page.rows.length ? page.rows[page.rows.length - 1].name : null;
      if (!page.more || (!node.complete && last !== null && last >= lastLoaded)) break;
      after = last;
    }
    if (seq !== null) node.seq = seq;
  },

  async loadMore(path) {
    const node = this.nodes.get(path);
    const names = [...node.rows.keys()].sort();
    const page = await getJson(this.url(path, 0, names[names.length - 1], 200));
    for (const r of page.rows) node.rows.set(r.name, r);
    node.complete = !page.more;
    this.render();
  },

  toggle(path) {
    if (this.expanded.has(path)) {
      for (const p of [...this.expanded]) if (p === path || p.startsWith(path + '/')) { this.expanded.delete(p); this.nodes.delete(p); }
    } else {
      this.expanded.add(path);
      this.update(path).then(() => this.render());
    }
    this.render();
  },

  renderChildren(path) {
    const node = this.nodes.get(path);
    if (!node) return el('ul', {}, el('li', { class: 'muted', text: 'loading…' }));
    const names = [...node.rows.keys()].sort();
    const items = names.map((name) => {
      const r = node.rows.get(name);
      const full = this.childPath(path, name);
      const open = this.expanded.has(full);
      const head = el('div', {
        class: 'node' + (full === this.selected ? ' selected' : '') + (r.flash ? ' flash' : ''),
        dataset: { topic: full },
        onclick: () => {
          if (r.children > 0) this.toggle(full);
          if (r.last) { this.selected = full; this.history.clear(); this.render(); this.showDetail(); }
        },
      },
      el('span', { class: 'twisty', text: r.children > 0 ? (open ? '▾' : '▸') : '' }),
      el('span', { class: 'name', text: name === '' ? '(empty)' : name }),
      el('span', { class: 'count', text: '(' + fmtNumber(r.total) + (r.children ? ' · ' + r.children + ' below' : '') + ')' }),
      r.last ? el('span', { class: 'value', text: payloadText(r.last) }) : null,
      r.last ? el('span', { class: 'count', text: fmtAgo(r.last.time_ms) }) : null);
      r.flash = false;
      return el('li', {}, head, open ? this.renderChildren(full) : null);
    });
    if (!node.complete) items.push(el('li', { class: 'more-row', text: 'more…', onclick: () => this.loadMore(path) }));
    if (items.length === 0) items.push(el('li', { class: 'muted', text: 'No messages yet.' }));
    return el('ul', {}, items);
  },

  render() {
    const tree = $('#topic-tree');
    const scroll = tree.scrollTop;
    tree.replaceChildren(this.renderChildren(ROOT));
    tree.scrollTop = scroll;
  },

  async showDetail() {
    const topic = this.selected;
    let d;
    try {
      d = await getJson('/api/topic?topic=' + enc(topic));
    } catch (e) {
      return;
    }
    if (topic !== this.selected) return;
    for (const s of d.samples) this.history.set(s.time_ms + '\u0000' + payloadText(s), s);
    const history = [...this.history.values()].sort((a, b) => a.time_ms - b.time_ms).slice(-500);
    this.history = new Map(history.map((s) => [s.time_ms + '\u0000' + payloadText(s), s]));
    const last = d.samples[d.samples.length - 1];
    const prev = d.samples[d.samples.length - 2];
    // One small chart per numeric field, each on its own scale.
    const series = numericSeries(history);
    const charts = series.map((s, i) => ({ s, canvas: el('canvas', { class: 'topic-chart', id: i === 0 ? 'topic-chart' : null }) }));
    $('#topic-detail').replaceChildren(
      el('h3', { text: topic }),
      el('dl', {},
        el('dt', { text: 'messages' }), el('dd', { text: fmtNumber(d.messages) + ' since watching' }),
        el('dt', { text: 'retained' }), el('dd', { text: d.retained ? 'yes' : 'no' }),
        el('dt', { text: 'last' }), el('dd', { text: last ? fmtAgo(last.time_ms) + ', QoS ' + last.qos + ', ' + fmtBytes(last.size) : '–' })),
      el('h2', { text: 'Last message' }),
      el('pre', { id: 'topic-last', text: pretty(last) }),
      el('h2', { text: 'Change from the previous message' }),
      diffView(prev, last),
      el('h2', { text: series.length ? 'History' : 'History (no numeric values)' }),
      ...charts.map(({ s, canvas }, i) => el('div', { class: 'field-chart' },
        el('div', { class: 'legend' }, legendItem(s, i), el('span', { class: 'latest', text: fmtValue(s.points[s.points.length - 1][1]) })),
        canvas)),
      el('h2', { text: 'Recent messages' }),
      el('table', { class: 'compact' }, d.samples.slice().reverse().map((s) =>
        el('tr', {}, el('td', { text: fmtClock(s.time_ms) }), el('td', { class: 'payload', text: payloadText(s) })))));
    charts.forEach(({ s, canvas }, i) => drawChart(canvas, [Object.assign({ color: COLORS[i % COLORS.length] }, s)], { zero: false, format: fmtValue }));
  },
};

// Numbers in a payload: the payload itself, or the numeric fields of a JSON
// document (nested ones by dotted path), at most eight.
function numbersOf(sample) {
  if (!sample || sample.text === undefined) return {};
  const text = sample.text.trim();
  if (text !== '' && !isNaN(Number(text))) return { value: Number(text) };
  let doc;
  try { doc = JSON.parse(text); } catch (e) { return {}; }
  const out = {};
  const walk = (v, path, depth) => {
    if (Object.keys(out).length >= 8 || depth > 4) return;
    if (typeof v === 'number' && isFinite(v)) out[path || 'value'] = v;
    else if (typeof v === 'boolean') out[path || 'value'] = v ? 1 : 0;
    else if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) walk(c, path ? path + '.' + k : k, depth + 1);
  };
  walk(doc, '', 0);
  return out;
}

function numericSeries(history) {
  const byField = new Map();
  for (const s of history) {
    for (const [field, v] of Object.entries(numbersOf(s))) {
      if (!byField.has(field)) byField.set(field, []);
      byField.get(field).push([s.time_ms, v]);
    }
  }
  return [...byField.entries()].slice(0, 8).map(([label, points]) => ({ label, points }));
}

function diffView(prev, last) {
  if (!prev || !last) return el('p', { class: 'muted', text: 'Only one message so far.' });
  const a = numbersOf(prev), b = numbersOf(last);
  const rows = [];
  for (const field of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (a[field] === b[field]) continue;
    const delta = (a[field] !== undefined && b[field] !== undefined) ? b[field] - a[field] : null;
    rows.push(el('tr', {},
      el('td', { text: field }),
      el('td', { text: a[field] === undefined ? '–' : fmtValue(a[field]) }),
      el('td', { text: '→' }),
      el('td', { text: b[field] === undefined ? '–' : fmtValue(b[field]) }),
      el('td', { class: delta === null ? 'changed' : delta > 0 ? 'up' : 'down',
        text: delta === null ? 'changed' : (delta > 0 ? '+' : '') + fmtValue(delta) })));
  }
  if (rows.length) return el('table', { class: 'compact diff', id: 'topic-diff' }, rows);
  if (payloadText(prev) === payloadText(last)) return el('p', { class: 'muted', id: 'topic-diff', text: 'Same payload as before.' });
  return el('div', { class: 'diff', id: 'topic-diff' },
    el('div', { class: 'muted', text: 'before' }), el('pre', { text: pretty(prev) }));
}

// ---- retained -----------------------------------------------------------

const retained = {
  items: [],
  more: false,
  selected: null,
  ticks: 0,

  url(after, limit) {
    const filter = $('#retained-filter').value.trim() || '#';
    return '/api/retained?limit=' + limit + '&filter=' + enc(filter) + (after ? '&after=' + enc(after) : '');
  },

  async refresh(force) {
    if (!force && this.ticks++ % 5 !== 0) return;
    const page = await getJson(this.url(null, Math.min(500, Math.max(100, this.items.length))));
    this.items = page.messages;
    this.more = page.more;
    $('#retained-count').textContent = page.matched + ' retained message' + (page.matched === 1 ? '' : 's');
    this.render();
  },

  async loadMore() {
    const last = this.items[this.items.length - 1];
    const page = await getJson(this.url(last && last.topic, 100));
    this.items.push(...page.messages);
    this.more = page.more;
    this.render();
  },

  render() {
    $('#retained-table tbody').replaceChildren(...this.items.map((m) => el('tr', {
      dataset: { retainedTopic: m.topic },
      class: m.topic === this.selected ? 'selected' : null,
      onclick: () => { this.selected = m.topic; this.render(); this.showDetail(); },
    },
    el('td', { text: m.topic }), el('td', { text: m.size }), el('td', { text: m.qos }),
    el('td', { text: fmtAgo(m.time_ms) }), el('td', { class: 'payload', text: payloadText(m) }))));
    $('#retained-more').hidden = !this.more;
  },

  async showDetail() {
    const topic = this.selected;
    let m;
    try {
      m = await getJson('/api/retained/message?topic=' + enc(topic));
    } catch (e) {
      $('#retained-detail').replaceChildren(el('h3', { text: topic }), el('p', { class: 'muted', text: 'No retained message there now.' }));
      return;
    }
    const del = armedButton('Delete', async () => {
      await act('DELETE', '/api/retained/message?topic=' + enc(topic));
      $('#retained-detail').replaceChildren(el('h3', { text: topic }), el('p', { id: 'retained-deleted', text: 'Deleted.' }));
      this.selected = null;
      await this.refresh(true);
    });
    del.id = 'delete-retained';
    $('#retained-detail').replaceChildren(
      el('h3', { text: topic }),
      el('dl', {}, el('dt', { text: 'size' }), el('dd', { text: fmtBytes(m.size) }),
        el('dt', { text: 'QoS' }), el('dd', { text: m.qos }),
        el('dt', { text: 'set' }), el('dd', { text: fmtAgo(m.time_ms) })),
      el('pre', { text: pretty(m) }),
      el('p', {}, del));
  },
};

// ---- log ----------------------------------------------------------------

const log = {
  entries: [],
  last: 0,

  async refresh() {
    const page = await getJson('/api/log?limit=500&since=' + this.last);
    if (page.entries.length === 0) return;
    this.entries.push(...page.entries);
    if (this.entries.length > 1000) this.entries.splice(0, this.entries.length - 1000);
    this.last = page.last;
    this.render();
  },

  render() {
    const shown = new Set([...document.querySelectorAll('#log input[data-kind]')].filter((i) => i.checked).map((i) => i.dataset.kind));
    const known = ['connect', 'disconnect', 'drop', 'admin'];
    const items = this.entries.slice().reverse()
      .filter((e) => shown.has(known.includes(e.kind) ? e.kind : 'other'))
      .map((e) => el('li', { dataset: { kind: e.kind } },
        el('time', { text: fmtClock(e.time_ms) }), el('span', { class: 'kind ' + e.kind, text: e.kind }), e.text));
    $('#log-list').replaceChildren(...items);
  },
};

// ---- tabs and the poll loop ---------------------------------------------

const tabs = { overview, clients, topics, retained, log };

function activeTab() {
  const name = location.hash.replace('#', '');
  return tabs[name] ? name : 'overview';
}

function showTab() {
  const name = activeTab();
  for (const section of document.querySelectorAll('.tab')) section.classList.toggle('active', section.id === name);
  for (const link of document.querySelectorAll('nav a')) link.classList.toggle('active', link.dataset.tab === name);
  poll();
}

let busy = false;

// Refreshes the tab in view (nothing while the page is hidden: the
// broker stops feeding the topic tree a while after nobody asks).
async function poll() {
  if (busy || document.hidden) return;
  busy = true;
  const status = $('#status');
  try {
    await tabs[activeTab()].refresh();
    status.textContent = 'live';
    status.className = 'status ok';
  } catch (e) {
    status.textContent = String(e.message || e);
    status.className = 'status down';
  } finally {
    busy = false;
  }
}

function start() {
  window.addEventListener('hashchange', showTab);
  document.addEventListener('visibilitychange', poll);
  let debounce = null;
  $('#client-search').addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { clients.items = []; poll(); }, 250);
  });
  $('#client-connected').addEventListener('change', () => { clients.items = []; poll(); });
  $('#client-more').addEventListener('click', () => clients.loadMore());
  $('#retained-go').addEventListener('click', () => { retained.items = []; retained.refresh(true); });
  $('#retained-filter').addEventListener('keydown', (e) => { if (e.key === 'Enter') { retained.items = []; retained.refresh(true); } });
  $('#retained-more').addEventListener('click', () => retained.loadMore());
  for (const box of document.querySelectorAll('#log input[data-kind]')) box.addEventListener('change', () => log.render());
  window.addEventListener('resize', () => overview.render());
  showTab();
  setInterval(poll, 1000);
}

start();
