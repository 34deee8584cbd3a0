import { statSync } from 'node:fs';
import { basename, isAbsolute, relative, resolve } from 'node:path';
import { AuditLog, auditCloses } from '../admin/audit.js';
import { AdminMetrics } from '../admin/metrics.js';
import type { RecordingFile, RecordingSource } from '../admin/recordings.js';
import { startAdmin, type RunningAdmin } from '../admin/server.js';
import { timedStore } from '../admin/timed-store.js';
import { loadOrCreateAdminToken } from '../admin/token.js';
import type { Logger } from '../core/logger.js';
import type { RunningGateway, StartOptions } from '../gateway/assemble.js';
import type { LoadedConfig } from '../gateway/config/load.js';
import { listRecordings } from '../ssh/recording.js';

/** The admin side of one gateway process: audit trail, metrics and (maybe) the admin listener. */
export interface AdminSide {
  /** What `startGateway` needs from the admin side (audit sink, request metric, store timing). */
  gatewayOptions: Pick<StartOptions, 'audit' | 'observeRequest' | 'wrapStore' | 'onRuleError'>;
  audit: AuditLog;
  metrics: AdminMetrics;
  /**
   * Once the gateway runs: subscribe the audit trail to the close pipeline and, when `listen`,
   * start the admin listener. Returns the banner line (or undefined) and `close`, which stops
   * the admin listener, then the gateway (flushing the close pipeline), then the audit file.
   */
  attach(
    running: RunningGateway,
    listen: boolean,
    cwd: string,
    port?: number,
  ): Promise<{
    banner: string | undefined;
    admin: RunningAdmin | undefined;
    close(graceMs?: number): Promise<void>;
  }>;
}

/**
 * Compose the admin layer around a gateway (docs/admin.md). Every gateway process writes the audit
 * trail and counts its own requests; only one process (`listen`) serves the admin listener,
 * which reads the shared store.
 *
 * @example
 * ```ts
 * const side = prepareAdmin(loaded, logger);
 * const running = await startGateway(loaded, { logger, ...side.gatewayOptions });
 * const { banner, close } = await side.attach(running, true, process.cwd());
 * ```
 */
export function prepareAdmin(
  loaded: LoadedConfig,
  logger: Logger,
  options: { processMetrics?: boolean } = {},
): AdminSide {
  const { config, baseDir } = loaded;
  const recordings = recordingSource(loaded);
  const file = config.audit.file === undefined ? undefined : resolve(baseDir, config.audit.file);
  const audit = new AuditLog({ ...(file !== undefined ? { file } : {}), logger });
  const metrics = new AdminMetrics({
    processMetrics: options.processMetrics ?? true,
    behindAfterSeconds: config.close_pipeline.behind_after_ms / 1000,
    stuckAfterSeconds: config.close_pipeline.stuck_after_ms / 1000,
  });
  return {
    audit,
    metrics,
    gatewayOptions: {
      audit: metrics.counting(audit),
      observeRequest: metrics.observeRequest,
      onRuleError: metrics.ruleError,
      wrapStore: (store) => timedStore(store, metrics.observeStore),
    },
    async attach(running, listen, cwd, port) {
      metrics.attach(
        running.store,
        () => running.host.stats.all(),
        () => running.host.stats.plugins(),
      );
      await auditCloses(running.engine, audit, (reason) => metrics.sessionClosed(reason));
      let admin: RunningAdmin | undefined;
      let banner: string | undefined;
      if (listen && config.admin.enabled) {
        const tokenFile = resolve(baseDir, config.admin.token_file);
        try {
          admin = await startAdmin({
            engine: running.engine,
            metrics,
            audit: metrics.counting(audit),
            token: loadOrCreateAdminToken(tokenFile),
            host: config.admin.host,
            port: port ?? config.admin.port,
            revealSecure: config.admin.reveal_secure,
            ...(recordings ? { recordings } : {}),
            logger,
          });
        } catch (err) {
          await running.close(0);
          audit.close();
          const where = `${config.admin.host}:${port ?? config.admin.port}`;
          throw new Error(`admin listener on ${where}: ${(err as Error).message}`, { cause: err });
        }
        banner = `admin API on ${admin.url} (token in ${shown(tokenFile, cwd)})`;
      }
      return {
        banner,
        admin,
        close: async (graceMs?: number) => {
          await admin?.close();
          await running.close(graceMs);
          audit.close();
        },
      };
    },
  };
}

/**
 * The SSH recordings the admin API serves: every folder an SSH route records into (docs/ssh.md),
 * resolved against the config file's folder; undefined when no route records.
 *
 * @example
 * ```ts
 * recordingSource(loaded)?.list(sessionId); // [{ channel: 0, file: '/etc/sg/var/recordings/<id>-0.cast', bytes: 812 }]
 * ```
 */
export function recordingSource(loaded: LoadedConfig): RecordingSource | undefined {
  const dirs = [
    ...new Set(
      (loaded.config.ssh?.routes ?? []).flatMap((r) =>
        r.recording ? [resolve(loaded.baseDir, r.recording.dir)] : [],
      ),
    ),
  ];
  if (dirs.length === 0) return undefined;
  return {
    list(sessionId) {
      const seen = new Map<number, RecordingFile>();
      for (const dir of dirs) {
        for (const file of listRecordings(dir, sessionId)) {
          const channel = Number(/-(\d+)\.cast$/.exec(basename(file))?.[1]);
          if (!Number.isSafeInteger(channel) || seen.has(channel)) continue;
          try {
            seen.set(channel, { channel, file, bytes: statSync(file).size });
          } catch {
            // removed since the folder was read: not a recording any more
          }
        }
      }
      return [...seen.values()].sort((a, b) => a.channel - b.channel);
    },
  };
}

/** A path as the user would type it from `cwd`: `./var/admin.token`, or absolute when outside. */
function shown(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : `./${rel}`;
}
