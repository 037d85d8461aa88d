// Drives the daemon's status page in headless Chromium for tests/status_page.rs.
//
//   node status_page.mjs <page url> <node peer id> <connected peer id> [screenshot.png]
//
// Opens the page, waits (on the page's own state, never on a clock) until it shows the node's
// peer id, the connected peer in the peers table and a live event stream, then prints one JSON
// line {"event":"ready",...} and reads one line from stdin: the id of a peer the test connects
// next. It waits for that peer's row to appear in the same document (no reload), optionally
// takes a full-page screenshot, and prints {"event":"done",...} with what it saw: the visible
// texts, the peers table, the event-stream frames that named the new peer, and every console
// error, page error, failed request and HTTP error answer. Any failure prints
// {"event":"error","message":...} and exits 1. Chromium is the system one ($CHROMIUM, default
// /usr/bin/chromium).
import { createInterface } from 'node:readline';
import puppeteer from 'puppeteer-core';

const [url, nodeId, firstPeer, screenshot] = process.argv.slice(2);
const WAIT_MS = 30000;

const say = (value) => process.stdout.write(JSON.stringify(value) + '\n');
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const consoleErrors = [];
const pageErrors = [];
const failedRequests = [];
const httpErrors = [];
const frames = [];

let browser;
try {
  if (!url || !nodeId || !firstPeer) {
    throw new Error('usage: status_page.mjs <url> <node id> <peer id> [screenshot]');
  }
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // Root in CI containers has no user namespaces for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900, deviceScaleFactor: 1 });
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('requestfailed', (r) => {
    failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) httpErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  // The event stream's frames, as the browser received them.
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  cdp.on('Network.webSocketFrameReceived', (f) => frames.push(f.response.payloadData));

  const response = await page.goto(url, { waitUntil: 'load', timeout: WAIT_MS });
  if (!response.ok()) throw new Error(`the page answered ${response.status()}`);
  // Marks this document: if the page reloaded, the mark would be gone.
  await page.evaluate(() => {
    window.cairnTestMark = 'same document';
  });

  const rowText = (id) =>
    page.evaluate((peer) => {
      const tr = document.querySelector(`#peers tbody tr[data-peer="${peer}"]`);
      return tr ? tr.innerText : null;
    }, id);
  const visible = (selector) =>
    page.evaluate((sel) => {
      const el = document.querySelector(sel);
      if (!el) return false;
      const box = el.getBoundingClientRect();
      return box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== 'hidden';
    }, selector);

  await page.waitForFunction(
    (id) => document.getElementById('peer-id').textContent === id,
    { timeout: WAIT_MS },
    nodeId,
  );
  await page.waitForFunction(
    (peer) => !!document.querySelector(`#peers tbody tr[data-peer="${peer}"]`),
    { timeout: WAIT_MS },
    firstPeer,
  );
  await page.waitForSelector('#live[data-state="live"]', { timeout: WAIT_MS });
  say({
    event: 'ready',
    peerIdText: await page.$eval('#peer-id', (e) => e.textContent),
    peerIdVisible: await visible('#peer-id'),
    firstPeerRow: await rowText(firstPeer),
  });

  const next = await lines.next();
  if (next.done) throw new Error('stdin closed before the next peer was named');
  const newPeer = next.value.trim();
  await page.waitForFunction(
    (peer) => !!document.querySelector(`#peers tbody tr[data-peer="${peer}"]`),
    { timeout: WAIT_MS },
    newPeer,
  );
  const sameDocument = await page.evaluate(() => window.cairnTestMark === 'same document');
  const peerRows = await page.$$eval('#peers tbody tr', (rows) => rows.map((r) => r.dataset.peer));
  const newPeerRow = await rowText(newPeer);
  const newPeerVisible = await visible(`#peers tbody tr[data-peer="${newPeer}"]`);
  if (screenshot) {
    // A screenshot worth keeping: agents identified and a few bandwidth samples drawn.
    await page.waitForFunction(
      () => Array.from(document.querySelectorAll('#peers tbody tr')).every(
        (tr) => tr.cells[3].textContent !== '–' && tr.cells[4].textContent !== '–',
      ) && Number(document.getElementById('bw-graph').dataset.samples) >= 15,
      { timeout: 2 * WAIT_MS, polling: 250 },
    );
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  const eventFrames = frames.filter((f) => f.includes(newPeer));
  // The watch folder card: shown only when the daemon watches a folder.
  const watchVisible = await visible('#watch');
  const watchRows = await page.$$eval('#watch-table tbody tr', (rows) => rows.map((r) => r.innerText));
  say({
    event: 'done',
    sameDocument,
    peerRows,
    newPeerRow,
    newPeerVisible,
    eventFrames,
    watchVisible,
    watchRows,
    consoleErrors,
    pageErrors,
    failedRequests,
    httpErrors,
  });
  await browser.close();
  process.exit(0);
} catch (e) {
  say({
    event: 'error',
    message: String(e && e.stack ? e.stack : e),
    consoleErrors,
    pageErrors,
    failedRequests,
    httpErrors,
  });
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
