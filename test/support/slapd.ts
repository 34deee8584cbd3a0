/**
 * A real OpenLDAP server for the tests: `/usr/sbin/slapd` (Debian package `slapd`) with a
 * generated `slapd.conf`, an mdb database in a temporary folder, on a free loopback port,
 * optionally with a self-signed certificate for StartTLS (made with `openssl`). It runs in the
 * foreground as our child and is stopped by pid (SIGTERM, then SIGKILL), on process exit too,
 * and by a small watchdog shell should this process be killed outright. The package's own
 * service is not used.
 *
 * The directory (`dc=example,dc=org`):
 * - `uid=alice,ou=people,...` (password `alice-pw`, mail, displayName, lastLogon 133500000000000000),
 *   member of `cn=admins` and `cn=ops`;
 * - `uid=bob,ou=people,...` (password `bob-pw`), member of `cn=ops`;
 * - `cn=reader,dc=example,dc=org` (password `reader-pw`), a service account for searches.
 * `lastLogon` is a test schema attribute (an integer, named like Active Directory's) in the
 * auxiliary class `sgTestAccount`; `memberOf` is kept by the memberof overlay.
 *
 * Without slapd the tests are skipped with one loud line, except under CI=true (a failure).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ldapts';
export { freePort } from './processes.js';
import { canConnect, freePort, serverRequired, skipReason, track, untrack } from './processes.js';

export const SLAPD = '/usr/sbin/slapd';
export const BASE_DN = 'dc=example,dc=org';
export const ROOT_DN = `cn=admin,${BASE_DN}`;
const ROOT_PW = 'admin-pw';

export interface Slapd {
  url: string;
  port: number;
  pid: number;
  /** The CA certificate (PEM file) when started with `tls: true`. */
  caFile?: string;
  stop(): Promise<void>;
}

/** Why the slapd tests cannot run here, or false. Prints the loud line once (not under CI). */
export function slapdSkip(): string | false {
  return skipReason(
    'LDAP',
    existsSync(SLAPD),
    `${SLAPD} is missing: \`apt-get install slapd\` enables the ldap tests`,
  );
}

/** Under CI=true a missing slapd fails the run instead of skipping. */
export const slapdRequired = serverRequired;

function conf(dir: string, tls: boolean): string {
  return `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'lastLogon'
  DESC 'sessiongate tests: last logon time as an integer, like Active Directory'
  EQUALITY integerMatch ORDERING integerOrderingMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'sgTestAccount' AUXILIARY MAY lastLogon )
pidfile ${dir}/slapd.pid
argsfile ${dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
${tls ? `TLSCertificateFile ${dir}/server.pem\nTLSCertificateKeyFile ${dir}/server.key\n` : ''}
database mdb
maxsize 16777216
suffix "${BASE_DN}"
rootdn "${ROOT_DN}"
rootpw ${ROOT_PW}
directory ${dir}/db
overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
`;
}

/** A CA and a server certificate for 127.0.0.1 / localhost, with the openssl command. */
function makeCertificates(dir: string): void {
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=sessiongate test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
  ]);
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
    '-out',
    'server.pem',
  ]);
}

/** Start slapd with the test directory loaded. */
export async function startSlapd(options: { tls?: boolean } = {}): Promise<Slapd> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-slapd-'));
  mkdirSync(join(dir, 'db'));
  const tls = options.tls ?? false;
  if (tls) makeCertificates(dir);
  writeFileSync(join(dir, 'slapd.conf'), conf(dir, tls));
  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  let output = '';
  const child = spawn(SLAPD, ['-f', join(dir, 'slapd.conf'), '-h', `${url}/`, '-d', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  track(child);
  let dead = false;
  void exited.then(() => (dead = true));

  const stop = async () => {
    if (!dead) {
      child.kill('SIGTERM');
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
      await stop();
      throw new Error(`slapd did not start on ${url}: ${output.trim().slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await load(url);
  return { url, port, pid: child.pid!, ...(tls ? { caFile: join(dir, 'ca.pem') } : {}), stop };
}

/** Add the test entries through the server, so the memberof overlay maintains memberOf. */
async function load(url: string): Promise<void> {
  const client = new Client({ url, timeout: 5000, connectTimeout: 5000 });
  try {
    await client.bind(ROOT_DN, ROOT_PW);
    await client.add(BASE_DN, { objectClass: ['dcObject', 'organization'], dc: 'example', o: 'Example' });
    for (const ou of ['people', 'groups']) {
      await client.add(`ou=${ou},${BASE_DN}`, { objectClass: 'organizationalUnit', ou });
    }
    await client.add(`cn=reader,${BASE_DN}`, {
      objectClass: ['organizationalRole', 'simpleSecurityObject'],
      cn: 'reader',
      userPassword: 'reader-pw',
    });
    const person = (uid: string, extra: Record<string, string | string[]>) =>
      client.add(`uid=${uid},ou=people,${BASE_DN}`, {
        objectClass: ['inetOrgPerson', 'sgTestAccount'],
        uid,
        cn: uid,
        sn: uid,
        userPassword: `${uid}-pw`,
        ...extra,
      });
    await person('alice', {
      mail: 'alice@example.org',
      displayName: 'Alice Example',
      lastLogon: '133500000000000000',
    });
    await person('bob', { mail: 'bob@example.org' });
    const group = (cn: string, members: string[]) =>
      client.add(`cn=${cn},ou=groups,${BASE_DN}`, {
        objectClass: 'groupOfNames',
        cn,
        member: members.map((m) => `uid=${m},ou=people,${BASE_DN}`),
      });
    await group('admins', ['alice']);
    await group('ops', ['alice', 'bob']);
  } finally {
    await client.unbind().catch(() => undefined);
  }
}
