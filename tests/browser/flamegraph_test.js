// Browser test of stackwatch's SVG flame graphs: headless Chromium opens a
// graph of tests/browser/known.folded, clicks a frame, searches, and takes
// a screenshot. Fails (exit 1) with a message on the first broken check.
//
// usage: node flamegraph_test.js GRAPH.svg ICICLE.svg SCREENSHOT.png
'use strict';
const { chromium } = require('playwright-core');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const [svgPath, iciclePath, screenshotPath] = process.argv.slice(2);
const kChromium = process.env.CHROMIUM || '/usr/bin/chromium';
const kPlotWidth = 1180;  // 1200 px image minus two 10 px margins

// Frame geometry and state, read from the DOM by title prefix.
async function frame(page, name) {
  return page.evaluate((name) => {
    for (const g of document.querySelectorAll('#frames > g')) {
      const title = g.querySelector('title').textContent;
      if (title.startsWith(name + ' (')) {
        const r = g.querySelector('rect');
        const t = g.querySelector('text');
        return {
          title, x: +r.getAttribute('x'), width: +r.getAttribute('width'),
          hidden: getComputedStyle(g).display === 'none', parent: g.classList.contains('parent'),
          label: t ? t.textContent : '',
        };
      }
    }
    return null;
  }, name);
}

async function clickFrame(page, name) {
  const handle = await page.evaluateHandle((name) => {
    for (const g of document.querySelectorAll('#frames > g'))
      if (g.querySelector('title').textContent.startsWith(name + ' (')) return g.querySelector('rect');
    return null;
  }, name);
  await handle.asElement().click();
}

async function search(page, term) {
  page.once('dialog', (d) => d.accept(term));
  await page.keyboard.press('Control+f');
  await page.waitForFunction(() => !document.getElementById('matched').classList.contains('hide'));
  return page.evaluate(() => document.getElementById('matched').textContent);
}

// Distinct colours in a PNG and how many pixels are strongly coloured (the
// frames: a blank page or the background gradient alone has none), decoded
// by the browser itself (no PNG library).
async function pixelStats(page, png) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const c = document.createElementNS('http://www.w3.org/1999/xhtml', 'canvas');  // an SVG document
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    let saturated = 0;
    for (let i = 0; i < d.length; i += 4) {
      seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 100) ++saturated;
    }
    return { colours: seen.size, saturated };
  }, png.toString('base64'));
}

