import { z } from 'zod';

const WHOLE = 'expected a whole number >= 0';
const port = z
  .int({ error: 'expected a port number' })
  .min(1, { error: 'expected a port number' })
  .max(65_535, { error: 'expected a port number' });
const text = (what: string) => z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });
const names = (what: string) => z.array(text(what), { error: `expected a list of ${what}s` });

/**
 * Who may reach what through an SSH route: an entry allows its users and groups (both absent:
 * everyone the policy allowed) to log on as one of `target_users` to the route's hosts (or the
 * narrower `hosts`) on its ports (or the narrower `ports`). `*` in a list means any.
 */
const allowEntry = z.strictObject({
  users: names('user name').optional(),
  groups: names('group name').optional(),
  target_users: names('target user name').min(1, { error: 'name at least one target user (or *)' }),
  hosts: names('host pattern').optional(),
  ports: z.array(port).optional(),
});
export type SshAllowEntry = z.infer<typeof allowEntry>;

/** Forwarding through the gateway: refused unless switched on here. */
const forwarding = z
  .strictObject({
    /** `ssh -L`: the gateway opens the connection from the target (direct-tcpip). */
    local: z.boolean().default(false),
    /** `ssh -R`: the target listens and its connections come back to the client. */
    remote: z.boolean().default(false),
  })
  .default({ local: false, remote: false });

const recording = z.strictObject({
  /** Folder of the asciicast v2 files, one per shell or exec channel. */
  dir: text('a folder').default('./var/recordings'),
  /** Record what the user types as well (passwords typed into the target's prompts included). */
  input: z.boolean().default(false),
});

const sshRoute = z.strictObject({
  /** Target hosts this route covers: shell patterns (`db*.internal`), names, addresses or CIDRs. */
  hosts: names('host pattern').min(1, { error: 'name at least one target host pattern' }),
  ports: z.array(port).min(1).default([22]),
  profile: text('a profile name').default('default'),
  /** The credential-store plugin that logs on to the target; absent: the user's own password is relayed. */
  credentials: z.strictObject({ plugin: text('a credential-store plugin name') }).optional(),
  allow: z.array(allowEntry).min(1, { error: 'an SSH route needs at least one allow entry' }),
  recording: recording.optional(),
  forwarding,
  /** Environment variables the client may pass to the target (`*` at the end: a prefix). */
  env: names('variable name').default(['LANG', 'LC_*']),
});
export type SshRouteConfig = z.infer<typeof sshRoute>;

/**
 * The SSH gateway (docs/ssh.md): its listener and host keys, the known hosts of the targets,
 * and the routes to them. Absent: no SSH listener.
 */
export const sshSchema = z.strictObject({
  listen: z
    .strictObject({
      host: text('a host name or address').default('127.0.0.1'),
      port: z.int({ error: 'expected a port number' }).min(0).max(65_535).default(2222),
    })
    .default({ host: '127.0.0.1', port: 2222 }),
  /** Private host key files (OpenSSH format); a missing one is created as ed25519 at start. */
  host_keys: names('key file').min(1).default(['./var/ssh_host_ed25519_key']),
  /** The targets' host keys, in OpenSSH known_hosts format, kept by the operator. */
  known_hosts: text('a file').default('./var/known_hosts'),
  /** A target whose key is not in known_hosts: refuse it, or pin its key there on first use. */
  unknown_hosts: z.enum(['refuse', 'pin']).default('refuse'),
  /** Shown by the client before logon. */
  banner: z.string().optional(),
  /** Public keys (authorized_keys lines) by gateway user: such a key stands for the policy's logon. */
  authorized_keys: z.record(z.string(), z.array(z.string())).default({}),
  /** How often each process looks for its connections' sessions that were killed or timed out (ms). */
  check_interval_ms: z.int().min(50).max(60_000).default(1000),
  /**
   * Each process keeps its connections' sessions alive; those of a process that died end this
   * long after its last renewal (closed as lifetime_expired, session_ended delivered by another process).
   */
  orphan_after_seconds: z.int().min(3).max(86_400).default(60),
  connect_timeout_ms: z.int({ error: WHOLE }).min(100).default(10_000),
  /** A connection not logged on within this many seconds is ended (sshd's LoginGraceTime). */
  login_grace_seconds: z.int({ error: WHOLE }).min(1).max(3600).default(120),
  /** Connections of one process that have not logged on yet, at most; more are closed at once. */
  max_unauthenticated: z.int({ error: WHOLE }).min(1).default(100),
  routes: z.array(sshRoute).min(1, { error: 'the SSH gateway needs at least one route' }),
});
export type SshConfig = z.infer<typeof sshSchema>;
