import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { SessionEngine } from '../session/engine.js';
import type { AddressMatcher } from './http/addresses.js';
import { admitRequest } from './http/admit.js';
import { clientFacts } from './http/client.js';
import { upgradeHeaders } from './identity/headers.js';
import { readCookie } from './http/cookies.js';
import { cookieOptions, matchRoute, type ActiveRoute } from './router.js';
import { stepUpDue } from './step-up.js';

/**
 * An Upgrade request (a WebSocket handshake): passed to the route's upstream only for an
 * allowed session of the route's profile; anything else gets a bare 401 on the socket (no
 * policy runs on an upgrade: a browser logs on with a page request first).
 *
 * @example
 * server.on('upgrade', (req, socket, head) => void passUpgrade({ engine, routes, trusted }, req, socket, head));
 */
export async function passUpgrade(
  o: { engine: SessionEngine; routes: ActiveRoute[]; trusted: AddressMatcher },
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const client = clientFacts(req, o.trusted);
  const admitted = admitRequest(req);
  if (typeof admitted === 'string') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const path = admitted.path;
  const candidate = path.startsWith('/sg/') ? undefined : matchRoute(o.routes, req.headers.host ?? '', path);
  const route = admitted.encodedSlash && !candidate?.config.allow_encoded_slashes ? undefined : candidate;
  const cookie = route ? cookieOptions(route.profile, client.proto === 'https') : undefined;
  const token = cookie ? readCookie(req.headers.cookie, cookie.name) : undefined;
  const v = token ? await o.engine.validate(token) : undefined;
  if (
    !route ||
    !cookie ||
    !v?.valid ||
    v.session.state !== 'allow' ||
    v.session.profile !== route.profileName ||
    // a route that wants a recent logon: the browser logs on again with a page request first
    (route.config.reauth_within !== undefined &&
      stepUpDue(v.session, route.config.reauth_within, o.engine.clock.now()))
  ) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const result = await route.upstream.upgrade(req, socket, head, {
    clientIp: client.peer,
    proto: client.proto,
    host: req.headers.host ?? '',
    requestHeaders: await upgradeHeaders(req, route.identity, v.session, {
      'x-forwarded-for': client.forwardedFor,
    }),
    stripCookies: [cookie.name],
  });
  if (!result.ok && !socket.destroyed) {
    socket.end(`HTTP/1.1 ${result.status} Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
}
