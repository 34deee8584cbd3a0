import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';
import type { CredentialInjector, InjectedCredential } from './credentials.js';
import { addCookies, forget, type Flow } from './flow.js';
import type { FlowEvents } from './flow-events.js';
import { sendProblem } from './http/pages.js';
import { setIdentityHeaders } from './identity/headers.js';
import type { ForwardResult } from './proxy/errors.js';
import type { ForwardOptions } from './proxy/upstream.js';
import type { ActiveRoute } from './router.js';

/**
 * The last part of the request path: an allowed session's request goes to the route's
 * upstream, after the route's ACL and the ACL events, with credentials from the credential
 * store where the route asks for them (a refused password is replaced by the next one on the
 * same request), and HTTP_RESPONSE rules on the way back.
 *
 * @example
 * const forwarding = new Forwarding(events, logger, credentials);
 * await forwarding.proxy(flow, session); // answered: the upstream's response, or an error page
 */
export class Forwarding {
  readonly #stripSets = new Map<string, ReadonlySet<string>>();

  constructor(
    private readonly events: FlowEvents,
    private readonly logger: Logger,
    private readonly credentials?: CredentialInjector,
    private readonly engine?: SessionEngine,
  ) {}

  /**
   * Answers an allowed session's request. Not an async function: on the common path (no ACL
   * rules, no credential store) it is one `then` on the upstream's answer, with no suspended
   * frames to allocate for every request.
   */
  proxy(flow: Flow, session: SessionRecord): void | Promise<void> {
    const allowed = aclAllows(flow.route, session);
    const acl = this.events.event(flow, allowed ? 'ACCESS_ACL_ALLOWED' : 'ACCESS_ACL_DENIED', session.id);
    if (acl instanceof Promise) {
      return acl.then((r) => (r.responded ? undefined : this.afterAcl(flow, session, allowed)));
    }
    return this.afterAcl(flow, session, allowed);
  }

  private afterAcl(flow: Flow, session: SessionRecord, allowed: boolean): void | Promise<void> {
    if (!allowed) {
      return sendProblem(
        flow.res,
        flow.client.browser,
        403,
        'SG_ERR_ACCESS_DENIED',
        'Access denied',
        'Not allowed here.',
        {
          'set-cookie': flow.setCookies,
        },
      );
    }
    const injector = flow.route.config.credentials ? this.credentials : undefined;
    if (injector) return this.withCredentials(flow, session, injector);
    if (flow.route.config.pass_access_token) return this.withAccessToken(flow, session);
    return this.forward(flow, session, undefined).then((result) => this.upstreamFailed(flow, result));
  }

  /** Credential injection: a refused password is replaced by the next one on the same request. */
  private async withCredentials(
    flow: Flow,
    session: SessionRecord,
    injector: CredentialInjector,
  ): Promise<void> {
    const { client, route } = flow;
    forget(flow); // it caches credentials in the session
    const facts = { clientIp: client.ip, protocol: client.proto };
    let cred = await injector.header(route, session, facts);
    if (!cred) return this.noCredentials(flow, 'SG_ERR_CREDENTIALS_UNAVAILABLE');
    for (;;) {
      const result = await this.forward(flow, session, cred);
      if (result.ok && result.withheld) {
        // The application refused this password: the next one, on the same request.
        const more = await injector.next(session.id, route.index, cred.state);
        cred = more ? await injector.header(route, session, facts) : null;
        if (!cred) return this.noCredentials(flow, 'SG_ERR_CREDENTIALS_REJECTED');
        continue;
      }
      if (result.ok && result.status === 401) await injector.next(session.id, route.index, cred.state);
      else if (result.ok) await injector.succeeded(session.id, route, cred.state);
      return this.upstreamFailed(flow, result);
    }
  }

  /** The session's access token from its identity provider, as the upstream's bearer token. */
  private async withAccessToken(flow: Flow, session: SessionRecord): Promise<void> {
    const token = await this.engine?.data.get(session.id, 'session.oauth.access_token', { secure: true });
    // After the strip of the client's own Authorization header: edits come after it.
    if (token) flow.http.requestHeaders.authorization = `Bearer ${token}`;
    return this.forward(flow, session, undefined).then((result) => this.upstreamFailed(flow, result));
  }

