#!/usr/bin/env node
// Plays HLS (hls.js) and DASH (dash.js) URLs in headless Chromium the way a viewer's page would:
// the page comes from its own loopback origin (this script serves it), the media from the URL
// under test, so the media must carry CORS headers. For each URL it checks, in order:
//   start   playback starts and currentTime passes --seconds
//   middle  a seek into the middle of the stream plays on past the seek point
//   switch  a forced switch to another video rendition puts that rendition's frames on screen
//           (the picture takes its width and height) and they play
//   end     a seek into the last segment plays to the end (the video element ends at the duration)
// with no player error, no HTTP error, no failed request (CORS included) at any step.
// Each URL plays in a fresh browser context (no shared cache) of one browser.
//
//   node play.mjs [--hls URL]... [--dash URL]... [--seconds N] [--timeout N] [--duration S]
//                 [--chromium PATH]
//
// --seconds: how far playback must get at the start (3); --timeout: seconds each step may take
// (30); --duration: the source's duration, which the player's must match within 0.2 s; --chromium:
// the browser ($CHROMIUM or /usr/bin/chromium).
//
// Prints one "PASS: ..." or "FAIL: ..." line per URL and a last summary line; exit status 0 when
// all passed, 1 when any failed, 2 on bad arguments or a missing install (browser, node_modules).
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));

// The page server's files: the page and the two players from node_modules.
const FILES = {
  '/player.html': ['player.html', 'text/html; charset=utf-8'],
  '/lib/hls.js': ['node_modules/hls.js/dist/hls.min.js', 'text/javascript'],
  '/lib/dash.js': ['node_modules/dashjs/dist/modern/umd/dash.all.min.js', 'text/javascript'],
};

// Headless Chromium as root in a container, on a machine with no network but loopback.
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--mute-audio',
];

function usage(msg) {
  console.error(`play.mjs: ${msg}`);
  console.error('usage: node play.mjs [--hls URL]... [--dash URL]... [--seconds N] [--timeout N] [--duration S] [--chromium PATH]');
  process.exit(2);
}

function options() {
  let v;
  let tokens;
  try {
    ({ values: v, tokens } = parseArgs({
      tokens: true,
      options: {
        hls: { type: 'string', multiple: true },
        dash: { type: 'string', multiple: true },
        seconds: { type: 'string', default: '3' },
        timeout: { type: 'string', default: '30' },
        duration: { type: 'string' },
        chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
      },
    }));
  } catch (e) {
    usage(e.message);
  }
  // Cases in the order given on the command line.
  const cases = tokens.filter((t) => t.kind === 'option' && (t.name === 'hls' || t.name === 'dash'))
    .map((t) => ({ kind: t.name, player: t.name === 'hls' ? 'hls.js' : 'dash.js', src: t.value }));
  if (!cases.length) usage('give at least one --hls URL or --dash URL');
  const seconds = Number(v.seconds);
  const timeout = Number(v.timeout);
  if (!(seconds > 0) || !(timeout > 0)) usage('--seconds and --timeout must be positive numbers');
  const duration = v.duration === undefined ? null : Number(v.duration);
  if (duration !== null && !(duration > 0)) usage('--duration must be a positive number');
  return { cases, seconds, timeout, duration, chromium: v.chromium };
}

