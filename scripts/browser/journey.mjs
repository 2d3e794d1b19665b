// One journey through Sekimori's pages in a real headless Chromium (Debian's, driven by
// playwright-core): sign in with an initial password, the forced change, a self-service password
// change on /account, and sign-out. Screenshots go to $SCREENSHOTS. Exits non-zero on any
// unexpected page.
//
// Environment: BASE (e.g. http://localhost:8080), INSTITUTION, USER_ID, INITIAL_PASSWORD,
// SCREENSHOTS (a directory), OUTBOX (the development outbox file the second-factor codes go to).
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';

const { BASE, INSTITUTION, USER_ID, INITIAL_PASSWORD, SCREENSHOTS, OUTBOX } = process.env;
const lastCode = () => {
  const lines = readFileSync(OUTBOX, 'utf8').trim().split('\n');
  return JSON.parse(lines[lines.length - 1]).code;
};
const FIRST = 'Sekimori#29x';
const SECOND = 'Kanri#Pass48';
mkdirSync(SCREENSHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ locale: 'ja-JP' });
const page = await context.newPage();
const violations = [];
// A refused resource or inline code shows up as a console error naming the Content Security
// Policy; expected 401/422 answers are not violations.
page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|Refused to/.test(m.text())) violations.push(m.text()); });
const shot = (name) => page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: true });
const expectText = async (text) => {
  const body = await page.textContent('body');
  if (!body.includes(text)) throw new Error(`expected "${text}" on ${page.url()}: ${body.slice(0, 400)}`);
};

try {
  await page.goto(`${BASE}/account`);
  await expectText('ログイン');
  await page.fill('#institution_code', INSTITUTION);
  await page.fill('#user_id', USER_ID);
  await page.fill('#password', INITIAL_PASSWORD);
  await shot('01-login');
  await page.click('button[type=submit]');

  await expectText('パスワードの変更');
  await page.fill('#new_password', 'abcd1234');
  await page.fill('#new_password_confirm', 'abcd1234');
  await page.click('button[type=submit]');
  await expectText('3種類以上');
  await shot('02-forced-change-refused');
  await page.fill('#new_password', FIRST);
  await page.fill('#new_password_confirm', FIRST);
  await page.click('button[type=submit]');

  // A second factor is required outside trusted networks (the default: everywhere). The account
  // has none yet, so it enrolls one: e-mail, then the code sent to the development outbox.
  await page.check('input[name=method][value=email]');
  await page.fill('#email', 'staff@clinic.example.jp');
  await shot('03-enroll-second-factor');
  await page.click('form button[type=submit]');
  await page.fill('input[name=code]', lastCode());
  await shot('04-code');
  await page.click('form[action="/second-factor/verify"] button[type=submit]');

  await expectText('最近のログイン');
  await shot('05-account');
  await page.fill('#current_password', FIRST);
  await page.fill('#new_password', SECOND);
  await page.fill('#new_password_confirm', SECOND);
  await page.click('form[action="/account/password"] button[type=submit]');
  await expectText('パスワードを変更しました');
  await shot('06-password-changed');

  await page.click('form[action="/logout"] button[type=submit]');
  await expectText('ログアウトしました');
  await shot('07-signed-out');
  const cookies = await context.cookies();
  if (cookies.some((c) => c.name === 'sekimori_session')) throw new Error('the session cookie survived sign-out');

  // The new password works, the old one does not.
  await page.goto(`${BASE}/login`);
  await page.fill('#institution_code', INSTITUTION);
  await page.fill('#user_id', USER_ID);
  await page.fill('#password', FIRST);
  await page.click('button[type=submit]');
  await expectText('ログインできませんでした');
  await shot('08-old-password-refused');
  await page.fill('#institution_code', INSTITUTION);
  await page.fill('#user_id', USER_ID);
  await page.fill('#password', SECOND);
  await page.click('button[type=submit]');
  // The new password is accepted: the second-factor step follows (a code within the 60 s resend
  // cooldown is not sent again, so the journey stops here).
  await expectText('二要素認証');
  await shot('09-new-password-accepted');
  if (violations.length) throw new Error(`console errors (CSP?): ${violations.join('; ')}`);
  console.log(JSON.stringify({ ok: true, screenshots: SCREENSHOTS }));
} catch (e) {
  await shot('failure').catch(() => {});
  console.error(e.stack || String(e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
