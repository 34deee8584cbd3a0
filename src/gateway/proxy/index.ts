// The proxying layer: the gateway calls Upstream.forward() / upgrade() for allowed requests.
export { Upstream, hasRequestBody } from './upstream.js';
export type { UpstreamOptions, ForwardOptions } from './upstream.js';
export { BadResponseError, ClientAbortedError, classifyError } from './errors.js';
export type { ForwardFailure, ForwardResult } from './errors.js';
export { HOP_BY_HOP, buildRequestHeaders, stripCookieValue, stripResponseHeaders } from './headers.js';