  private noCredentials(
    flow: Flow,
    code: 'SG_ERR_CREDENTIALS_UNAVAILABLE' | 'SG_ERR_CREDENTIALS_REJECTED',
  ): void {
    sendProblem(
      flow.res,
      flow.client.browser,
      502,
      code,
      'The application cannot be logged on to',
      'The gateway has no working credentials for this application. Please contact your administrator.',
      { 'set-cookie': flow.setCookies },
    );
  }

  private forward(
    flow: Flow,
    session: SessionRecord,
    cred: InjectedCredential | undefined,
  ): Promise<ForwardResult> {
    const { req, client, route } = flow;
    // Built by assignment, not spreads: this runs for every proxied request.
    const requestHeaders: Record<string, string | null> = {
      'x-forwarded-for': client.forwardedFor,
      // The answer to a policy question (a one-time code) is for the gateway only.
      'x-sessiongate-answer': null,
    };
    if (!route.config.forward_authorization) requestHeaders.authorization = null;
    const edits = flow.http.requestHeaders;
    for (const name in edits) requestHeaders[name] = edits[name] ?? null;
    if (cred) requestHeaders[cred.name] = cred.value;
    // Last: the identity headers are the gateway's word, over any rule's edit of them.
    const signing = setIdentityHeaders(requestHeaders, route.identity, session, req.headers.host ?? '');
    if (signing) return signing.then(() => this.send(flow, session, cred, requestHeaders));
    return this.send(flow, session, cred, requestHeaders);
  }

  private send(
    flow: Flow,
    session: SessionRecord,
    cred: InjectedCredential | undefined,
    requestHeaders: Record<string, string | null>,
  ): Promise<ForwardResult> {
    const { req, client, route } = flow;
    const options: ForwardOptions = {
      clientIp: client.peer,
      proto: client.proto,
      host: req.headers.host ?? '',
      requestHeaders,
      stripCookies: this.cookieNames(flow.cookie.name),
    };
    // A 401 is kept from the client while the store has another password to try.
    if (cred) options.withhold = (status: number) => status === 401;
    if (route.rules.has('HTTP_RESPONSE')) {
      options.onResponse = async (status, headers) => {
        await this.events.responseRules(flow, session, status, headers);
        addCookies(flow, headers);
      };
    } else if (flow.setCookies.length > 0) {
      options.onResponse = (_status, headers) => addCookies(flow, headers);
    }
    return route.upstream.forward(req, flow.res, options);
  }

  /** The Set of one cookie name, made once per name rather than per request. */
  private cookieNames(name: string): ReadonlySet<string> {
    let names = this.#stripSets.get(name);
    if (!names) this.#stripSets.set(name, (names = new Set([name])));
    return names;
  }

  private upstreamFailed(flow: Flow, result: ForwardResult): void {
    const { res, client, route } = flow;
    if (flow.ruleFailure !== undefined) throw flow.ruleFailure;
    if (!result.ok && result.reason === 'client_aborted') return; // nobody is listening any more
    if (!result.ok) {
      this.logger.warn(
        { route: route.index, reason: result.reason, status: result.status },
        'upstream failed',
      );
      const timeout = result.status === 504;
      sendProblem(
        res,
        client.browser,
        result.status,
        timeout ? 'SG_ERR_UPSTREAM_TIMEOUT' : 'SG_ERR_UPSTREAM_UNAVAILABLE',
        timeout ? 'The application did not answer in time' : 'The application is not reachable',
        'Please try again in a moment.',
        { 'set-cookie': flow.setCookies },
      );
    }
  }
}

/** The route's ACL: with `acl.users` or `acl.groups`, the session's user must be listed or in a group. */
export function aclAllows(route: ActiveRoute, session: SessionRecord): boolean {
  const acl = route.config.acl;
  if (!acl) return true;
  if (acl.users?.includes(session.user ?? '')) return true;
  const groups = (session.variables['session.logon.last.groups'] ?? '').split(',').filter(Boolean);
  return acl.groups?.some((g) => groups.includes(g)) ?? false;
}
