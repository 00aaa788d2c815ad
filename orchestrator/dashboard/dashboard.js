/* dashboard.js - the slorag SLO dashboard.
 *
 * Polls GET /v1/stats (same origin) every 5 s and draws it with plain DOM
 * and inline SVG; no framework, no build step, nothing loaded from
 * elsewhere.  Two decisions worth knowing:
 *  - Everything the server sends is inserted as text (DOM nodes and
 *    textContent), never as HTML: tenant, plan and backend names come from
 *    users.
 *  - The page runs under the strict Content-Security-Policy that
 *    gen_asset.py computes (hashes of the inline script and style, no
 *    inline style attributes), so sizes are set through the CSSOM
 *    (el.style.width), which that policy allows, and never via
 *    setAttribute('style').
 * body[data-state] (loading, ok, auth, error) and the data-* attributes on
 * table cells are what tests/browser/check.mjs reads. */
(function () {
  'use strict';

  const REFRESH_MS = 5000;
  const AUTH_RETRY_MS = 30000;  /* after a 401/403: until a key is typed in */
  const FETCH_TIMEOUT_MS = 4000;
  const KEY_STORE = 'slorag.dashboard.key';
  const OBJECTIVES = ['deadline', 'latency', 'cost', 'quality'];
  const DEFAULT_TARGET = 0.95;
  const SVGNS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  const state = {
    key: '',
    data: null,      /* the last good /v1/stats body, normalised */
    fetchedAt: 0,    /* client time (ms) of that fetch */
    error: null,     /* {kind: 'auth'|'http'|'net', status, message} */
    selected: null,  /* tenant name shown in the detail section */
    sort: { col: 'queries', desc: true },
    filter: '',
    belowOnly: false,
    timer: 0,
    busy: false,
    again: false,
  };

  /* ---------- small helpers ---------- */

  function h(tag, props, ...kids) {
    const e = document.createElement(tag);
    setProps(e, props);
    append(e, ...kids);
    return e;
  }

  function s(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs || {})
      if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, String(attrs[k]));
    append(e, ...kids);
    return e;
  }

  function setProps(e, props) {
    for (const k in props || {}) {
      const v = props[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'width') e.style.width = v;        /* CSSOM: allowed by the CSP */
      else if (k === 'left') e.style.left = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'data') for (const d in v) e.dataset[d] = v[d];
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(e, ...kids) {
    for (const c of kids.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }

  function num(v) {
    return typeof v === 'number' && isFinite(v) ? v : null;
  }

  function obj(v) {
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  }

  /* ---------- formatting (tests/browser/check.mjs mirrors fmtInt and fmtPct) ---------- */

  function fmtInt(n) {
    return n === null ? '—' : Math.round(n).toLocaleString('en-US');
  }

  function fmtPct(x) {
    return x === null ? '—' : (100 * x).toFixed(1) + '%';
  }

  function fmtMs(ms) {
    if (ms === null) return '—';
    if (ms < 10) return ms.toFixed(2) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(2) + ' s';
    return (ms / 60000).toFixed(1) + ' min';
  }

  function fmtCost(c) {
    if (c === null) return '—';
    if (c === 0) return '0';
    const a = Math.abs(c);
    if (a >= 100) return c.toFixed(0);
    if (a >= 1) return c.toFixed(2);
    if (a >= 0.01) return c.toFixed(3);
    return c.toPrecision(2);
  }

  function pad2(n) {
    return (n < 10 ? '0' : '') + n;
  }

  function fmtClock(epochS, withSeconds) {
    const d = new Date(epochS * 1000);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + (withSeconds ? ':' + pad2(d.getSeconds()) : '');
  }

  function fmtDateTime(epochS) {
    const d = new Date(epochS * 1000);
    const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    return days[d.getDay()] + ' ' + d.getDate() + ' ' + months[d.getMonth()] + ' ' + fmtClock(epochS, false);
  }

  function fmtDuration(sec) {
    if (sec === null) return '—';
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return sec + ' s';
    if (sec < 3600) return Math.floor(sec / 60) + ' min';
    if (sec < 86400) return Math.floor(sec / 3600) + ' h ' + Math.floor((sec % 3600) / 60) + ' min';
    return Math.floor(sec / 86400) + ' d ' + Math.floor((sec % 86400) / 3600) + ' h';
  }

  /* ---------- the data ---------- */

  function ratio(met, missed) {
    const total = (met || 0) + (missed || 0);
    return total > 0 ? (met || 0) / total : null;
  }

  function counts(o) {
    const out = [];
    for (const k in obj(o) || {}) {
      const n = num(o[k]);
      if (n !== null) out.push({ name: k, n: n });
    }
    out.sort((a, b) => b.n - a.n || (a.name < b.name ? -1 : 1));
    return out;
  }

  /* Accepts whatever /v1/stats sends and fills in what an older or newer
   * server leaves out, so a missing field shows as "—" instead of
   * breaking the page. */
  function normalise(body) {
    const b = obj(body) || {};
    const tenants = (Array.isArray(b.tenants) ? b.tenants : []).filter((t) => obj(t) && typeof t.tenant === 'string');
    return {
      generatedAt: num(b.generated_at) || Math.floor(Date.now() / 1000),
      uptime: num(b.uptime_s),
      windowMin: num(b.window_minutes) || 60,
      scope: typeof b.scope === 'string' ? b.scope : 'all',
      backends: (Array.isArray(b.backends) ? b.backends : []).filter(obj),
      tenants: tenants.map(normaliseTenant),
    };
  }

  function normaliseTenant(t) {
    const slo = [];
    const so = obj(t.slo) || {};
    const names = OBJECTIVES.filter((o) => obj(so[o])).concat(Object.keys(so).filter((o) => !OBJECTIVES.includes(o) && obj(so[o])).sort());
    for (const name of names) {
      const met = num(so[name].met) || 0;
      const missed = num(so[name].missed) || 0;
      const target = num(so[name].target) !== null ? so[name].target : DEFAULT_TARGET;
      const att = ratio(met, missed);
      slo.push({ name, met, missed, target, att, below: att !== null && att < target });
    }
    const lat = obj(t.latency_ms) || {};
    const cost = obj(t.cost) || {};
    const budget = obj(t.budget);
    const outcomes = counts(t.outcomes);
    const answered = outcomes.find((o) => o.name === 'answered');
    const queries = num(t.queries) || 0;
    return {
      name: t.tenant,
      queries,
      answered: answered ? answered.n : 0,
      answeredShare: queries > 0 && answered ? answered.n / queries : null,
      outcomes,
      intents: counts(t.intents),
      plans: counts(t.plans),
      decisions: counts(t.decisions),
      slo,
      sloByName: Object.fromEntries(slo.map((o) => [o.name, o])),
      below: slo.some((o) => o.below),
      p50: num(lat.p50), p95: num(lat.p95), p99: num(lat.p99),
      cost: num(cost.total), perQuery: num(cost.per_query),
      budget: budget ? {
        perDay: num(budget.per_day), spentToday: num(budget.spent_today),
        perMonth: num(budget.per_month), spentMonth: num(budget.spent_month),
        exhaustion: num(budget.projected_exhaustion),
      } : null,
      timeline: (Array.isArray(t.timeline) ? t.timeline : []).filter((p) => obj(p) && num(p.t) !== null)
        .map((p) => ({ t: p.t, queries: num(p.queries) || 0, p50: num(p.p50_ms), p95: num(p.p95_ms),
          cost: num(p.cost) || 0, sloMet: num(p.slo_met) || 0, sloTotal: num(p.slo_total) || 0 }))
        .sort((a, b) => a.t - b.t),
    };
  }

  function budgetShare(b) {
    if (!b || b.perDay === null || b.perDay <= 0 || b.spentToday === null) return null;
    return b.spentToday / b.perDay;
  }

  /* ---------- key handling ---------- */

  function loadKey() {
    const fromUrl = new URLSearchParams(location.search).get('key');
    if (fromUrl) {
      saveKey(fromUrl);
      return fromUrl;
    }
    try {
      return sessionStorage.getItem(KEY_STORE) || '';
    } catch (e) {
      return '';
    }
  }

  function saveKey(k) {
    try {
      if (k) sessionStorage.setItem(KEY_STORE, k);
      else sessionStorage.removeItem(KEY_STORE);
    } catch (e) { /* storage disabled: the key lives in memory only */ }
  }

  function keyValid(k) {
    return /^[\x21-\x7e]{1,512}$/.test(k);
  }

  function showKeyForm(show, focus) {
    $('keyform').hidden = !show;
    $('keybtn').setAttribute('aria-expanded', show ? 'true' : 'false');
    if (show && focus) $('keyinput').focus();
  }

  /* ---------- fetching ---------- */

  async function errorMessage(res) {
    try {
      const j = await res.json();
      if (j && j.error && typeof j.error.message === 'string') return j.error.message;
    } catch (e) { /* not JSON */ }
    return res.statusText || '';
  }

  async function poll() {
    clearTimeout(state.timer);
    if (document.hidden && state.data) {
      state.timer = setTimeout(poll, REFRESH_MS);  /* resumes at once on visibilitychange */
      return;
    }
    if (state.busy) {
      state.again = true;  /* e.g. a key typed in while a fetch is on its way */
      return;
    }
    state.busy = true;
    const ctl = new AbortController();
    const timeout = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const headers = { Accept: 'application/json' };
      if (state.key) headers.Authorization = 'Bearer ' + state.key;
      const res = await fetch(new URL('/v1/stats', location.origin), {
        headers, cache: 'no-store', credentials: 'omit', signal: ctl.signal,
      });
      if (res.status === 401 || res.status === 403) {
        state.data = null;  /* never leave another key's numbers on screen */
        state.error = { kind: 'auth', status: res.status, message: await errorMessage(res) };
      } else if (!res.ok) {
        state.error = { kind: 'http', status: res.status, message: await errorMessage(res) };
      } else {
        state.data = normalise(await res.json());
        state.fetchedAt = Date.now();
        state.error = null;
      }
    } catch (e) {
      state.error = { kind: 'net', message: e && e.name === 'AbortError' ? 'no answer within 4 s' : String((e && e.message) || e) };
    } finally {
      clearTimeout(timeout);
      state.busy = false;
    }
    try {
      render();
    } catch (e) {
      /* a bug here must not stop the refresh loop, and must be visible */
      console.error('dashboard: render failed:', e);
      const b = $('banner');
      b.hidden = false;
      b.className = 'banner error';
      b.textContent = 'The dashboard could not draw this data (' + e + '). It retries every 5 s.';
    }
    const again = state.again;
    state.again = false;
    state.timer = setTimeout(poll, again ? 0 : state.error && state.error.kind === 'auth' ? AUTH_RETRY_MS : REFRESH_MS);
  }

  /* ---------- rendering ---------- */

  function render() {
    const d = state.data;
    document.body.dataset.state = state.error ? (state.error.kind === 'auth' ? 'auth' : 'error') : d ? 'ok' : 'loading';
    if (d) document.body.dataset.generatedAt = String(d.generatedAt);
    renderStatus();
    renderBanner();
    $('overview').hidden = !d;
    $('backends').hidden = !d;
    if (!d) {
      $('detail').hidden = true;
      return;
    }
    pickSelected();
    renderOverview();
    renderDetail();
    renderBackends();
    const below = d.tenants.filter((t) => t.below).length;
    document.title = (below ? '▼ ' + below + ' below SLO · ' : '') + 'slorag dashboard';
  }

  function renderStatus() {
    const el = clear($('status'));
    const d = state.data;
    if (!d) {
      el.textContent = state.error ? '' : 'Loading…';
      return;
    }
    const stale = !!state.error;
    el.classList.toggle('stale', stale);
    append(el,
      h('span', { class: 'dot', 'aria-hidden': 'true' }),
      (stale ? 'Stale: last update ' : 'Updated ') + fmtClock(state.fetchedAt / 1000, true),
      ' · every 5 s · scope ', h('strong', { text: d.scope === 'all' ? 'all tenants' : 'tenant ' + d.scope }),
      ' · window ' + d.windowMin + ' min',
      d.uptime !== null ? ' · up ' + fmtDuration(d.uptime) : '');
  }

  function renderBanner() {
    const el = clear($('banner'));
    const e = state.error;
    el.hidden = !e;
    el.className = 'banner';
    if (!e) return;
    if (e.kind === 'auth') {
      el.classList.add('auth');
      if (e.status === 401)
        append(el, h('strong', { text: state.key ? 'Key rejected (401).' : 'A key is needed (401).' }), ' ',
          state.key ? 'slorag does not accept this key: it may be mistyped or revoked. ' : 'This slorag runs with API keys. ',
          'Enter the admin key, the read-only dashboard key or a tenant key below.');
      else
        append(el, h('strong', { text: 'Not allowed (403).' }), ' ',
          'This key may not read the statistics. Use the admin key, the dashboard key or a tenant key.');
      if (e.message) append(el, h('span', { class: 'muted', text: ' (' + e.message + ')' }));
      showKeyForm(true, $('keyform').hidden);  /* focus once, not on every refresh */
      return;
    }
    el.classList.add('error');
    const what = e.kind === 'http' ? 'slorag answered ' + e.status + (e.message ? ': ' + e.message : '') : 'Cannot reach slorag: ' + e.message;
    append(el, h('strong', { text: state.data ? 'Showing the last good data.' : 'No data.' }), ' ', what, '. Retrying every 5 s.');
  }

  function pickSelected() {
    const names = state.data.tenants.map((t) => t.name);
    const fromHash = decodeURIComponent((location.hash.match(/^#tenant=(.*)$/) || [])[1] || '');
    if (state.selected === null && names.includes(fromHash)) state.selected = fromHash;
    if (!names.includes(state.selected)) {
      const sorted = sortedTenants(state.data.tenants);
      state.selected = sorted.length ? sorted[0].name : null;
    }
  }

  function select(name) {
    state.selected = name;
    history.replaceState(null, '', location.pathname + location.search + '#tenant=' + encodeURIComponent(name));
    renderOverview();
    renderDetail();
  }

  /* Overview columns: key, header, value for sorting, cell builder. */
  function columns(objectives) {
    const cols = [
      { key: 'tenant', label: 'Tenant', val: (t) => t.name, cell: (t) => h('td', { class: 'name' + (t.name === '_other' ? ' other' : ''), title: t.name === '_other' ? 'tenants beyond the tracked limit' : t.name, text: t.name }) },
      { key: 'queries', label: 'Queries', val: (t) => t.queries, cell: (t) => h('td', { text: fmtInt(t.queries) }) },
      { key: 'answered', label: 'Answered', val: (t) => t.answeredShare, cell: (t) => h('td', { text: fmtPct(t.answeredShare) }) },
      { key: 'p50', label: 'p50', val: (t) => t.p50, cell: (t) => h('td', { text: fmtMs(t.p50) }) },
      { key: 'p95', label: 'p95', val: (t) => t.p95, cell: (t) => h('td', { text: fmtMs(t.p95) }) },
      { key: 'p99', label: 'p99', val: (t) => t.p99, cell: (t) => h('td', { text: fmtMs(t.p99) }) },
    ];
    for (const o of objectives)
      cols.push({
        key: 'slo-' + o, label: o[0].toUpperCase() + o.slice(1) + ' SLO',
        val: (t) => (t.sloByName[o] ? t.sloByName[o].att : null),
        cell: (t) => {
          const x = t.sloByName[o];
          if (!x || x.att === null) return h('td', { class: 'na', text: '—' });
          return h('td', { class: x.below ? 'bad' : 'ok', title: x.met + ' met, ' + x.missed + ' missed; target ' + fmtPct(x.target) },
            x.below ? '▼ ' : '', fmtPct(x.att));
        },
      });
    cols.push(
      { key: 'cost', label: 'Cost', val: (t) => t.cost, cell: (t) => h('td', { text: fmtCost(t.cost) }) },
      { key: 'budget', label: 'Budget today', val: (t) => budgetShare(t.budget), cell: (t) => {
        const b = budgetShare(t.budget);
        return h('td', { class: b === null ? 'na' : b >= 1 ? 'bad' : b >= 0.8 ? 'warn' : '', text: b === null ? '—' : fmtPct(b) });
      } });
    return cols;
  }

  function allObjectives(tenants) {
    const seen = new Set();
    for (const t of tenants) for (const o of t.slo) seen.add(o.name);
    return OBJECTIVES.filter((o) => seen.has(o)).concat([...seen].filter((o) => !OBJECTIVES.includes(o)).sort());
  }

  function sortedTenants(tenants) {
    const cols = columns(allObjectives(tenants));
    const col = cols.find((c) => c.key === state.sort.col) || cols[1];
    const dir = state.sort.desc ? -1 : 1;
    return tenants.slice().sort((a, b) => {
      const x = col.val(a), y = col.val(b);
      if (x === y) return a.name < b.name ? -1 : 1;
      if (x === null) return 1;   /* no value sorts last either way */
      if (y === null) return -1;
      return (x < y ? -1 : 1) * dir;
    });
  }

  function renderOverview() {
    const d = state.data;
    const wrap = clear($('tenants'));
    const n = d.tenants.length;
    $('filter').hidden = n < 6;
    $('belowonly').hidden = n < 6;
    if (n === 0) {
      $('tenantcount').textContent = '';
      wrap.appendChild(h('div', { class: 'empty', id: 'notraffic' },
        h('strong', { text: 'No traffic yet' }),
        'No query has been answered since slorag started. Send one to POST /v1/query; this page refreshes every 5 s.'));
      return;
    }
    const f = n >= 6 ? state.filter.trim().toLowerCase() : '';
    const onlyBelow = n >= 6 && state.belowOnly;
    const rows = sortedTenants(d.tenants).filter((t) => (!f || t.name.toLowerCase().includes(f)) && (!onlyBelow || t.below));
    const below = d.tenants.filter((t) => t.below).length;
    $('tenantcount').textContent = (rows.length === n ? n + (n === 1 ? ' tenant' : ' tenants') : rows.length + ' of ' + n + ' tenants') +
      ' · totals since start' + (below ? ' · ' + below + ' below an SLO target' : '');
    const cols = columns(allObjectives(d.tenants));
    const head = h('tr', null, cols.map((c) => {
      const sorted = state.sort.col === c.key;
      return h('th', { class: (c.key === 'tenant' ? 'l ' : '') + (sorted ? 'sorted' : ''), 'aria-sort': sorted ? (state.sort.desc ? 'descending' : 'ascending') : null },
        h('button', { class: 'sort', type: 'button', onclick: () => {
          state.sort = { col: c.key, desc: state.sort.col === c.key ? !state.sort.desc : c.key !== 'tenant' };
          renderOverview();
        } }, c.label, sorted ? (state.sort.desc ? ' ▾' : ' ▴') : ''));
    }));
    const body = h('tbody', null, rows.map((t) => {
      const tr = h('tr', {
        class: 'pick' + (t.name === state.selected ? ' selected' : '') + (t.below ? ' warnrow' : ''),
        tabindex: '0', data: { tenant: t.name }, 'aria-selected': t.name === state.selected ? 'true' : 'false',
        onclick: () => select(t.name),
        onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(t.name); } },
      });
      for (const c of cols) {
        const td = c.cell(t);
        td.dataset.col = c.key;
        tr.appendChild(td);
      }
      return tr;
    }));
    wrap.appendChild(h('table', { id: 'tenanttable' }, h('thead', null, head), body));
    if (!rows.length) wrap.appendChild(h('div', { class: 'empty', text: 'No tenant matches' + (f ? ' “' + state.filter + '”' : '') + (onlyBelow ? ' below its targets' : '') + '.' }));
  }

  function card(title, note, ...kids) {
    return h('section', { class: 'card' }, h('h3', null, title, note ? h('span', { class: 'muted', text: ' · ' + note }) : null), kids);
  }

  function renderDetail() {
    const d = state.data;
    const sec = clear($('detail'));
    const t = d.tenants.find((x) => x.name === state.selected);
    sec.hidden = !t;
    if (!t) return;
    sec.dataset.tenant = t.name;
    const names = sortedTenants(d.tenants).map((x) => x.name);
    const i = names.indexOf(t.name);
    const deferred = [];  /* charts are drawn once their box has a width */

    const outcomeText = t.outcomes.map((o) => fmtInt(o.n) + ' ' + o.name).join(' · ');
    sec.appendChild(h('div', { class: 'detail-head' },
      h('h2', null, 'Tenant ', h('span', { id: 'detailname', text: t.name })),
      h('span', { class: 'muted' }, h('span', { id: 'detailqueries', text: fmtInt(t.queries) }), ' queries', outcomeText ? ' · ' + outcomeText : ''),
      names.length > 1 ? h('span', { class: 'nav' },
        h('button', { class: 'btn', type: 'button', disabled: i <= 0, onclick: () => select(names[i - 1]) }, '‹ Previous'), ' ',
        h('button', { class: 'btn', type: 'button', disabled: i >= names.length - 1, onclick: () => select(names[i + 1]) }, 'Next ›')) : null));

    const grid = h('div', { class: 'grid' });
    grid.appendChild(sloCard(t));
    grid.appendChild(latencyCard(t, d, deferred));
    grid.appendChild(costCard(t, d, deferred));
    grid.appendChild(trafficCard(t, d, deferred));
    grid.appendChild(mixCard(t));
    grid.appendChild(plansCard(t));
    sec.appendChild(grid);
    for (const f of deferred) f();
  }

  function sloCard(t) {
    if (!t.slo.length)
      return card('SLO attainment', null, h('div', { class: 'empty', text: 'No SLO checks recorded for this tenant yet.' }));
    const rows = t.slo.map((o) => h('div', { class: 'slo-row' + (o.below ? ' below' : ''), data: { objective: o.name } },
      h('span', { class: 'obj', text: o.name }),
      h('div', { class: 'track', title: 'target ' + fmtPct(o.target) },
        h('div', { class: 'fill ' + (o.att === null ? 'info' : o.below ? 'bad' : ''), width: o.att === null ? '0' : (100 * o.att).toFixed(2) + '%' }),
        h('div', { class: 'target', left: 'calc(' + (100 * o.target).toFixed(2) + '% - 1px)' })),
      h('span', { class: 'pct', text: (o.below ? '▼ ' : '') + fmtPct(o.att) }),
      h('span', { class: 'cnt', text: fmtInt(o.met) + ' of ' + fmtInt(o.met + o.missed) + ' met, ' + fmtInt(o.missed) + ' missed' })));
    const below = t.slo.filter((o) => o.below).map((o) => o.name);
    const targets = [...new Set(t.slo.map((o) => fmtPct(o.target)))].join(', ');
    return card('SLO attainment', 'since start', rows,
      h('div', { class: 'slo-foot' }, 'Bar: share of queries that met the objective; black tick: target (' + targets + '). ',
        below.length ? h('span', { class: 'bad', text: 'Below target: ' + below.join(', ') + '.' }) : 'All objectives on target.'));
  }

  function tiles(list) {
    return h('div', { class: 'tiles' }, list.map(([k, v, id]) => h('div', { class: 'tile' }, h('div', { class: 'k', text: k }), h('div', { class: 'v', id: id || null, text: v }))));
  }

  function latencyCard(t, d, deferred) {
    const box = h('div', { class: 'chart' });
    deferred.push(() => box.appendChild(timeChart(box.clientWidth, 128, d, {
      lines: [
        { cls: 'p50', pts: t.timeline.filter((p) => p.p50 !== null).map((p) => [p.t, p.p50]) },
        { cls: 'p95', pts: t.timeline.filter((p) => p.p95 !== null).map((p) => [p.t, p.p95]) },
      ],
      yFmt: fmtMsShort,
      tip: (p) => fmtClock(p.t) + ': p50 ' + fmtMs(p.p50) + ', p95 ' + fmtMs(p.p95) + ' (' + p.queries + ' queries)',
      timeline: t.timeline,
    })));
    return card('Latency', 'since start, and per minute',
      tiles([['p50', fmtMs(t.p50)], ['p95', fmtMs(t.p95)], ['p99', fmtMs(t.p99)]]),
      box,
      h('div', { class: 'chart-legend' }, h('span', null, h('i', { class: 'p50' }), 'p50 per minute'), h('span', null, h('i', { class: 'p95' }), 'p95 per minute')));
  }

  /* axis labels: exact for the 1-2-2.5-5 ticks niceMax produces (1.25s, 12.5ms) */
  function fmtMsShort(ms) {
    if (ms >= 1000) return +(ms / 1000).toPrecision(3) + 's';
    return +ms.toPrecision(3) + 'ms';
  }

  function costCard(t, d, deferred) {
    const windowCost = t.timeline.reduce((a, p) => a + p.cost, 0);
    const parts = [tiles([['total', fmtCost(t.cost), 'detailcost'], ['per query', fmtCost(t.perQuery)], ['last ' + d.windowMin + ' min', fmtCost(windowCost)]])];
    const b = t.budget;
    const hasBudget = b && ((b.perDay !== null && b.perDay > 0) || (b.perMonth !== null && b.perMonth > 0));
    if (!hasBudget) {
      parts.push(h('div', { class: 'exhaust muted', text: 'No budget configured for this tenant.' }));
    } else {
      if (b.perDay !== null && b.perDay > 0) parts.push(budgetBar('Today', b.spentToday, b.perDay));
      if (b.perMonth !== null && b.perMonth > 0) parts.push(budgetBar('This month', b.spentMonth, b.perMonth));
      if (b.exhaustion !== null) {
        const left = b.exhaustion - d.generatedAt;
        parts.push(h('div', { class: 'exhaust' + (left < 86400 ? ' soon' : '') },
          left <= 0 ? 'Budget exhausted (' + fmtDateTime(b.exhaustion) + ').'
            : 'At the current rate the budget runs out in ' + fmtDuration(left) + ' (' + fmtDateTime(b.exhaustion) + ').'));
      } else {
        parts.push(h('div', { class: 'exhaust muted', text: 'Not projected to run out at the current rate.' }));
      }
    }
    const box = h('div', { class: 'chart' });
    deferred.push(() => box.appendChild(timeChart(box.clientWidth, hasBudget ? 72 : 104, d, {
      bars: t.timeline.map((p) => ({ t: p.t, v: p.cost, cls: 'b-cost' })),
      yFmt: (v) => String(+v.toPrecision(3)),
      tip: (p) => fmtClock(p.t) + ': cost ' + fmtCost(p.cost) + ' (' + p.queries + ' queries)',
      timeline: t.timeline,
    })));
    parts.push(box, h('div', { class: 'chart-legend' }, h('span', null, h('i', { class: 'ok' }), 'cost per minute')));
    return card('Cost and budget', 'in the backends\' price units', parts);
  }

  function budgetBar(label, spent, limit) {
    const share = spent !== null ? spent / limit : null;
    return h('div', { class: 'budget' },
      h('div', { class: 'line' }, h('span', null, label + ': ', h('strong', { text: fmtCost(spent) }), ' of ' + fmtCost(limit)),
        h('span', { class: share !== null && share >= 1 ? 'bad' : '', text: fmtPct(share) })),
      h('div', { class: 'track' }, h('div', { class: 'fill ' + (share === null ? 'info' : share >= 1 ? 'bad' : share >= 0.8 ? 'warn' : ''), width: share === null ? '0' : Math.min(100, 100 * share).toFixed(2) + '%' })));
  }

  function trafficCard(t, d, deferred) {
    const target = t.slo.length ? Math.min(...t.slo.map((o) => o.target)) : DEFAULT_TARGET;
    const box = h('div', { class: 'chart' });
    const inWindow = t.timeline.reduce((a, p) => a + p.queries, 0);
    deferred.push(() => box.appendChild(timeChart(box.clientWidth, 150, d, {
      bars: t.timeline.map((p) => ({ t: p.t, v: p.queries, cls: p.sloTotal > 0 && p.sloMet / p.sloTotal < target ? 'b-bad' : 'b-ok' })),
      yFmt: (v) => fmtInt(v),
      integer: true,
      tip: (p) => fmtClock(p.t) + ': ' + p.queries + ' queries, SLO checks met ' + p.sloMet + ' / ' + p.sloTotal +
        (p.sloTotal ? ' (' + fmtPct(p.sloMet / p.sloTotal) + ')' : ''),
      timeline: t.timeline,
    })));
    return card('Queries per minute', fmtInt(inWindow) + ' in the last ' + d.windowMin + ' min', box,
      h('div', { class: 'chart-legend' }, h('span', null, h('i', { class: 'ok' }), 'SLO checks on target'),
        h('span', null, h('i', { class: 'bad' }), 'minute below ' + fmtPct(target) + ' of checks met')));
  }

  function stackAndLegend(items, total, clsOf) {
    return [
      h('div', { class: 'stack', role: 'img', 'aria-label': items.map((x) => x.name + ' ' + x.n).join(', ') },
        items.map((x, i) => h('span', { class: clsOf(x, i), title: x.name + ': ' + x.n, width: (total > 0 ? 100 * x.n / total : 0).toFixed(2) + '%' }))),
      h('div', { class: 'legend' }, items.map((x, i) => [
        h('span', { class: 'sw ' + clsOf(x, i) }), h('span', { class: 'nm', title: x.name, text: x.name }),
        h('span', { class: 'n', text: fmtInt(x.n) }), h('span', { class: 'p', text: fmtPct(total > 0 ? x.n / total : null) })])),
    ];
  }

  /* At most `keep` names, the rest summed into one "others" line. */
  function topN(items, keep) {
    if (items.length <= keep) return items;
    const rest = items.slice(keep - 1);
    return items.slice(0, keep - 1).concat([{ name: (rest.length) + ' others', n: rest.reduce((a, x) => a + x.n, 0), others: true }]);
  }

  function mixCard(t) {
    const oTotal = t.outcomes.reduce((a, x) => a + x.n, 0);
    const iTotal = t.intents.reduce((a, x) => a + x.n, 0);
    const outcomeCls = (x) => (['answered', 'abstained', 'fallback'].includes(x.name) ? 'o-' + x.name : 'c3');
    const intentCls = (x, i) => (x.others ? 'c7' : 'c' + (i % 7));
    return card('Outcomes and intents', 'since start',
      h('div', { class: 'lbl', text: 'Outcome' }),
      oTotal ? stackAndLegend(t.outcomes, oTotal, outcomeCls) : h('div', { class: 'muted', text: 'none yet' }),
      h('div', { class: 'lbl', text: 'Intent mix' }),
      iTotal ? stackAndLegend(topN(t.intents, 6), iTotal, intentCls) : h('div', { class: 'muted', text: 'none yet' }));
  }

  function plansCard(t) {
    const pTotal = t.plans.reduce((a, x) => a + x.n, 0);
    const max = t.plans.length ? t.plans[0].n : 0;
    const plans = topN(t.plans, 5);
    const stages = new Map();
    for (const x of t.decisions) {
      const cut = x.name.lastIndexOf('/');
      const stage = cut > 0 ? x.name.slice(0, cut) : x.name;
      const what = cut > 0 ? x.name.slice(cut + 1) : 'other';
      const row = stages.get(stage) || { skipped: 0, expanded: 0, other: 0 };
      row[what === 'skipped' || what === 'expanded' ? what : 'other'] += x.n;
      stages.set(stage, row);
    }
    const share = (n) => (t.queries > 0 && n > 0 ? ' (' + fmtPct(n / t.queries) + ')' : '');
    return card('Plans and stage decisions', 'since start',
      h('div', { class: 'lbl', text: 'Configuration chosen (generator tier / retriever)' }),
      pTotal ? h('div', { class: 'bars' }, plans.map((x) => [
        h('span', { class: 'nm', title: x.name, text: x.name }),
        h('div', { class: 'track' }, h('div', { class: 'fill info', width: (max > 0 ? Math.min(100, 100 * x.n / max) : 0).toFixed(2) + '%' })),
        h('span', { class: 'n', text: fmtInt(x.n) + ' · ' + fmtPct(x.n / pTotal) })])) : h('div', { class: 'muted', text: 'none yet' }),
      h('div', { class: 'lbl', text: 'Stages skipped or expanded (share of queries)' }),
      stages.size ? h('table', { class: 'mini' },
        h('thead', null, h('tr', null, h('th', { class: 'l', text: 'stage' }), h('th', { text: 'skipped' }), h('th', { text: 'expanded' }))),
        h('tbody', null, [...stages].map(([stage, r]) => h('tr', null,
          h('td', { class: 'l', text: stage }),
          h('td', { class: r.skipped ? '' : 'na', text: r.skipped ? fmtInt(r.skipped) + share(r.skipped) : '—' }),
          h('td', { class: r.expanded ? '' : 'na', text: r.expanded ? fmtInt(r.expanded) + share(r.expanded) : '—' }))))) :
        h('div', { class: 'muted', text: 'No stage was skipped or expanded.' }));
  }

  /* ---------- the time chart: lines and/or bars over the stats window ---------- */

  /* The axis top: 1, 2, 2.5 or 5 times a power of ten (no 2.5 for counts,
   * so that the middle tick stays a whole number). */
  function niceMax(v, integer) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of integer ? [1, 2, 4, 5, 10] : [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function timeChart(width, height, d, cfg) {
    width = Math.max(200, Math.floor(width));
    const m = { l: 44, r: 8, t: 6, b: 18 };
    const pw = width - m.l - m.r, ph = height - m.t - m.b;
    const t1 = Math.floor(d.generatedAt / 60) * 60 + 60;  /* end of the current minute */
    const t0 = t1 - d.windowMin * 60;
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * pw;
    const lines = cfg.lines || [];
    const bars = cfg.bars || [];
    let vmax = 0;
    for (const l of lines) for (const p of l.pts) vmax = Math.max(vmax, p[1]);
    for (const b of bars) vmax = Math.max(vmax, b.v);
    let ymax = niceMax(vmax, cfg.integer);
    if (cfg.integer) ymax = Math.max(ymax, 2);
    const y = (v) => m.t + ph - (v / ymax) * ph;
    const svg = s('svg', { width, height, viewBox: '0 0 ' + width + ' ' + height, role: 'img' });

    const empty = !cfg.timeline.length;
    const ticks = empty ? [0] : cfg.integer && ymax % 2 ? [0, ymax] : [0, ymax / 2, ymax];
    for (const v of ticks) {
      svg.appendChild(s('line', { class: v === 0 ? 'axis' : 'gridline', x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }));
      svg.appendChild(s('text', { x: m.l - 4, y: y(v) + 4, 'text-anchor': 'end' }, cfg.yFmt(v)));
    }
    const step = (d.windowMin * 60) / 4;
    for (let k = 0; k <= 4; k++) {
      const t = t0 + k * step;
      svg.appendChild(s('text', { x: x(t), y: height - 4, 'text-anchor': k === 0 ? 'start' : k === 4 ? 'end' : 'middle' }, k === 4 ? 'now' : fmtClock(t)));
    }
    if (empty) {
      svg.appendChild(s('text', { class: 'nodata', x: m.l + pw / 2, y: m.t + ph / 2, 'text-anchor': 'middle' }, 'No queries in the last ' + d.windowMin + ' min'));
      return svg;
    }
    const bw = Math.max(1, pw / d.windowMin - 1);
    for (const b of bars) {
      if (b.t < t0 || b.t >= t1) continue;
      const top = y(b.v);
      svg.appendChild(s('rect', { class: b.cls, x: x(b.t) + 0.5, y: top, width: bw, height: Math.max(b.v > 0 ? 1 : 0, m.t + ph - top) }));
    }
    for (const l of lines) {
      /* one path segment per run of consecutive minutes: a gap is a gap */
      let dstr = '', prev = null;
      for (const [t, v] of l.pts) {
        if (t < t0 || t >= t1) continue;
        const cx = x(t + 30);
        dstr += (prev !== null && t - prev <= 60 ? 'L' : 'M') + cx.toFixed(1) + ' ' + y(v).toFixed(1);
        prev = t;
      }
      if (dstr) svg.appendChild(s('path', { class: 'l-' + l.cls, d: dstr }));
      for (const [t, v] of l.pts)
        if (t >= t0 && t < t1) svg.appendChild(s('circle', { class: 'd-' + l.cls, cx: x(t + 30), cy: y(v), r: 2 }));
    }
    /* hover targets: one transparent column per minute with a native tooltip */
    for (const p of cfg.timeline) {
      if (p.t < t0 || p.t >= t1) continue;
      svg.appendChild(s('rect', { x: x(p.t), y: m.t, width: Math.max(2, pw / d.windowMin), height: ph, fill: 'transparent' }, s('title', null, cfg.tip(p))));
    }
    return svg;
  }

  /* ---------- backends ---------- */

  function renderBackends() {
    const d = state.data;
    const wrap = clear($('backendtable'));
    const note = $('backendnote');
    note.textContent = '';
    if (d.scope !== 'all') {
      wrap.appendChild(h('div', { class: 'empty', text: 'Backend health is shown to the admin and dashboard keys only.' }));
      return;
    }
    if (!d.backends.length) {
      wrap.appendChild(h('div', { class: 'empty', text: 'No LLM backends configured: answers come from the extractive tier.' }));
      return;
    }
    const open = d.backends.filter((b) => b.breaker === 'open').length;
    note.textContent = d.backends.length + (d.backends.length === 1 ? ' backend' : ' backends') + (open ? ' · ' + open + ' with an open breaker' : '');
    const head = ['Backend', 'Tier', 'Breaker', 'In flight', 'Queued', 'Calls', 'Failures', 'Retries', 'Latency (EWMA)'];
    const rows = d.backends.map((b) => {
      const br = typeof b.breaker === 'string' ? b.breaker.replace('-', '_') : 'unknown';
      const brCls = ['closed', 'open', 'half_open'].includes(br) ? br : 'unknown';
      const calls = num(b.calls), fails = num(b.failures);
      const failShare = calls ? (fails || 0) / calls : null;
      const inflight = num(b.in_flight), maxc = num(b.max_concurrency);
      return h('tr', { class: b.retired === true ? 'retired' : '', data: { backend: String(b.name) } },
        h('td', { class: 'name' }, String(b.name || '?'), b.retired === true ? h('span', { class: 'pill small unknown', text: ' retired' }) : null),
        h('td', { class: 'l', text: String(b.tier || '—') }),
        h('td', { class: 'l' }, h('span', { class: 'pill ' + brCls, text: br.replace('_', '-') })),
        h('td', { text: fmtInt(inflight) + (maxc !== null ? ' / ' + fmtInt(maxc) : '') }),
        h('td', { class: num(b.queued) > 0 ? 'bad' : '', text: fmtInt(num(b.queued)) }),
        h('td', { text: fmtInt(calls) }),
        h('td', { class: failShare !== null && failShare >= 0.05 ? 'bad' : '', text: fmtInt(fails) + (failShare !== null ? ' (' + fmtPct(failShare) + ')' : '') }),
        h('td', { text: fmtInt(num(b.retries)) }),
        h('td', { text: num(b.latency_ewma_ms) ? fmtMs(b.latency_ewma_ms) : '—', title: 'moving average of successful calls' }));
    });
    wrap.appendChild(h('table', { id: 'backendtbl' },
      h('thead', null, h('tr', null, head.map((x, i) => h('th', { class: i < 3 ? 'l' : '', text: x })))),
      h('tbody', null, rows)));
  }

  /* ---------- wiring ---------- */

  function init() {
    state.key = loadKey();
    $('keybtn').addEventListener('click', () => showKeyForm($('keyform').hidden, true));
    $('keyform').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const k = $('keyinput').value.trim();
      if (!keyValid(k)) {
        $('keyinput').setCustomValidity('A key is 1-512 printable ASCII characters without spaces.');
        $('keyinput').reportValidity();
        return;
      }
      $('keyinput').setCustomValidity('');
      $('keyinput').value = '';
      state.key = k;
      saveKey(k);
      showKeyForm(false);
      poll();
    });
    $('keyinput').addEventListener('input', () => $('keyinput').setCustomValidity(''));
    $('keyforget').addEventListener('click', () => {
      state.key = '';
      saveKey('');
      const q = new URLSearchParams(location.search);
      if (q.has('key')) {
        q.delete('key');
        const qs = q.toString();
        history.replaceState(null, '', location.pathname + (qs ? '?' + qs : '') + location.hash);
      }
      poll();
    });
    $('filter').addEventListener('input', (ev) => {
      state.filter = ev.target.value;
      if (state.data) renderOverview();
    });
    $('belowbox').addEventListener('change', (ev) => {
      state.belowOnly = ev.target.checked;
      if (state.data) renderOverview();
    });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
    let resizeTimer = 0;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (state.data) renderDetail(); }, 150);
    });
    poll();
  }

  init();
})();
