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

/**
 * The client address: the peer, or — when the peer is a trusted proxy — the rightmost
 * address in X-Forwarded-For that is not itself a trusted proxy.
 */
export function clientFacts(req: IncomingMessage, trusted: AddressMatcher): ClientFacts {
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
