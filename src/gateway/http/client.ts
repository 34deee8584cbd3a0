import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { AddressMatcher } from './addresses.js';

/** Who is asking, as far as the gateway can trust it. */
export interface ClientFacts {
  ip: string;
  port: number;
  /** https when the listener is TLS, or a trusted proxy says so. */
  proto: 'http' | 'https';
  /** The address of the connection's other end (the client, or the last proxy). */
  peer: string;
  /**
   * The X-Forwarded-For chain received through trusted proxies; null from an untrusted peer
   * (a client's own header is not passed on). The proxy appends `peer` to it.
   */
  forwardedFor: string | null;
  /** The client wants pages (Accept names text/html); otherwise it is an API client. */
  browser: boolean;
}

function normal(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

/** The last answer on a connection, with the headers it came from. */
interface Remembered {
  xff: string | string[] | undefined;
  xfp: string | string[] | undefined;
  accept: string | undefined;
  trusted: AddressMatcher;
  facts: Readonly<ClientFacts>;
}
const LAST = Symbol('sessiongate.clientFacts');

/**
 * The client address: the peer, or — when the peer is a trusted proxy — the rightmost
 * address in X-Forwarded-For that is not itself a trusted proxy. The answer is read-only; a
 * keep-alive connection whose next request carries the same forwarding and Accept headers gets
 * the same object (the peer of a connection does not change).
 */
export function clientFacts(req: IncomingMessage, trusted: AddressMatcher): Readonly<ClientFacts> {
  const socket = req.socket as IncomingMessage['socket'] & { [LAST]?: Remembered };
  const xff = req.headers['x-forwarded-for'];
  const xfp = req.headers['x-forwarded-proto'];
  const accept = req.headers.accept;
  const last = socket[LAST];
  if (last && last.xff === xff && last.xfp === xfp && last.accept === accept && last.trusted === trusted) {
    return last.facts;
  }
  const facts = Object.freeze(readFacts(req, trusted));
  socket[LAST] = { xff, xfp, accept, trusted, facts };
  return facts;
}

function readFacts(req: IncomingMessage, trusted: AddressMatcher): ClientFacts {
  const peer = normal(req.socket.remoteAddress ?? '0.0.0.0');
  const tls = Boolean((req.socket as TLSSocket).encrypted);
  let ip = peer;
  let proto: 'http' | 'https' = tls ? 'https' : 'http';
  let forwardedFor: string | null = null;
  if (trusted.has(peer)) {
    const header = req.headers['x-forwarded-for'];
    const chain = (Array.isArray(header) ? header.join(',') : (header ?? ''))
      .split(',')
      .map((s) => normal(s.trim()))
      .filter((s) => isIP(s) !== 0);
    let i = chain.length - 1;
    while (i >= 0 && trusted.has(chain[i]!)) i--;
    if (i >= 0) ip = chain[i]!;
    if (chain.length > 0) forwardedFor = chain.join(', ');
    const fp = req.headers['x-forwarded-proto'];
    if (fp === 'https' || fp === 'http') proto = fp;
  }
  const accept = req.headers.accept ?? '';
  return {
    ip,
    peer,
    port: req.socket.remotePort ?? 0,
    proto,
    forwardedFor,
    browser: accept.includes('text/html'),
  };
}
