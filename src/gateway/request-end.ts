import type { IncomingMessage, ServerResponse } from 'node:http';
import { isSessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { sendProblem } from './http/pages.js';
import { matchRoute, type ActiveRoute } from './router.js';

/** The status reported for a request whose client went away before its answer was complete. */
export const CLIENT_ABORTED = 499;

/**
 * The answer to a request whose handling threw: nothing for a client that went away, the
 * "session ended" page for a session closed under the request (a normal end), else 500 and an
 * error line. A response already sent whole is left as it is (the connection is kept).
 *
 * @example
 * ```ts
 * serve(req, res).catch((err) => answerFailure(req, res, err, logger));
 * ```
 */
export function answerFailure(req: IncomingMessage, res: ServerResponse, err: unknown, logger: Logger): void {
  const path = req.url?.split('?')[0];
  if (clientGone(req, err)) {
    // Routine: the client closed or reset the connection (counted by observe as a 499).
    logger.debug?.({ path }, 'client went away');
    return;
  }
  if (isSessionGateError(err, 'SG_ERR_SESSION_NOT_FOUND')) {
    // Ended under the request (a concurrent attempt's deny, a logout, an admin kill, a
    // rule): a normal end. The answer is the one that end implies: this session is over.
    logger.info({ path }, 'session ended while its request ran');
    // Already answered (bookkeeping after a proxied answer): the connection stays as it is.
    if (res.writableEnded) return;
    return sendProblem(
      res,
      wantsHtml(req),
      403,
      'SG_ERR_ACCESS_DENIED',
      'Access denied',
      'This session ended while the request was under way. Start again.',
    );
  }
  logger.error({ err: (err as Error).message, path }, 'request failed');
  if (res.writableEnded) return; // the answer went out whole: keep the connection
  sendProblem(
    res,
    wantsHtml(req),
    500,
    'SG_ERR_INTERNAL',
    'Something went wrong',
    'The gateway could not handle this request.',
  );
}

/**
 * Report the route (host and path prefix), status and duration once the answer is done.
 *
 * @example
 * ```ts
 * observeRequest(req, res, routes, (route, status, seconds) => histogram.observe(...));
 * ```
 */
export function observeRequest(
  req: IncomingMessage,
  res: ServerResponse,
  routes: ActiveRoute[],
  report: (route: string, status: number, seconds: number) => void,
): void {
  const t0 = performance.now();
  res.once('close', () => {
    // Closed before the answer was complete: the client went away (nginx's 499, never sent).
    const status = res.writableFinished ? res.statusCode : CLIENT_ABORTED;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = path.startsWith('/sg/') ? undefined : matchRoute(routes, req.headers.host ?? '', path);
    const label = path.startsWith('/sg/') ? '/sg/' : route ? `${route.host}${route.pathPrefix}` : 'none';
    report(label, status, (performance.now() - t0) / 1000);
  });
}

/** The client reset or closed the connection under the request (Node's `aborted` error). */
function clientGone(req: IncomingMessage, err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return req.socket.destroyed || code === 'ECONNRESET' || (err as Error | undefined)?.message === 'aborted';
}

function wantsHtml(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('text/html');
}
