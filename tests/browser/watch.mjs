#!/usr/bin/env node
// Drives the control plane's /watch page in headless Chromium as a viewer would, and prints as
// JSON what happened. Modes:
//
//   play   (with --wrong-password W: first a login with W, which must show an error), then log
//          in, and for HLS and then DASH: pick --show, play past --seconds, seek into the last
//          seconds and play to the end (the page then ends the lease); then play HLS once more
//          and press Stop (the page ends the lease). A reload in between keeps the session and
//          the device.
//   limit  log in and pick --show: the page must show the device-limit refusal (409); its button
//          for the device named "Living room TV" stops that one, and the show plays here
//   nolib  open the page without the players installed: it must say so
//
//   node watch.mjs --url http://127.0.0.1:8400/watch --email E --password P --show ID
//                  [--mode play|limit|nolib] [--wrong-password W] [--seconds 3] [--timeout 60]
//                  [--chromium PATH]
//
// Output: {"mode", "steps": [...], "problems": [...], "scripts": [[url, status]...],
//          "deletes": [lease ids ended with 204], "media": {origin: responses}, "heartbeats",
//          "leases", "texts": {...}}
// problems lists page exceptions, console errors, failed requests and HTTP errors other than the
// ones the mode expects (the wrong login's 401, the refusal's 409, the missing players' 404),
// player errors and errors the page showed. Exit status 0 when the mode's steps all passed
// without a problem, 1 otherwise, 2 on bad arguments or a missing install.
import { parseArgs } from 'node:util';

const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--mute-audio',
];

function usage(msg) {
  console.error(`watch.mjs: ${msg}`);
  console.error('usage: node watch.mjs --url URL --email E --password P --show ID [--mode play|limit|nolib] ' +
    '[--wrong-password W] [--seconds N] [--timeout N] [--chromium PATH]');
  process.exit(2);
}

let v;
try {
  ({ values: v } = parseArgs({
    options: {
      url: { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      'wrong-password': { type: 'string' },
      show: { type: 'string' },
      mode: { type: 'string', default: 'play' },
      seconds: { type: 'string', default: '3' },
      timeout: { type: 'string', default: '60' },
      chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    },
  }));
} catch (e) {
  usage(e.message);
}
if (!v.url) usage('--url is required');
if (!['play', 'limit', 'nolib'].includes(v.mode)) usage('--mode is play, limit or nolib');
if (v.mode !== 'nolib' && (!v.email || !v.password || !v.show)) usage('--email, --password and --show are required');
if (!/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost):\d+\//.test(v.url)) usage('--url must be on loopback');
const SECONDS = Number(v.seconds);
const TIMEOUT = Number(v.timeout) * 1000;
if (!(SECONDS > 0) || !(TIMEOUT > 0)) usage('--seconds and --timeout must be positive numbers');

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  console.error(`watch.mjs: playwright-core is not installed (npm ci in tests/browser): ${e.message}`);
  process.exit(2);
}

const origin = new URL(v.url).origin;
const problems = [];
const steps = [];
const scripts = [];
const deletes = [];
const media = {}; // responses from other origins (the edges), by origin
// HTTP errors the current step expects: [method, path regex, status].
let expected = [];
const isExpected = (method, url, status) => expected.some(([m, re, s]) => m === method && re.test(new URL(url).pathname) && s === status);
const expectedStatus = (status) => expected.some(([, , s]) => s === status);

