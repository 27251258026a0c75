// The accessibility audit: every page captchaify serves, in every language, light and dark, on
// a phone (320x640) and a desktop (1280x800), against a real nginx with the test build.
//   node a11y.cjs BASE_URL I18N_DIR
// Page kinds (the nginx configuration is t/e2e/run's): the captcha at hardness 2 and 3, the
// captcha again after a wrong answer, the picture captchas (emoji at hardness 1 with its
// recording alternative closed, animals at 2 with it opened, emoji at 3 with the recording
// required), the block page, the rate-limit page, the language chooser.
// The languages are the catalogs in I18N_DIR (templates/i18n).
//
// Two browser contexts share one Chromium:
// - "person": JavaScript disabled, as captchaify's pages are meant to be used. This script's own
//   checks run there: <html lang> and dir, the page really is in that language, no sideways
//   scrolling, a label for every input (a tile's label names it by its picture's alt text),
//   44 px touch targets (a tile's checkbox by its label, the whole picture, which ticks it),
//   and a visible focus outline on every control reached with the Tab key (the answer field
//   among them). Controls that are not rendered (those in a closed <details>) are left out:
//   nobody can reach them until it is opened, which the animals kind does. (Playwright's
//   page.evaluate still works there: it goes through the DevTools protocol; only the page's
//   own scripts are off, and captchaify's pages have none.)
// - "axe": axe-core needs JavaScript, so it runs in a second context with JavaScript enabled and
//   bypassCSP: true. The pages send `Content-Security-Policy: default-src 'none'`, which would
//   stop an injected <script>; bypassCSP is Playwright's documented way around it. axe is
//   evaluated into the page (page.evaluate of its source), never served by nginx.
// Each page is loaded once per context and then checked in the four theme/viewport variants by
// switching prefers-color-scheme (page.emulateMedia) and the viewport size in place: the pages
// have no scripts, so that is the same as loading them four times, at a quarter of the cost.
// Every page load is its own client (X-Forwarded-For, trusted by realip in t/e2e/run): its wrong
// answer, rate limit and audio budget are its own, under captchaify's default limits.
//
// Fails on any axe violation of impact serious or critical among the WCAG 2.x A/AA rules, and on
// this script's own checks (inputs and buttons under 44 px fail; links under 44 px are reported).
// axe's best-practice findings and its "needs review" results are reported, not failed.
// A11Y_CONCURRENCY (default 3) sets how many pages are audited at once.
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { gotoThroughPrecheck } = require('./precheck.cjs');

const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const WCAG_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
// A browser's User-Agent without "HeadlessChrome" (a crawler to captchaify_block_crawler). Sent
// as a request header rather than the context's userAgent option, which would win over the
// crawler User-Agent the block page needs.
const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) '
  + 'Chrome/140.0.0.0 Safari/537.36';
const CONCURRENCY = Number(process.env.A11Y_CONCURRENCY || 3);

const KINDS = [
  { id: 'captcha', path: '/protected/welcome.html', status: 403, title: 'captcha.title', answer: true },
  { id: 'captcha-h3', path: '/hard/welcome.html', status: 403, title: 'captcha.title', answer: true,
    audio: true },
  { id: 'wrong-answer', path: '/protected/welcome.html', status: 403, title: 'captcha.title',
    answer: true, wrong: true, message: 'captcha.wrong' },
  { id: 'emoji', path: '/emoji/welcome.html', status: 403, title: 'captcha.title', tiles: 16,
    alternative: 'closed' },
  { id: 'animals', path: '/animals/welcome.html', status: 403, title: 'captcha.title', tiles: 20,
    alternative: 'open' },
  { id: 'pictures-h3', path: '/pictures-hard/welcome.html', status: 403, title: 'captcha.title',
    tiles: 20, audio: true },
  { id: 'block', path: '/blocked/welcome.html', status: 403, title: 'block.title', ua: 'curl/8.0' },
  { id: 'rate-limit', path: '/rate/welcome.html', status: 429, title: 'rate.title', twice: true },
  { id: 'chooser', path: '/.captchaify/language?return=/protected/', status: 200,
    title: 'language.title' },
];
const VARIANTS = [];
for (const scheme of ['light', 'dark']) {
  for (const [width, height] of [[320, 640], [1280, 800]]) VARIANTS.push({ scheme, width, height });
}
const CONTROLS = 'a[href], input:not([type=hidden]), button, select, textarea, audio[controls], summary';

