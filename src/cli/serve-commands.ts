import cluster from 'node:cluster';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { pino } from 'pino';
import { Keyring } from '../session/keyring.js';
import { assertionWanted } from '../gateway/identity/plan.js';
import { loadConfig, ConfigError, type LoadedConfig } from '../gateway/config/load.js';
import { startGateway, type RunningGateway } from '../gateway/assemble.js';
import type { AuditSink } from '../core/audit.js';
import type { Logger } from '../core/logger.js';
import type { SshGateway } from '../ssh/server.js';
import { loadUserFiles } from '../gateway/user-files.js';
import { expectPositionals, parseCommand, usage } from './args.js';
import type { Io } from './context.js';
import { prepareAdmin } from './serve-admin.js';
import { DEFAULT_SEMI_SPACE_MB, serveV8Flags } from './relaunch.js';
import { totpLockouts } from './totp-check.js';

const DEFAULT_CONFIG = './sessiongate.yaml';
/** Set by the primary of --workers in the environment of the one worker that serves the admin listener. */
const ADMIN_WORKER = 'SESSIONGATE_ADMIN_WORKER';

/** Load a config, printing every problem on its own line; undefined when it is bad. */
function checked(file: string, io: Io): LoadedConfig | undefined {
  try {
    return loadConfig(file, io.cwd);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    printProblems(err, io);
    return undefined;
  }
}

/** Every problem of a configuration on its own line, `FILE: path: message (line N)`. */
function printProblems(err: ConfigError, io: Io): void {
  io.err(`sessiongate: ${err.file}: the configuration has ${err.problems.length} problem(s):\n`);
  for (const p of err.problems) io.err(`  ${err.file}: ${p}\n`);
}

/** `sessiongate check-config [FILE]`: exit 0 and a summary when valid, 2 and every problem when not. */
export async function checkConfig(args: string[], io: Io): Promise<number> {
  const { positionals } = parseCommand(args, {}, { command: 'check-config' });
  expectPositionals(positionals, ['FILE'], 0, 'check-config');
  const file = positionals[0] ?? DEFAULT_CONFIG;
  const loaded = checked(file, io);
  if (!loaded) return 2;
  try {
    // The rule and plugin files, loaded exactly as serve loads them.
    await loadUserFiles(loaded);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    printProblems(err, io);
    return 2;
  }
  const c = loaded.config;
  io.out(
    `${file}: ok — ${c.routes.length} route(s), ${c.plugins.length} plugin(s), ` +
      `${Object.keys(c.profiles).length || 1} profile(s), store ${c.store}` +
      (c.ssh
        ? `, SSH on ${c.ssh.listen.host}:${c.ssh.listen.port} with ${c.ssh.routes.length} route(s)`
        : '') +
      '\n',
  );
  for (const line of totpLockouts(loaded)) io.out(`  ${line}\n`);
  // What to register at each identity provider.
  for (const p of c.plugins) {
    if (p.runtime !== 'builtin' || p.type !== 'oidc') continue;
    const redirect = String(p.config.redirect_uri ?? '');
    const base = redirect.replace(/\/sg\/oidc\/callback$/, '');
    io.out(
      `  plugin ${p.name} (oidc, ${String(p.config.issuer ?? '')}): register the redirect URI ${redirect}` +
        (base !== redirect ? `, the back-channel logout URI ${base}/sg/oidc/backchannel-logout` : '') +
        '\n',
    );
  }
  return 0;
}

/**
 * `sessiongate serve [--config FILE] [--workers N] [--port P] [--semi-space-mb MB] [--memory-reducer]`: run the
 * gateway until SIGTERM or SIGINT, then stop gracefully. With --workers N, N processes share
 * the listener and the store (sqlite or redis).
 *
 * The gateway's processes run with a young generation of fixed MB-sized semi-spaces (default 64;
 * 0 = Node's default; a size given in NODE_OPTIONS or on node's command line is kept). A
 * request allocates a few kB that die young: a larger young generation means fewer
 * scavenges, and every scavenge pauses all requests in flight (docs/gateway.md, Throughput).
 * And without V8's memory reducer (unless --memory-reducer), which shrinks the heap of a quiet
 * process and makes the next busy minutes pay for growing it back (relaunch.ts, serveV8Flags).
 * V8 takes these flags only at start: bin/sessiongate.js gives them to a single process before
 * the program is loaded (launchFlags); should this run without them all the same, it relaunches.
 */
export async function serve(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(
    args,
    {
      config: { type: 'string' },
      workers: { type: 'string' },
      port: { type: 'string' },
      'semi-space-mb': { type: 'string' },
      'memory-reducer': { type: 'boolean' },
    },
    { command: 'serve' },
  );
  expectPositionals(positionals, [], 0, 'serve');
  const workers = values.workers === undefined ? 1 : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    throw usage('--workers: expected 1 to 64', 'serve');
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65_535)) {
    throw usage('--port: expected a port number', 'serve');
  }
  const semi =
    values['semi-space-mb'] === undefined ? DEFAULT_SEMI_SPACE_MB : Number(values['semi-space-mb']);
  if (!Number.isInteger(semi) || semi < 0 || semi > 1024)
    throw usage("--semi-space-mb: expected 0 (Node's default) to 1024", 'serve');
  const loaded = checked(values.config ?? DEFAULT_CONFIG, io);
  if (!loaded) return 2;
  const flags = serveV8Flags(
    { semiSpaceMb: semi, memoryReducer: values['memory-reducer'] === true },
    process.execArgv,
    io.env.NODE_OPTIONS,
  );
  if (workers > 1 && loaded.config.store === 'memory') {
    throw usage('--workers needs a shared store (sqlite or redis), not memory', 'serve');
  }
  if (workers > 1 && cluster.isPrimary) {
    // Made once here: workers creating a missing key ring at once would each write their own.
    Keyring.loadOrCreate(resolve(loaded.baseDir, loaded.config.keys), {
      signing: assertionWanted(loaded.config),
    });
    if (flags.length > 0) cluster.setupPrimary({ execArgv: [...process.execArgv, ...flags] });
    return supervise(workers, io);
  }
  // The relaunched process has the flags on its command line, so `flags` is empty there.
  if (flags.length > 0 && io.relaunch && cluster.isPrimary) {
    return io.relaunch(flags, ['serve', ...args]);
  }
  try {
    return await runOne(loaded, port, io, workers > 1);
  } catch (err) {
    // A rule or plugin file that does not load: reported as check-config reports it.
    if (!(err instanceof ConfigError)) throw err;
    printProblems(err, io);
    return 2;
  }
}