const out = { mode: v.mode, steps, problems, scripts, deletes, media, texts: {} };
// Whatever hangs, the process ends.
setTimeout(() => {
  problems.push('hard time limit reached');
  console.log(JSON.stringify(out));
  process.exit(1);
}, 6 * TIMEOUT + 60000).unref();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const browser = await chromium.launch({ executablePath: v.chromium, headless: true, args: FLAGS, timeout: 60000 });
let ok = false;
try {
  const context = await browser.newContext();
  // Nothing leaves loopback.
  await context.route('**/*', (route) => {
    const h = new URL(route.request().url()).hostname;
    if (h === '127.0.0.1' || h === 'localhost' || h === '[::1]') return route.continue();
    problems.push(`request off this machine: ${route.request().url()}`);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`exception in the page: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const st = /the server responded with a status of (\d+)/.exec(m.text());
    if (st && expectedStatus(Number(st[1]))) return;
    problems.push(`console error: ${m.text().slice(0, 400)}`);
  });
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText;
    // Players cancel downloads they no longer need when they seek, stop or end.
    if (why === 'net::ERR_ABORTED' || why === 'net::ERR_BLOCKED_BY_CLIENT') return;
    problems.push(`request failed (${why}) ${r.method()} ${r.url()}`);
  });
  page.on('response', (r) => {
    const req = r.request();
    if (req.resourceType() === 'script') scripts.push([r.url(), r.status()]);
    const o = new URL(r.url()).origin;
    if (o !== origin) media[o] = (media[o] || 0) + 1;
    if (req.method() === 'DELETE' && r.status() === 204) {
      const m = /^\/v1\/playback\/([^/]+)$/.exec(new URL(r.url()).pathname);
      if (m) deletes.push(m[1]);
    }
    if (r.status() >= 400 && !isExpected(req.method(), r.url(), r.status())) {
      problems.push(`HTTP ${r.status()} ${req.method()} ${r.url().slice(0, 300)}`);
    }
  });

  const text = (sel) => page.$eval(sel, (e) => e.textContent);
  const visible = (sel) => page.waitForSelector(`${sel}:not([hidden])`, { timeout: TIMEOUT });
  const state = () => page.evaluate(() => {
    const video = document.getElementById('video');
    const err = document.getElementById('error');
    return {
      state: document.body.dataset.state, t: video.currentTime, duration: video.duration, ended: video.ended,
      seeking: video.seeking, error: err.hidden ? null : err.textContent, playerErrors: window.tmtWatch.playerErrors,
    };
  });
  // Polls until done(s); fails at once on a problem, an error the page shows, or the deadline.
  const until = async (step, done) => {
    const deadline = Date.now() + TIMEOUT;
    for (;;) {
      const s = await state();
      if (problems.length) throw new Error(`${step}: ${problems[0]}`);
      if (s.error) throw new Error(`${step}: the page shows an error: ${s.error}`);
      if (done(s)) return s;
      if (Date.now() > deadline) throw new Error(`${step}: not done in time (${JSON.stringify(s)})`);
      await sleep(100);
    }
  };
  const login = async (password) => {
    await visible('#login');
    await page.fill('#email', v.email);
    await page.fill('#password', password);
    await page.click('#login button[type=submit]');
  };
  const pick = async (kind) => {
    await page.selectOption('#format', kind);
    await page.click(`#shows li[data-show="${v.show}"] button`);
  };

  if (v.mode === 'nolib') expected = [['GET', /^\/watch\/(hls|dash)\.js$/, 404]];
  await page.goto(v.url, { timeout: TIMEOUT });
  if (v.mode === 'nolib') {
    await visible('#lib-error');
    await page.waitForFunction(() => /hls\.js.*dash\.js/.test(document.getElementById('lib-error').textContent),
      null, { timeout: TIMEOUT });
    out.texts.lib_error = await text('#lib-error');
    steps.push('the page says the players are missing');
    ok = problems.length === 0;
  } else {
    if (v['wrong-password'] !== undefined) {
      // (a 401 of POST /v1/sessions stays expected: a wrong login after it fails on the wait)
      expected = [['POST', /^\/v1\/sessions$/, 401]];
      await login(v['wrong-password']);
      await page.waitForFunction(() => document.getElementById('login-error').textContent !== '', null, { timeout: TIMEOUT });
      out.texts.login_error = await text('#login-error');
      steps.push('wrong password refused');
    }
    await login(v.password);
    await until('login', (s) => s.state === 'ready');
    await page.waitForSelector(`#shows li[data-show="${v.show}"]`, { timeout: TIMEOUT });
    out.texts.device = await page.$eval('#device', (e) => e.options[e.selectedIndex].textContent);
    out.texts.device_id = await page.$eval('#device', (e) => e.value);
    steps.push(`logged in, the show is listed, device "${out.texts.device}"`);
    if (v.mode === 'limit') {
      expected.push(['POST', /^\/v1\/playback$/, 409]);
      await pick('hls');
      await page.waitForSelector('#error:not([hidden])', { timeout: TIMEOUT });
      out.texts.error = await text('#error');
      out.texts.error_buttons = await page.$$eval('#error button', (bs) => bs.map((b) => b.textContent));
      steps.push('device limit shown');
      await page.click('#error button:has-text("Living room TV")');
      await until('stop another device and play', (x) => x.state === 'playing' && x.t >= 1);
      steps.push('stopped "Living room TV" and played here');
      ok = problems.length === 0;
    } else {
      // The tab keeps its session and the browser its device across a reload.
      await page.reload({ timeout: TIMEOUT });
      await until('reload', (s) => s.state === 'ready');
      out.texts.device_id_after_reload = await page.$eval('#device', (e) => e.value);
      steps.push('reloaded: still logged in, same device');
      for (const kind of ['hls', 'dash']) {
        const started = Date.now();
        await pick(kind);
        let s = await until(`${kind} start`, (x) => x.state === 'playing' && x.t >= SECONDS);
        const lease = await page.evaluate(() => window.tmtWatch.leases[window.tmtWatch.leases.length - 1]);
        const to = Math.max(s.t, s.duration - 1.5);
        await page.evaluate((t) => { document.getElementById('video').currentTime = t; }, to);
        s = await until(`${kind} end`, (x) => x.ended && x.state === 'finished');
        await until(`${kind} lease ended`, () => deletes.includes(lease));
        steps.push(`${kind}: played to ${s.t.toFixed(2)} s of ${s.duration.toFixed(2)} s (seeked to ${to.toFixed(2)} s) ` +
          `and ended lease ${lease} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
      await pick('hls');
      const s = await until('stop: playing', (x) => x.state === 'playing' && x.t >= 1);
      const lease = await page.evaluate(() => window.tmtWatch.leases[window.tmtWatch.leases.length - 1]);
      await page.click('#stop');
      await until('stop', (x) => x.state === 'stopped' && deletes.includes(lease));
      steps.push(`stop at ${s.t.toFixed(2)} s ended lease ${lease}`);
      ok = problems.length === 0;
    }
  }
  Object.assign(out, await page.evaluate(() => ({ heartbeats: window.tmtWatch.heartbeats, leases: window.tmtWatch.leases,
    player_errors: window.tmtWatch.playerErrors })));
} catch (e) {
  problems.push(`driving the page: ${e.message}`);
  ok = false;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(ok && problems.length === 0 ? 0 : 1);
