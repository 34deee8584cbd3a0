import { AuditLog, auditCloses } from '../../src/admin/audit.js';
import { AdminMetrics } from '../../src/admin/metrics.js';
import { startAdmin, type RunningAdmin } from '../../src/admin/server.js';
import { timedStore } from '../../src/admin/timed-store.js';
import type { Clock } from '../../src/core/clock.js';
import { SessionEngine } from '../../src/session/engine.js';
import { Keyring } from '../../src/session/keyring.js';
import { accessProfile } from '../../src/session/profile.js';
import { openStore } from '../../src/store/open.js';
import { recordingLogger } from '../plugins/helpers.js';

export const TOKEN = 'test-admin-token-with-enough-length-0123456789';

export interface AdminFixture {
  admin: RunningAdmin;
  engine: SessionEngine;
  metrics: AdminMetrics;
  /** Every audit line written, parsed. */
  audit: Record<string, unknown>[];
  auditText: string[];
  logs: ReturnType<typeof recordingLogger>;
  url: string;
  /** Call the API with the token (or `token: null` for none); JSON bodies. */
  call(
    method: string,
    path: string,
    body?: unknown,
    options?: { token?: string | null; headers?: Record<string, string> },
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers of many shapes
  ): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** An admin listener on a free port over a memory-store engine (profile `default`: idle 900 s). */
export async function startTestAdmin(
  options: {
    clock?: Clock;
    stuckAfterSeconds?: number;
    behindAfterSeconds?: number;
    revealSecure?: boolean;
  } = {},
): Promise<AdminFixture> {
  const metrics = new AdminMetrics({
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.stuckAfterSeconds !== undefined ? { stuckAfterSeconds: options.stuckAfterSeconds } : {}),
    ...(options.behindAfterSeconds !== undefined ? { behindAfterSeconds: options.behindAfterSeconds } : {}),
  });
  const store = timedStore(await openStore('memory'), metrics.observeStore);
  const engine = new SessionEngine({
    store,
    keyring: Keyring.ephemeral(),
    profiles: [accessProfile('default', { inactivityTimeout: 900, maxSessionTimeout: 3600 })],
    ...(options.clock ? { clock: options.clock } : {}),
  });
  metrics.attach(store, () => [
    { plugin: 'users', hook: 'authenticate', counters: { calls: 3, failures: { timeout: 1 }, totalMs: 120 } },
  ]);
  const auditText: string[] = [];
  const sink = new AuditLog({ stdout: (line) => void auditText.push(line) });
  await auditCloses(engine, sink, (reason) => metrics.sessionClosed(reason));
  const logs = recordingLogger();
  const admin = await startAdmin({
    engine,
    metrics,
    audit: metrics.counting(sink),
    token: TOKEN,
    port: 0,
    logger: logs,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.revealSecure !== undefined ? { revealSecure: options.revealSecure } : {}),
  });
  const fx: AdminFixture = {
    admin,
    engine,
    metrics,
    get audit() {
      return auditText.map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    auditText,
    logs,
    url: admin.url,
    async call(method, path, body, o = {}) {
      const token = o.token === undefined ? TOKEN : o.token;
      const res = await fetch(admin.url + path, {
        method,
        headers: {
          ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...o.headers,
        },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        // not JSON
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await admin.close(100);
      await engine.stop();
      await store.dispose();
    },
  };
  return fx;
}