async function openGraph(browser, file, errors) {
  const page = await browser.newPage({ viewport: { width: 1200, height: 400 } });
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console error: ' + m.text()); });
  page.on('requestfailed', (r) => errors.push('request failed: ' + r.url()));
  await page.goto('file://' + path.resolve(file));
  // An XML error makes Chromium show a parsererror page instead of the SVG.
  assert.equal(await page.evaluate(() => document.documentElement.localName), 'svg', 'the SVG did not parse');
  assert.equal(await page.evaluate(() => document.querySelectorAll('parsererror').length), 0);
  return page;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: kChromium,
    headless: true,
    // Playwright gives each launch a fresh temporary --user-data-dir.
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-quic',
           '--disable-component-update', '--disable-sync'],
  });
  const errors = [];
  try {
    const page = await openGraph(browser, svgPath, errors);
    assert.equal(await page.evaluate(() => document.querySelectorAll('#frames > g').length), 10,
                 'frames drawn: all, app, main, parse, render and their 5 children');

    // Tooltip and details bar.
    const drawText = await frame(page, 'draw_text');
    assert.equal(drawText.title, 'draw_text (40 samples, 40.00%)');
    await page.hover('#frames > g:nth-child(1) > rect');
    const rootDetails = await page.evaluate(() => document.getElementById('details').textContent);
    assert.equal(rootDetails, 'Function: all (100 samples, 100.00%)');

    // A 59 px frame holds 8 characters of a 12 px font: 6 and "..".
    assert.equal((await frame(page, 'std::map<int, std::string>::find(int const&)')).label, 'std::m..');

    // Before zoom: render is half the plot.
    let render = await frame(page, 'render');
    assert.ok(Math.abs(render.width - kPlotWidth * 0.5) < 0.02, `render width ${render.width}`);
    assert.ok(!(await frame(page, 'parse')).hidden);
    assert.ok(await page.evaluate(() => document.getElementById('unzoom').classList.contains('hide')));

    // Click render: it fills the width, its sibling parse is hidden, its
    // children scale, its ancestors stay as faded full-width bars.
    await clickFrame(page, 'render');
    render = await frame(page, 'render');
    assert.ok(Math.abs(render.x - 10) < 0.02 && Math.abs(render.width - kPlotWidth) < 0.02,
              `zoomed render at x=${render.x} width=${render.width}`);
    assert.equal(render.label, 'render');
    assert.ok((await frame(page, 'parse')).hidden, 'parse (a sibling of render) should be hidden');
    assert.ok((await frame(page, 'read_file')).hidden, 'read_file (under parse) should be hidden');
    const zoomedDraw = await frame(page, 'draw_text');
    assert.ok(Math.abs(zoomedDraw.width - kPlotWidth * 0.8) < 0.05, `draw_text width ${zoomedDraw.width}`);
    const main = await frame(page, 'main');
    assert.ok(main.parent && !main.hidden && Math.abs(main.width - kPlotWidth) < 0.02, 'main is a faded ancestor');
    // Labels are re-fitted to the zoomed width: 118 px hold 16 characters.
    const find = await frame(page, 'std::map<int, std::string>::find(int const&)');
    assert.equal(find.label, 'std::map<int, ..');
    assert.ok(!(await page.evaluate(() => document.getElementById('unzoom').classList.contains('hide'))));

    // Search: Ctrl-F, a regex, highlighted frames and the matched share.
    // read_file (30) + draw_text (40) = 70% of all samples.
    assert.equal(await search(page, '^(read_file|draw_text)$'), 'Matched: 70.00%');
    const fills = await page.evaluate(() => [...document.querySelectorAll('#frames > g')].map(
        (g) => [g.querySelector('title').textContent.split(' (')[0], g.querySelector('rect').getAttribute('fill')]));
    const purple = fills.filter(([, fill]) => fill === 'rgb(230,0,230)').map(([n]) => n).sort();
    assert.deepEqual(purple, ['draw_text', 'read_file']);
    // Nested matches count once: main contains everything.
    await page.keyboard.press('Escape');  // reset search
    assert.equal(await search(page, 'main|parse'), 'Matched: 100.00%');
    await page.keyboard.press('Escape');

    // Reset zoom restores the original geometry.
    await page.click('#unzoom');
    render = await frame(page, 'render');
    assert.ok(Math.abs(render.width - kPlotWidth * 0.5) < 0.02 && !(await frame(page, 'parse')).hidden);

    // The screenshot is not blank: frames in several colours, text, background.
    const png = await page.screenshot({ path: screenshotPath });
    const { colours, saturated } = await pixelStats(page, png);
    assert.ok(colours >= 50, `screenshot has only ${colours} distinct colours`);
    // Five rows of frames 1180 px wide and 15 px high: about 88,000 pixels.
    assert.ok(saturated >= 60000, `screenshot has only ${saturated} frame-coloured pixels`);

    // Icicle layout: root at the top, zoom works the same.
    const icicle = await openGraph(browser, iciclePath, errors);
    const root = await icicle.evaluate(() => +document.querySelector('#frames > g > rect').getAttribute('y'));
    const leaf = (await icicle.evaluate(() => {
      const ys = [...document.querySelectorAll('#frames > g > rect')].map((r) => +r.getAttribute('y'));
      return Math.max(...ys);
    }));
    assert.ok(root < leaf, 'icicle: the root is above the leaves');
    await clickFrame(icicle, 'parse');
    const parse = await frame(icicle, 'parse');
    assert.ok(Math.abs(parse.width - kPlotWidth) < 0.02 && (await frame(icicle, 'render')).hidden);

    assert.deepEqual(errors, [], 'no script errors, failed requests or console errors');
    console.log(`browser test passed (${colours} colours, ${saturated} frame pixels in ${screenshotPath})`);
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error('FAIL: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
