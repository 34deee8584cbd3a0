import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { PluginEnvironment } from './builtin/environment.js';
import { BUILTIN_PLUGINS } from './builtin/index.js';
import type { HostedPlugin } from './host.js';
import { ModuleRuntime } from './runtimes/module.js';
import { ProcessRuntime } from './runtimes/process.js';
import { SpsPythonRuntime } from './runtimes/sps-python.js';
import { PLUGIN_KINDS } from './types.js';

/**
 * One entry of the configuration's `plugins:` list.
 *
 * @example
 * ```yaml
 * plugins:
 *   - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
 *   - { name: vault, runtime: module, path: ./plugins/vault.ts }
 *   - { name: legacy, runtime: process, kind: aa, command: [./plugins/legacy, --stdio] }
 *   - { name: audit, runtime: sps-python, path: ./plugins/audit, config_file: ./plugins/audit.ini }
 * ```
 */
export const pluginSpecSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, ".", "_" and "-" only'),
    runtime: z.enum(['builtin', 'module', 'process', 'sps-python']),
    /** The built-in plugin (runtime builtin). */
    type: z.string().optional(),
    /** aa or credentialstore (runtime process: the executable cannot say). */
    kind: z.enum(PLUGIN_KINDS).optional(),
    path: z.string().optional(),
    command: z.array(z.string()).min(1).optional(),
    config: z.record(z.string(), z.unknown()).default({}),
    /** INI text for an sps-python plugin, or the file holding it. */
    configuration: z.string().optional(),
    config_file: z.string().optional(),
    timeout_ms: z.number().int().positive().optional(),
    /** The longest answer read from a process or sps-python plugin (bytes); default 1 MiB. */
    max_message_bytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    const need = (field: 'type' | 'path' | 'command' | 'kind', why: string) =>
      p[field] === undefined && ctx.addIssue({ code: 'custom', path: [field], message: `required: ${why}` });
    if (p.runtime === 'builtin') {
      need('type', `one of ${Object.keys(BUILTIN_PLUGINS).join(', ')}`);
      if (p.type !== undefined && !Object.hasOwn(BUILTIN_PLUGINS, p.type)) {
        ctx.addIssue({
          code: 'custom',
          path: ['type'],
          message: `unknown built-in plugin ${JSON.stringify(p.type)}; use one of ${Object.keys(BUILTIN_PLUGINS).join(', ')}`,
        });
      }
    }
    if (p.runtime === 'module' || p.runtime === 'sps-python')
      need('path', `the ${p.runtime} plugin's location`);
    if (p.runtime === 'process') {
      need('command', 'the executable and its arguments');
      need('kind', 'aa or credentialstore');
    }
    if (p.max_message_bytes !== undefined && p.runtime !== 'process' && p.runtime !== 'sps-python') {
      ctx.addIssue({
        code: 'custom',
        path: ['max_message_bytes'],
        message: 'only process and sps-python plugins read messages; remove it',
      });
    }
    if (p.configuration !== undefined && p.config_file !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['config_file'],
        message: 'give configuration or config_file, not both',
      });
    }
  });

export type PluginSpec = z.infer<typeof pluginSpecSchema>;

/** Build the runtimes of the configured plugins (nothing is started until a hook is called). */
export async function loadPlugins(specs: PluginSpec[], env: PluginEnvironment): Promise<HostedPlugin[]> {
  const out: HostedPlugin[] = [];
  for (const spec of specs) {
    const hosted = { name: spec.name, timeoutMs: spec.timeout_ms ?? 10_000 };
    const path = spec.path === undefined ? undefined : resolve(env.baseDir, spec.path);
    const limits = spec.max_message_bytes === undefined ? {} : { maxMessageBytes: spec.max_message_bytes };
    switch (spec.runtime) {
      case 'builtin': {
        const make = BUILTIN_PLUGINS[spec.type!]!;
        const plugin = make(spec.config, { ...env, name: spec.name });
        out.push({ ...hosted, runtime: new ModuleRuntime(plugin, spec.name, spec.config) });
        break;
      }
      case 'module':
        out.push({ ...hosted, runtime: await ModuleRuntime.load(path!, spec.name, spec.config) });
        break;
      case 'process':
        out.push({
          ...hosted,
          runtime: new ProcessRuntime(
            spec.kind!,
            spec.name,
            spec.command!,
            spec.config,
            env.logger,
            env.baseDir,
            limits,
          ),
        });
        break;
      case 'sps-python': {
        const ini =
          spec.config_file !== undefined
            ? readFileSync(resolve(env.baseDir, spec.config_file), 'utf8')
            : (spec.configuration ?? '');
        const runtime = new SpsPythonRuntime(path!, spec.name, ini, env.logger, undefined, limits);
        out.push({ ...hosted, runtime });
        break;
      }
    }
  }
  return out;
}
