import { readFileSync } from 'node:fs';

const GLOBAL = `Global options (every session command):
  --store URL          memory | sqlite:PATH | redis://HOST:PORT | redis+cluster://HOST:PORT,...
                       (default: config "store", else sqlite:./var/sessiongate.db)
  --config FILE        gateway config file (YAML); reads store, keys, profiles
                       (in "data get", --config is the profile-config flag: use --config-file)
  --config-file FILE   same as --config FILE, in every command
  --key-file PATH      key ring for secure variables (default: config "keys", else ./var/keyring.json;
                       created with mode 0600 on first use)
  --url URL            act through a running gateway's admin API (e.g. http://127.0.0.1:8081)
                       instead of opening the store (not with --store, --config, --key-file)
  --token-file PATH    admin token for --url (default: SESSIONGATE_ADMIN_TOKEN, else ./var/admin.token)
  -h, --help           show help`;

export const TOP_HELP = `sessiongate — access-session gateway with APM ACCESS::session semantics

Usage:
  sessiongate serve [--config FILE] [--workers N]
  sessiongate check-config [FILE]
  sessiongate init [DIR]
  sessiongate quickstart [--port P]
  sessiongate session <command> [options]
  sessiongate users|credentials|plugin|keys <command> [options]
  sessiongate --help | --version

Commands:
  serve                run the gateway (reverse proxy with sessions and access policies)
  check-config         check a configuration file; lists every problem
  init                 write a starter sessiongate.yaml, a key ring and a users file
  quickstart           try it out: serve examples/quickstart with a demo user (npm start)
  session create       start a session; prints its token
  session exists       does a session exist (in a state)? prints true or false
  session modify       change the idle timeout or lifetime of a session
  session data get     read a session variable (or --config: a profile setting)
  session data set     set a session variable (--secure: encrypted at rest)
  session remove       close a session (reason: removed)
  session kill         close a session, or all of a user (reason: admin_kill)
  session list         list live sessions
  session show         show one session (secure values masked)
  users add|passwd|remove|list|totp
                       edit the users file of the local-users and totp plugins
  credentials set|list|remove
                       edit the sealed file of the file-credentials plugin
  plugin run           call one hook of a configured plugin; prints the result as JSON
  keys list|rotate-signing|remove-signing
                       the identity assertion's signing keys in the key ring

Run "sessiongate session --help" (or users, credentials, plugin, keys) for the options.
Exit codes: 0 ok, 1 error, 2 usage error.
`;

/** Usage of the top-level commands besides `session`, by name (no global options: they have none). */
export const TOP_USAGE: Record<string, string> = {
  serve:
    'sessiongate serve [--config FILE] [--workers N] [--port P] [--semi-space-mb MB] [--memory-reducer]\n' +
    '  Runs the gateway (default config ./sessiongate.yaml) until SIGTERM/SIGINT, then stops\n' +
    '  gracefully. --workers N runs N processes over the shared store (sqlite or redis).\n' +
    "  --semi-space-mb: V8 young-generation semi-space of each process (default 64, 0 = Node's\n" +
    "  default; a size set in NODE_OPTIONS is kept). --memory-reducer: keep V8's memory reducer\n" +
    '  (off by default: a heap shrunk while quiet makes the next busy minutes slower).',
  'check-config':
    'sessiongate check-config [FILE]\n' +
    '  Checks a configuration file without starting anything; every problem as PATH: message (line N).\n' +
    '  Exit 0 when valid, 2 when not.',
  init:
    'sessiongate init [DIR] [--user NAME]\n' +
    '  Writes into DIR (default .) a commented starter sessiongate.yaml, a key ring\n' +
    '  (var/keyring.json) and a users file (var/users.yaml) with one user (default admin) whose\n' +
    '  generated password is printed once. Refuses to overwrite any existing file (exit 1).',
  quickstart:
    'sessiongate quickstart [--port P]\n' +
    '  Tries the gateway out: serves examples/quickstart (what "npm start" runs). The first start\n' +
    '  adds the user demo to var/users.yaml and prints its generated password once.\n' +
    "  --port P: the port of the gateway (default: the example's, 8080).",
};

