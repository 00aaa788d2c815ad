// check.mjs - loads the slorag dashboard in headless Chromium and checks it
// against /v1/stats.
//
//   node check.mjs 'http://127.0.0.1:8080/dashboard?key=KEY' out.png
//
// The test fetches /v1/stats itself (same origin as the page, with the
// page's ?key= as the Bearer token) and checks that the page shows those
// numbers: every tenant's query count and SLO attainment in the overview
// table, the selected tenant's detail, the backend table, and "No traffic
// yet" exactly when there are no tenants.  It also fails on any script
// error, Content-Security-Policy violation, request to another origin, or
// a page wider than the 1366x768 viewport.  On a live server the numbers
// can move between the two fetches, so a mismatch is retried after the
// page's next refresh (three attempts) before it fails.  Exit 0 on
// success; 1 with a message naming each mismatch otherwise.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const VIEWPORT = { width: 1366, height: 768 };
const ATTEMPTS = 3;
const MAX_TENANTS_CHECKED = 60;

// The page's formatting rules (dashboard.js fmtInt and fmtPct), restated
// here so that a formatting bug in the page is caught rather than copied.
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmtPct = (x) => (100 * x).toFixed(1) + '%';

function fail(msg) {
  console.error('browser check: FAIL: ' + msg);
  process.exitCode = 1;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function fetchStats(origin, key) {
  const headers = { Accept: 'application/json' };
  if (key) headers.Authorization = 'Bearer ' + key;
  const res = await fetch(origin + '/v1/stats', { headers });
  const text = await res.text();
  if (res.status !== 200)
    throw new Error(`GET ${origin}/v1/stats answered ${res.status}: ${text.slice(0, 200)}` +
      (res.status === 401 || res.status === 403 ? ' (give the key as ?key= in the page URL)' : ''));
  return JSON.parse(text);
}

// What the page shows, read from the DOM in one go.
async function readPage(page) {
  return page.evaluate(() => {
    const txt = (el) => (el ? el.textContent.trim() : null);
    const rows = {};
    for (const tr of document.querySelectorAll('#tenanttable tbody tr')) {
      const cells = {};
      for (const td of tr.querySelectorAll('td')) cells[td.dataset.col] = { text: td.textContent.trim(), bad: td.classList.contains('bad') };
      rows[tr.dataset.tenant] = cells;
    }
    const slo = {};
    for (const r of document.querySelectorAll('#detail .slo-row'))
      slo[r.dataset.objective] = { pct: txt(r.querySelector('.pct')), below: r.classList.contains('below') };
    const backends = {};
    for (const tr of document.querySelectorAll('#backendtbl tbody tr'))
      backends[tr.dataset.backend] = txt(tr.querySelector('.pill:not(.small)'));
    const nt = document.getElementById('notraffic');
    return {
      state: document.body.dataset.state,
      banner: document.getElementById('banner').hidden ? null : txt(document.getElementById('banner')),
      text: document.body.innerText,
      noTrafficShown: !!(nt && nt.offsetParent !== null),
      rows,
      detail: { tenant: txt(document.getElementById('detailname')), queries: txt(document.getElementById('detailqueries')), slo },
      backends,
      scrollWidth: document.documentElement.scrollWidth,
    };
  });
}

// Compares one /v1/stats body with what the page shows; returns the list of
// mismatches (empty when all is well).
function compare(stats, shown) {
  const bad = [];
  const tenants = Array.isArray(stats.tenants) ? stats.tenants : [];
  if (tenants.length === 0) {
    if (!shown.noTrafficShown || !shown.text.includes('No traffic yet'))
      bad.push('/v1/stats has no tenants but the page does not say "No traffic yet"');
    return bad;
  }
  if (shown.noTrafficShown || shown.text.includes('No traffic yet'))
    bad.push(`/v1/stats has ${tenants.length} tenant(s) but the page says "No traffic yet"`);
  for (const t of tenants.slice(0, MAX_TENANTS_CHECKED)) {
    const row = shown.rows[t.tenant];
    if (!row) {
      bad.push(`tenant ${t.tenant}: no row in the overview table`);
      continue;
    }
    const q = fmtInt(t.queries);
    if (!row.queries || row.queries.text !== q)
      bad.push(`tenant ${t.tenant}: queries shown ${row.queries ? JSON.stringify(row.queries.text) : 'nowhere'}, /v1/stats says ${q}`);
    for (const [obj, o] of Object.entries(t.slo || {})) {
      const total = o.met + o.missed;
      if (!total) continue;
      const want = fmtPct(o.met / total);
      const cell = row['slo-' + obj];
      const below = o.met / total < o.target;
      if (!cell || !cell.text.includes(want))
        bad.push(`tenant ${t.tenant}: ${obj} SLO shown ${cell ? JSON.stringify(cell.text) : 'nowhere'}, expected ${want} (${o.met}/${total})`);
      else if (cell.bad !== below)
        bad.push(`tenant ${t.tenant}: ${obj} SLO ${want} against target ${o.target} should ${below ? '' : 'not '}be marked red`);
    }
  }
  const sel = tenants.find((t) => t.tenant === shown.detail.tenant);
  if (!sel) {
    bad.push(`the detail section shows ${JSON.stringify(shown.detail.tenant)}, which is not a tenant in /v1/stats`);
  } else {
    if (shown.detail.queries !== fmtInt(sel.queries))
      bad.push(`detail of ${sel.tenant}: queries ${JSON.stringify(shown.detail.queries)}, expected ${fmtInt(sel.queries)}`);
    for (const [obj, o] of Object.entries(sel.slo || {})) {
      const total = o.met + o.missed;
      if (!total) continue;
      const want = fmtPct(o.met / total);
      const r = shown.detail.slo[obj];
      if (!r || !r.pct.includes(want))
        bad.push(`detail of ${sel.tenant}: ${obj} attainment ${r ? JSON.stringify(r.pct) : 'missing'}, expected ${want}`);
      else if (r.below !== o.met / total < o.target)
        bad.push(`detail of ${sel.tenant}: ${obj} should ${r.below ? 'not ' : ''}be marked below target`);
    }
    if (!shown.text.includes(fmtInt(sel.queries)))
      bad.push(`the page text does not contain ${sel.tenant}'s query count ${fmtInt(sel.queries)}`);
  }
  if (stats.scope === 'all')
    for (const b of stats.backends || []) {
      const want = String(b.breaker).replace('_', '-');
      if (shown.backends[b.name] !== want)
        bad.push(`backend ${b.name}: breaker shown ${JSON.stringify(shown.backends[b.name])}, /v1/stats says ${want}`);
    }
  return bad;
}

async function main() {
  const [url, out] = process.argv.slice(2);
  if (!url || !out) {
    console.error('usage: node check.mjs DASHBOARD_URL OUT.png   (DASHBOARD_URL may carry ?key=KEY)');
    process.exit(2);
  }
  const pageUrl = new URL(url);
  const origin = pageUrl.origin;
  const key = pageUrl.searchParams.get('key') || '';

  const profile = mkdtempSync(join(tmpdir(), 'slorag-browser-'));
  const problems = [];
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: VIEWPORT,
      colorScheme: 'light',
    });
    await context.addInitScript(() => window.addEventListener('unhandledrejection',
      (e) => console.error('unhandled rejection: ' + ((e.reason && e.reason.stack) || e.reason))));
    const page = context.pages()[0] || (await context.newPage());
    page.on('pageerror', (e) => problems.push('script error: ' + e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 40[13]/.test(m.text()))
        problems.push('console error: ' + m.text());
    });
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith('data:') && new URL(u).origin !== origin) problems.push('request to another origin: ' + u);
    });

    const res = await page.goto(url, { waitUntil: 'load', timeout: 15000 });
    if (!res || res.status() !== 200) throw new Error(`GET ${url} answered ${res ? res.status() : 'nothing'}`);
    const csp = res.headers()['content-security-policy'];
    await page.waitForFunction(() => document.body.dataset.state !== 'loading', null, { timeout: 15000 });

    let mismatches = [];
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const shown = await readPage(page);
      if (shown.state === 'auth') {
        mismatches = ['the page asks for a key (/v1/stats answered 401/403): ' + shown.banner +
          (key ? '' : ' — give the key as ?key= in the URL')];
        break;
      }
      if (shown.state !== 'ok') {
        mismatches = ['the page shows an error: ' + shown.banner];
        break;
      }
      const stats = await fetchStats(origin, key);
      mismatches = compare(stats, shown);
      if (shown.scrollWidth > VIEWPORT.width)
        mismatches.push(`the page is ${shown.scrollWidth}px wide, wider than the ${VIEWPORT.width}px viewport`);
      if (!mismatches.length) {
        // Selecting another tenant must switch the detail section.
        const other = (stats.tenants || []).find((t) => t.tenant !== shown.detail.tenant);
        if (other) {
          await page.click(`#tenanttable tbody tr[data-tenant="${CSS_escape(other.tenant)}"]`);
          const again = await readPage(page);
          if (again.detail.tenant !== other.tenant)
            mismatches.push(`clicking ${other.tenant} shows ${JSON.stringify(again.detail.tenant)} in the detail section`);
          else if (again.detail.queries !== fmtInt(other.queries))
            mismatches.push(`detail of ${other.tenant}: queries ${again.detail.queries}, expected ${fmtInt(other.queries)}`);
          await page.click(`#tenanttable tbody tr[data-tenant="${CSS_escape(shown.detail.tenant)}"]`);
        }
        console.log(`browser check: ${(stats.tenants || []).length} tenant(s), ${(stats.backends || []).length} backend(s), ` +
          `scope ${stats.scope}; CSP ${csp ? 'sent' : 'not sent'} by the server`);
        break;
      }
      if (attempt < ATTEMPTS) await sleep(6000);  // one page refresh, then compare again
    }
    problems.push(...mismatches);
    if (key && !mismatches.length) problems.push(...(await checkKeyForm(context, pageUrl, key)));
    await page.mouse.move(0, 0);
    await page.screenshot({ path: out, fullPage: true });
    console.log('browser check: screenshot ' + out);
  } finally {
    if (context) await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  if (problems.length) {
    for (const p of problems) fail(p);
  } else {
    console.log('browser check: OK');
  }
}

