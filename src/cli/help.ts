import { readFileSync } from 'node:fs';

const GLOBAL = `Global options (every session command):
  --store URL          memory | sqlite:PATH  (default: config "store", else sqlite:./var/sessiongate.db)
  --config FILE        gateway config file (YAML); reads store, keys, profiles
                       (in "data get", --config is the profile-config flag: use --config-file)
  --config-file FILE   same as --config FILE, in every command
  --key-file PATH      key ring for secure variables (default: config "keys", else ./var/keyring.json;
                       created with mode 0600 on first use)
  -h, --help           show help`;

export const TOP_HELP = `sessiongate — access-session gateway with APM ACCESS::session semantics

Usage:
  sessiongate serve [--config FILE] [--workers N]
  sessiongate check-config [FILE]
  sessiongate session <command> [options]
  sessiongate --help | --version

Commands:
  serve                run the gateway (reverse proxy with sessions and access policies)
  check-config         check a configuration file; lists every problem
  session create       start a session; prints its token
  session exists       does a session exist (in a state)? prints true or false
  session modify       change the idle timeout or lifetime of a session
  session data get     read a session variable (or --config: a profile setting)
  session data set     set a session variable (--secure: encrypted at rest)
  session remove       close a session (reason: removed)
  session list         list live sessions
  session show         show one session (secure values masked)

Run "sessiongate session --help" for the options. Exit codes: 0 ok, 1 error, 2 usage error.
`;

/** Usage of each session command, by name. */
export const COMMAND_USAGE: Record<string, string> = {
  serve:
    'sessiongate serve [--config FILE] [--workers N] [--port P]\n' +
    '  Runs the gateway (default config ./sessiongate.yaml) until SIGTERM/SIGINT, then stops\n' +
    '  gracefully. --workers N runs N processes over the shared store (sqlite or redis).',
  'check-config':
    'sessiongate check-config [FILE]\n' +
    '  Checks a configuration file without starting anything; every problem as PATH: message (line N).\n' +
    '  Exit 0 when valid, 2 when not.',
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
  list:
    'sessiongate session list [--user NAME] [--state S] [--json]\n' +
    '  A table of live sessions (idle and lifetime left); --json prints an array.',
  show:
    'sessiongate session show ID [--json]\n' +
    '  All fields and variables; secure values masked as ********, plugin cookies by name only.',
};

export const SESSION_HELP = `Usage: sessiongate session <command> [options]

${Object.values(COMMAND_USAGE).join('\n\n')}

${GLOBAL}
`;

export function commandHelp(name: string): string {
  return `Usage: ${COMMAND_USAGE[name] ?? ''}\n\n${GLOBAL}\n`;
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
