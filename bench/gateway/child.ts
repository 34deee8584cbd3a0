/**
 * The servers of `npm run bench:gateway`, each run in its own process by the driver
 * (bench/gateway.bench.ts) so that autocannon never shares an event loop with them:
 *
 *   node --import tsx bench/gateway/child.ts ROLE 'JSON ARGS'
 *
 * Roles:
 *   - upstream:    a tiny node:http app answering 12 bytes; asked with `x-bench-echo`, it
 *                  echoes the X-USERNAME it received as `x-seen-user` so the driver can check
 *                  who added it;
 *   - bare:        node:http + sessiongate's Upstream.forward(), no session work (the limit);
 *   - sessiongate: startGateway() with the given store (and rule files), then 1,000 `allow`
 *                  sessions created through the engine; with `oidc`, 1,000 sessions signed in
 *                  at an oidc-provider started in the same process (variant J);
 *   - express:     express-session + connect-redis + http-proxy-middleware (express.ts), then
 *                  1,000 sessions created through its own login endpoint.
 *
 * Protocol: the child prints one line `READY {"port":N,"cookies":["name=value",...]}` on
 * stdout when it can take load. Over IPC it answers `{type:'cpu'}` with its process.cpuUsage()
 * total in µs, and `{type:'lastAccess',cookie}` (sessiongate) with the session's lastAccessAt.
 * SIGTERM closes it gracefully (the gateway flushes its store) and exits.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Session } from 'node:inspector';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { join } from 'node:path';
import type { Logger } from '../../src/core/logger.js';
import { startGateway } from '../../src/gateway/assemble.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { Upstream } from '../../src/gateway/proxy/upstream.js';
import { Browser } from '../../test/gateway/harness.js';
import { startOidcProvider } from '../../test/support/oidc-provider.js';
import {
  BODY,
  CLIENT_IP,
  POOL,
  type ChildMessage,
  type ExpressArgs,
  type SessiongateArgs,
} from './common.js';

let stop: () => Promise<void> = async () => {};
let lastAccess: (cookie: string) => Promise<number | null> = async () => null;

function ready(server: http.Server, cookies: string[] = []): void {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`READY ${JSON.stringify({ port, cookies })}\n`);
}

function listen(server: http.Server): Promise<void> {
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

async function runUpstream(): Promise<void> {
  const server = http.createServer((req, res) => {
    req.resume();
    const user = req.headers['x-bench-echo'] ? req.headers['x-username'] : undefined;
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': BODY.length,
      ...(typeof user === 'string' ? { 'x-seen-user': user } : {}),
    });
    res.end(BODY);
  });
  await listen(server);
  stop = () => closeServer(server);
  ready(server);
}

async function runBare(target: string): Promise<void> {
  const upstream = new Upstream({ url: target });
  const server = http.createServer((req, res) => {
    void upstream
      .forward(req, res, {
        clientIp: req.socket.remoteAddress ?? '',
        proto: 'http',
        host: req.headers.host ?? '',
        stripCookies: ['MRHSession'],
      })
      .then((r) => {
        if (!r.ok && !res.headersSent) res.writeHead(r.status).end();
      });
  });
  await listen(server);
  stop = async () => {
    await closeServer(server);
    await upstream.close();
  };
  ready(server);
}

/** warn and error to stderr (a misbehaving run should be visible); info is dropped. */
const logger: Logger = {
  info() {},
  warn: (fields, message) => console.error(`[gateway warn] ${message} ${JSON.stringify(fields)}`),
  error: (fields, message) => console.error(`[gateway error] ${message} ${JSON.stringify(fields)}`),
};

async function runSessiongate(a: SessiongateArgs): Promise<void> {
  const yaml = [
    'listen: { host: 127.0.0.1, port: 0 }',
    'admin: { enabled: false }',
    `store: ${JSON.stringify(a.store)}`,
    'keys: ./keyring.json',
    // The bench connects from 127.0.0.1 and sends X-Forwarded-For: 192.168.255.7.
    'trusted_proxies: [127.0.0.1/32]',
    'log: { level: warn }',
    `rules: ${JSON.stringify(a.rules)}`,
    'routes:',
    `  - upstream: ${JSON.stringify(a.upstream)}`,
    '',
  ].join('\n');
  if (a.oidc) return runOidcGateway(a, yaml);
  const file = join(a.dir, 'sessiongate.yaml');
  writeFileSync(file, yaml);
  const running = await startGateway(parseConfig(yaml, file, a.dir), { logger, port: 0 });
  const { engine } = running;
  const cookies: string[] = [];
  const ids = new Map<string, string>();
  for (let i = 0; i < POOL; i++) {
    const user = `user${i}`;
    const { id, token } = await engine.create({
      state: 'allow',
      user,
      clientIp: CLIENT_IP,
      variables: { 'session.logon.last.username': user },
    });
    const cookie = `MRHSession=${token}`;
    cookies.push(cookie);
    ids.set(cookie, id);
  }
  stop = () => running.close(2000);
  lastAccess = async (cookie) => {
    const id = ids.get(cookie);
    return id ? ((await engine.get(id))?.lastAccessAt ?? null) : null;
  };
  ready(running.server, cookies);
}

