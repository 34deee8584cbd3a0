// How one request is passed on: what Upstream.forward() and upgrade() (websocket.ts) take.

export interface ForwardOptions {
  /** The client's address, appended to X-Forwarded-For. */
  clientIp: string;
  /** The protocol the client used (X-Forwarded-Proto). */
  proto: 'http' | 'https';
  /** The original Host (X-Forwarded-Host; and Host itself with `preserveHost`). */
  host: string;
  /** Path and query to send; default `req.url` (after the upstream URL's own path, if any). */
  path?: string;
  /**
   * Request header changes for the upstream, applied after hop-by-hop stripping: a string sets
   * the header (replacing the client's), null removes it. `x-forwarded-for` is special: it is
   * the existing chain the client address is appended to (null: none), replacing the incoming
   * header; pass a sanitized chain, or null, when the peer is not a trusted proxy. Hop-by-hop
   * names and Expect are ignored.
   */
  requestHeaders?: Record<string, string | null>;
  /** Cookie names to remove from the Cookie header (the gateway's session cookie must never
   * reach the upstream); the header is dropped when nothing is left. A Set may be reused. */
  stripCookies?: readonly string[] | ReadonlySet<string>;
  /**
   * Called with the upstream's response status and headers (lowercase names, hop-by-hop ones
   * already removed, repeated headers such as Set-Cookie as arrays) before they are sent; may
   * mutate the headers. A throw fails the request with 502 `bad_response`. When it returns a
   * promise, the upstream is paused (what arrives meanwhile is held) and nothing is sent until
   * it settles; a rejection fails the request the same way. upgrade() calls it synchronously.
   */
  onResponse?: (status: number, headers: Record<string, string | string[]>) => void | Promise<void>;
  /**
   * Keep an answer with this status from the client: its body is read and dropped and the
   * result says `withheld`, so the caller can try again (credential injection retries a 401
   * with the next password). Only for requests without a body, which can be sent again.
   */
  withhold?: (status: number) => boolean;
}
