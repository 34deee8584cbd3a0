import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { esc } from './http/pages.js';

/**
 * A tiny application for the quickstart (`upstream: demo`): it shows what reached it — who the
 * gateway says is logged on (its identity headers), the method, path and request headers — so a
 * new user sees what the gateway adds and removes.
 */
export async function startDemoUpstream(host = '127.0.0.1'): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const headers = Object.entries(req.headers).sort(([a], [b]) => a.localeCompare(b));
    if (!(req.headers.accept ?? '').includes('text/html')) {
      const body = JSON.stringify(
        { method: req.method, url: req.url, headers: Object.fromEntries(headers) },
        null,
        2,
      );
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body + '\n');
      return;
    }
    const rows = headers
      .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(String(v))}</td></tr>`)
      .join('\n');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Demo application</title>
<link rel="stylesheet" href="/sg/static/sg.css"><style>${DEMO_STYLE}</style></head><body><main>
<h1>Demo application</h1>
${whoLine(req.headers)}
<p>${esc(req.method ?? '')} ${esc(req.url ?? '')}</p>
<table><caption>Request headers the application received</caption>${rows}</table>
<form method="post" action="/sg/logout"><button type="submit">Log out</button></form>
</main></body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://${host}:${port}`, server };
}

/**
 * Layout only (the colours are the gateway stylesheet's, checked for contrast): wider than the
 * gateway's forms, and long header values (the signed assertion, cookies) wrap inside the
 * table instead of widening the page.
 */
const DEMO_STYLE = `body { max-width: 60rem; margin: 2rem auto; }
table { width: 100%; table-layout: fixed; border-collapse: collapse; }
caption { text-align: left; font-weight: 600; padding-bottom: .25rem; }
th { width: 12rem; text-align: left; }
th, td { vertical-align: top; padding: .2rem .5rem .2rem 0; overflow-wrap: anywhere; }
form { margin-top: 1rem; max-width: 12rem; }`;

/** Who the gateway says is logged on: its identity headers (the quickstart sends these two). */
function whoLine(headers: IncomingHttpHeaders): string {
  const user = headers['x-username'];
  const groups = headers['x-groups'];
  if (!user) {
    return '<p>You reached the application through sessiongate; no user name came with the request (no <code>X-USERNAME</code> identity header on this route).</p>';
  }
  const inGroups = groups ? ` (groups: ${esc(String(groups))})` : '';
  return `<p>You reached the application through sessiongate as <strong>${esc(String(user))}</strong>${inGroups}.</p>`;
}
