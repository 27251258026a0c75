// A person's path through captchaify in a real browser with JavaScript disabled:
// protected page -> captcha -> wrong answer -> fresh captcha -> right answer -> the page.
// The answers come from the test-only build (X-Captchaify-Test-Answer); release modules lack it.
// Then hardness 3 (image and recording) in three languages, with the screenshots of docs/.
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
} finally {
  await browser.close();
}
console.log(`${count - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
}

main().catch((error) => { console.log(`not ok - ${error.stack}`); process.exit(1); });