function loopback(url) {
  const h = new URL(url).hostname;
  return h === 'localhost' || h === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

async function pageServer() {
  const server = http.createServer((req, res) => {
    const f = FILES[new URL(req.url, 'http://page').pathname];
    if (!f) return res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': f[1], 'Cache-Control': 'no-store' });
    fs.createReadStream(path.join(here, f[0])).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Failed extends Error {}

// One URL in a fresh browser context. Returns {ok, msg, lines}.
async function playOne(browser, origin, c, opt) {
  const lines = [];
  const say = (s) => lines.push(s);
  const context = await browser.newContext();
  const problems = [];
  const consoleErrors = [];
  const statuses = {};
  let aborted = 0;
  let s; // the page's last state
  const started = Date.now();
  try {
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (loopback(url)) return route.continue();
      problems.push(`blocked a request off this machine: ${url}`);
      return route.abort('blockedbyclient');
    });
    const page = await context.newPage();
    page.on('response', (r) => {
      if (r.url().startsWith(origin)) return;
      statuses[r.status()] = (statuses[r.status()] || 0) + 1;
      if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
    });
    page.on('requestfailed', (r) => {
      const why = r.failure()?.errorText;
      if (why === 'net::ERR_BLOCKED_BY_CLIENT') return;
      // Players cancel downloads they no longer need when they seek or switch.
      if (why === 'net::ERR_ABORTED') aborted += 1;
      else problems.push(`request failed (${why}) ${r.method()} ${r.url()}`);
    });
    page.on('pageerror', (e) => problems.push(`exception in the page: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      consoleErrors.push(m.text().slice(0, 400));
      if (/CORS|Access-Control/i.test(m.text())) problems.push(`CORS: ${m.text().slice(0, 400)}`);
    });

    const q = new URLSearchParams({ player: c.player, src: c.src });
    await page.goto(`${origin}/player.html?${q}`);

    const state = () => page.evaluate(() => {
      const v = document.getElementById('video');
      const pq = v.getVideoPlaybackQuality();
      const b = [];
      for (let i = 0; i < v.buffered.length; i++) b.push([v.buffered.start(i), v.buffered.end(i)]);
      return {
        ready: window.tmt.ready, errors: window.tmt.errors, renditions: window.tmt.renditions,
        switches: window.tmt.switches, lastSegmentStart: window.tmt.lastSegmentStart,
        t: v.currentTime, duration: v.duration, ended: v.ended, seeking: v.seeking, paused: v.paused,
        width: v.videoWidth, height: v.videoHeight, frames: pq.totalVideoFrames, buffered: b,
      };
    });
    const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) : String(x));
    const where = () => `currentTime ${fmt(s.t)} of ${fmt(s.duration)} s, picture ${s.width}x${s.height}, ` +
      `buffered ${s.buffered.map(([a, b]) => `${fmt(a)}-${fmt(b)}`).join(' ') || 'nothing'}`;
    // Polls until done(s) holds; fails on any player error or request problem meanwhile.
    const until = async (step, done) => {
      const deadline = Date.now() + opt.timeout * 1000;
      for (;;) {
        s = await state();
        if (s.errors.length) {
          const e = s.errors[0];
          throw new Failed(`${step}: player error (${e.fatal ? 'fatal' : 'non-fatal'}) ${e.source}: ${e.detail}`);
        }
        if (problems.length) throw new Failed(`${step}: ${problems[0]}`);
        if (done(s)) return s;
        if (Date.now() > deadline) throw new Failed(`${step}: not done after ${opt.timeout} s; ${where()}`);
        await sleep(100);
      }
    };
    const seek = (t) => page.evaluate((to) => { document.getElementById('video').currentTime = to; }, t);

    // start
    await until('start', (x) => x.ready && x.t >= opt.seconds);
    const duration = s.duration;
    if (!(duration > opt.seconds + 8)) throw new Failed(`start: duration ${duration} s is too short for the seeks`);
    if (opt.duration && Math.abs(duration - opt.duration) > 0.2) {
      throw new Failed(`start: the player's duration is ${fmt(duration)} s, the mezzanine's ${fmt(opt.duration)} s`);
    }
    say(`  renditions: ${s.renditions.map((r) => `${r.id} ${r.width}x${r.height} ${r.bitrate} bit/s ${r.codecs || '(no codecs)'}`).join('; ')}`);
    say(`  start:  reached ${fmt(s.t)} s, duration ${fmt(duration)} s, picture ${s.width}x${s.height}`);

    // middle: land inside a segment, play on across the next boundary
    const mid = Math.max(opt.seconds + 1, duration / 2 - 1);
    await seek(mid);
    await until('middle', (x) => !x.seeking && x.t >= mid + 2 && !x.paused);
    say(`  middle: seeked to ${fmt(mid)} s, played to ${fmt(s.t)} s`);

    // switch: pin the rendition whose picture differs most from the one on screen
    const from = { width: s.width, height: s.height };
    const others = s.renditions.filter((r) => r.width && r.width !== from.width);
    if (!others.length) throw new Failed(`switch: no other video rendition than ${from.width}x${from.height}`);
    others.sort((a, b) => Math.abs(b.width - from.width) - Math.abs(a.width - from.width));
    const to = others[0];
    const switchT = s.t;
    await page.evaluate((i) => window.tmt.pin(i), to.index);
    await until('switch', (x) => x.width === to.width && x.height === to.height);
    const shownAt = s.t;
    const framesAt = s.frames;
    await until('switch', (x) => x.t >= shownAt + 1 && x.frames > framesAt);
    if (s.width !== to.width || s.height !== to.height) {
      throw new Failed(`switch: picture went back to ${s.width}x${s.height} after showing ${to.width}x${to.height}`);
    }
    say(`  switch: ${from.width}x${from.height} -> ${to.id} ${to.width}x${to.height} asked at ${fmt(switchT)} s, ` +
      `on screen at ${fmt(shownAt)} s, played to ${fmt(s.t)} s`);

    // end: into the last segment, then to the end
    const last = s.lastSegmentStart != null ? s.lastSegmentStart + 0.5 : duration - 2.5;
    await seek(last);
    await until('end', (x) => x.ended);
    if (Math.abs(s.t - duration) > 0.25) throw new Failed(`end: ended at ${fmt(s.t)} s, duration ${fmt(duration)} s`);
    say(`  end:    seeked to ${fmt(last)} s, reached ${fmt(s.t)} s${s.ended ? ' (ended)' : ''}, picture ${s.width}x${s.height}`);
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    return { ok: true, msg: `${c.player} ${c.src}: start, middle seek, switch to ${to.width}x${to.height}, end in ${secs} s`, lines };
  } catch (e) {
    if (!(e instanceof Failed)) throw e;
    for (const p of problems.slice(0, 6)) say(`  problem: ${p}`);
    for (const m of consoleErrors.slice(0, 6)) say(`  console: ${m}`);
    if (s) say(`  switches on screen: ${s.switches.map((w) => `t=${w.t.toFixed(2)} ${w.width}x${w.height}`).join(', ') || 'none'}`);
    return { ok: false, msg: `${c.player} ${c.src}: ${e.message}`, lines };
  } finally {
    const byStatus = Object.entries(statuses).map(([k, n]) => `${n}x ${k}`).join(', ') || 'none';
    say(`  requests: ${byStatus}, ${aborted} aborted by the player`);
    await context.close();
  }
}

async function main() {
  const opt = options();
  if (!fs.existsSync(opt.chromium)) {
    console.log(`FAIL: no browser at ${opt.chromium} (Debian package chromium; scripts/setup.sh installs it)`);
    return 2;
  }
  for (const [, [file]] of Object.entries(FILES)) {
    if (!fs.existsSync(path.join(here, file))) {
      console.log(`FAIL: ${file} is missing: run "npm ci" in ${here}`);
      return 2;
    }
  }
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    console.log(`FAIL: playwright-core does not load (${e.message}): run "npm ci" in ${here}`);
    return 2;
  }
  // Whatever hangs, browser start included, the process ends.
  const limit = opt.cases.length * (4 * opt.timeout + 20) + 30;
  setTimeout(() => {
    console.log(`FAIL: hard time limit of ${limit} s reached`);
    process.exit(1);
  }, limit * 1000).unref();

  const server = await pageServer();
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({ executablePath: opt.chromium, headless: true, args: FLAGS, timeout: 60000 });
  console.log(`browser: Chromium ${browser.version()} (${opt.chromium}); page origin ${origin}`);
  let failed = 0;
  try {
    for (const c of opt.cases) {
      const r = await playOne(browser, origin, c, opt);
      console.log(`${c.player} ${c.src}`);
      for (const l of r.lines) console.log(l);
      console.log(`${r.ok ? 'PASS' : 'FAIL'}: ${r.msg}`);
      if (!r.ok) failed += 1;
    }
  } finally {
    await browser.close();
    server.close();
  }
  const n = opt.cases.length;
  console.log(failed ? `FAIL: ${failed} of ${n} streams failed` : `PASS: all ${n} streams played`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.log(`FAIL: ${e.stack || e.message}`);
    process.exit(1);
  },
);
