import { createServer, type Server } from 'node:http';

/**
 * The path as a lenient application would serve it: every escape decoded (three times over),
 * `\` as `/`, `;params` dropped, slashes merged, dot segments resolved, case ignored.
 *
 * @example
 * resolvedByLenientServer('/x/..;/%61DMIN;x=1/'); // '/admin'
 */
export function resolvedByLenientServer(path: string): string {
  let p = path.split('?')[0] ?? '';
  for (let i = 0; i < 3; i++)
    p = p.replace(/%([0-9a-f]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  const out: string[] = [];
  for (const raw of p.replaceAll('\\', '/').split('/')) {
    const seg = raw.split(';')[0] ?? '';
    if (seg === '..') out.pop();
    else if (seg !== '' && seg !== '.') out.push(seg);
  }
  return `/${out.join('/')}`.toLowerCase();
}

/** Whether a lenient application would serve `url` from its /admin part. */
export function reachesAdmin(url: string): boolean {
  const where = resolvedByLenientServer(url);
  return where === '/admin' || where.startsWith('/admin/');
}

/**
 * An upstream on a free port that tells `seen` of every request (its target and the
 * gateway-set `X-Fuzz-User`, if any) and answers `ok` once the body is read.
 *
 * @example
 * const up = await lenientUpstream((url, user) => { if (reachesAdmin(url) && user !== 'bob') fail(); });
 */
export async function lenientUpstream(
  seen: (url: string, user: string | undefined) => void,
): Promise<Server> {
  const server = createServer((req, res) => {
    const user = req.headers['x-fuzz-user'];
    seen(req.url ?? '', typeof user === 'string' ? user : undefined);
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}
