import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { prepareAdmin } from '../../src/cli/serve-admin.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { startGateway } from '../../src/gateway/assemble.js';
import { recordingLogger } from '../plugins/helpers.js';
import { testUpstream } from './harness.js';

// A session an ACCESS_SESSION_STARTED rule refuses was created (it is in the store, its cookie
// was set, its close is delivered): it counts as created as well as closed, so that
// sessiongate_sessions_created_total and sessiongate_sessions_closed_total add up.

const SUBNET_RULE = resolve(import.meta.dirname, '../../examples/rules/subnet.ts');
const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
audit: { file: \${DIR}/audit.log }
profiles:
  default:
    policy: [logon, deny]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM}, rules: [${SUBNET_RULE}] }
`;

let dir: string;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let side: ReturnType<typeof prepareAdmin>;
let running: Awaited<ReturnType<typeof startGateway>>;
let closeAll: () => Promise<void>;

before(async () => {
  upstream = await testUpstream();
  dir = mkdtempSync(join(tmpdir(), 'sg-counters-'));
  writeFileSync(join(dir, 'users.yaml'), 'users: {}\n');
  const text = CONFIG.replaceAll('${DIR}', dir).replaceAll('${UPSTREAM}', upstream.url);
  const loaded = parseConfig(text, 'test.yaml', dir);
  const logger = recordingLogger();
  side = prepareAdmin(loaded, logger, { processMetrics: false });
  running = await startGateway(loaded, { logger, port: 0, ...side.gatewayOptions });
  closeAll = (await side.attach(running, false, dir)).close;
});
after(async () => {
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
  await upstream.close();
});

describe('sessions refused by an ACCESS_SESSION_STARTED rule', () => {
  it('count as created and as closed (removed): the counters add up', async () => {
    const N = 12;
    for (let i = 0; i < N; i++) {
      const res = await fetch(`${running.url}/app`, { headers: { accept: 'application/json' } });
      await res.arrayBuffer();
      assert.equal(res.status, 403, 'the rule refused the session');
    }
    // Closes are counted when the close pipeline delivers them: wait for it, bounded.
    const end = Date.now() + 5000;
    while ((side.metrics.closed.get('removed') ?? 0) < N && Date.now() < end)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(side.metrics.closed.get('removed'), N);
    assert.equal(side.metrics.created.get('gateway'), N);
  });
});