// With the key left out of the URL the page must ask for one (401), and
// typing it into the form must bring the data.  A fresh tab has its own
// empty sessionStorage.  Skipped when slorag serves /dashboard itself only
// with a key, or serves /v1/stats without one.
async function checkKeyForm(context, pageUrl, key) {
  const bare = new URL(pageUrl);
  bare.searchParams.delete('key');
  const tab = await context.newPage();
  try {
    const res = await tab.goto(bare.href, { waitUntil: 'load', timeout: 15000 });
    if (!res || res.status() !== 200) {
      console.log(`browser check: key form not checked (${bare.href} answered ${res ? res.status() : 'nothing'} without a key)`);
      return [];
    }
    await tab.waitForFunction(() => document.body.dataset.state !== 'loading', null, { timeout: 15000 });
    const st = await tab.evaluate(() => document.body.dataset.state);
    if (st === 'ok') {
      console.log('browser check: key form not checked (/v1/stats answers without a key)');
      return [];
    }
    if (st !== 'auth') return [`without a key the page is in state ${st}, expected it to ask for a key`];
    if (!(await tab.isVisible('#keyform')) || !(await tab.isVisible('#banner')))
      return ['without a key the page does not show the key form and the 401 message'];
    await tab.fill('#keyinput', key);
    await tab.click('#keyform button[type=submit]');
    await tab.waitForFunction(() => document.body.dataset.state !== 'auth', null, { timeout: 15000 });
    if ((await tab.evaluate(() => document.body.dataset.state)) !== 'ok') return ['the key typed into the form did not bring the data'];
    await tab.reload({ waitUntil: 'load' });
    await tab.waitForFunction(() => document.body.dataset.state !== 'loading', null, { timeout: 15000 });
    if ((await tab.evaluate(() => document.body.dataset.state)) !== 'ok') return ['the typed key was not kept across a reload of the tab'];
    console.log('browser check: 401 prompt and key form OK');
    return [];
  } finally {
    await tab.close();
  }
}

// Tenant names are [a-z0-9_-] (docs/tenants.md) but "_other" and anything
// else still have to be safe inside an attribute selector.
function CSS_escape(s) {
  return String(s).replace(/["\\]/g, '\\$&');
}

main().catch((e) => {
  fail(e.message);
  process.exit(1);
});
