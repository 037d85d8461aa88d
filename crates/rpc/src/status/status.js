// The daemon's status page (GET /cairn/status). No framework and no build step: the page's
// state comes from two places on the same listener, under the page's Content-Security-Policy
// (connect-src 'self'):
//   - POST /api/v0/cairn/status, a JSON snapshot of the whole node, fetched at load, every
//     REFRESH_MS (each fetch is also a bandwidth sample for the graph), and shortly after each
//     burst of events;
//   - the event stream WebSocket /api/v0/cairn/events, which updates the peers table, the
//     bootstrap phase and the services table the moment something changes, and refreshes the
//     watch folder card after each watch_import event.
// Everything is written with textContent (never innerHTML): peer agents and errors are
// untrusted text.
'use strict';

(() => {
  const SNAPSHOT = '/api/v0/cairn/status';
  const EVENTS = '/api/v0/cairn/events';
  const REFRESH_MS = 2000;
  const EVENT_DEBOUNCE_MS = 250;
  const SAMPLES = 90;
  const EVENT_KINDS = ['peer', 'bootstrap', 'service', 'listen', 'bitswap', 'block', 'watch'];

  const $ = (id) => document.getElementById(id);
  const text = (id, value) => {
    const el = $(id);
    if (el) el.textContent = value;
  };

  // ---- formatting ---------------------------------------------------------------------------

  function bytes(n) {
    if (n == null) return '–';
    const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    let v = Number(n);
    while (v >= 1000 && i < units.length - 1) {
      v /= 1000;
      i += 1;
    }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + ' ' + units[i];
  }

  const rate = (n) => bytes(Math.round(n)) + '/s';
  const count = (n) => (n == null ? '–' : Number(n).toLocaleString('en-US'));

  function duration(ms) {
    const s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }

  const latency = (ms) => (ms == null ? '–' : ms < 10 ? ms.toFixed(2) + ' ms' : Math.round(ms) + ' ms');

  function badge(id, state) {
    const el = $(id);
    if (!el) return;
    el.dataset.state = state;
    el.textContent = state.replace(/_/g, ' ');
  }

  function problem(message) {
    const el = $('problem');
    el.hidden = !message;
    el.textContent = message || '';
  }

  // ---- peers --------------------------------------------------------------------------------

  // peer id -> {Peer, Addr, Direction, AgentVersion, LatencyMs}
  const peers = new Map();

  function renderPeers(fresh) {
    const body = $('peers').tBodies[0];
    const rows = new Map();
    for (const tr of Array.from(body.rows)) rows.set(tr.dataset.peer, tr);
    const ids = Array.from(peers.keys()).sort();
    ids.forEach((id, index) => {
      const p = peers.get(id);
      let tr = rows.get(id);
      if (!tr) {
        tr = document.createElement('tr');
        tr.dataset.peer = id;
        for (let i = 0; i < 5; i += 1) tr.appendChild(document.createElement('td'));
        tr.cells[4].className = 'num';
        if (fresh === id) tr.className = 'new';
      }
      const cells = [
        p.Peer,
        p.Addr || '–',
        p.Direction || '–',
        p.AgentVersion || '–',
        latency(p.LatencyMs),
      ];
      cells.forEach((value, i) => {
        if (tr.cells[i].textContent !== value) tr.cells[i].textContent = value;
      });
      tr.cells[0].title = p.Peer;
      if (body.rows[index] !== tr) body.insertBefore(tr, body.rows[index] || null);
      rows.delete(id);
    });
    for (const tr of rows.values()) tr.remove();
    text('peer-count', String(peers.size));
    $('no-peers').hidden = peers.size > 0;
  }

  // ---- services -----------------------------------------------------------------------------

  // name -> {Name, State, Restarts, LastError}
  const services = new Map();

  function renderServices() {
    const body = $('service-table').tBodies[0];
    body.textContent = '';
    for (const name of Array.from(services.keys()).sort()) {
      const s = services.get(name);
      const tr = document.createElement('tr');
      tr.dataset.service = name;
      const cells = [s.Name, '', String(s.Restarts ?? 0), s.LastError || '–'];
      cells.forEach((value, i) => {
        const td = document.createElement('td');
        td.textContent = value;
        tr.appendChild(td);
      });
      const state = document.createElement('span');
      state.className = 'badge';
      state.dataset.state = s.State;
      state.textContent = s.State;
      tr.cells[1].appendChild(state);
      tr.cells[2].className = 'num';
      body.appendChild(tr);
    }
  }

  // ---- watch folder -------------------------------------------------------------------------

  function renderWatch(w) {
    $('watch').hidden = !w;
    if (!w) return;
    const c = w.Counts || {};
    text('watch-dir', w.Dir || '–');
    text('watch-imported', count(c.Imported));
    text('watch-settling', count(c.Settling));
    text('watch-importing', count(c.Importing));
    text('watch-count-imported', count(c.Imported));
    text('watch-failed', count(c.Failed));
    const body = $('watch-table').tBodies[0];
    body.textContent = '';
    for (const e of w.Recent || []) {
      const tr = document.createElement('tr');
      tr.dataset.entry = e.Path;
      const when = e.ImportedAt ? new Date(e.ImportedAt).toLocaleTimeString() : '–';
      const cells = [e.Path, '', e.Cid || '–', bytes(e.Size), when];
      cells.forEach((value) => {
        const td = document.createElement('td');
        td.textContent = value;
        tr.appendChild(td);
      });
      const state = document.createElement('span');
      state.className = 'badge';
      state.dataset.state = e.State;
      state.textContent = e.State;
      tr.cells[1].appendChild(state);
      tr.cells[3].className = 'num';
      body.appendChild(tr);
    }
    $('watch-none').hidden = (w.Recent || []).length > 0;
  }

  // ---- bandwidth graph ----------------------------------------------------------------------

  const samples = []; // {inRate, outRate}
  let lastTotals = null; // {t, in, out}

  function sample(totals) {
    const now = performance.now();
    if (lastTotals && now > lastTotals.t) {
      const dt = (now - lastTotals.t) / 1000;
      const inRate = Math.max(0, (totals.TotalIn - lastTotals.in) / dt);
      const outRate = Math.max(0, (totals.TotalOut - lastTotals.out) / dt);
      samples.push({ inRate, outRate });
      if (samples.length > SAMPLES) samples.shift();
      text('rate-in', rate(inRate));
      text('rate-out', rate(outRate));
    }
    lastTotals = { t: now, in: totals.TotalIn, out: totals.TotalOut };
    text('total-in', bytes(totals.TotalIn));
    text('total-out', bytes(totals.TotalOut));
    drawGraph();
  }

  function drawGraph() {
    const canvas = $('bw-graph');
    canvas.dataset.samples = String(samples.length);
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const style = getComputedStyle(document.documentElement);
    const color = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
    const top = 14;
    const peak = Math.max(1, ...samples.map((s) => Math.max(s.inRate, s.outRate)));
    ctx.strokeStyle = color('--line', '#ddd');
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, height - 0.5);
    ctx.lineTo(width, height - 0.5);
    ctx.moveTo(0, top + 0.5);
    ctx.lineTo(width, top + 0.5);
    ctx.stroke();
    ctx.fillStyle = color('--muted', '#888');
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillText(rate(peak), 2, 10);
    const step = width / (SAMPLES - 1);
    const line = (key, stroke) => {
      if (samples.length < 2) return;
      ctx.strokeStyle = stroke;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      const start = width - (samples.length - 1) * step;
      samples.forEach((s, i) => {
        const x = start + i * step;
        const y = height - 1 - (s[key] / peak) * (height - top - 2);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.stroke();
    };
    line('inRate', color('--in', '#2a7fd4'));
    line('outRate', color('--out', '#e07a1f'));
  }

  // ---- snapshot -----------------------------------------------------------------------------

  let inFlight = null;
  let again = false;

  function applySnapshot(s) {
    text('peer-id', s.ID);
    text('agent', s.AgentVersion);
    const list = $('addresses');
    list.textContent = '';
    for (const a of s.Addresses || []) {
      const li = document.createElement('li');
      const code = document.createElement('code');
      code.textContent = a;
      li.appendChild(code);
      list.appendChild(li);
    }
    text('uptime', duration(s.UptimeMs || 0));

    peers.clear();
    for (const p of s.Peers || []) peers.set(p.Peer, p);
    renderPeers(null);

    const b = s.Bootstrap || {};
    badge('bs-phase', b.Phase || 'unknown');
    text('bs-connected', count((b.ConnectedBootstrapPeers || []).length) + ' connected');
    text('bs-rounds', count(b.Attempts) + ' started, ' + count(b.Successes) + ' reached a peer, ' +
      count(b.Failures) + ' failed');
    text('bs-error', b.LastError || '–');

    sample(s.Bandwidth || { TotalIn: 0, TotalOut: 0 });

    const r = s.Repo || {};
    const meter = $('repo-meter');
    meter.value = r.StorageMax ? Math.min(1, r.RepoSize / r.StorageMax) : 0;
    meter.title = r.StorageMax ? ((100 * r.RepoSize) / r.StorageMax).toFixed(1) + '% of Datastore.StorageMax' : '';
    text('repo-size', bytes(r.RepoSize));
    text('storage-max', bytes(r.StorageMax));
    text('repo-blocks', count(r.NumObjects));
    text('pins-recursive', count((s.Pins || {}).Recursive));
    text('pins-direct', count((s.Pins || {}).Direct));

    const w = s.Bitswap || {};
    text('bs-blocks-in', count(w.BlocksReceived));
    text('bs-data-in', bytes(w.DataReceived));
    text('bs-blocks-out', count(w.BlocksSent));
    text('bs-data-out', bytes(w.DataSent));
    text('bs-dup', count(w.DupBlksReceived));
    text('bs-wantlist', count(w.WantlistLength) + ' blocks');
    text('bs-peers', count(w.Peers));

    const health = s.Services || {};
    badge('overall', health.Status || 'unknown');
    services.clear();
    for (const svc of health.Services || []) services.set(svc.Name, svc);
    renderServices();
    renderWatch(s.Watch);
    text('updated', 'Updated ' + new Date().toLocaleTimeString() + '.');
  }

  async function fetchSnapshot() {
    const response = await fetch(SNAPSHOT, {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
    });
    if (!response.ok) {
      const body = await response.text();
      throw new Error(response.status + ' ' + body.trim().slice(0, 200));
    }
    return response.json();
  }

  // One snapshot at a time; a request made while one runs is served by one more afterwards.
  function refresh() {
    if (inFlight) {
      again = true;
      return inFlight;
    }
    inFlight = fetchSnapshot()
      .then((s) => {
        problem(null);
        applySnapshot(s);
      })
      .catch((e) => {
        problem('Could not read the node\'s state: ' + e.message);
        badge('overall', 'offline');
      })
      .finally(() => {
        inFlight = null;
        if (again) {
          again = false;
          refresh();
        }
      });
    return inFlight;
  }

  let debounce = null;
  function refreshSoon() {
    if (debounce) return;
    debounce = setTimeout(() => {
      debounce = null;
      refresh();
    }, EVENT_DEBOUNCE_MS);
  }

  // ---- events -------------------------------------------------------------------------------

  function onEvent(e) {
    switch (e.type) {
      case 'hello':
        badge('live', 'live');
        if (e.peer) text('peer-id', e.peer);
        refresh();
        break;
      case 'peer_connected':
        peers.set(e.peer, Object.assign({}, peers.get(e.peer) || {}, {
          Peer: e.peer,
          Addr: e.address,
          Direction: e.direction,
        }));
        renderPeers(e.peer);
        refreshSoon();
        break;
      case 'peer_disconnected':
        peers.delete(e.peer);
        renderPeers(null);
        refreshSoon();
        break;
      case 'peer_identified':
        if (peers.has(e.peer)) {
          peers.get(e.peer).AgentVersion = e.agent;
          renderPeers(null);
        }
        break;
      case 'bootstrap_phase':
        badge('bs-phase', e.phase);
        refreshSoon();
        break;
      case 'service_state': {
        const old = services.get(e.service) || { Name: e.service, Restarts: 0 };
        services.set(e.service, Object.assign({}, old, {
          State: e.state,
          LastError: e.error || old.LastError,
        }));
        renderServices();
        refreshSoon();
        break;
      }
      case 'lagged':
        refreshSoon();
        break;
      case 'events_filter':
      case 'error':
        break;
      default:
        // listen_addr_*, block_*, bitswap_*: counters the snapshot carries.
        refreshSoon();
    }
  }

  let backoff = 1000;
  function connect() {
    const url = new URL(EVENTS, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url, ['cairn-events']);
    socket.addEventListener('open', () => {
      backoff = 1000;
      socket.send(JSON.stringify({ events: EVENT_KINDS }));
    });
    socket.addEventListener('message', (m) => {
      let e;
      try {
        e = JSON.parse(m.data);
      } catch (_) {
        return;
      }
      onEvent(e);
    });
    socket.addEventListener('close', () => {
      badge('live', 'offline');
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    });
  }

  function start() {
    renderPeers(null);
    drawGraph();
    refresh();
    connect();
    setInterval(refresh, REFRESH_MS);
    window.addEventListener('resize', drawGraph);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
