import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Io } from '../../../src/cli/context.js';
import { main } from '../../../src/cli/main.js';
import { tempDir } from '../../cli/helpers.js';

// Browsers drop a __Host- or __Secure- cookie that breaks its prefix's rules without a word:
// the logon would loop forever. check-config and serve refuse such a config up front.

/** Run `main` in this process; several stderr lines are allowed (one per problem). */
async function cli(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (t) => void (stdout += t), err: (t) => void (stderr += t), env: {}, cwd };
  return { code: await main(args, io), stdout, stderr };
}

/** A config whose profile `web` has this cookie, on a listener with `listen` extras. */
function configWith(cookie: string, extra = '', listen = '{ host: 127.0.0.1, port: 0 }'): string {
  return [
    `listen: ${listen}`,
    'store: memory',
    'admin: { enabled: false }',
    extra,
    'profiles:',
    `  web: { cookie: ${cookie}, policy: [logon, allow] }`,
    'routes:',
    '  - { match: { path: / }, upstream: demo, profile: web }',
    '',
  ].join('\n');
}

/** The problem lines check-config printed, without the file name and line number. */
async function problems(
  text: string,
  command = 'check-config',
  files: Record<string, string> = {},
): Promise<string[]> {
  const dir = tempDir();
  writeFileSync(join(dir, 'gw.yaml'), text);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const r = await cli(command === 'serve' ? ['serve', '--config', 'gw.yaml'] : [command, 'gw.yaml'], dir);
  if (r.code === 0) return [];
  assert.equal(r.code, 2, r.stderr);
  return r.stderr
    .split('\n')
    .slice(1)
    .filter((l) => l !== '')
    .map((l) =>
      l
        .trim()
        .replace(/^gw\.yaml: /, '')
        .replace(/ \(line \d+\)$/, ''),
    );
}

describe('config: cookie name prefixes', () => {
  it('__Host- with secure: false, or with a domain, is a problem at the cookie name', async () => {
    assert.deepEqual(await problems(configWith('{ name: __Host-sg, secure: false }')), [
      'profiles.web.cookie.name: a __Host- cookie must be Secure and browsers drop it with secure: false (use true or auto)',
    ]);
    assert.deepEqual(await problems(configWith('{ name: __Host-sg, secure: true, domain: example.org }')), [
      'profiles.web.cookie.name: a __Host- cookie must have no Domain and browsers drop it with a domain (remove domain)',
    ]);
  });

  it('__Secure- with secure: false is a problem; prefixes match without regard to case', async () => {
    assert.deepEqual(await problems(configWith('{ name: __Secure-sg, secure: false }')), [
      'profiles.web.cookie.name: a __Secure- cookie must be Secure and browsers drop it with secure: false (use true or auto)',
    ]);
    const lower = await problems(configWith('{ name: __host-sg, secure: false }'));
    assert.equal(lower.length, 1);
    assert.match(lower[0]!, /^profiles\.web\.cookie\.name: a __Host- cookie must be Secure/);
  });

  it('secure: auto on a plain listener without trusted proxies would never be Secure: a problem', async () => {
    const [problem, ...rest] = await problems(configWith('{ name: __Host-sg }'));
    assert.deepEqual(rest, []);
    assert.match(
      problem!,
      /^profiles\.web\.cookie\.name: a __Host- cookie must be Secure, which secure: auto sets only over https/,
    );
    // serve refuses the same file before it listens.
    assert.deepEqual(await problems(configWith('{ name: __Host-sg }'), 'serve'), [problem]);
  });

  it('accepts prefixed cookies that browsers keep', async () => {
    for (const [cookie, extra] of [
      ['{ name: __Host-sg, secure: true }', ''],
      ['{ name: __Host-sg }', 'trusted_proxies: [10.0.0.1]'], // auto, https at the proxy
      ['{ name: __Secure-sg, secure: true, domain: example.org }', ''],
      ['{ name: MRHSession, secure: false, domain: example.org }', ''],
    ] as const) {
      assert.deepEqual(await problems(configWith(cookie, extra)), [], cookie);
    }
    const tls = '{ host: 127.0.0.1, port: 0, tls: { cert: ./cert.pem, key: ./key.pem } }';
    // check-config reads that the files are there; what is in them matters only to serve.
    const pems = { 'cert.pem': 'certificate', 'key.pem': 'key' };
    assert.deepEqual(
      await problems(configWith('{ name: __Host-sg }', '', tls), 'check-config', pems),
      [],
      'auto over TLS',
    );
  });
});
