/**
 * The audit trail: one record per session start, policy result, admin change, kill and close.
 * Records carry the session id, user and client address — never a token, password or secure
 * value. Lower layers emit through this interface; the admin layer provides the sink.
 */
export interface AuditEvent {
  event:
    | 'session_start'
    | 'policy_result'
    | 'variable_set'
    | 'variable_reveal'
    | 'session_kill'
    | 'session_close'
    /** The session's token was rotated at logon: `sessionId` is the id before, `newSessionId` after. */
    | 'session_rotate'
    /** A step-up re-authentication (a route's reauth_within) ended: `result` ok or failed. */
    | 'reauth'
    /** A logon refused by the logon throttle (too many failures); `scope` says which counter. */
    | 'logon_throttled'
    /** SSH: the target logon (`target`, `target_user`, `result`: `ok` or `failed`, `message`). */
    | 'ssh_target'
    /** SSH: a channel opened on the target (`channel`: shell, exec or subsystem; `command` or `subsystem`). */
    | 'ssh_channel'
    /** SSH: the connection ended (`reason`, `bytes_to_target`, `bytes_to_client`). */
    | 'ssh_end'
    /** Admin: an SSH session recording was downloaded (`channel`, `by`). */
    | 'recording_read'
    /** A user ended one of their own sessions (`/sg/sessions`): `sessionId` is the one ended, `actor` theirs. */
    | 'session_ended_by_user'
    /** A user changed their password (`/sg/password`): `plugin`, `ended` (their other sessions). */
    | 'password_changed';
  sessionId: string;
  user?: string | null;
  clientIp?: string | null;
  [field: string]: unknown;
}

export interface AuditSink {
  write(event: AuditEvent): void;
}

/** Drops every record; the default for library use and tests that do not look. */
export const noAudit: AuditSink = { write() {} };
