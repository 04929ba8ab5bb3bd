#!/usr/bin/env node
// Opens the control plane's /reports page in headless Chromium as an operator would: logs in
// through its form, waits until the page says it is ready, and prints as JSON what it plotted,
// read back from the page itself (the SVG points and bars carry their values in data-*
// attributes, the totals table its numbers):
//
//   {"from", "to", "status", "totals": {region: {requests, hit_ratio, bytes_served}},
//    "hit_ratio": {region: [[t, v]...]}, "bandwidth": {region: [[t, v]...]},
//    "tiers": {node: {hot, warm, cold, miss}}, "mrc": {node: {budget, points: [[size, v]...]}},
//    "problems": [...]}
//
//   node reports.mjs --url http://127.0.0.1:8400/reports --email E --password P [--chromium PATH]
//
// problems lists page exceptions, console errors and failed or refused requests. Exit status 0
// when the page got ready without a problem, 1 otherwise, 2 on bad arguments or a missing install.
import { parseArgs } from 'node:util';

const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function usage(msg) {
  console.error(`reports.mjs: ${msg}`);
  console.error('usage: node reports.mjs --url URL --email E --password P [--chromium PATH]');
  process.exit(2);
}

let v;
try {
  ({ values: v } = parseArgs({
    options: {
      url: { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      timeout: { type: 'string', default: '30' },
      chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    },
  }));
} catch (e) {
  usage(e.message);
}
if (!v.url || !v.email || !v.password) usage('--url, --email and --password are required');
if (!/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):\d+\//.test(v.url)) usage('--url must be on loopback');

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.error(`reports.mjs: playwright-core is not installed (npm ci in tests/browser): ${e.message}`);
  process.exit(2);
}

const problems = [];
const browser = await chromium.launch({ executablePath: v.chromium, headless: true, args: FLAGS, timeout: 60000 });
let out = { status: 'not loaded', problems };
try {
  const page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => problems.push(`exception in the page: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`); });
  await page.goto(v.url, { timeout: 30000 });
  await page.waitForSelector('#login:not([hidden])', { timeout: 30000 });
  await page.fill('#email', v.email);
  await page.fill('#password', v.password);
  await page.click('#login button[type=submit]');
  await page.waitForFunction(() => {
    const s = document.getElementById('status').textContent;
    return s === 'ready' || s.startsWith('error');
  }, null, { timeout: Number(v.timeout) * 1000 });
  out = await page.evaluate(() => {
    const series = (chart) => {
      const o = {};
      for (const g of document.querySelectorAll(`svg[data-chart="${chart}"] g[data-series]`)) {
        o[g.dataset.series] = [...g.querySelectorAll('circle')].map((c) => [Number(c.dataset.t), Number(c.dataset.v)]);
      }
      return o;
    };
    const totals = {};
    for (const tr of document.querySelectorAll('#totals tbody tr')) {
      totals[tr.dataset.region] = { requests: Number(tr.dataset.requests), hit_ratio: Number(tr.dataset.hitRatio),
        bytes_served: Number(tr.dataset.bytesServed) };
    }
    const tiers = {};
    for (const g of document.querySelectorAll('svg[data-chart="tiers"] g[data-node]')) {
      tiers[g.dataset.node] = Object.fromEntries([...g.querySelectorAll('rect')].map((r) => [r.dataset.tier, Number(r.dataset.v)]));
    }
    const mrc = {};
    for (const g of document.querySelectorAll('svg[data-chart="mrc"] g[data-node]')) {
      mrc[g.dataset.node] = { budget: Number(g.querySelector('line[data-budget]').dataset.budget),
        points: [...g.querySelectorAll('circle')].map((c) => [Number(c.dataset.size), Number(c.dataset.v)]) };
    }
    const assets = [...document.querySelectorAll('svg[data-chart="assets"] g[data-asset]')].map((g) => {
      const r = g.querySelector('rect');
      return [g.dataset.asset, Number(r.dataset.v), Number(r.dataset.bytes)];
    });
    return { from: Number(document.body.dataset.from), to: Number(document.body.dataset.to), mrc, assets,
      status: document.getElementById('status').textContent, totals, tiers,
      hit_ratio: series('hit-ratio'), bandwidth: series('bandwidth') };
  });
  out.problems = problems;
} catch (e) {
  problems.push(`driving the page: ${e.message}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.status === 'ready' && problems.length === 0 ? 0 : 1);
