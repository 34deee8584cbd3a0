import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { Logger } from '../../core/logger.js';
import { PluginCallError, PluginLoadError } from '../errors.js';
import type { CallContext, PluginRuntime } from '../runtime.js';
import { PLUGIN_KINDS, type HookArgs, type HookName, type HookResult, type PluginKind } from '../types.js';
import type { RestartStatus } from './backoff.js';
import { JsonLinesChild, LOG_LINE_LIMIT, type ChildOptions } from './json-lines.js';

const RUNNER = fileURLToPath(new URL('./sps_runner.py', import.meta.url));

/** The fields of an SPS plugin MANIFEST that sessiongate uses. */
export interface SpsManifest {
  name: string;
  type: PluginKind;
  version: string;
  api: string;
  description: string;
  entry_point: string;
}

/** Read and check `MANIFEST` (YAML) in an SPS plugin folder. */
export function readManifest(dir: string): SpsManifest {
  const file = join(dir, 'MANIFEST');
  let doc: Record<string, unknown>;
  try {
    doc = (parseYaml(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
  } catch (err) {
    throw new PluginLoadError(`${file}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const type = doc.type;
  if (typeof type !== 'string' || !PLUGIN_KINDS.includes(type as PluginKind)) {
    throw new PluginLoadError(`${file}: type must be aa or credentialstore, got ${JSON.stringify(type)}`);
  }
  if (typeof doc.name !== 'string' || !doc.name) throw new PluginLoadError(`${file}: name is required`);
  return {
    name: doc.name,
    type: type as PluginKind,
    version: String(doc.version ?? ''),
    api: String(doc.api ?? ''),
    description: String(doc.description ?? ''),
    entry_point: typeof doc.entry_point === 'string' ? doc.entry_point : 'main.py',
  };
}

/**
 * Runs an SPS-style Python plugin folder (MANIFEST, main.py with `class Plugin`, INI
 * configuration) unmodified under python3, through a small runner kept alive per plugin. The
 * runner handles one call at a time, so calls queue; a call past its deadline restarts it.
 */
export class SpsPythonRuntime implements PluginRuntime {
  readonly kind: PluginKind;
  readonly manifest: SpsManifest;
  private readonly child: JsonLinesChild;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    dir: string,
    name: string,
    private readonly configuration: string,
    logger: Logger,
    python = process.env.SESSIONGATE_PYTHON ?? 'python3',
    options: ChildOptions = {},
  ) {
    const folder = resolve(dir);
    this.manifest = readManifest(folder);
    this.kind = this.manifest.type;
    this.child = new JsonLinesChild(
      {
        command: python,
        args: ['-u', RUNNER, folder, this.manifest.entry_point, String(LOG_LINE_LIMIT)],
        cwd: folder,
        protocolOnFd3: true,
      },
      name,
      logger,
      options,
    );
  }

  call(hook: HookName, args: HookArgs, ctx: CallContext): Promise<HookResult> {
    const run = this.queue.then(async () => {
      if (Date.now() >= ctx.deadline) throw new PluginCallError('timeout', 'deadline passed while queued');
      const result = await this.child.request(hook, args, ctx.sessionId, {
        configuration: this.configuration,
      });
      if (result !== null && result !== undefined && (typeof result !== 'object' || Array.isArray(result))) {
        throw new PluginCallError('malformed', `${hook} returned ${JSON.stringify(result).slice(0, 80)}`);
      }
      return result as HookResult;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  abandon(hook: HookName): void {
    this.child.restart(`${hook} ran past its deadline`);
  }

  status(): RestartStatus {
    return this.child.status();
  }

  close(): Promise<void> {
    return this.child.close();
  }
}