/** The SSH listener when the config has an `ssh` section; a failed start stops the gateway too. */
async function startSsh(
  loaded: LoadedConfig,
  running: RunningGateway,
  logger: Logger,
  audit: AuditSink | undefined,
): Promise<SshGateway | undefined> {
  const { config, baseDir } = loaded;
  if (!config.ssh) return undefined;
  try {
    // Loaded only when configured: ssh2 is not needed by an HTTP-only gateway.
    const { SshGateway } = await import('../ssh/server.js');
    return await SshGateway.start({
      config: { ...config, ssh: config.ssh },
      baseDir,
      engine: running.engine,
      host: running.host,
      rules: running.rules,
      logger,
      ...(audit ? { audit } : {}),
    });
  } catch (err) {
    await running.close(0);
    throw err;
  }
}

async function runOne(
  loaded: LoadedConfig,
  port: number | undefined,
  io: Io,
  worker: boolean,
): Promise<number> {
  const logger = pino({ level: loaded.config.log.level, base: { pid: process.pid } });
  const side = prepareAdmin(loaded, logger);
  const running = await startGateway(loaded, {
    logger,
    ...side.gatewayOptions,
    ...(port !== undefined ? { port } : {}),
  });
  const ssh = await startSsh(loaded, running, logger, side.gatewayOptions.audit);
  // With --workers, one worker (the primary says which) serves the admin listener.
  const attached = await side
    .attach(running, !worker || process.env[ADMIN_WORKER] === '1', io.cwd)
    .catch(async (err: unknown) => {
      // The admin listener did not start (its port taken): the SSH listener goes too, or it
      // would keep the process alive.
      await ssh?.close();
      throw err;
    });
  if (logger.isLevelEnabled('debug')) {
    // An access line per request at debug level (path without the query: it may carry secrets).
    running.server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
      const started = performance.now();
      res.once('finish', () =>
        logger.debug(
          {
            method: req.method,
            path: (req.url ?? '').split('?')[0],
            status: res.statusCode,
            ms: Math.round(performance.now() - started),
          },
          'request',
        ),
      );
    });
  }
  // The signal handlers come before the "listening" lines: a supervisor that stops the
  // gateway as soon as it reads them must find them in place (without one, SIGTERM kills).
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    // Once: a signal and the parent's channel closing (a relaunched process) may both come.
    const stop = () => {
      if (stopping) return;
      stopping = true;
      io.err(`sessiongate: stopping (pid ${process.pid})\n`);
      void (ssh ? ssh.close() : Promise.resolve()).then(() => attached.close()).then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.once('disconnect', stop);
  });
  logger.info({ url: running.url, worker: cluster.worker?.id ?? 0 }, 'listening');
  if (!worker || cluster.worker?.id === 1) {
    io.err(
      `sessiongate: listening on ${running.url} (config ${loaded.file}, store ${loaded.config.store})\n`,
    );
  }
  if (ssh) logger.info({ port: ssh.port, worker: cluster.worker?.id ?? 0 }, 'ssh listening');
  if (ssh && (!worker || cluster.worker?.id === 1)) {
    io.err(`sessiongate: SSH gateway on ${loaded.config.ssh!.listen.host}:${ssh.port}\n`);
  }
  if (attached.banner) io.err(`sessiongate: ${attached.banner}\n`);
  await stopped;
  // A worker's (or a relaunched process's) channel to its parent keeps it alive: let go of it
  // so the process can exit.
  if (process.connected) process.disconnect();
  return 0;
}

/** The primary of --workers: fork, restart workers that die unexpectedly, pass signals on. */
async function supervise(workers: number, io: Io): Promise<number> {
  let stopping = false;
  let listened = false;
  let failed = false;
  let adminWorker = cluster.fork({ [ADMIN_WORKER]: '1' }).id;
  for (let i = 1; i < workers; i++) cluster.fork();
  cluster.on('listening', () => (listened = true));
  await new Promise<void>((resolve) => {
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) return;
      if (!listened) {
        // A worker that dies before any listened (port taken, store down) would die again.
        io.err(`sessiongate: worker ${worker.process.pid} failed to start (${signal ?? code}); stopping\n`);
        failed = true;
        stop();
        return;
      }
      io.err(`sessiongate: worker ${worker.process.pid} exited (${signal ?? code}); starting another\n`);
      const again = cluster.fork(worker.id === adminWorker ? { [ADMIN_WORKER]: '1' } : {});
      if (worker.id === adminWorker) adminWorker = again.id;
    });
    const stop = () => {
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      const wait = setInterval(() => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearInterval(wait);
          resolve();
        }
      }, 50);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return failed ? 1 : 0;
}