/** Usage of each session command, by name. */
export const COMMAND_USAGE: Record<string, string> = {
  create:
    'sessiongate session create [--timeout S] [--lifetime S] [--user NAME] [--client-ip IP]\n' +
    '                           [--state allow|deny|redirect|inprogress] [--json]\n' +
    '  Prints the new token alone on a line (the only time it is shown); --json: {"id", "token"}.\n' +
    '  The state defaults to allow. Timeouts default to the "default" profile (0 = none).',
  exists:
    'sessiongate session exists (ID | --token TOKEN) [--state allow|deny|redirect|inprogress]\n' +
    '  Prints true or false (exit 0 either way). ID is 32 hex characters; a token goes with --token.',
  modify:
    'sessiongate session modify ID [--timeout S] [--lifetime S | --remaining S] [--json]\n' +
    '  --timeout: idle timeout; --lifetime: maximum age from creation; --remaining: end in S seconds.\n' +
    '  --json prints the new deadlines.',
  'data get':
    'sessiongate session data get ID [--secure | --config] KEY\n' +
    '  Prints the value; an unset variable prints an empty line. --secure reads a secure variable;\n' +
    "  --config reads the session's effective profile setting (e.g. inactivity_timeout).",
  'data set':
    'sessiongate session data set ID [--secure] KEY [VALUE]\n' +
    '  VALUE omitted = empty string; use "--" before a VALUE starting with "-".\n' +
    '  --secure encrypts the value at rest (AES-256-GCM, key ring).',
  remove: 'sessiongate session remove ID\n  Closes the session with reason removed.',
  kill:
    'sessiongate session kill (ID | --user NAME) [--json]\n' +
    '  Closes the session, or every session of NAME, with reason admin_kill; --user prints how many.',
  list:
    'sessiongate session list [--user NAME] [--state S] [--client-ip IP] [--json]\n' +
    '  A table of live sessions: EXPIRES_IN, the time until the first deadline, and BY, which one\n' +
    '  (idle_timeout, lifetime_expired or policy_timeout); --json prints an array. A progress line\n' +
    '  goes to stderr while a large store is walked.',
  show:
    'sessiongate session show ID [--json]\n' +
    '  All fields and variables; secure values masked as ********, plugin cookies by name only.',
};

export const SESSION_HELP = `Usage: sessiongate session <command> [options]

${Object.values(COMMAND_USAGE).join('\n\n')}

${GLOBAL}
`;

