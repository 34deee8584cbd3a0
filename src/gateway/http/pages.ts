import type { ServerResponse } from 'node:http';

/** Escape text for HTML element content and attribute values. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const STYLESHEET = `
:root { color-scheme: light dark; font-family: system-ui, sans-serif; }
body { max-width: 28rem; margin: 10vh auto; padding: 0 1rem; line-height: 1.5; }
h1 { font-size: 1.4rem; }
form { display: grid; gap: .75rem; }
label { display: grid; gap: .25rem; font-weight: 600; }
input { font: inherit; padding: .5rem; border: 1px solid #888; border-radius: .25rem; }
button { font: inherit; padding: .6rem; border: 0; border-radius: .25rem; background: #1f5fbf; color: #fff; cursor: pointer; }
button:focus-visible, input:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
.error { color: #b00020; font-weight: 600; }
footer { margin-top: 2rem; font-size: .8rem; color: #595959; }
.sessions { list-style: none; padding: 0; display: grid; gap: .75rem; }
.sessions li { border: 1px solid #888; border-radius: .25rem; padding: .5rem .75rem; overflow-wrap: anywhere; }
.sessions li.current { border: 2px solid #1f5fbf; }
.sessions p { margin: .25rem 0; }
.actions { display: grid; gap: .75rem; margin: 1rem 0; }
time { white-space: nowrap; }
@media (prefers-color-scheme: dark) {
  .error { color: #ff8a80; }
  footer { color: #a6a6a6; }
}
.qr svg { display: block; width: 12rem; height: auto; }
.key { font-size: 1.1rem; word-spacing: .3rem; }
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><link rel="stylesheet" href="/sg/static/sg.css"></head>
<body><main><h1>${esc(title)}</h1>
${body}
</main><footer>sessiongate</footer></body></html>
`;
}

function errorLine(error: string | undefined): string {
  return error ? `<p class="error" role="alert">${esc(error)}</p>` : '';
}

export function logonPage(o: {
  realm: string;
  error?: string | undefined;
  username?: string | undefined;
}): string {
  return page(
    `Log on to ${o.realm}`,
    `${errorLine(o.error)}<form method="post" action="/sg/logon">
<label>User name <input name="username" autocomplete="username" required${o.username ? '' : ' autofocus'} value="${esc(o.username ?? '')}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required${o.username ? ' autofocus' : ''}></label>
<button type="submit">Log on</button></form>`,
  );
}

/**
 * A question's form. `enrol`: the question sets up a second factor; `svg` is a QR code made on
 * the server (inline: no script, no image request), `key` the same secret to type by hand.
 */
export function questionPage(o: {
  prompt: string;
  key: string;
  echo: boolean;
  error?: string | undefined;
  enrol?: { svg: string; key: string };
}): string {
  const type = o.echo ? 'text' : 'password';
  const enrol = o.enrol
    ? `<p>Set up your second factor: scan this code with an authenticator app, or enter the key by hand. Then type the code the app shows.</p>
<div class="qr">${o.enrol.svg}</div>
<p>Key: <code class="key" id="totp-key">${esc(o.enrol.key)}</code></p>\n`
    : '';
  return page(
    o.enrol ? 'Set up a second factor' : 'One more step',
    `${errorLine(o.error)}${enrol}<form method="post" action="/sg/logon">
<input type="hidden" name="question" value="${esc(o.key)}">
<label>${esc(o.prompt)} <input name="answer" type="${type}" autocomplete="one-time-code" inputmode="text" required autofocus></label>
<button type="submit">Continue</button></form>`,
  );
}

export function messagePage(title: string, message: string, extra = ''): string {
  return page(title, `<p>${esc(message)}</p>${extra}`);
}

export function loggedOutPage(): string {
  return messagePage('Logged out', 'Your session has ended.', '<p><a href="/">Log on again</a></p>');
}

/**
 * Headers of every page and answer the gateway writes itself: its pages need no script and
 * load only their own stylesheet, must never be framed by another site (a logon form in a
 * frame is clickjacking), and leak no URL to other sites through Referer.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
});

/** Send a small page to browsers or `{ error: { code, message } }` to API clients. */
export function sendProblem(
  res: ServerResponse,
  browser: boolean,
  status: number,
  code: string,
  title: string,
  message: string,
  headers: Record<string, string | string[]> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = browser ? messagePage(title, message) : JSON.stringify({ error: { code, message } }) + '\n';
  res.writeHead(status, {
    ...PAGE_HEADERS,
    ...headers,
    'content-type': browser ? 'text/html; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

export function sendHtml(
  res: ServerResponse,
  status: number,
  html: string,
  headers: Record<string, string | string[]> = {},
): void {
  res.writeHead(status, {
    ...PAGE_HEADERS,
    ...headers,
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
  });
  res.end(html);
}