/** Variant J: the pool signed in at a real OpenID provider running in this process. */
async function runOidcGateway(a: SessiongateArgs, baseYaml: string): Promise<void> {
  const redirectUri = 'http://gw.bench/sg/oidc/callback';
  const op = await startOidcProvider({ redirectUri });
  writeFileSync(join(a.dir, 'oidc-secret'), `${op.clientSecret}\n`, { mode: 0o600 });
  const sso = JSON.stringify({
    issuer: op.issuer,
    client_id: op.clientId,
    client_secret_file: './oidc-secret',
    redirect_uri: redirectUri,
    allow_insecure_http: true,
  });
  const yaml =
    baseYaml +
    [
      'plugins:',
      `  - { name: sso, runtime: builtin, type: oidc, config: ${sso} }`,
      'profiles:',
      '  default: { policy: [ { authenticate: sso }, allow ] }',
      '',
    ].join('\n');
  const file = join(a.dir, 'sessiongate.yaml');
  writeFileSync(file, yaml);
  const running = await startGateway(parseConfig(yaml, file, a.dir), { logger, port: 0 });
  const { engine } = running;
  const base = `http://127.0.0.1:${(running.server.address() as AddressInfo).port}`;
  const xff = { 'x-forwarded-for': CLIENT_IP };
  const cookies: string[] = [];
  const ids = new Map<string, string>();
  for (let i = 0; i < POOL; i++) {
    const browser = new Browser(base);
    const first = await browser.fetch('/', { headers: xff });
    const query = await op.signIn(first.headers.get('location') ?? '', i % 2 ? 'alice' : 'bob');
    const back = await browser.fetch(`/sg/oidc/callback?${query}`, { headers: xff });
    const token = browser.jar.get('MRHSession');
    if (back.status !== 302 || !token) throw new Error(`sign-in ${i} failed: ${back.status}`);
    const cookie = `MRHSession=${token}`;
    cookies.push(cookie);
    ids.set(cookie, engine.sid(token));
  }
  stop = async () => {
    await running.close(2000);
    await op.stop();
  };
  lastAccess = async (cookie) => {
    const id = ids.get(cookie);
    return id ? ((await engine.get(id))?.lastAccessAt ?? null) : null;
  };
  ready(running.server, cookies);
}

async function runExpress(a: ExpressArgs): Promise<void> {
  const { startExpress } = await import('./express.js');
  const app = await startExpress(a.redis, a.upstream);
  await listen(app.server);
  const { port } = app.server.address() as AddressInfo;
  // Log 1,000 users in through the app's own endpoint: express-session creates, signs and
  // stores each session exactly as it would for a browser.
  const cookies: string[] = [];
  for (let i = 0; i < POOL; i++) {
    const res = await fetch(`http://127.0.0.1:${port}/login?user=user${i}`, { method: 'POST' });
    const set = res.headers.getSetCookie()[0];
    if (res.status !== 204 || !set) throw new Error(`express login ${i}: ${res.status}, no cookie`);
    cookies.push(set.split(';')[0]!);
  }
  stop = async () => {
    await closeServer(app.server);
    await app.close();
  };
  ready(app.server, cookies);
}

// Garbage collections of this process: young-generation scavenges are short and frequent,
// the others (mark-compact of the old generation) long and what a long-lived heap pays for.
const gc = { minor: 0, major: 0, ms: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
    else gc.major++;
    gc.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

process.on('message', (m: ChildMessage) => {
  if (m.type === 'cpu') {
    const u = process.cpuUsage();
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    process.send?.({ type: 'cpu', us: u.user + u.system, gc: { ...gc }, peakRssMb });
  } else if (m.type === 'lastAccess') {
    void lastAccess(m.cookie).then((at) => process.send?.({ type: 'lastAccess', at }));
  }
});
// BENCH_HEAP_PROFILE=DIR: sample every allocation site, garbage included (what --heap-prof
// leaves out), and write DIR/<role>-<pid>.heapprofile at the end (open it in Chrome DevTools).
const heapDir = process.env.BENCH_HEAP_PROFILE;
const heap = heapDir ? new Session() : undefined;
if (heap) {
  heap.connect();
  heap.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}
function writeHeapProfile(): Promise<void> {
  return new Promise((resolve) => {
    if (!heap || !heapDir) return resolve();
    heap.post('HeapProfiler.stopSampling', (err, r) => {
      if (!err) writeFileSync(join(heapDir, `${role}-${process.pid}.heapprofile`), JSON.stringify(r.profile));
      resolve();
    });
  });
}

process.on('SIGTERM', () => {
  const force = setTimeout(() => process.exit(1), 5000);
  force.unref();
  void writeHeapProfile()
    .then(() => stop())
    .catch((err: unknown) => console.error(`stop failed: ${(err as Error).message}`))
    .finally(() => process.exit(0));
});
// The driver died without stopping us: do not linger.
process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));

const [role = '', json = '{}'] = process.argv.slice(2);
const args = JSON.parse(json) as Record<string, unknown>;
if (role === 'upstream') await runUpstream();
else if (role === 'bare') await runBare(args.upstream as string);
else if (role === 'sessiongate') await runSessiongate(args as unknown as SessiongateArgs);
else if (role === 'express') await runExpress(args as unknown as ExpressArgs);
else throw new Error(`unknown role ${JSON.stringify(role)}`);
