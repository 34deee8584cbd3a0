import { closeSync, existsSync, mkdirSync, openSync, rmSync, rmdirSync, writeSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { Keyring } from '../session/keyring.js';
import { generatePassword, hashPassword } from '../plugins/builtin/password.js';
import { isUserName, USER_NAME_RE, UsersFileEditor } from '../plugins/builtin/users-file.js';
import { expectPositionals, parseCommand, usage } from './args.js';
import type { Io } from './context.js';

/** What `sessiongate init` writes, relative to its folder. */
export const INIT_FILES = {
  config: 'sessiongate.yaml',
  keys: 'var/keyring.json',
  users: 'var/users.yaml',
  sshHostKey: 'var/ssh_host_ed25519_key',
} as const;

/**
 * The commented starter configuration: every section of the schema
 * (src/gateway/config/schema.ts) with its default, valid as written. docs/configuration.md
 * explains each key.
 */
export function starterConfig(): string {
  return `# sessiongate configuration, written by \`sessiongate init\`.
# Every setting is shown with its default; docs/configuration.md explains each one.
# Relative paths are relative to this file's folder. Check it with:
#   sessiongate check-config sessiongate.yaml
# and run the gateway with:
#   sessiongate serve --config sessiongate.yaml

# Where the gateway listens. A tls section makes it https (PEM files).
listen:
  host: 127.0.0.1
  port: 8080
  # tls: { cert: ./tls/cert.pem, key: ./tls/key.pem }
  max_header_bytes: 16384        # larger request heads get 431
  # Strict-Transport-Security on a tls listener (false: none).
  hsts: { max_age: 31536000, include_subdomains: false, preload: false }

# The admin API listener (loopback, bearer token from token_file).
admin:
  enabled: true
  host: 127.0.0.1
  port: 8081
  token_file: ./var/admin.token
  reveal_secure: false           # true: ?secure=1 answers secure values in clear (audited; never the page)

# Where sessions live: memory (one process), sqlite:PATH (one machine, many processes),
# redis://host:port or redis+cluster://host:port,host:port (many machines).
store: sqlite:./var/sessiongate.db

# The key ring that encrypts secure session variables and sealed secrets (mode 0600).
keys: ./var/keyring.json

# Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDRs),
# e.g. [127.0.0.1, 10.0.0.0/8]. Empty: the peer address is the client address.
trusted_proxies: []

# Authentication, authorization and credential-store plugins (docs/plugins.md).
plugins:
  - name: users
    runtime: builtin             # builtin | module | process | sps-python
    type: local-users            # local-users | totp | ldap | file-credentials
    config:
      users_file: ./var/users.yaml
  # A second factor: add { authenticate: otp } after { authenticate: users } in the policy.
  # With self_enrolment a user without a secret sets one up at the next logon (a QR code in the
  # browser, confirmed with a first code), so no account is locked out; or enrol users with
  # \`sessiongate users totp NAME --config sessiongate.yaml\` and drop self_enrolment.
  # - { name: otp, runtime: builtin, type: totp, config: { users_file: ./var/users.yaml, self_enrolment: true } }

# Access profiles: the session rules and the access policy of the routes that use them.
profiles:
  default:
    cookie:
      name: MRHSession
      secure: auto               # true | false | auto (Secure on https)
      same_site: Lax             # Lax | Strict
      # domain: example.org
    inactivity_timeout: 900      # seconds without a request before the session ends (0 = none)
    max_session_timeout: 604800  # seconds from the start, at most (0 = none)
    policy_timeout: 300          # seconds to finish the logon
    # max_sessions_per_user: { limit: 5, on_limit: evict_oldest }   # or on_limit: refuse
    max_concurrent_sessions: 0   # all sessions of this profile (0 = no limit)
    # unfinished logons per client address: over it the address's oldest one is closed
    # (evict_oldest) or the new visitor gets 429 (refuse); bounds what floods can store
    max_in_progress_per_client_ip: { limit: 20, on_limit: evict_oldest }
    # failed logons counted in the store; over a limit the logon gets 429 until the window ends
    logon_throttle:
      per_user_address: { limit: 5, window: 900 }   # window in seconds; limit 0 = off
      per_user: { limit: 30, window: 3600 }
      per_address: { limit: 100, window: 900 }
    failure_delay_ms: { min: 1000, max: 3000 }   # a failed logon waits this long
    max_logon_attempts: 3
    keep_password: false         # true: keep the logon password after the policy (for rules that pass it on)
    realm: sessiongate           # shown on the logon page and in the Basic challenge
    # logout_redirect: https://example.org/bye
    # Steps, in order: logon, {authenticate: PLUGIN}, {authorize: PLUGIN},
    # {assign: {VARIABLE: "text %{other.variable}"}}, {event: ID}, and an ending:
    # allow, deny or {redirect: URL}.
    policy:
      - logon
      - authenticate: users
      - allow
    settings: {}                 # extra profile settings rules may read
    # Who the user is, for the application (docs/identity.md): headers the gateway sets from
    # session variables, replacing any copy the client sent (those are removed before rules run,
    # as are X-Forwarded-User, X-Remote-User, Forwarded, ... and the names in strip_headers).
    identity_headers: { X-USERNAME: session.logon.last.username }
    strip_headers: []
    # A signed X-Sessiongate-Assertion (ES256 JWT; public keys at /sg/.well-known/jwks.json):
    # true, or { lifetime: 60, issuer: sessiongate, audience: app.example.org }.
    identity_assertion: false

# Routes: the first whose host and path prefix match (longest path first) handles a request.
routes:
  - match: { host: "*", path: / }
    # http(s)://host:port of your application; demo is a small built-in page that
    # shows the headers it received.
    upstream: demo
    profile: default
    timeouts: { connect_ms: 5000, headers_ms: 30000, body_ms: 300000 }
    preserve_host: false         # send the client's Host instead of the upstream's
    forward_authorization: false # pass the client's Authorization header upstream
    allow_encoded_slashes: false # true: accept %2F / %5C in paths (forwarded still encoded)
    # credentials: { plugin: vault, account: svc-app, inject: basic }   # basic | bearer | {header: NAME}
    pass_access_token: false     # true: the OIDC access token of the session as Authorization: Bearer
    # bearer: { plugin: sso, audience: https://api.example.org }   # API clients: an OIDC access token instead of a cookie
    # acl: { users: [alice], groups: [admins] }   # who may use the route; absent = every allowed session
    rules: []                    # event rule files for this route (docs/rules.md)
    # reauth_within: 300         # step-up: a logon older than this (seconds) is asked again here
    # identity_headers: { X-Tenant: session.custom.tenant }   # added to the profile's; null drops one
    # strip_headers: [ X-Debug-User ]                          # added to the profile's
    # identity_assertion: true                                 # replaces the profile's setting

# Event rules for every route (TypeScript files, docs/rules.md), and how long a rule
# handler may run before the request fails with 500.
rules: []
rule_timeout_ms: 1000

# The audit trail: JSON lines to standard output, or appended to a file.
audit: {}
# audit: { file: ./var/audit.log }

# The close pipeline (every closed session reaches the audit trail and each plugin's
# session_ended exactly once): how long a stop keeps delivering before it hands the rest
# back, and when a subscriber that lags is named behind or stuck (/readyz, the admin page).
close_pipeline:
  shutdown_grace_ms: 5000
  behind_after_ms: 60000
  stuck_after_ms: 120000         # /readyz answers 503 while a subscriber is stuck

# The SSH gateway (docs/ssh.md): \`ssh -p 2222 root@db1.internal@gateway\` logs on to the
# gateway through the route's profile, then to the target with the credential store's keys.
# Uncomment and name your targets to switch it on.
# ssh:
#   listen: { host: 127.0.0.1, port: 2222 }
#   host_keys: [ ./var/ssh_host_ed25519_key ]   # written by init; a missing one is created
#   known_hosts: ./var/known_hosts               # the targets' host keys (ssh-keyscan HOST >> ...)
#   unknown_hosts: refuse                        # refuse | pin (trust on first use)
#   authorized_keys: {}                          # { alice: [ "ssh-ed25519 AAAA... alice@laptop" ] }
#   check_interval_ms: 1000                      # how soon a kill or timeout ends the connection
#   orphan_after_seconds: 60                     # a dead process's sessions end after this long
#   connect_timeout_ms: 10000
#   routes:
#     - hosts: [ "*.internal" ]                  # target host patterns, addresses or CIDRs
#       ports: [ 22 ]
#       profile: default
#       credentials: { plugin: vault }           # absent: the user's own password is relayed
#       allow:
#         - { users: [alice], groups: [admins], target_users: [root], hosts: [ "db*" ], ports: [ 22 ] }
#       recording: { dir: ./var/recordings, input: false }   # asciicast v2, one file per channel
#       forwarding: { local: false, remote: false }          # ssh -L / ssh -R
#       env: [ LANG, "LC_*" ]

# Idle-timer writes are coalesced to this resolution (ms).
touch_resolution_ms: 1000

log:
  level: info                    # debug | info | warn | error
`;
}

/**
 * `sessiongate init [DIR] [--user NAME]`: write a commented starter sessiongate.yaml, a key
 * ring and a users file with one user into DIR (default: the current folder), printing the
 * user's generated password once. Refuses (exit 1, nothing written) when any of the files
 * exists.
 */
export async function init(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { user: { type: 'string' } }, { command: 'init' });
  expectPositionals(positionals, ['DIR'], 0, 'init');
  const user = values.user ?? 'admin';
  if (!isUserName(user)) throw usage(`--user: a user name matches ${USER_NAME_RE.source}`, 'init');
  const dir = resolve(io.cwd, positionals[0] ?? '.');
  const shown = (name: string) => relative(io.cwd, join(dir, name)) || '.';
  for (const name of Object.values(INIT_FILES)) {
    if (existsSync(join(dir, name))) {
      throw new Error(
        `init: ${shown(name)} already exists; nothing was written (move it away or pick another DIR)`,
      );
    }
  }
  const password = generatePassword();
  const hash = await hashPassword(password);
  const created: string[] = [];
  let hostKey: string;
  const madeVar = !existsSync(join(dir, 'var'));
  try {
    mkdirSync(join(dir, 'var'), { recursive: true, mode: 0o700 });
    writeNew(join(dir, INIT_FILES.config), starterConfig(), 0o644);
    created.push(join(dir, INIT_FILES.config));
    Keyring.loadOrCreate(join(dir, INIT_FILES.keys));
    created.push(join(dir, INIT_FILES.keys));
    const users = UsersFileEditor.open(join(dir, INIT_FILES.users));
    users.set(user, { password: hash, groups: ['admins'] });
    users.save();
    created.push(join(dir, INIT_FILES.users));
    // Loaded here only: ssh2 is not needed by the other commands.
    const { loadOrCreateHostKey } = await import('../ssh/host-keys.js');
    created.push(join(dir, INIT_FILES.sshHostKey), `${join(dir, INIT_FILES.sshHostKey)}.pub`);
    hostKey = loadOrCreateHostKey(join(dir, INIT_FILES.sshHostKey)).fingerprint;
  } catch (err) {
    // Take back only what this run made; files that were there are never touched.
    for (const file of created) rmSync(file, { force: true });
    if (madeVar) {
      try {
        rmdirSync(join(dir, 'var'));
      } catch {
        // not empty or not there
      }
    }
    throw new Error(`init: ${(err as Error).message}`, { cause: err });
  }
  const config = shown(INIT_FILES.config);
  io.out(
    `Wrote ${config}, ${shown(INIT_FILES.keys)} (mode 0600) and ${shown(INIT_FILES.users)} (mode 0600).\n` +
      `  user name: ${user}\n` +
      `  password:  ${password}\n` +
      `  (shown only now; change it with: sessiongate users passwd ${user} --config ${config})\n` +
      `SSH host key ${shown(INIT_FILES.sshHostKey)}: ${hostKey}\n` +
      `Next: set the upstream of the route in ${config}, then\n` +
      `  sessiongate check-config ${config}\n` +
      `  sessiongate serve --config ${config}\n`,
  );
  return 0;
}

/** Create a file that must not exist yet (O_EXCL): a file made meanwhile is never overwritten. */
function writeNew(path: string, text: string, mode: number): void {
  const fd = openSync(path, 'wx', mode);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
