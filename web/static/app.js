// flightdeck dashboard: lists deployments from the JSON API and keeps them current.
//
// Live: GET /api/stream (Server-Sent Events). Without a token it is read with EventSource; when the page holds an
// API token (reads need one when flightdeck listens on a non-loopback address) it is read with fetch() so that the
// token travels in the Authorization header, never in a URL.
// Fallback: while the stream is down, the list is polled every 5 s when any deployment is pending, installing or
// starting, otherwise every 30 s (body data-poll-*-ms), and a banner says the data may be stale.
'use strict';

(() => {
  const PROGRESS = { pending: 0, installing: 33, starting: 66, running: 100 };
  const ACTIVE = new Set(['pending', 'installing', 'starting']);
  const TOKEN_KEY = 'flightdeck.apiToken';
  const PAGE_SIZE = 200;

  const $ = (id) => document.getElementById(id);
  const el = {
    conn: $('conn'), connText: $('conn-text'), banner: $('banner'), tokenForm: $('token-form'), token: $('token'),
    filter: $('status-filter'), count: $('count'), updated: $('updated'), rows: $('rows'), empty: $('empty'),
    more: $('more'), announcer: $('announcer'),
    history: $('history'), historyTitle: $('history-title'), historyStatus: $('history-status'),
    historyRows: $('history-rows'), historyMore: $('history-more'), historyClose: $('history-close'),
  };

  const state = {
    deployments: new Map(), // id -> deployment JSON
    pages: 1, // pages of the list loaded; a refresh reloads as many
    refreshSeq: 0, // number of the latest refresh started
    refreshing: 0, // refreshes in flight
    eventsDuringRefresh: [], // [name, msg] of stream events received while a refresh ran
    nextCursor: null,
    filter: '',
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    live: false,
    stream: null, // {close()} of the open stream, or null
    retryMs: 3000, // the server's "retry:" hint
    reconnectDelay: 0, // grows while the stream keeps failing
    reconnectTimer: 0,
    pollTimer: 0,
    lastUpdated: null, // Date of the last successful fetch or event
    lastError: '', // message of the last failed fetch, '' after a success
    needToken: false,
    history: { id: '', cursor: null },
  };

  // ----- API -----

  class HTTPError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    let resp;
    try {
      resp = await fetch(path, { headers, cache: 'no-store' });
    } catch (e) {
      throw new HTTPError(0, 'flightdeck cannot be reached');
    }
    let body = null;
    try { body = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      throw new HTTPError(resp.status, (body && body.error) || `HTTP ${resp.status}`);
    }
    return body;
  }

  function listPath(cursor) {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.filter) q.set('status', state.filter);
    if (cursor) q.set('cursor', cursor);
    return '/api/deployments?' + q.toString();
  }

  // refresh reloads the list (as many pages as are shown) and replaces what the page holds. Only the latest refresh
  // is applied (an older one that answers late, say from before the filter changed, is dropped), and the stream
  // events that arrived while it ran are applied again on top of it, so that a list read just before a change
  // never hides that change.
  async function refresh() {
    const seq = ++state.refreshSeq;
    state.refreshing++;
    try {
      const fresh = new Map();
      let cursor = null;
      for (let page = 0; page < state.pages; page++) {
        const body = await api(listPath(cursor));
        for (const d of body.deployments) fresh.set(d.id, d);
        cursor = body.next_cursor;
        if (!cursor) break;
      }
      if (seq === state.refreshSeq) {
        for (const [id, d] of fresh) announceChange(state.deployments.get(id), d);
        state.deployments = fresh;
        state.nextCursor = cursor;
        state.lastUpdated = new Date();
        state.lastError = '';
        setNeedToken(false);
        for (const [name, msg] of state.eventsDuringRefresh) apply(name, msg);
        render();
      }
    } catch (e) {
      if (seq === state.refreshSeq) failed(e);
    } finally {
      state.refreshing--;
      if (state.refreshing === 0) state.eventsDuringRefresh = [];
    }
    updateBanner();
  }

  async function loadMore() {
    if (!state.nextCursor) return;
    try {
      const body = await api(listPath(state.nextCursor));
      for (const d of body.deployments) state.deployments.set(d.id, d);
      state.nextCursor = body.next_cursor;
      state.pages++;
      render();
    } catch (e) {
      failed(e);
    }
    updateBanner();
  }

  function failed(e) {
    state.lastError = e.message;
    if (e.status === 401) {
      setNeedToken(true);
      state.lastError = state.token ? 'the API token was refused: enter the right one' : 'reading needs the API token: enter it above';
    }
  }

  function setNeedToken(need) {
    state.needToken = need;
    el.tokenForm.hidden = !need;
  }

  // ----- live updates -----

  function connect() {
    clearTimeout(state.reconnectTimer);
    if (state.stream || state.needToken) return;
    state.stream = state.token ? openFetchStream() : openEventSource();
  }

  function streamLost() {
    state.stream = null;
    setLive(false);
    clearTimeout(state.reconnectTimer);
    state.reconnectDelay = Math.min(30000, state.reconnectDelay ? state.reconnectDelay * 2 : state.retryMs);
    state.reconnectTimer = setTimeout(connect, state.reconnectDelay);
  }

  function openEventSource() {
    const es = new EventSource('/api/stream');
    es.onopen = () => { setLive(true); refresh(); };
    es.onerror = () => {
      // CONNECTING: the browser retries by itself; CLOSED: the server refused (503, 401), retry later.
      if (es.readyState === EventSource.CLOSED) {
        if (state.stream && state.stream.es === es) streamLost();
      } else {
        setLive(false);
      }
    };
    es.addEventListener('deployment', (ev) => onEvent('deployment', ev.data));
    es.addEventListener('deleted', (ev) => onEvent('deleted', ev.data));
    es.addEventListener('resync', (ev) => onEvent('resync', ev.data));
    return { es, close: () => es.close() };
  }

  // openFetchStream reads the event stream with fetch, so the Authorization header can be sent. It follows the
  // parts of the SSE format the server uses: event, data, retry and comments.
  function openFetchStream() {
    const ctrl = new AbortController();
    const handle = { close: () => ctrl.abort() };
    (async () => {
      try {
        const resp = await fetch('/api/stream', {
          headers: { Accept: 'text/event-stream', Authorization: 'Bearer ' + state.token },
          cache: 'no-store', signal: ctrl.signal,
        });
        if (resp.status === 401) { setNeedToken(true); }
        if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
        setLive(true);
        refresh();
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        let name = '';
        let data = [];
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let nl;
          while ((nl = buf.indexOf('\n')) >= 0) {
            let line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.endsWith('\r')) line = line.slice(0, -1);
            if (line === '') {
              if (data.length) onEvent(name || 'message', data.join('\n'));
              name = ''; data = [];
            } else if (line.startsWith(':')) {
              // comment (heartbeat)
            } else {
              const colon = line.indexOf(':');
              const field = colon < 0 ? line : line.slice(0, colon);
              let val = colon < 0 ? '' : line.slice(colon + 1);
              if (val.startsWith(' ')) val = val.slice(1);
              if (field === 'event') name = val;
              else if (field === 'data') data.push(val);
              else if (field === 'retry' && /^\d+$/.test(val)) state.retryMs = Number(val);
            }
          }
        }
      } catch (e) {
        if (ctrl.signal.aborted) return;
      }
      if (state.stream === handle) streamLost();
    })();
    return handle;
  }

  function onEvent(name, data) {
    let msg;
    try { msg = JSON.parse(data); } catch (e) { return; }
    state.lastUpdated = new Date();
    if (name === 'resync') {
      refresh();
      return;
    }
    if (state.refreshing) state.eventsDuringRefresh.push([name, msg]);
    apply(name, msg);
    render();
    if (name === 'deployment' && state.history.id === msg.id && el.history.open) loadHistory(msg.id, false);
  }

  // apply puts one stream event into the list, unless the list already holds a newer version of the deployment.
  function apply(name, msg) {
    const prev = state.deployments.get(msg.id);
    if (name === 'deleted') {
      state.deployments.delete(msg.id);
    } else if (name === 'deployment') {
      if (prev && stamp(prev.updated_at) > stamp(msg.updated_at)) return;
      if (state.filter && msg.status !== state.filter) {
        state.deployments.delete(msg.id);
      } else {
        announceChange(prev, msg);
        state.deployments.set(msg.id, msg);
      }
    }
  }

  // stamp makes an RFC 3339 UTC time from the API comparable as a string: the server writes a varying number of
  // fraction digits (none, up to nine).
  function stamp(iso) {
    const m = /^(.*?)(?:\.(\d+))?Z$/.exec(iso || '');
    return m ? m[1] + '.' + (m[2] || '').padEnd(9, '0') : String(iso);
  }

  function announceChange(prev, d) {
    if (prev && prev.status !== d.status) {
      el.announcer.textContent = `${d.name} is now ${d.status}` + (d.progress_message ? `: ${d.progress_message}` : '') +
        (d.error_message ? `: ${d.error_message}` : '');
    }
  }

  function setLive(live) {
    state.live = live;
    if (live) {
      state.reconnectDelay = 0;
      clearTimeout(state.pollTimer);
      state.pollTimer = 0;
    } else {
      schedulePoll();
    }
    updateBanner();
  }

  function pollDelay() {
    const ds = document.body.dataset;
    const anyActive = [...state.deployments.values()].some((d) => ACTIVE.has(d.status));
    return Number(anyActive ? ds.pollActiveMs : ds.pollIdleMs) || (anyActive ? 5000 : 30000);
  }

  function schedulePoll() {
    if (state.live || state.pollTimer) return;
    state.pollTimer = setTimeout(async () => {
      state.pollTimer = 0;
      await refresh();
      connect();
      schedulePoll();
    }, pollDelay());
  }

  // ----- rendering -----

  function sorted() {
    return [...state.deployments.values()].sort((a, b) =>
      Date.parse(b.created_at) - Date.parse(a.created_at) || (b.id > a.id) - (b.id < a.id));
  }

  function render() {
    const list = sorted();
    const existing = new Map();
    for (const tr of el.rows.children) existing.set(tr.dataset.id, tr);
    let prev = null;
    for (const d of list) {
      let tr = existing.get(d.id);
      if (tr) existing.delete(d.id);
      else tr = newRow(d.id);
      fillRow(tr, d);
      const want = prev ? prev.nextSibling : el.rows.firstChild;
      if (want !== tr) el.rows.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of existing.values()) tr.remove();
    el.empty.hidden = list.length > 0;
    el.more.hidden = !state.nextCursor;
    el.count.textContent = `${list.length} deployment${list.length === 1 ? '' : 's'}`;
    updateTimes();
  }

  function newRow(id) {
    const tr = document.createElement('tr');
    tr.className = 'deployment';
    tr.dataset.id = id;
    for (const [cls, label] of [['name', 'Name'], ['package', 'Package'], ['status', 'Status'], ['details', 'Progress'],
      ['machine', 'Machine'], ['changed', 'Last change'], ['actions', '']]) {
      const td = document.createElement('td');
      td.className = cls;
      td.dataset.label = label;
      tr.appendChild(td);
    }
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'secondary history-button';
    btn.textContent = 'History';
    btn.addEventListener('click', (ev) => { ev.stopPropagation(); openHistory(id); });
    tr.lastChild.appendChild(btn);
    tr.addEventListener('click', (ev) => {
      if (ev.target.closest('button, a, input, select')) return;
      openHistory(id);
    });
    return tr;
  }

  function fillRow(tr, d) {
    const [name, pkg, st, details, machine, changed, actions] = tr.children;
    tr.dataset.status = d.status;
    tr.classList.toggle('deleting', Boolean(d.deleted_at));

    setContent(name, textNode(d.name), d.deleted_at ? span('tag', 'deleting…') : null);
    setContent(pkg, code(d.package));

    const badge = span('badge badge-' + d.status, d.status);
    setContent(st, badge);

    if (d.status in PROGRESS) {
      const pct = PROGRESS[d.status];
      const bar = document.createElement('div');
      bar.className = 'progress';
      bar.setAttribute('role', 'progressbar');
      bar.setAttribute('aria-valuemin', '0');
      bar.setAttribute('aria-valuemax', '100');
      bar.setAttribute('aria-valuenow', String(pct));
      bar.setAttribute('aria-valuetext', `${pct}%, ${d.status}`);
      bar.setAttribute('aria-label', `Progress of ${d.name}`);
      const fill = document.createElement('div');
      fill.className = 'bar' + (pct === 100 ? ' done' : '');
      fill.style.width = pct + '%';
      bar.appendChild(fill);
      setContent(details, bar, d.progress_message ? para('progress-message', d.progress_message) : null);
    } else if (d.error_message) {
      setContent(details, para('error-message', d.error_message));
    } else if (d.status === 'stopped') {
      setContent(details, para('note', 'Stopped on purpose (not an error); starts again on the next request.'));
    } else {
      setContent(details);
    }

    setContent(machine, d.machine_id ? code(d.machine_id) : span('muted', '—'));
    const t = document.createElement('time');
    t.dateTime = d.status_changed_at;
    t.title = new Date(d.status_changed_at).toLocaleString();
    setContent(changed, t);
    actions.firstChild.setAttribute('aria-label', `Event history of ${d.name}`);
  }

  function setContent(parent, ...nodes) {
    parent.replaceChildren(...nodes.filter(Boolean));
  }
  function textNode(s) { return document.createTextNode(s); }
  function span(cls, text) { const s = document.createElement('span'); s.className = cls; s.textContent = text; return s; }
  function para(cls, text) { const p = document.createElement('p'); p.className = cls; p.textContent = text; return p; }
  function code(text) { const c = document.createElement('code'); c.textContent = text; return c; }

  function ago(iso) {
    const secs = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
    if (secs < 10) return 'just now';
    if (secs < 60) return `${secs} s ago`;
    const mins = Math.floor(secs / 60);
    if (mins < 60) return `${mins} min ago`;
    const hours = Math.floor(mins / 60);
    if (hours < 48) return `${hours} h ago`;
    return `${Math.floor(hours / 24)} days ago`;
  }

  function updateTimes() {
    for (const t of document.querySelectorAll('time[datetime]')) t.textContent = ago(t.dateTime);
    el.updated.textContent = state.lastUpdated ? `Updated ${state.lastUpdated.toLocaleTimeString()}.` : '';
  }

  function updateBanner() {
    let text = '';
    let isError = false;
    if (state.needToken) {
      text = 'Reading deployments needs the API token: enter it below.';
      isError = true;
    } else if (state.lastError) {
      isError = true;
      text = `The data may be stale: ${state.lastError}.` +
        (state.lastUpdated ? ` Showing what was known at ${state.lastUpdated.toLocaleTimeString()}.` : '') +
        ` Retrying every ${Math.round(pollDelay() / 1000)} s.`;
    } else if (!state.live && state.lastUpdated) {
      text = `Live updates are unavailable, so the data may be stale: last refreshed at ${state.lastUpdated.toLocaleTimeString()}, ` +
        `refreshing every ${Math.round(pollDelay() / 1000)} s.`;
    }
    el.banner.hidden = !text;
    el.banner.textContent = text;
    el.banner.classList.toggle('error', isError);
    el.banner.dataset.stale = text ? 'true' : 'false';

    const connState = state.live ? 'live' : state.lastError ? 'offline' : state.lastUpdated ? 'polling' : 'connecting';
    el.conn.dataset.state = connState;
    el.connText.textContent = { live: 'Live', offline: 'Offline', polling: `Polling every ${Math.round(pollDelay() / 1000)} s`, connecting: 'Connecting…' }[connState];
  }

  // ----- event history -----

  function openHistory(id) {
    const d = state.deployments.get(id);
    el.historyTitle.textContent = `Event history of ${d ? d.name : id}`;
    el.historyRows.replaceChildren();
    state.history = { id, cursor: null };
    if (!el.history.open) el.history.showModal();
    loadHistory(id, false);
  }

  async function loadHistory(id, older) {
    const q = new URLSearchParams({ limit: '50' });
    if (older && state.history.cursor) q.set('cursor', state.history.cursor);
    el.historyStatus.textContent = 'Loading…';
    try {
      const body = await api(`/api/deployments/${encodeURIComponent(id)}/events?` + q.toString());
      if (state.history.id !== id) return;
      if (!older) el.historyRows.replaceChildren();
      for (const e of body.events) el.historyRows.appendChild(eventRow(e));
      state.history.cursor = body.next_cursor;
      el.historyMore.hidden = !body.next_cursor;
      const n = el.historyRows.children.length;
      el.historyStatus.textContent = n ? `${n} status change${n === 1 ? '' : 's'}, newest first.` : 'No status changes yet.';
      updateTimes();
    } catch (e) {
      el.historyStatus.textContent = `Cannot load the history: ${e.message}.`;
    }
  }

  function eventRow(e) {
    const tr = document.createElement('tr');
    tr.className = 'event';
    const when = document.createElement('td');
    const t = document.createElement('time');
    t.dateTime = e.at;
    t.title = new Date(e.at).toLocaleString();
    when.append(t, document.createElement('br'), span('muted', new Date(e.at).toLocaleString()));
    const change = document.createElement('td');
    change.append(span('badge badge-' + e.from, e.from), textNode(' → '), span('badge badge-' + e.to, e.to));
    const reason = document.createElement('td');
    reason.className = 'reason';
    reason.appendChild(code(e.reason));
    const message = document.createElement('td');
    message.className = 'message';
    message.textContent = e.message;
    tr.append(when, change, reason, message);
    return tr;
  }

  // ----- wiring -----

  el.historyClose.addEventListener('click', () => el.history.close());
  // The close event is queued: by the time it runs, the dialog may have been opened again for another row.
  el.history.addEventListener('close', () => { if (!el.history.open) state.history = { id: '', cursor: null }; });
  el.historyMore.addEventListener('click', () => loadHistory(state.history.id, true));
  el.more.addEventListener('click', loadMore);
  el.filter.addEventListener('change', () => {
    state.filter = el.filter.value;
    state.pages = 1;
    refresh();
  });
  el.tokenForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = el.token.value.trim();
    el.token.value = '';
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    if (state.stream) { state.stream.close(); state.stream = null; }
    setNeedToken(false);
    refresh().then(connect);
  });

  setInterval(updateTimes, 10000);
  refresh().then(connect);
})();
