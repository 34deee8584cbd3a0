/**
 * The bare proxy baseline (npm run bench:proxy): req/s, p50 and p99 of autocannon (50
 * connections, 10 s, median of 3 interleaved runs) against
 *   - direct:           the upstream itself (a node:http server answering 12 bytes);
 *   - Upstream:         a bare node:http server calling sessiongate's Upstream.forward()
 *                       (undici Pool.dispatch, header hygiene): no session work at all;
 *   - pool.stream():    the same proxy written with undici's Pool.stream() (for the choice
 *                       of dispatch() in src/gateway/proxy/upstream.ts);
 *   - request+pipeline: undici's Pool.request() + stream.pipeline() (the common way, and the slowest).
 * The upstream and the proxy each run in their own process; autocannon runs in this one.
 * BENCH_QUICK=1: 3 s runs, for a smoke test. BENCH_VARIANTS=direct,upstream limits the variants.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { buildRequestHeaders, stripResponseHeaders } from '../src/gateway/proxy/headers.js';
import { Upstream, hasRequestBody } from '../src/gateway/proxy/upstream.js';
import { fmt, median } from './stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const DURATION = QUICK ? 3 : 10;
const RUNS = 3;
const CONNECTIONS = 50;
const BODY = 'hello world\n';

type Variant = 'direct' | 'upstream' | 'stream' | 'request';
const LABELS: Record<Variant, string> = {
  direct: 'direct to upstream',
  upstream: 'Upstream.forward() (dispatch)',
  stream: 'undici pool.stream()',
  request: 'undici request()+pipeline',
};

// ---- child roles -------------------------------------------------------------------------

function listenAndReport(server: http.Server): void {
  server.keepAliveTimeout = 60_000;
  // The driver asks for this process's CPU time around each run (IPC).
  process.on('message', () => process.send?.(process.cpuUsage()));
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
  });
}

function runUpstream(): void {
  listenAndReport(
    http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
      res.end(BODY);
    }),
  );
}

function fwd(req: http.IncomingMessage) {
  return {
    clientIp: req.socket.remoteAddress ?? '',
    proto: 'http' as const,
    host: req.headers.host ?? '',
    stripCookies: ['sg_session'],
  };
}

function runProxy(variant: Variant, target: string): void {
  if (variant === 'upstream') {
    const upstream = new Upstream({ url: target });
    listenAndReport(
      http.createServer((req, res) => {
        void upstream.forward(req, res, fwd(req)).then((r) => {
          if (!r.ok && !res.headersSent) res.writeHead(r.status).end();
        });
      }),
    );
    return;
  }
  const pool = new Pool(target, { connections: 128, pipelining: 1 });
  if (variant === 'stream') {
    listenAndReport(
      http.createServer((req, res) => {
        pool.stream(
          {
            path: req.url ?? '/',
            method: req.method ?? 'GET',
            headers: buildRequestHeaders(req.rawHeaders, fwd(req)),
            body: hasRequestBody(req) ? req : null,
          },
          ({ statusCode, headers }) => {
            const h = headers as Record<string, string | string[]>;
            stripResponseHeaders(h);
            res.writeHead(statusCode, h);
            return res;
          },
          (err) => {
            if (err && !res.headersSent) res.writeHead(502).end();
          },
        );
      }),
    );
    return;
  }
  listenAndReport(
    http.createServer((req, res) => {
      pool
        .request({
          path: req.url ?? '/',
          method: req.method ?? 'GET',
          headers: buildRequestHeaders(req.rawHeaders, fwd(req)),
          body: hasRequestBody(req) ? req : null,
        })
        .then(({ statusCode, headers, body }) => {
          const h = headers as Record<string, string | string[]>;
          stripResponseHeaders(h);
          res.writeHead(statusCode, h);
          pipeline(body, res, () => {});
        })
        .catch(() => {
          if (!res.headersSent) res.writeHead(502).end();
        });
    }),
  );
}

// ---- driver --------------------------------------------------------------------------------

const self = fileURLToPath(import.meta.url);

function startChild(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', self, ...args], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`child ${args.join(' ')} exited with ${code}`)));
  });
}

/** CPU time (µs) the child has used so far. */
function cpuOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (m) => {
      const u = m as NodeJS.CpuUsage;
      resolve(u.user + u.system);
    });
    child.send('cpu');
  });
}

interface Sample {
  rps: number;
  /** CPU µs the proxy process spent per request (the upstream's for direct). */
  cpu: number;
  p50: number;
  p99: number;
  errors: number;
}

async function load(port: number, child: ChildProcess, duration: number): Promise<Sample> {
  const cpu0 = await cpuOf(child);
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/app/page?x=1`,
    connections: CONNECTIONS,
    duration,
    headers: { cookie: 'sg_session=abc; theme=dark', 'user-agent': 'bench' },
  });
  const cpu = (await cpuOf(child)) - cpu0;
  return {
    rps: r.requests.average,
    cpu: cpu / r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
  };
}

async function main(): Promise<void> {
  const wanted = (process.env.BENCH_VARIANTS ?? 'direct,upstream,stream,request').split(',') as Variant[];
  const upstream = await startChild(['child', 'upstream']);
  const children: ChildProcess[] = [upstream.child];
  const ports = new Map<Variant, number>();
  const procs = new Map<Variant, ChildProcess>();
  try {
    for (const v of wanted) {
      if (v === 'direct') {
        ports.set(v, upstream.port);
        procs.set(v, upstream.child);
      } else {
        const p = await startChild(['child', 'proxy', v, `http://127.0.0.1:${upstream.port}`]);
        children.push(p.child);
        ports.set(v, p.port);
        procs.set(v, p.child);
      }
    }
    console.log(
      `bench:proxy — autocannon, ${CONNECTIONS} connections, ${DURATION} s per run, ${RUNS} runs interleaved (median), node ${process.version}`,
    );
    for (const v of wanted) await load(ports.get(v) as number, procs.get(v) as ChildProcess, 1); // warm-up
    const samples = new Map<Variant, Sample[]>(wanted.map((v) => [v, []]));
    for (let run = 1; run <= RUNS; run++) {
      for (const v of wanted) {
        const s = await load(ports.get(v) as number, procs.get(v) as ChildProcess, DURATION);
        samples.get(v)?.push(s);
        console.log(
          `  run ${run} ${LABELS[v].padEnd(30)} ${fmt(s.rps).padStart(8)} req/s ${fmt(s.cpu, 1).padStart(6)} µs CPU/req`,
        );
      }
    }
    const directRps = median((samples.get('direct') ?? []).map((s) => s.rps));
    console.log('');
    console.log(
      '| target | req/s (median) | runs | p50 ms | p99 ms | vs direct | CPU µs/req (proxy process) | errors |',
    );
    console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const v of wanted) {
      const ss = samples.get(v) ?? [];
      const rps = median(ss.map((s) => s.rps));
      console.log(
        `| ${LABELS[v]} | ${fmt(rps)} | ${ss.map((s) => fmt(s.rps)).join(' / ')} | ${fmt(median(ss.map((s) => s.p50)), 1)} | ${fmt(median(ss.map((s) => s.p99)), 1)} | ${directRps ? `${(rps / directRps).toFixed(2)}x` : '–'} | ${fmt(median(ss.map((s) => s.cpu)), 1)} | ${ss.reduce((a, s) => a + s.errors, 0)} |`,
      );
    }
  } finally {
    for (const c of children) c.kill();
  }
}

if (process.argv[2] === 'child') {
  if (process.argv[3] === 'upstream') runUpstream();
  else runProxy(process.argv[4] as Variant, process.argv[5] as string);
} else {
  await main();
}
