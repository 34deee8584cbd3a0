import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { PluginHost } from '../plugins/host.js';
import type { SessionEngine } from '../session/engine.js';
import type { RouteConfig } from './config/schema.js';

type Injection = NonNullable<RouteConfig['credentials']>;

/** What a session holds for one route: the passwords handed out and how far it got. */
interface CredentialState {
  passwords: string[];
  /** The password in use (or being tried). */
  index: number;
  /** authentication_completed was called. */
  completed: boolean;
}

const stateVar = (route: number): string => `sessiongate.credentials.route${route}`;

/** A password from the credential store, as the header the upstream gets, with its place in the list. */
export interface InjectedCredential {
  name: string;
  value: string;
  state: CredentialState;
}

/**
 * Upstream logon with credentials from a credential-store plugin (docs/credential-injection.md): on the first
 * allowed request of a session the plugin's `get_password_list` is asked (account, asset =
 * upstream host, the gateway user and connection facts); the passwords are kept in a secure
 * session variable — never logged, never sent to the client — and injected as Basic, Bearer or
 * a named header. An upstream 401 moves on to the next password; the first success calls
 * `authentication_completed`; the session's close calls `session_ended` (the plugin host does).
 */
export class CredentialInjector {
  constructor(
    private readonly engine: SessionEngine,
    private readonly host: PluginHost,
    private readonly logger: Logger,
  ) {}

  /** The current password's header for this route, fetching the list on first use; null when none. */
  async header(
    route: { index: number; config: RouteConfig; upstreamUrl: string },
    session: SessionRecord,
    facts: { clientIp: string; protocol: string },
  ): Promise<InjectedCredential | null> {
    const c = route.config.credentials!;
    let state = await this.read(session.id, route.index);
    if (!state) {
      const url = new URL(route.upstreamUrl);
      const groups = session.variables['session.logon.last.groups'];
      const passwords = await this.host.getPasswordList(c.plugin, session.id, {
        protocol: url.protocol.replace(':', ''),
        client_ip: facts.clientIp,
        gateway_username: session.user,
        gateway_groups: groups ? groups.split(',') : [],
        server_username: c.account,
        server_hostname: url.hostname,
        server_ip: /^[\d.]+$|:/.test(url.hostname) ? url.hostname : null,
        server_port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
      });
      state = { passwords, index: 0, completed: false };
      await this.write(session.id, route.index, state);
      this.logger.info(
        { sessionId: session.id, plugin: c.plugin, account: c.account, count: passwords.length },
        'credentials checked out for the upstream',
      );
    }
    const password = state.passwords[state.index];
    if (password === undefined) return null;
    return { ...headerFor(c, password), state };
  }

  /** The upstream refused the password in use: move to the next; false when none is left. */
  async next(sessionId: string, routeIndex: number, state: CredentialState): Promise<boolean> {
    state.index += 1;
    await this.write(sessionId, routeIndex, state);
    return state.index < state.passwords.length;
  }

  /** The upstream accepted: tell the plugin once (authentication_completed). */
  async succeeded(sessionId: string, route: { index: number; config: RouteConfig }, state: CredentialState) {
    if (state.completed) return;
    state.completed = true;
    await this.write(sessionId, route.index, state);
    await this.host.authenticationCompleted(route.config.credentials!.plugin, sessionId);
  }

  private async read(sessionId: string, route: number): Promise<CredentialState | undefined> {
    const text = await this.engine.data.get(sessionId, stateVar(route), { secure: true });
    return text ? (JSON.parse(text) as CredentialState) : undefined;
  }

  private async write(sessionId: string, route: number, state: CredentialState): Promise<void> {
    await this.engine.data.set(sessionId, stateVar(route), JSON.stringify(state), { secure: true });
  }
}

function headerFor(c: Injection, password: string): { name: string; value: string } {
  if (c.inject === 'basic') {
    return {
      name: 'authorization',
      value: `Basic ${Buffer.from(`${c.account}:${password}`).toString('base64')}`,
    };
  }
  if (c.inject === 'bearer') return { name: 'authorization', value: `Bearer ${password}` };
  return { name: c.inject.header.toLowerCase(), value: password };
}
