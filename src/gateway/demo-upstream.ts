import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { esc } from './http/pages.js';

/**
 * A tiny application for the quickstart (`upstream: demo`): it shows what reached it — the
 * method, path and request headers, so a new user sees what the gateway adds and removes.
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
    const user = req.headers['x-username'];
    const rows = headers
      .map(([k, v]) => `<tr><th scope="row">${esc(k)}</th><td>${esc(String(v))}</td></tr>`)
      .join('\n');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo application</title>
<link rel="stylesheet" href="/sg/static/sg.css"></head><body><main>
<h1>Demo application</h1>
<p>You reached the application through sessiongate${user ? ` as <strong>${esc(String(user))}</strong>` : ''}.</p>
<p>${esc(req.method ?? '')} ${esc(req.url ?? '')}</p>
<table><caption>Request headers the application received</caption>${rows}</table>
<form method="post" action="/sg/logout"><button type="submit">Log out</button></form>
</main></body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://${host}:${port}`, server };
}
