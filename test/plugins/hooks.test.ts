import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { definePlugin, type AaPlugin, type CredentialStorePlugin } from '../../src/plugins/define.js';
import { PluginHost } from '../../src/plugins/host.js';
import { ModuleRuntime } from '../../src/plugins/runtimes/module.js';
import { HOOK_TABLE, HOOKS, argumentsFor, type HookName } from '../../src/plugins/types.js';
import { testEngine } from '../session/helpers.js';

// The hooks are declared once (HOOK_TABLE in src/plugins/types.ts); the documentation, the
// module plugin types and the checks at registration and call all follow from it.

const doc = readFileSync(new URL('../../docs/plugins.md', import.meta.url), 'utf8');

/** The rows of the markdown table whose header row starts with `| first |`. */
function tableRows(first: string): [string, string][] {
  const start = doc.indexOf(`| ${first} |`);
  assert.ok(start >= 0, `docs/plugins.md has a table starting with "| ${first} |"`);
  const rows = doc.slice(start).split('\n\n')[0]!.split('\n').slice(2);
  return rows.map((row) => {
    const [, left, right] = row.split('|').map((c) => c.trim());
    return [left!, right!];
  });
}

const names = (cell: string): string[] => [...cell.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!);

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

describe('plugin hooks: one table', () => {
  it('docs/plugins.md lists the hooks of each kind as the table has them, in its order', () => {
    const documented = Object.fromEntries(
      tableRows('kind').map(([kind, hooks]) => [names(kind)[0], names(hooks)]),
    );
    assert.deepEqual(documented, { aa: HOOKS.aa, credentialstore: HOOKS.credentialstore });
  });

  it('docs/plugins.md lists the further arguments of each hook as the table has them', () => {
    const documented: Record<string, string[]> = {};
    for (const [hooks, args] of tableRows('hook')) {
      // "the same, plus ..." extends the row above.
      const base = args.startsWith('the same') ? Object.values(documented).at(-1)! : [];
      for (const hook of names(hooks)) documented[hook] = [...base, ...names(args)].sort();
    }
    const declared = Object.fromEntries(
      (Object.keys(HOOK_TABLE) as HookName[]).map((h) => [h, [...HOOK_TABLE[h].args].sort()]),
    );
    assert.deepEqual(documented, declared);
  });

  it('a hook gets exactly its arguments: unknown facts as null, key_value_pairs as {}', () => {
    const base = { session_id: 'a'.repeat(32), cookie: {}, session_cookie: {} };
    const args = argumentsFor('authenticate', { ...base, gateway_user: 'alice', server_ip: '192.0.2.1' });
    assert.deepEqual(
      Object.keys(args).sort(),
      [...Object.keys(base), ...HOOK_TABLE.authenticate.args].sort(),
    );
    assert.equal(args.gateway_user, 'alice');
    assert.equal(args.client_ip, null);
    assert.deepEqual(args.key_value_pairs, {});
    assert.equal('server_ip' in args, false); // authorize gets it, authenticate does not
    assert.deepEqual(argumentsFor('session_ended', { ...base, gateway_user: 'alice' }), base);
  });

  it('the module plugin types have exactly the camelCase hooks of their kind', () => {
    const aa: Equal<keyof AaPlugin, 'kind' | 'authenticate' | 'authorize' | 'sessionEnded'> = true;
    const credentials: Equal<
      keyof CredentialStorePlugin,
      'kind' | 'getPasswordList' | 'getPrivateKeyList' | 'authenticationCompleted' | 'sessionEnded'
    > = true;
    assert.ok(aa && credentials);
    // A hook of the other kind, or a misspelt one, does not compile in definePlugin.
    // @ts-expect-error getPasswordList is not a hook of aa plugins
    definePlugin({ kind: 'aa', getPasswordList: () => ({ passwords: [] }) });
    // @ts-expect-error authenticat is not a hook
    definePlugin({ kind: 'aa', authenticat: () => ({ verdict: 'ACCEPT' as const }) });
  });

  it('a module plugin with a hook its kind does not have, or an SPS snake_case name, is refused when registered', () => {
    const wrongKind = { kind: 'aa', getPasswordList: () => ({ passwords: [] }) } as unknown as AaPlugin;
    assert.throws(
      () => new ModuleRuntime(wrongKind, 'users', {}),
      /^PluginLoadError: plugin users: getPasswordList is not a hook of aa plugins \(authenticate, authorize, sessionEnded\)$/,
    );
    const snake = { kind: 'credentialstore', session_ended: () => undefined } as unknown as AaPlugin;
    assert.throws(
      () => new ModuleRuntime(snake, 'vault', {}),
      /plugin vault: session_ended is not a hook of credentialstore plugins .* sessionEnded\)$/,
    );
    // Other properties pass at run time (helpers, data); definePlugin's types refuse them.
    const helper = {
      kind: 'aa',
      authenticate: () => ({ verdict: 'DENY' as const }),
      normalise: (s: string) => s,
    };
    assert.equal(new ModuleRuntime(helper as AaPlugin, 'users', {}).kind, 'aa');
  });

  it('the host refuses to call a hook the plugin kind does not have', async () => {
    const { engine } = testEngine();
    const plugin = definePlugin({ kind: 'aa', authenticate: () => ({ verdict: 'ACCEPT' as const }) });
    const host = new PluginHost(engine, [{ name: 'users', runtime: new ModuleRuntime(plugin, 'users', {}) }]);
    const { id } = await engine.create({ profile: 'default', clientIp: '192.0.2.7' });
    const out = await host.forSession('users', 'get_password_list', id, {});
    assert.deepEqual(out, {
      ok: false,
      failure: 'not_implemented',
      message: 'get_password_list is not a hook of aa plugins (authenticate, authorize, session_ended)',
    });
    await host.close();
    await engine.stop();
  });
});
