/**
 * What a Node team would write instead of sessiongate: express + express-session +
 * connect-redis + http-proxy-middleware doing the same job on every request — read and verify
 * the signed session cookie, load the session from Redis, refresh its expiry (`rolling: true`:
 * a new Set-Cookie and a Redis EXPIRE on every response), refuse requests without a logged-on
 * session, add X-USERNAME from the session, proxy to the upstream over keep-alive connections.
 *
 * Configured as the packages' documentation recommends (`resave: false`,
 * `saveUninitialized: false`), with two choices in its favour: the ioredis client pipelines
 * commands issued in the same tick (as node-redis does by default, and as sessiongate's store
 * does), and http-proxy-middleware gets a keep-alive agent (its default opens a new upstream
 * connection per request).
 */
import http from 'node:http';
import RedisStore from 'connect-redis';
import express from 'express';
import session from 'express-session';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Redis } from 'ioredis';

declare module 'express-session' {
  interface SessionData {
    user?: string;
  }
}

export async function startExpress(
  redisUrl: string,
  upstream: string,
): Promise<{ server: http.Server; close(): Promise<void> }> {
  const client = new Redis(redisUrl, { enableAutoPipelining: true, lazyConnect: true });
  await client.connect();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(
    session({
      store: new RedisStore({ client, prefix: 'bench-sess:' }),
      secret: 'bench secret, not a real one',
      name: 'sid',
      resave: false,
      saveUninitialized: false,
      rolling: true,
      // 15 minutes idle, like sessiongate's default inactivity_timeout.
      cookie: { maxAge: 900_000, httpOnly: true, sameSite: 'lax' },
    }),
  );
  app.post('/login', (req, res) => {
    req.session.user = String(req.query.user ?? '');
    res.status(204).end();
  });
  app.use((req, res, next) => {
    if (!req.session.user) {
      res.status(401).end();
      return;
    }
    // X-USERNAME goes with the headers http-proxy copies. Not in its `proxyReq` event: with a
    // keep-alive socket at hand the request can be on the wire before that event fires
    // (ERR_HTTP_HEADERS_SENT, seen once in run 25).
    req.headers['x-username'] = req.session.user;
    next();
  });
  app.use(
    createProxyMiddleware<express.Request, express.Response>({
      target: upstream,
      agent,
    }),
  );
  const server = http.createServer(app);
  return {
    server,
    close: async () => {
      agent.destroy();
      await client.quit();
    },
  };
}