/** Help of one command: a top-level one (serve, ...) or a session command with the global options. */
export function commandHelp(name: string): string {
  const top = Object.hasOwn(TOP_USAGE, name) ? TOP_USAGE[name] : undefined;
  if (top !== undefined) return `Usage: ${top}\n`;
  const usage = Object.hasOwn(COMMAND_USAGE, name) ? COMMAND_USAGE[name] : undefined;
  if (usage === undefined) return TOP_HELP;
  return `Usage: ${usage}\n\n${GLOBAL}\n`;
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

const USERS_FILE = `Options (every users command):
  --file PATH          the users file (default: users_file of the first local-users plugin in
                       --config, else ./var/users.yaml); rewritten atomically, mode 0600
  --config FILE        gateway config file (YAML) to take the users file and key ring from
  -h, --help           show help`;

const CREDENTIALS_FILE = `Options (every credentials command):
  --file PATH          the credentials file (default: credentials_file of the first
                       file-credentials plugin in --config, else ./var/credentials.json)
  --config FILE        gateway config file (YAML) to take the file and key ring from
  --key-file PATH      key ring that seals the file (default: config "keys", else ./var/keyring.json)
  -h, --help           show help`;

const KEYS_FILE = `Options (every keys command):
  --config FILE        gateway config file (YAML) to take the key ring from ("keys")
  --key-file PATH      the key ring (default: config "keys", else ./var/keyring.json); rewritten
                       atomically, mode 0600
  -h, --help           show help`;

/** Usage of the users, credentials and plugin commands, by "group command". */
export const ADMIN_USAGE: Record<string, string> = {
  'users add':
    'sessiongate users add NAME [--password-stdin] [--groups a,b]\n' +
    '  Adds a user with an scrypt password hash. Without --password-stdin a random password is\n' +
    '  made and printed alone on a line (the only time it is shown).',
  'users passwd':
    'sessiongate users passwd NAME [--password-stdin] [--keep-sessions | --url URL [--token-file PATH] | --store URL]\n' +
    '  Sets a new password (a random one, printed once, without --password-stdin), then ends every\n' +
    '  session of NAME with reason password_changed and says how many on stderr: in the store (--store,\n' +
    "  else the --config file's store, else sqlite:./var/sessiongate.db; sqlite or redis), or through a\n" +
    '  running gateway with --url (needed for a memory store). --keep-sessions leaves them open.',
  'users remove': 'sessiongate users remove NAME\n  Removes the user and everything stored for it.',
  'users list':
    'sessiongate users list [--json]\n  Names, groups, disabled, whether a password and a TOTP secret are set (never a hash).',
  'users totp':
    'sessiongate users totp NAME [--issuer NAME] [--key-file PATH] [--no-qr]\n' +
    '  Enrols NAME for the totp plugin: a new secret, sealed with the key ring into the users\n' +
    '  file; prints it once as a QR code for an authenticator app and, on the last line, as an\n' +
    '  otpauth:// URI (--no-qr: the URI alone).',
  'credentials set':
    'sessiongate credentials set ACCOUNT@ASSET (--password-stdin | --private-key-file FILE --key-type TYPE)\n' +
    '  Sets the password (from standard input) or the private key (PEM file; TYPE e.g. ssh-rsa)\n' +
    '  of an entry, replacing the one of that kind.',
  'credentials list':
    'sessiongate credentials list [--json]\n  Entries with the number of passwords and the key types (never a secret).',
  'credentials remove': 'sessiongate credentials remove ACCOUNT@ASSET\n  Removes the entry.',
  'plugin run':
    'sessiongate plugin run PLUGIN HOOK --config FILE [--args JSON] [--cookie JSON]\n' +
    '                       [--session-cookie JSON] [--key-file PATH]\n' +
    "  Calls one hook of the config's plugin PLUGIN outside the gateway, with the SPS arguments\n" +
    '  in --args (session_id: given or generated) and the two cookies (default {}). Prints JSON:\n' +
    '  {"ok", "verdict"... | "passwords" | "private_keys", "cookie", "session_cookie", "failure"?}.\n' +
    '  What the plugin prints goes to stderr. Exit 0 ok, 1 the plugin failed, 2 usage error.',
  'keys list':
    'sessiongate keys list [--json]\n' +
    "  The identity assertion's signing keys: id, algorithm, created, which one is active (never\n" +
    '  key material). A missing key ring is created.',
  'keys rotate-signing':
    'sessiongate keys rotate-signing\n' +
    '  Adds a new signing key and makes it the active one (prints its id). The gateway signs with\n' +
    '  it from its next start; older public keys stay in /sg/.well-known/jwks.json.',
  'keys remove-signing':
    'sessiongate keys remove-signing ID\n' +
    '  Removes an old (not the active) signing key: assertions it signed no longer verify.',
};

const GROUP_OPTIONS: Record<string, string> = {
  users: USERS_FILE,
  credentials: CREDENTIALS_FILE,
  plugin: '',
  keys: KEYS_FILE,
};

/** Help of one of the users, credentials or plugin commands. */
export function adminCommandHelp(name: string): string {
  const group = name.split(' ')[0] ?? '';
  const options = GROUP_OPTIONS[group] ?? '';
  return `Usage: ${ADMIN_USAGE[name] ?? ''}\n${options ? `\n${options}\n` : ''}`;
}

/** Help of a whole group: every command's usage and the common options. */
export function groupHelp(group: string): string {
  const usages = Object.entries(ADMIN_USAGE)
    .filter(([name]) => name.startsWith(`${group} `))
    .map(([, text]) => text);
  const options = GROUP_OPTIONS[group] ?? '';
  return `Usage: sessiongate ${group} <command> [options]\n\n${usages.join('\n\n')}\n${options ? `\n${options}\n` : ''}`;
}
