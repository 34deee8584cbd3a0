/**
 * A real nginx for the forward-auth tests: `/usr/sbin/nginx` (Debian package `nginx`) with a
 * generated `nginx.conf` in a temporary folder (pid file, logs and temp paths all there, `-p`
 * prefix and `-e` error log so nothing under /etc or /var is touched), on a free loopback port,
 * in the foreground (`daemon off;`) as our child, stopped by pid (SIGQUIT, then SIGKILL) — on
 * process exit too, and by the watchdog shell of processes.ts. The package's own service is
 * not used. One process (`master_process off;`): no worker outlives a killed master, and no
 * worker switches to another user (`user` is ignored) that could not use the test's folder.
 *
 * Without nginx the tests are skipped with one loud line, except under CI=true (a failure).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, freePort, serverRequired, skipReason, track, untrack } from './processes.js';

export const NGINX = '/usr/sbin/nginx';

export interface Nginx {
  url: string;
  port: number;
  pid: number;
  /** The error log so far (for a failing test's message). */
  errors(): string;
  stop(): Promise<void>;
}

/** Why the nginx tests cannot run here, or false. Prints the loud line once (not under CI). */
export function nginxSkip(): string | false {
  return skipReason(
    'NGINX',
    existsSync(NGINX),
    `${NGINX} is missing: \`apt-get install nginx\` enables the forward-auth nginx tests`,
  );
}

/** Under CI=true a missing nginx fails the run instead of skipping. */
export const nginxRequired = serverRequired;

/**
 * The `server` block of an application nginx serves itself, asking sessiongate (at `gateway`,
 * host:port) about every request with `auth_request`, the route's identity headers copied to
 * the application (at `app`, host:port); the gateway's own pages under `/sg/` on the same host.
 * The same configuration as docs/forward-auth.md.
 */
export function forwardAuthServer(o: {
  port: number;
  gateway: string;
  app: string;
  identity: string[];
}): string {
  const variable = (h: string) => `$sg_${h.toLowerCase().replace(/-/g, '_')}`;
  const upstreamVar = (h: string) => `$upstream_http_${h.toLowerCase().replace(/-/g, '_')}`;
  const set = o.identity.map((h) => `      auth_request_set ${variable(h)} ${upstreamVar(h)};`).join('\n');
  const pass = o.identity.map((h) => `      proxy_set_header ${h} ${variable(h)};`).join('\n');
  return `
  server {
    listen 127.0.0.1:${o.port};
    server_name _;

    location / {
      auth_request /_sessiongate_auth;
${set}
      auth_request_set $sg_logon $upstream_http_x_sessiongate_logon;
      error_page 401 = @sg_logon;
${pass}
      proxy_set_header Host $http_host;
      proxy_pass http://${o.app};
    }

    location = /_sessiongate_auth {
      internal;
      proxy_pass http://${o.gateway}/sg/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-Uri "";
      proxy_set_header X-Forwarded-Method "";
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }

    location @sg_logon {
      return 302 $sg_logon;
    }

    location /sg/ {
      proxy_pass http://${o.gateway};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
`;
}

function conf(dir: string, servers: string): string {
  return `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 128; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${servers}
}
`;
}

/**
 * Start nginx with `servers` (server blocks, made for the port given) inside its `http` block.
 *
 * @example
 * const nginx = await startNginx((port) => forwardAuthServer({ port, gateway, app, identity }));
 * await fetch(`${nginx.url}/app`); // 302 to the logon
 * await nginx.stop();
 */
export async function startNginx(servers: (port: number) => string): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-nginx-'));
  const port = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), conf(dir, servers(port)));
  const errorLog = join(dir, 'error.log');
  let output = '';
  const child = spawn(NGINX, ['-p', `${dir}/`, '-e', errorLog, '-c', join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  track(child);
  let dead = false;
  void exited.then(() => (dead = true));
  const errors = () => (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '') + output;

  const stop = async () => {
    if (!dead) {
      child.kill('SIGQUIT'); // graceful shutdown
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    untrack(child);
    rmSync(dir, { recursive: true, force: true });
  };

  const until = Date.now() + 15_000;
  while (!(await canConnect(port))) {
    if (dead || Date.now() > until) {
      const why = errors().trim().slice(-800);
      await stop();
      throw new Error(`nginx did not start on port ${port}: ${why}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `http://127.0.0.1:${port}`, port, pid: child.pid!, errors, stop };
}
