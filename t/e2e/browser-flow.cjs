// A person's path through captchaify in a real browser with JavaScript disabled:
// protected page -> captcha -> wrong answer -> fresh captcha -> right answer -> the page.
// The answers come from the test-only build (X-Captchaify-Test-Answer); release modules lack it.
// Then hardness 3 (image and recording) in three languages, with the screenshots of docs/;
// then the picture captchas (emoji, animals; their recording as the alternative; hardness 3).
// Usage: node browser-flow.cjs BASE_URL SCREENSHOT_DIR
const { chromium } = require('playwright-core');
const { gotoThroughPrecheck } = require('./precheck.cjs');

async function main() {
const [base, shots] = process.argv.slice(2);
let failures = 0, count = 0;
function check(ok, what) {
  count += 1;
  console.log(`${ok ? 'ok' : 'not ok'} ${count} - ${what}`);
  if (!ok) failures += 1;
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  for (const [scheme, width, height] of [['light', 1024, 900], ['dark', 360, 780]]) {
    const context = await browser.newContext({
      javaScriptEnabled: false, colorScheme: scheme, viewport: { width, height },
    });
    const page = await context.newPage();
    const tag = `${scheme} ${width}px`;

    const url = `${base}/protected/welcome.html?from=browser`;
    let { first: visit, response, precheckBytes } = await gotoThroughPrecheck(page, url);
    check(visit.status() === 403 && precheckBytes !== null && precheckBytes <= 1024 && !visit.headers()['x-captchaify-test-answer'],
      `${tag}: a first visit gets the pre-check page (${precheckBytes} bytes, its proof cookie, no image drawn)`);
    check(response.status() === 403, `${tag}: the browser comes back by itself (no script) to the captcha (403)`);
    check(await page.locator('h1').innerText() === 'Verification required', `${tag}: captcha page shown`);
    check(await page.locator('img.captcha').count() === 1, `${tag}: the captcha image is there`);
    const alt = await page.locator('img.captcha').getAttribute('alt');
    check(/letters and digits/.test(alt), `${tag}: the image has real alt text`);
    const naturalWidth = await page.locator('img.captcha').evaluate(img => img.naturalWidth);
    check(naturalWidth > 0, `${tag}: the image decodes (${naturalWidth} px wide)`);
    await page.screenshot({ path: `${shots}/captcha-page-${scheme}.png`, fullPage: true });

    // A wrong answer: a fresh captcha with a message.
    const first = response.headers()['x-captchaify-test-answer'];
    check(/^[A-Z0-9]{6,12}$/.test(first || ''), `${tag}: the test build reveals the answer`);
    await page.fill('#captchaify-answer', 'WRONG');
    [response] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    check(response.status() === 403, `${tag}: a wrong answer gets a fresh captcha`);
    check(/not right/.test(await page.locator('.message').innerText()), `${tag}: with a message`);
    const second = response.headers()['x-captchaify-test-answer'];
    check(second && second !== first, `${tag}: the fresh captcha has a new answer`);

    // The right answer, typed in small letters: back to the page asked for, with a cookie.
    await page.fill('#captchaify-answer', second.toLowerCase());
    [response] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    check(response.status() === 200, `${tag}: the right answer leads to the page (200)`);
    check(new URL(page.url()).pathname + new URL(page.url()).search === '/protected/welcome.html?from=browser',
      `${tag}: at the URL first asked for (${page.url()})`);
    check(/Welcome, human/.test(await page.content()), `${tag}: the protected content is served`);
    const cookie = (await context.cookies()).find(c => c.name === 'captchaify');
    check(cookie && cookie.httpOnly && cookie.sameSite === 'Lax' && cookie.path === '/',
      `${tag}: the pass cookie is HttpOnly, SameSite=Lax, Path=/`);
    await page.screenshot({ path: `${shots}/after-captcha-${scheme}.png` });

    response = await page.goto(`${base}/protected/welcome.html`);
    check(response.status() === 200, `${tag}: the pass keeps the page open`);
    await context.close();
  }

  // Hardness 3 (image and recording) in English, German and Arabic, light and dark, as the
  // browser's language setting asks: the screenshots for docs/, the recording downloaded
  // through its link, and both answers typed in. These contexts are all one client
  // (127.0.0.1): a download, like any browser's, carries no extra headers, so a realip
  // address from X-Forwarded-For would make it someone else's (refused). t/e2e/run gives
  // this server an audio budget big enough for them.
  const hardness3 = [['en', 'en-US'], ['de', 'de-DE'], ['ar', 'ar-EG']]
    .flatMap(([lang, locale]) => [['light', 720, 900], ['dark', 720, 900]]
      .map(([scheme, width, height]) => ({ lang, locale, scheme, width, height,
        shot: `captcha-page-${lang}-${scheme}.png` })))
    .concat([{ lang: 'en', locale: 'en-US', scheme: 'light', width: 320, height: 640,
      shot: 'captcha-page-mobile.png' }]);
  for (const { lang, locale, scheme, width, height, shot } of hardness3) {
    const context = await browser.newContext({
      javaScriptEnabled: false, colorScheme: scheme, viewport: { width, height }, locale,
    });
    const page = await context.newPage();
    const tag = `hardness 3, ${locale} ${scheme} ${width}px`;
    let { response } = await gotoThroughPrecheck(page, `${base}/hard/welcome.html`);
    check(response.status() === 403, `${tag}: the captcha page (403), through the pre-check`);
    const html = page.locator('html');
    check(await html.getAttribute('lang') === lang, `${tag}: <html lang="${lang}">`);
    check(await html.getAttribute('dir') === (lang === 'ar' ? 'rtl' : 'ltr'), `${tag}: dir`);
    const answers = (response.headers()['x-captchaify-test-answer'] || '').split('|');
    check(answers.length === 2 && /^[A-Z0-9]{10,12}$/.test(answers[0]) && /^[0-9]+$/.test(answers[1]),
      `${tag}: the test build reveals TEXT|DIGITS (${answers.join('|')})`);
    check(await page.locator('audio[controls]').count() === 1, `${tag}: an audio player`);
    check(/^data:audio\/wav;base64,/.test(await page.locator('audio').getAttribute('src') || ''),
      `${tag}: playing the recording from the page itself (data: URI)`);
    check(await page.locator('input[name=digits]').count() === 1, `${tag}: a field for the digits`);
    await page.screenshot({ path: `${shots}/${shot}`, fullPage: true });

    // The download link saves a WAV file (Chromium honours download="captcha.wav").
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download')]);
    check(download.suggestedFilename() === 'captcha.wav',
      `${tag}: the download is named captcha.wav (${download.suggestedFilename()})`);
    const wav = require('fs').readFileSync(await download.path());
    check(wav.length > 44 && wav.toString('latin1', 0, 4) === 'RIFF' && wav.toString('latin1', 8, 12) === 'WAVE',
      `${tag}: the download is a WAV file (${wav.length} bytes)`);

    await page.fill('#captchaify-answer', answers[0]);
    await page.fill('#captchaify-digits', answers[1]);
    [response] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    check(response.status() === 200 && /Welcome, human/.test(await page.content()),
      `${tag}: both answers lead to the page (${response.status()})`);
    await context.close();
  }

  // The picture captchas: emoji at hardness 1 (16 tiles) and animals at 2 (20 tiles), light at
  // desktop width and dark on a 320 px phone. A wrong selection, then the right one, ticked by
  // clicking the pictures (the labels) and by the keyboard (Space on a focused checkbox). Each
  // context is a client of its own (X-Forwarded-For, trusted by realip in t/e2e/run), so that
  // these wrong answers do not add up with the ones above (three block a client).
  const pictureRuns = [
    { type: 'emoji', dir: 'emoji', tiles: 16, scheme: 'light', width: 1024, height: 900,
      shot: 'picture-page-light.png' },
    { type: 'emoji', dir: 'emoji', tiles: 16, scheme: 'dark', width: 320, height: 640 },
    { type: 'animals', dir: 'animals', tiles: 20, scheme: 'light', width: 1024, height: 900 },
    { type: 'animals', dir: 'animals', tiles: 20, scheme: 'dark', width: 320, height: 640,
      shot: 'picture-page-dark.png' },
  ];
  // The picture page's facts, read from the page (evaluate works with the page's JS disabled).
  const pictureFacts = (page) => page.evaluate(() => {
    const tiles = [...document.querySelectorAll('fieldset.pictures label.tile')];
    const example = document.querySelector('p.example img');
    return {
      legend: (document.querySelector('fieldset.pictures legend') || {}).innerText || '',
      motif: ((document.querySelector('fieldset.pictures legend strong') || {}).innerText || '').trim(),
      tiles: tiles.length,
      checkboxes: tiles.filter((t) => t.querySelector('input[type=checkbox][name=tile]')).length,
      values: tiles.map((t) => (t.querySelector('input') || {}).value).join(','),
      alts: tiles.every((t, i) => (t.querySelector('img') || {}).alt === `Picture ${i + 1}`),
      widths: [...new Set(tiles.map((t) => t.querySelector('img').naturalWidth))],
      example: example ? example.naturalWidth : 0,
      columns: new Set(tiles.map((t) => Math.round(t.getBoundingClientRect().left))).size,
      scrollWidth: document.documentElement.scrollWidth,
      viewport: window.innerWidth,
      challenge: (document.querySelector('input[name=challenge]') || {}).value || '',
      checked: [...document.querySelectorAll('input[name=tile]:checked')].map((i) => i.value).join(','),
    };
  });
  // The common checks of a picture page with N tiles.
  async function checkPicturePage(page, tag, tiles) {
    const f = await pictureFacts(page);
    check(/^Select every picture that shows: \S/.test(f.legend) && f.motif.length > 0,
      `${tag}: the prompt names a motif ("${f.legend}")`);
    const values = Array.from({ length: tiles }, (_, i) => i + 1).join(',');
    check(f.tiles === tiles && f.checkboxes === tiles && f.values === values,
      `${tag}: ${tiles} tiles, each a labelled checkbox tile=1..${tiles} (${f.tiles}, ${f.checkboxes})`);
    check(f.alts, `${tag}: the tiles' pictures say "Picture N"`);
    check(f.widths.length === 1 && f.widths[0] === 64 && f.example === 64,
      `${tag}: the pictures and the example decode (naturalWidth ${f.widths.join('/')}, example ${f.example})`);
    check(f.columns === 4, `${tag}: the grid has 4 columns (${f.columns})`);
    check(f.scrollWidth <= f.viewport,
      `${tag}: no sideways scrolling (scrollWidth ${f.scrollWidth} <= ${f.viewport})`);
    return f;
  }
  // Ticks TILES: the first one by the keyboard (focus, Space), the others by clicking their
  // pictures; returns what is ticked then.
  async function tickTiles(page, tiles) {
    for (const [i, n] of tiles.entries()) {
      if (i === 0) {
        await page.focus(`input[name=tile][value="${n}"]`);
        await page.keyboard.press('Space');
      } else {
        await page.click(`label.tile:has(input[value="${n}"]) img`);
      }
    }
    return (await pictureFacts(page)).checked;
  }
  const sorted = (list) => [...list].map(Number).sort((a, b) => a - b).join(',');
  const mainSubmit = 'form > div > button[type=submit]';
  let client = 0;
  for (const { type, dir, tiles, scheme, width, height, shot } of pictureRuns) {
    const context = await browser.newContext({
      javaScriptEnabled: false, colorScheme: scheme, viewport: { width, height },
      extraHTTPHeaders: { 'X-Forwarded-For': `10.77.0.${++client}` },
    });
    const page = await context.newPage();
    const tag = `${type} ${scheme} ${width}px`;
    const url = `${base}/${dir}/welcome.html?from=pictures`;
    let { first: visit, response, precheckBytes } = await gotoThroughPrecheck(page, url);
    check(visit.status() === 403 && precheckBytes !== null && !visit.headers()['x-captchaify-test-answer'],
      `${tag}: a first visit gets the pre-check page (${precheckBytes} bytes)`);
    check(response.status() === 403 && await page.locator('h1').innerText() === 'Verification required',
      `${tag}: then the picture page (${response.status()})`);
    const firstFacts = await checkPicturePage(page, tag, tiles);
    check(await page.locator('details.alternative:not([open])').count() === 1
      && !(await page.locator('#captchaify-digits').isVisible()),
      `${tag}: the recording is offered as an alternative, closed`);
    if (shot) await page.screenshot({ path: `${shots}/${shot}`, fullPage: true });

    const first = response.headers()['x-captchaify-test-answer'] || '';
    check(/^\d+(,\d+)+$/.test(first), `${tag}: the test build reveals the tiles (${first})`);
    check(/^\d{4,}$/.test(response.headers()['x-captchaify-test-digits'] || ''),
      `${tag}: and the recording's digits (${response.headers()['x-captchaify-test-digits']})`);

    // A wrong selection: one tile that is not among the answer's.
    const right = new Set(first.split(','));
    const wrongTile = Array.from({ length: tiles }, (_, i) => String(i + 1)).find((n) => !right.has(n));
    check(await tickTiles(page, [wrongTile]) === wrongTile, `${tag}: tile ${wrongTile} ticked by the keyboard`);
    [response] = await Promise.all([page.waitForNavigation(), page.click(mainSubmit)]);
    check(response.status() === 403, `${tag}: a wrong selection gets a fresh grid (${response.status()})`);
    check(/not right/.test(await page.locator('.message').innerText()), `${tag}: with the "not right" message`);
    const secondFacts = await checkPicturePage(page, `${tag}, fresh grid`, tiles);
    const second = response.headers()['x-captchaify-test-answer'] || '';
    check(/^\d+(,\d+)+$/.test(second) && secondFacts.challenge !== firstFacts.challenge,
      `${tag}: a new challenge with its own answer (${second})`);

    // The right selection: clicked pictures and a keyboard tick; any order.
    const answer = second.split(',').reverse();
    check(await tickTiles(page, answer) === sorted(answer),
      `${tag}: ticked ${sorted(answer)} (the first by Space, the others by clicking their pictures)`);
    [response] = await Promise.all([page.waitForNavigation(), page.click(mainSubmit)]);
    check(response.status() === 200, `${tag}: the right tiles lead to the page (200)`);
    check(new URL(page.url()).pathname + new URL(page.url()).search === `/${dir}/welcome.html?from=pictures`,
      `${tag}: at the URL first asked for (${page.url()})`);
    check(/Welcome, human/.test(await page.content()), `${tag}: the protected content is served`);
    const cookie = (await context.cookies()).find((c) => c.name === 'captchaify');
    check(cookie && cookie.httpOnly, `${tag}: with the pass cookie`);
    response = await page.goto(`${base}/${dir}/welcome.html`);
    check(response.status() === 200, `${tag}: the pass keeps the page open`);
    await context.close();
  }

  // The alternative: the recording instead of the pictures. Its download, like any browser's,
  // carries no X-Forwarded-For: this context is 127.0.0.1 (see hardness 3 above).
  {
    const context = await browser.newContext({
      javaScriptEnabled: false, colorScheme: 'light', viewport: { width: 390, height: 800 },
    });
    const page = await context.newPage();
    const tag = 'animals, the recording instead';
    const url = `${base}/animals/welcome.html?from=recording`;
    let { response } = await gotoThroughPrecheck(page, url);
    check(response.status() === 403, `${tag}: the picture page (${response.status()})`);
    const digits = response.headers()['x-captchaify-test-digits'] || '';
    check(/^\d{4,}$/.test(digits), `${tag}: the test build reveals the recording's digits (${digits})`);
    const summary = page.locator('details.alternative summary');
    check(await summary.innerText() === 'Cannot see the pictures? Answer a recording instead',
      `${tag}: the alternative's summary`);
    check(!(await page.locator('#captchaify-digits').isVisible()), `${tag}: the digits field is hidden at first`);
    await summary.click();
    check(await page.locator('details.alternative[open]').count() === 1
      && await page.locator('#captchaify-digits').isVisible(), `${tag}: clicking the summary opens it`);
    const href = await page.locator('details.alternative a.download').getAttribute('href');
    check(/^\/\.captchaify\/audio\?challenge=[^&]+&lang=en$/.test(href || ''),
      `${tag}: a link to the clip (${(href || '').slice(0, 40)}...)`);
    const [download] = await Promise.all([page.waitForEvent('download'),
      page.click('details.alternative a.download')]);
    const wav = require('fs').readFileSync(await download.path());
    check(download.suggestedFilename() === 'captcha.wav' && wav.length > 44
      && wav.toString('latin1', 0, 4) === 'RIFF' && wav.toString('latin1', 8, 12) === 'WAVE',
      `${tag}: the link downloads captcha.wav, a WAV file (${wav.length} bytes)`);
    check((await pictureFacts(page)).checked === '', `${tag}: no tile ticked`);
    await page.fill('#captchaify-digits', digits);
    [response] = await Promise.all([page.waitForNavigation(),
      page.click('details.alternative button[type=submit]')]);
    check(response.status() === 200 && /Welcome, human/.test(await page.content()),
      `${tag}: the digits alone, with the alternative's Continue, lead to the page (${response.status()})`);
    check(new URL(page.url()).pathname + new URL(page.url()).search === '/animals/welcome.html?from=recording',
      `${tag}: at the URL first asked for`);
    check((await context.cookies()).some((c) => c.name === 'captchaify'), `${tag}: with the pass cookie`);
    await context.close();
  }

  // Hardness 3: the tiles and the recording's digits, both required (127.0.0.1 again: the
  // recording is downloaded).
  {
    const context = await browser.newContext({
      javaScriptEnabled: false, colorScheme: 'light', viewport: { width: 1024, height: 1000 },
    });
    const page = await context.newPage();
    const tag = 'pictures at hardness 3';
    const url = `${base}/pictures-hard/welcome.html`;
    let { response } = await gotoThroughPrecheck(page, url);
    check(response.status() === 403, `${tag}: the picture page (${response.status()})`);
    await checkPicturePage(page, tag, 20);
    const [tilesAnswer, digits] = (response.headers()['x-captchaify-test-answer'] || '').split('|');
    check(/^\d+(,\d+)+$/.test(tilesAnswer) && /^\d{4,}$/.test(digits || ''),
      `${tag}: the test build reveals TILES|DIGITS (${tilesAnswer}|${digits})`);
    check(!response.headers()['x-captchaify-test-digits'], `${tag}: the digits are no alternative here`);
    check(await page.locator('details.alternative').count() === 0, `${tag}: no <details> alternative`);
    check(await page.locator('audio[controls][preload=none]').count() === 1
      && /^\/\.captchaify\/audio\?/.test(await page.locator('audio').getAttribute('src') || ''),
      `${tag}: an audio player that loads the clip only when played`);
    check(await page.locator('#captchaify-digits[required]').isVisible(), `${tag}: a required digits field`);
    await page.screenshot({ path: `${shots}/picture-page-hard.png`, fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download')]);
    const wav = require('fs').readFileSync(await download.path());
    check(wav.length > 44 && wav.toString('latin1', 0, 4) === 'RIFF' && wav.toString('latin1', 8, 12) === 'WAVE',
      `${tag}: the download is a WAV file (${wav.length} bytes)`);

    // The tiles alone: the browser itself refuses to send the form (the digits are required).
    const answer = tilesAnswer.split(',');
    check(await tickTiles(page, answer) === sorted(answer), `${tag}: ticked ${sorted(answer)}`);
    let navigated = false;
    page.once('framenavigated', () => { navigated = true; });
    await page.click(mainSubmit);
    await page.waitForTimeout(500);
    check(!navigated && await page.locator('#captchaify-digits').evaluate((el) => el.validity.valueMissing),
      `${tag}: without the digits the form is not sent (the field is required)`);
    await page.fill('#captchaify-digits', digits);
    [response] = await Promise.all([page.waitForNavigation(), page.click(mainSubmit)]);
    check(response.status() === 200 && /Welcome, human/.test(await page.content()),
      `${tag}: the tiles and the digits lead to the page (${response.status()})`);
    check((await context.cookies()).some((c) => c.name === 'captchaify'), `${tag}: with the pass cookie`);
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(`${count - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
}

main().catch((error) => { console.log(`not ok - ${error.stack}`); process.exit(1); });
