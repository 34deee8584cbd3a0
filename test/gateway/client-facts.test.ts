import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { cidrList } from '../../src/gateway/config/load.js';
import { clientFacts } from '../../src/gateway/http/client.js';

function req(peer: string, headers: Record<string, string> = {}): IncomingMessage {
  return { socket: { remoteAddress: peer, remotePort: 40000 }, headers } as unknown as IncomingMessage;
}

describe('client address through trusted proxies', () => {
  const trusted = cidrList(['10.0.0.0/8', '::1', '2001:db8::/32']);

  it('takes the rightmost untrusted address of X-Forwarded-For from a trusted peer', () => {
    for (let round = 0; round < 2; round++) {
      // The second round answers from the matcher's cache: the same results.
      const f = clientFacts(
        req('10.1.1.1', { 'x-forwarded-for': '6.6.6.6, 192.168.255.7, 10.2.2.2' }),
        trusted,
      );
      assert.equal(f.ip, '192.168.255.7');
      assert.equal(f.forwardedFor, '6.6.6.6, 192.168.255.7, 10.2.2.2');
      const v6 = clientFacts(req('::1', { 'x-forwarded-for': '2001:db9::5, 2001:db8::9' }), trusted);
      assert.equal(v6.ip, '2001:db9::5');
      const mapped = clientFacts(req('::ffff:10.9.9.9', { 'x-forwarded-for': '8.8.8.8' }), trusted);
      assert.equal(mapped.ip, '8.8.8.8');
    }
  });

  it('requests on one connection share an answer only while their forwarding and Accept headers agree', () => {
    const socket = { remoteAddress: '10.1.1.1', remotePort: 40000 };
    const on = (headers: Record<string, string>) => ({ socket, headers }) as unknown as IncomingMessage;
    const first = clientFacts(on({ 'x-forwarded-for': '6.6.6.6' }), trusted);
    assert.equal(clientFacts(on({ 'x-forwarded-for': '6.6.6.6' }), trusted), first, 'the same object');
    assert.equal(clientFacts(on({ 'x-forwarded-for': '7.7.7.7' }), trusted).ip, '7.7.7.7');
    const https = clientFacts(on({ 'x-forwarded-for': '7.7.7.7', 'x-forwarded-proto': 'https' }), trusted);
    assert.equal(https.proto, 'https');
    const page = clientFacts(on({ 'x-forwarded-for': '7.7.7.7', accept: 'text/html' }), trusted);
    assert.equal(page.browser, true);
    assert.equal(page.proto, 'http');
    assert.equal(
      clientFacts(on({ 'x-forwarded-for': '7.7.7.7' }), cidrList([])).ip,
      '10.1.1.1',
      'other trust',
    );
    assert.ok(Object.isFrozen(first));
  });

  it('ignores the header from an untrusted peer, and junk in the chain', () => {
    const f = clientFacts(
      req('192.168.1.5', { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' }),
      trusted,
    );
    assert.equal(f.ip, '192.168.1.5');
    assert.equal(f.forwardedFor, null);
    assert.equal(f.proto, 'http');
    const junk = clientFacts(req('10.0.0.1', { 'x-forwarded-for': 'nonsense, 10.0.0.2' }), trusted);
    assert.equal(junk.ip, '10.0.0.1', 'all trusted: the peer');
    assert.equal(clientFacts(req('10.0.0.1'), cidrList([])).ip, '10.0.0.1');
  });
});