// A catalog: "key = value" lines, "#" comments (see templates/i18n/en.txt).
function readCatalog(file) {
  const catalog = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Za-z_.]+)\s*=\s*(.*)$/.exec(line.trim());
    if (m) catalog[m[1]] = m[2].trim();
  }
  return catalog;
}
const squash = (text) => (text || '').replace(/\s+/g, ' ').trim();

async function main() {
  const [base, i18nDir] = process.argv.slice(2);
  const languages = fs.readdirSync(i18nDir).filter((f) => f.endsWith('.txt'))
    .map((f) => f.slice(0, -4))
    .sort((a, b) => (a === 'en' ? -1 : b === 'en' ? 1 : a.localeCompare(b)));
  const catalogs = Object.fromEntries(
    languages.map((l) => [l, readCatalog(path.join(i18nDir, `${l}.txt`))]));
  const started = Date.now();

  let count = 0, failures = 0, client = 0;
  const impacts = { critical: 0, serious: 0, moderate: 0, minor: 0 };
  const ruleTally = new Map(); // "impact rule" -> audits showing it
  const reviewTally = new Map(); // axe "incomplete" (needs review) rule -> audits
  const notes = new Map(); // report-only findings -> the languages/viewports showing them
  const passedRules = []; // per audit: how many axe rules applied and passed (axe really ran)

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // JavaScript disabled: what a person gets. This script's checks run here.
  const PERSON = { javaScriptEnabled: false };
  // JavaScript enabled and the page's CSP bypassed, only so that axe can run.
  const AXE = { javaScriptEnabled: true, bypassCSP: true };

  // Opens the kind's page in LANG in PAGE, as a fresh client; returns the HTTP status.
  async function open(page, kind, lang) {
    const me = ++client; // (taken now: the other workers count on while this one waits)
    await page.setExtraHTTPHeaders({
      'User-Agent': kind.ua || BROWSER_UA,
      'Accept-Language': lang,
      'X-Forwarded-For': `10.${100 + (me >> 16)}.${(me >> 8) & 255}.${me & 255}`,
    });
    const url = base + kind.path;
    // The one request 1r/m allows, at a URL of this client's own: Chromium could answer a
    // repeat of the (cacheable) page from its cache without asking nginx.
    if (kind.twice) await gotoThroughPrecheck(page, `${url}?first=${me}`);
    let { response } = await gotoThroughPrecheck(page, url);
    if (kind.wrong) {
      // The right answer with its first character changed to another one of the alphabet
      // (not to a look-alike from outside it, such as A, which the module reads as 4).
      const answer = response.headers()['x-captchaify-test-answer'] || 'H';
      await page.fill('#captchaify-answer', (answer[0] === 'H' ? 'M' : 'H') + answer.slice(1));
      [response] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    }
    if (kind.alternative === 'open') {
      // Opened with the keyboard, as a person without a mouse would (no script needed).
      await page.focus('details.alternative summary');
      await page.keyboard.press('Enter');
      if (!(await page.evaluate(() => document.querySelector('details.alternative').open))) {
        throw new Error('Enter on the summary did not open the recording alternative');
      }
    }
    return response.status();
  }

  // This script's own checks, in the JavaScript-free page; returns [problems, notes].
  async function personChecks(page, kind, lang, variant) {
    const catalog = catalogs[lang];
    const problems = [], found = [];
    const facts = await page.evaluate((CONTROLS) => {
      // A short name for an element, kept in the page for the Tab walk below. (Not eval: the
      // page's CSP forbids it in this context, whereas evaluated functions are exempt.)
      const describe = (el) => {
        let d = el.tagName.toLowerCase();
        if (el.id) d += `#${el.id}`;
        else if (typeof el.className === 'string' && el.className) d += `.${el.className.split(' ').join('.')}`;
        if (el.tagName === 'A') d += `[href="${(el.getAttribute('href') || '').slice(0, 48)}"]`;
        return d;
      };
      window.a11yDescribe = describe;
      const text = (selector) => (document.querySelector(selector) || {}).innerText || null;
      // What a label says: its text, or the alt text of its pictures (a tile's label).
      const says = (label) => label.innerText.trim()
        || [...label.querySelectorAll('img[alt]')].map((img) => img.alt.trim()).join(' ');
      // A checkbox or radio button inside its label is ticked by a click anywhere on the label:
      // the label is its target.
      const target = (el) => (['checkbox', 'radio'].includes(el.type) && el.closest('label')) || el;
      // (Not getClientRects: the content of a closed <details> keeps its boxes, hidden by
      // content-visibility, which checkVisibility knows.)
      const rendered = (el) => el.checkVisibility();
      const details = document.querySelector('details.alternative');
      return {
        lang: document.documentElement.getAttribute('lang'),
        dir: document.documentElement.getAttribute('dir'),
        h1: text('h1'),
        message: text('.message'),
        scrollWidth: document.documentElement.scrollWidth,
        unlabelled: [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
          .filter(rendered)
          .filter((el) => ![...el.labels].some(says))
          .map(describe),
        controls: [...document.querySelectorAll(CONTROLS)].filter(rendered).map((el) => {
          const box = target(el).getBoundingClientRect();
          return {
            what: describe(el), tag: el.tagName,
            height: Math.round(Math.min(box.height, el.type === 'checkbox' ? box.width : Infinity) * 10) / 10,
            minHeight: parseFloat(getComputedStyle(target(el)).minHeight) || 0,
          };
        }),
        legend: text('fieldset.pictures legend'),
        motif: text('fieldset.pictures legend strong'),
        tiles: document.querySelectorAll('label.tile input[type=checkbox][name=tile]').length,
        pictures: [...document.querySelectorAll('fieldset.pictures img')].map((img) => img.naturalWidth),
        alternative: details ? (details.open ? 'open' : 'closed') : null,
      };
    }, CONTROLS);
    if (facts.lang !== lang) problems.push(`<html lang="${facts.lang}">, expected "${lang}"`);
    const dir = catalog._dir || 'ltr';
    if (facts.dir !== dir) problems.push(`<html dir="${facts.dir}">, expected "${dir}"`);
    if (lang === 'ar' && facts.dir !== 'rtl') problems.push('Arabic is not dir="rtl"');
    if (squash(facts.h1) !== squash(catalog[kind.title])) {
      problems.push(`<h1> is "${squash(facts.h1)}", expected ${kind.title} "${catalog[kind.title]}"`);
    }
    if (kind.message && squash(facts.message) !== squash(catalog[kind.message])) {
      problems.push(`.message is "${squash(facts.message)}", expected ${kind.message}`);
    }
    if (facts.scrollWidth > variant.width) {
      problems.push(`scrolls sideways: scrollWidth ${facts.scrollWidth} > ${variant.width}`);
    }
    for (const what of facts.unlabelled) problems.push(`${what} has no label`);
    for (const c of facts.controls) {
      if (c.height >= 44) continue;
      if (['INPUT', 'BUTTON', 'SELECT', 'TEXTAREA', 'SUMMARY'].includes(c.tag)) {
        problems.push(`${c.what} is ${c.height} px tall (< 44)`);
      } else {
        found.push(`${kind.id}: ${c.what} is under 44 px tall (${c.height} px`
          + `${c.minHeight >= 44 ? ', although its CSS asks for 44' : ', no min-height in the CSS'})`);
      }
    }
    if (kind.audio && !facts.controls.some((c) => c.what === 'input#captchaify-digits')) {
      problems.push('no digits field (input#captchaify-digits) on the hardness-3 page');
    }
    if (kind.tiles) {
      const prompt = squash(catalog['picture.prompt'].split('{motif}')[0]);
      if (!squash(facts.legend).startsWith(prompt) || !squash(facts.motif)) {
        problems.push(`the prompt is "${squash(facts.legend)}", expected picture.prompt with a motif`);
      }
      if (facts.tiles !== kind.tiles) problems.push(`${facts.tiles} tiles, expected ${kind.tiles}`);
      if (facts.pictures.some((w) => w !== 64)) problems.push(`pictures not decoded: ${facts.pictures}`);
      if (facts.alternative !== (kind.alternative || null)) {
        problems.push(`the recording alternative is ${facts.alternative}, expected ${kind.alternative || null}`);
      }
      if (kind.alternative === 'open' && !facts.controls.some((c) => c.what === 'input#captchaify-digits')) {
        problems.push('the open alternative shows no digits field (input#captchaify-digits)');
      }
    }

    // The keyboard: a click in the page's top corner puts the Tab starting point before
    // everything; then Tab until every control has had the focus (the <audio> player takes a few
    // stops of its own). Each link, field and button must show a focus outline when it gets it.
    await page.mouse.click(1, 1);
    const reached = new Map();
    for (let i = 0; i < facts.controls.length + 10 && reached.size < facts.controls.length; i += 1) {
      await page.keyboard.press('Tab');
      const focus = await page.evaluate(() => {
        const el = document.activeElement;
        if (!el || el === document.body) return null;
        const s = getComputedStyle(el);
        return { what: window.a11yDescribe(el),
          outline: `${s.outlineStyle} ${s.outlineWidth}`,
          visible: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0,
          shadow: s.boxShadow !== 'none' };
      });
      if (!focus) continue;
      const seen = reached.get(focus.what);
      // The <audio> player's inner controls draw their own focus ring; the element counts as
      // showing it if any of its stops had an outline.
      if (!seen || (!seen.visible && focus.visible)) reached.set(focus.what, focus);
    }
    for (const c of facts.controls) {
      const focus = reached.get(c.what);
      if (!focus) {
        problems.push(`${c.what} is never reached with the Tab key`);
      } else if (!focus.visible && !focus.shadow) {
        if (c.tag === 'AUDIO') found.push(`${kind.id}: no focus outline detectable on the audio player`);
        else problems.push(`${c.what} has no visible focus outline (outline: ${focus.outline})`);
      }
    }
    if (kind.answer) {
      const answer = reached.get('input#captchaify-answer');
      if (!answer || !answer.visible) {
        problems.push(`the answer field ${answer ? `shows no focus outline (${answer.outline})`
          : 'is not reached with the Tab key'}`);
      }
    }
    return [problems, found];
  }

  async function axeAudit(page) {
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
    return page.evaluate((tags) => window.axe.run(document, {
      runOnly: { type: 'tag', values: tags },
      resultTypes: ['violations', 'incomplete'],
    }), [...WCAG_TAGS, 'best-practice']);
  }

  async function auditOne(personPage, axePage, kind, lang) {
    const statuses = [await open(personPage, kind, lang), await open(axePage, kind, lang)];
    for (const variant of VARIANTS) {
      const name = `${kind.id} ${lang} ${variant.scheme} ${variant.width}x${variant.height}`;
      const problems = [];
      statuses.forEach((status, i) => {
        if (status !== kind.status) {
          problems.push(`status ${status} (${i ? 'axe' : 'person'} context), expected ${kind.status}`);
        }
      });
      for (const page of [personPage, axePage]) {
        await page.emulateMedia({ colorScheme: variant.scheme });
        await page.setViewportSize({ width: variant.width, height: variant.height });
      }
      const [own, found] = await personChecks(personPage, kind, lang, variant);
      problems.push(...own);
      for (const note of found) {
        if (!notes.has(note)) notes.set(note, new Set());
        notes.get(note).add(`${lang} ${variant.width}px`);
      }

      const result = await axeAudit(axePage);
      for (const v of result.violations) {
        const wcag = v.tags.some((t) => WCAG_TAGS.includes(t));
        const key = `${v.impact} ${v.id}${wcag ? '' : ' (best-practice: reported only)'}`;
        ruleTally.set(key, (ruleTally.get(key) || 0) + 1);
        if (wcag) impacts[v.impact] = (impacts[v.impact] || 0) + 1;
        if (wcag && (v.impact === 'serious' || v.impact === 'critical')) {
          problems.push(`axe ${v.impact} ${v.id}: ${v.help} (${v.helpUrl})`
            + v.nodes.map((n) => `\n      ${n.target.join(' ')}: ${n.html.slice(0, 160)}`
              + `\n        ${squash(n.failureSummary)}`).join(''));
        }
      }
      passedRules.push(result.passes.length);
      for (const v of result.incomplete) reviewTally.set(v.id, (reviewTally.get(v.id) || 0) + 1);

      count += 1;
      if (problems.length) {
        failures += 1;
        console.log(`not ok ${count} - ${name}`);
        for (const p of problems) console.log(`    ${p}`);
      } else {
        console.log(`ok ${count} - ${name}`);
      }
    }
  }

  try {
    const jobs = [];
    for (const kind of KINDS) for (const lang of languages) jobs.push([kind, lang]);
    let next = 0;
    // A few workers, each with one page per context that it navigates from job to job. Each
    // worker has contexts (cookie jars) of its own, as every visitor has: the pre-check's proof
    // cookie of one worker's client must not replace another's in the middle of its visit.
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      const personPage = await (await browser.newContext(PERSON)).newPage();
      const axePage = await (await browser.newContext(AXE)).newPage();
      for (const page of [personPage, axePage]) page.setDefaultTimeout(15000);
      while (next < jobs.length) {
        const [kind, lang] = jobs[next++];
        try {
          await auditOne(personPage, axePage, kind, lang);
        } catch (error) {
          count += 1; failures += 1;
          console.log(`not ok ${count} - ${kind.id} ${lang}: ${error.message.split('\n')[0]}`);
        }
      }
    }));
  } finally {
    await browser.close();
  }

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`# ${KINDS.length} page kinds x ${languages.length} languages (${languages.join(' ')})`
    + ` x ${VARIANTS.length} theme/viewport variants: ${count} audits in ${seconds} s`);
  console.log(`# axe-core ${require('axe-core/package.json').version}, WCAG A/AA violations by impact`
    + ` (audits x rules): critical ${impacts.critical}, serious ${impacts.serious},`
    + ` moderate ${impacts.moderate}, minor ${impacts.minor}`);
  if (passedRules.length) {
    console.log(`#   axe rules passed per audit: ${Math.min(...passedRules)} to ${Math.max(...passedRules)}`);
  }
  for (const [key, n] of [...ruleTally].sort()) console.log(`#   ${key}: in ${n} audits`);
  if (reviewTally.size) {
    console.log(`# axe "needs review" (not failed): ${[...reviewTally].map(([id, n]) => `${id} in ${n}`).join(', ')}`);
  }
  for (const [note, where] of notes) {
    console.log(`# note: ${note} [${[...where].slice(0, 8).join(', ')}${where.size > 8 ? ', ...' : ''}]`);
  }
  console.log(`${count - failures} passed, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main().catch((error) => { console.log(`not ok - ${error.stack}`); process.exit(1); });
