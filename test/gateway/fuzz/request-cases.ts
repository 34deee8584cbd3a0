import fc from 'fast-check';
import { basic } from '../harness.js';
import { forwardAuthArb, type ForwardAuthCase } from './forward-auth-cases.js';

// The cases of the request campaign: structured requests (sent over kept-alive connections, or
// on their own connection when a client library would refuse them), raw malformed ones, and
// concurrent logon attempts on one session.

// Mostly spellings that are decided on (and must land on the right route), some that are
// refused (encoded slashes, backslashes, NUL, malformed escapes, `..;`).
const segment = fc.oneof(
  {
    weight: 30,
    arbitrary: fc.constantFrom(
      ...['admin', 'ADMIN', 'Admin', '%61dmin', '%41%44MIN', 'adm%69n', 'admin;x=1', 'admin;', '.', '..'],
      ...['%2e', '%2E%2e', '.%2e', '', 'x', 'app', 'sg', 'static', 'sg.css', 'logon', 'logout', 'a%20b'],
      ...['~', '%7e', '.well-known', 'jwks.json', '%c3%a9', '*', '%3f', '%23', 'a.b', '...', 'refused'],
      // The user's own pages and the forward-auth and sign-on URIs under /sg/.
      ...['sessions', 'password', 'auth', 'forward-auth', 'end', 'oidc', 'callback', 'backchannel-logout'],
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('%2f', '%2F', '%5c', '\\', '%00', '%zz', '%', '%%32%66', '..;', '.;x'),
  },
);
const pathArb = fc
  .tuple(
    fc.array(segment, { minLength: 0, maxLength: 7 }),
    fc.constantFrom('', '', '/', '/', '?q=1', '?../admin', '?a=%2f', '#f'),
  )
  .map(([segs, tail]) => `/${segs.join('/')}${tail}`);
const targetArb = fc.oneof(
  { weight: 4, arbitrary: pathArb },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom('http://', 'HTTP://', 'https://'),
        fc.constantFrom('127.0.0.1', 'evil.example', 'a@b', ''),
        pathArb,
      )
      .map(([scheme, host, path]) => `${scheme}${host}${path === '/' ? '' : path}`),
  },
);

/** Which session cookies a request carries (names of the campaign's logged-on users). */
export type CookieChoice = 'alice' | 'bob' | 'none' | 'bogus' | 'alice+bob' | 'bob+alice' | 'fresh';

/** A request a client library could mostly send: over a kept-alive connection when it can. */
export interface HttpCase {
  kind: 'http';
  target: string;
  cookie: CookieChoice;
  auth: string | undefined;
  host: 'self' | 'other' | 'dup' | 'none';
  method: string;
  /** A small form body (POST only). */
  form: string | undefined;
  fuzzedFraming: boolean;
}

/** Malformed or cut-off bytes on a connection of their own. */
export interface RawCase {
  kind: 'raw';
  template: (typeof RAW_TEMPLATES)[number];
  target: string;
  junk: Uint8Array;
}

/** Concurrent logon attempts on one new session: wrong passwords, maybe one right one. */
export interface RaceCase {
  kind: 'race';
  via: 'form' | 'basic';
  attempts: number;
  /** Index of the attempt with the right password; -1: none. */
  right: number;
}

export type RequestCase = HttpCase | RawCase | RaceCase | ForwardAuthCase;

export const RAW_TEMPLATES = [
  'te-gzip-chunked',
  'bad-content-length',
  'two-content-lengths',
  'content-length-and-chunked',
  'header-without-colon',
  'huge-header',
  'bare-lf',
  'junk',
  'bad-chunk-size',
  'pipelined-then-fin',
  'fin-mid-body',
  'reset-mid-body',
  'big-logon-form',
  'big-logout',
  'keep-alive-probe',
] as const;

const httpArb: fc.Arbitrary<HttpCase> = fc.record({
  kind: fc.constant('http' as const),
  target: targetArb,
  cookie: fc.constantFrom<CookieChoice>('alice', 'bob', 'none', 'bogus', 'alice+bob', 'bob+alice', 'fresh'),
  auth: fc.constantFrom(
    undefined,
    basic('alice', 'wonderland'),
    basic('bob', 'builder'),
    basic('bob', 'wrong'),
    basic('mallory', 'x'),
    'Basic !!!',
    'Bearer abc',
    'Basic ' + Buffer.from('bob').toString('base64'),
  ),
  host: fc.constantFrom<HttpCase['host']>(
    'self',
    'self',
    'self',
    'self',
    'self',
    'self',
    'other',
    'other',
    'dup',
    'none',
  ),
  method: fc.constantFrom('GET', 'GET', 'POST', 'HEAD', 'DELETE', 'OPTIONS'),
  form: fc.constantFrom(
    undefined,
    'username=alice&password=wonderland',
    'username=bob&password=nope',
    'answer=1&question=x',
    'x'.repeat(2000),
  ),
  fuzzedFraming: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
});

