import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditSink } from '../../src/core/audit.js';
import { ManualClock } from '../../src/core/clock.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { recordingLogger } from '../plugins/helpers.js';

/** What the test upstream saw. */
export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/** A real upstream that records requests and answers with a small JSON body. */
export async function testUpstream(): Promise<{
  url: string;
  seen: Seen[];
  server: Server;
  close(): Promise<void>;
}> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'set-cookie': ['app=1; Path=/'],
        connection: 'x-hop',
        'x-hop': 'secret',
      });
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    server,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface GatewayFixture {
  gw: RunningGateway;
  clock: ManualClock;
  logs: ReturnType<typeof recordingLogger>;
  dir: string;
  close(): Promise<void>;
}

/**
 * A gateway on a free port with a memory store, a users file (alice / wonderland, bob / builder
 * in group ops) and the given YAML (routes, profiles, plugins may use ${DIR} and ${UPSTREAM}).
 */
export async function startTestGateway(
  yaml: string,
  vars: Record<string, string> = {},
  prepare?: (dir: string) => void,
  options: { port?: number; audit?: AuditSink } = {},
): Promise<GatewayFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-gw-'));
  prepare?.(dir);
  writeFileSync(
    join(dir, 'users.yaml'),
    `users:\n  alice:\n    password: ${await hashPassword('wonderland', { N: 1024, r: 8, p: 1 })}\n` +
      `  bob:\n    password: ${await hashPassword('builder', { N: 1024, r: 8, p: 1 })}\n    groups: [ops]\n`,
  );
  let text = yaml.replaceAll('${DIR}', dir);
  for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`\${${k}}`, v);
  const loaded = parseConfig(text, 'test.yaml', dir);
  const clock = new ManualClock(Date.now());
  const logs = recordingLogger();
  const gw = await startGateway(loaded, {
    logger: logs,
    clock,
    port: options.port ?? 0,
    failureDelayMs: () => 0,
    ...(options.audit ? { audit: options.audit } : {}),
  });
  return {
    gw,
    clock,
    logs,
    dir,
    close: async () => {
      await gw.close(1000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A minimal cookie-keeping HTTP client over fetch (redirects are not followed). */
export class Browser {
  readonly jar = new Map<string, string>();
  constructor(
    private readonly base: string,
    private readonly accept = 'text/html,application/xhtml+xml',
  ) {}

  async fetch(
    path: string,
    init: RequestInit & { headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(this.base + path, {
      redirect: 'manual',
      ...init,
      headers: { accept: this.accept, ...(cookie ? { cookie } : {}), ...init.headers },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair = ''] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (/max-age=0/i.test(c) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return res;
  }

  form(path: string, fields: Record<string, string>, origin = this.base): Promise<Response> {
    return this.fetch(path, {
      method: 'POST',
      body: new URLSearchParams(fields).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
    });
  }
}

/** One route to `${UPSTREAM}` behind a password logon (local-users): the smallest allowing setup. */
export const LOGON_CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [logon, { authenticate: users }, allow]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
`;

export const basic = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
