// A browser's way through captchaify's pre-check, shared by the browser tests: the first visit
// gets a tiny page whose <meta http-equiv="refresh"> (no script) sends the browser back to the
// same URL with the proof cookie it set; that second answer is the captcha page.
'use strict';

// Goes to URL; returns { first, response, precheckBytes }: the first answer, the answer the
// browser got when the pre-check sent it back by itself (the first again when there was no
// pre-check), and the pre-check page's size (or null). The pre-check page is known by the
// proof cookie it sets (its body is gone once the browser has moved on). Returns once the
// last page has loaded: the refresh comes after the pre-check page's own load event (HTML's
// declarative refresh), so the second load is the captcha page's.
async function gotoThroughPrecheck(page, url) {
  let seen = 0;
  let loads = 0;
  let second, secondLoad;
  const back = new Promise((resolve) => { second = resolve; });
  const loadedBack = new Promise((resolve) => { secondLoad = resolve; });
  const onResponse = (r) => {
    if (r.url() === url && r.request().isNavigationRequest() && ++seen === 2) second(r);
  };
  const onLoad = () => { if (++loads === 2) secondLoad(); };
  page.on('response', onResponse);
  page.on('load', onLoad);
  try {
    // Only to the commit: the refresh would interrupt a wait for the load.
    const first = await page.goto(url, { waitUntil: 'commit' });
    if (!first) throw new Error(`no response for ${url}`);
    // headers() leaves Set-Cookie out; allHeaders() has it.
    const headers = await first.allHeaders();
    if (!/captchaify_pre=p1\./.test(headers['set-cookie'] || '')) {
      await page.waitForLoadState('load');
      return { first, response: first, precheckBytes: null };
    }
    const within = (promise, what) => Promise.race([promise, new Promise((_, reject) =>
      setTimeout(() => reject(new Error(`the pre-check page of ${url}: ${what}`)), 15000))]);
    const response = await within(back, 'the browser did not come back by itself');
    await within(loadedBack, 'the page it came back to did not load');
    return { first, response, precheckBytes: Number(headers['content-length']) };
  } finally {
    page.off('response', onResponse);
    page.off('load', onLoad);
  }
}

module.exports = { gotoThroughPrecheck };