const rawArb: fc.Arbitrary<RawCase> = fc.record({
  kind: fc.constant('raw' as const),
  template: fc.constantFrom(...RAW_TEMPLATES),
  target: targetArb,
  junk: fc.uint8Array({ minLength: 1, maxLength: 200 }),
});

const raceArb: fc.Arbitrary<RaceCase> = fc.record({
  kind: fc.constant('race' as const),
  via: fc.constantFrom<RaceCase['via']>('form', 'basic'),
  attempts: fc.integer({ min: 2, max: 8 }),
  right: fc.integer({ min: -3, max: 7 }).map((n) => (n < 0 ? -1 : n)),
});

/** The campaign's mix: mostly structured requests, some raw ones, forward-auth calls, a few logon races. */
export const caseArb: fc.Arbitrary<RequestCase> = fc.oneof(
  { weight: 70, arbitrary: httpArb },
  { weight: 10, arbitrary: forwardAuthArb },
  { weight: 18, arbitrary: rawArb },
  { weight: 2, arbitrary: raceArb },
);

/** The bytes of a raw case, and whether the client half-closes (or resets) after them. */
export function rawBytes(
  c: RawCase,
  host: string,
  cookies: { alice: string; fresh: () => string },
): { bytes: Buffer; then: 'read' | 'fin' | 'reset' } {
  const line = (target = c.target) => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n`;
  const form = `Origin: http://${host}\r\nContent-Type: application/x-www-form-urlencoded\r\n`;
  const b = (s: string) => Buffer.from(s, 'latin1');
  switch (c.template) {
    case 'te-gzip-chunked':
      return { bytes: b(`${line()}Transfer-Encoding: gzip, chunked\r\n\r\n`), then: 'read' };
    case 'bad-content-length':
      return {
        bytes: b(`POST /app HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1x\r\n\r\nabc`),
        then: 'read',
      };
    case 'two-content-lengths':
      return {
        bytes: b(`POST /app HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`),
        then: 'read',
      };
    case 'content-length-and-chunked':
      return {
        bytes: b(
          `POST /app HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        ),
        then: 'read',
      };
    case 'header-without-colon':
      return { bytes: b(`${line()}Cookie ${cookies.alice}\r\n\r\n`), then: 'read' };
    case 'huge-header':
      return { bytes: b(`${line()}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`), then: 'read' };
    case 'bare-lf':
      return { bytes: b(`GET /app HTTP/1.1\nHost: ${host}\nCookie: ${cookies.alice}\n\n`), then: 'read' };
    case 'junk':
      return { bytes: Buffer.from(c.junk), then: 'fin' };
    case 'bad-chunk-size':
      return {
        bytes: b(
          `POST /app HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookies.alice}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
        ),
        then: 'read',
      };
    case 'pipelined-then-fin':
      return {
        bytes: b(
          `${line()}Cookie: ${cookies.alice}\r\n\r\n${line('/app/two')}Cookie: ${cookies.alice}\r\n\r\n`,
        ),
        then: 'fin',
      };
    case 'fin-mid-body':
      return {
        bytes: b(
          `POST /app HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookies.alice}\r\nContent-Length: 100\r\n\r\nabc`,
        ),
        then: 'fin',
      };
    case 'reset-mid-body':
      return {
        bytes: b(
          `POST /sg/logon HTTP/1.1\r\nHost: ${host}\r\n${form}Cookie: ${cookies.fresh()}\r\nContent-Length: 100\r\n\r\nuser`,
        ),
        then: 'reset',
      };
    case 'big-logon-form':
      return {
        bytes: b(
          `POST /sg/logon HTTP/1.1\r\nHost: ${host}\r\n${form}Cookie: ${cookies.fresh()}\r\nContent-Length: 130000\r\n\r\n${'a'.repeat(130_000)}`,
        ),
        then: 'read',
      };
    case 'big-logout':
      return {
        bytes: b(
          `POST /sg/logout HTTP/1.1\r\nHost: ${host}\r\n${form}Content-Length: 40000\r\n\r\n${'a'.repeat(40_000)}`,
        ),
        then: 'read',
      };
    case 'keep-alive-probe':
      return { bytes: b(`${line()}Cookie: ${cookies.alice}\r\n\r\n`), then: 'read' };
  }
}
