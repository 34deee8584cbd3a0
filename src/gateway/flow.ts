import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SessionRecord } from '../core/session-types.js';
import type { HttpScope } from '../rules/context.js';
import type { ClientFacts } from './http/client.js';
import type { SessionCookieOptions } from './http/cookies.js';
import type { ActiveRoute } from './router.js';

/** One request's state as it moves through the access flow (docs/gateway.md). */
export interface Flow {
  req: IncomingMessage;
  res: ServerResponse;
  client: ClientFacts;
  route: ActiveRoute;
  cookie: SessionCookieOptions;
  /** Set-Cookie headers to send with whatever answers this request. */
  setCookies: string[];
  /** The session's id after token rotation, when the policy allowed it during this request. */
  rotatedId?: string;
  /** What rules see and change of this request (header edits, a response of their own). */
  http: HttpScope;
  /** The cookie's token and the session it validated to (rules read it instead of the store). */
  known?: { token?: string | undefined; record?: SessionRecord | undefined };
  /** An HTTP_RESPONSE rule failed: the request gets the rules' 500 page. */
  ruleFailure?: unknown;
}

/** The gateway or a rule is about to write the session: what the request read of it is stale. */
export function forget(flow: Flow): void {
  flow.known = undefined;
}

/** The cookies the gateway sets on this answer (a rotated session) go with the upstream's. */
export function addCookies(flow: Flow, headers: Record<string, string | string[]>): void {
  if (flow.setCookies.length === 0) return;
  const existing = headers['set-cookie'];
  headers['set-cookie'] = [...(existing === undefined ? [] : [existing].flat()), ...flow.setCookies];
}
