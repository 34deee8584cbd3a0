import type { SessionRecord } from '../core/session-types.js';

// The shapes the policy runner and the step-up run share with the request flow.

/** What the client brought this time: logon credentials and/or the answer to a question. */
export interface PolicyInput {
  credentials?: { username: string; password: string };
  /**
   * The user proved who they are another way (an SSH public key listed for them): the logon
   * step records the name without a password, and the first authenticate step (the password
   * check) accepts the user unasked; later ones (a second factor) run as usual.
   */
  authenticatedUser?: string;
  answer?: { key: string; value: string };
}

/** Where the policy stopped: it needs input, or it ended. */
export type PolicyOutcome =
  /**
   * credentialsRefused: an authenticate step refused the credentials just given; username: the
   * name they were given for (the form shows it again, never the password).
   */
  | { kind: 'logon'; error?: string; credentialsRefused?: true; username?: string }
  /** `redirect`: the answer is given at that URL (an identity provider), not in a form. */
  /** `otpauth`: the question enrols a TOTP secret (shown as a QR code; never stored with the session). */
  | {
      kind: 'question';
      key: string;
      prompt: string;
      echo: boolean;
      error?: string;
      redirect?: string;
      otpauth?: string;
    }
  | { kind: 'allow' }
  /** failedLogons: ended because that many logons failed in a row (`max_logon_attempts`), the last for username. */
  | { kind: 'deny'; reason?: string; credentialsRefused?: true; failedLogons?: number; username?: string }
  | { kind: 'redirect'; url: string }
  /** Too many failed logons: refused before the credentials were checked (the gateway's throttle). */
  | {
      kind: 'throttled';
      scope: 'user_address' | 'user' | 'address';
      retryAfterSeconds: number;
      until: number;
    };

/** The facts of the request the policy runs in, for plugins and rules. */
export interface PolicyRequest {
  clientIp: string;
  clientPort: number;
  protocol: string;
  serverHostname: string;
  /** SSH: the target user and port the client asked for (SPS's server_username, server_port). */
  serverUsername?: string;
  serverPort?: number;
  /** Raise ACCESS_POLICY_AGENT_EVENT in the request's context (else the runner's events). */
  agentEvent?: (session: SessionRecord, agentId: string) => Promise<void>;
}

/** The question a paused policy waits on, kept with the session (any process continues it). */
export const QUESTION_VAR = 'sessiongate.policy.question';

export interface PendingQuestion {
  step: number;
  key: string;
  prompt: string;
  echo: boolean;
  redirect?: string;
}

/** The pending question of QUESTION_VAR's text, if any. */
export function parseQuestion(text: string | undefined): PendingQuestion | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as PendingQuestion;
  } catch {
    return undefined;
  }
}
