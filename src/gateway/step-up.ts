import { parseSessionId } from '../core/ids.js';
import type { SessionRecord } from '../core/session-types.js';
import type { PluginHost } from '../plugins/host.js';
import type { SessionEngine } from '../session/engine.js';
import type { PolicyStep, ProfileConfig } from './config/schema.js';
import { callStep, LOGON_TIME_VAR, unixNow, USERNAME_VAR } from './policy-call.js';
import {
  parseQuestion,
  QUESTION_VAR,
  type PendingQuestion,
  type PolicyInput,
  type PolicyOutcome,
  type PolicyRequest,
} from './policy-types.js';

// Progress of a step-up, kept with the (allowed) session like the policy's own.
const STEP = 'sessiongate.stepup.step';
const STARTED = 'sessiongate.stepup.started';
const ATTEMPTS = 'sessiongate.stepup.attempts';
/** The logon password of the step-up (secure), for the authenticate steps after the logon. */
const PASSWORD = 'sessiongate.stepup.password';
/** Where the step-up goes when it succeeds: the request that needed it. */
export const STEP_UP_LANDING = 'sessiongate.stepup.landinguri';

/** A step-up is under way on the session (its forms post to /sg/logon like a logon's). */
export function stepUpPending(session: SessionRecord): boolean {
  return Boolean(session.variables[STEP]);
}

/** The session's last logon is older than `seconds` (or unknown): a step-up is due. */
export function stepUpDue(session: SessionRecord, seconds: number, nowMs: number): boolean {
  const at = Number(session.variables[LOGON_TIME_VAR]);
  return !Number.isFinite(at) || at <= 0 || nowMs / 1000 - at > seconds;
}

/**
 * Step-up re-authentication of an allowed session: the profile's `logon` and `authenticate`
 * steps run again (authorize, assign, event and the endings do not), while the session stays
 * allowed for everything else. The logon name must be the session's user, and a plugin that
 * names another user is refused: the session never changes hands. Success records the logon
 * time; failure (the profile's max_logon_attempts) ends the step-up, not the session.
 *
 * @example
 * ```ts
 * const out = await stepUp.run(session, { credentials }, request);
 * if (out.kind === 'allow') rotateAndGoOn();
 * ```
 */
export class StepUp {
  private readonly o: { engine: SessionEngine; host: PluginHost; profile: ProfileConfig };

  constructor(
    private readonly engine: SessionEngine,
    host: PluginHost,
    private readonly profile: ProfileConfig,
  ) {
    this.o = { engine, host, profile };
  }

  async run(session: SessionRecord, input: PolicyInput, request: PolicyRequest): Promise<PolicyOutcome> {
    const id = session.id;
    const steps = this.profile.policy;
    let { i, pending } = await this.resume(session);
    let credentials = input.credentials;
    for (; i < steps.length; i++) {
      const step = steps[i]!;
      if (step === 'logon') {
        if (!credentials) return this.pause(id, i, { kind: 'logon' });
        if (!isSameUser(session, credentials.username)) {
          return this.failed(id, i, `Log on again as ${session.user ?? 'the same user'}.`);
        }
        await this.engine.data.set(id, PASSWORD, credentials.password, { secure: true });
        credentials = undefined;
        continue;
      }
      if (step === 'allow' || step === 'deny' || 'redirect' in step) break;
      if (!('authenticate' in step)) continue;
      const answer = pending?.step === i && input.answer?.key === pending.key ? input.answer : undefined;
      pending = undefined;
      const result = await callStep(this.o, id, step, request, answer, PASSWORD);
      if (result.verdict === 'NEEDINFO' && result.question) {
        if (result.question.redirect) return this.end(id, 'This logon cannot be repeated here.');
        const q: PendingQuestion = {
          step: i,
          key: result.question.key,
          prompt: result.question.prompt,
          echo: !result.question.disable_echo,
        };
        await this.engine.data.set(id, QUESTION_VAR, JSON.stringify(q));
        return this.pause(id, i, {
          kind: 'question',
          key: q.key,
          prompt: q.prompt,
          echo: q.echo,
          ...(answer && result.reason ? { error: result.reason } : {}),
          ...(result.question.otpauth ? { otpauth: result.question.otpauth } : {}),
        });
      }
      if (result.verdict === 'NONE') continue;
      if (result.verdict === 'ACCEPT' && (!result.gateway_user || result.gateway_user === session.user))
        continue;
      // DENY, a failed plugin, or a plugin that names someone else
      return this.failed(id, i, 'Logon failed. Check your user name and password.');
    }
    await this.clear(id, { [LOGON_TIME_VAR]: unixNow(this.engine) });
    return { kind: 'allow' };
  }

  /** The step to go on from; a new step-up (or one left longer than policy_timeout) starts over. */
  private async resume(
    session: SessionRecord,
  ): Promise<{ i: number; pending?: PendingQuestion | undefined }> {
    const step = Number(session.variables[STEP] ?? 0); // stored one up: 0 is "none"
    const started = Number(session.variables[STARTED] ?? 0);
    const timeout = this.profile.policy_timeout * 1000;
    if (step > 0 && (timeout <= 0 || this.engine.clock.now() - started < timeout))
      return { i: step - 1, pending: parseQuestion(session.variables[QUESTION_VAR]) };
    await this.write(session.id, { [STARTED]: String(this.engine.clock.now()), [ATTEMPTS]: '0' });
    // The plugins start afresh, as in a new logon (a TOTP step's attempts, its verified mark).
    for (const name of new Set(this.profile.policy.flatMap(authenticatePlugin))) {
      if (Object.hasOwn(session.cookies, name)) await this.engine.savePluginState(session.id, name, {});
    }
    return { i: 0 };
  }

  private async pause(id: string, step: number, outcome: PolicyOutcome): Promise<PolicyOutcome> {
    await this.engine.data.set(id, STEP, String(step + 1)); // 0 is "none": stored one up
    return outcome;
  }

  /** A refused step: back to the logon while attempts remain, else the step-up ends. */
  private async failed(id: string, i: number, error: string): Promise<PolicyOutcome> {
    const attempts = Number((await this.engine.data.get(id, ATTEMPTS)) ?? 0) + 1;
    await this.engine.data.set(id, ATTEMPTS, String(attempts));
    const back = this.profile.policy.lastIndexOf('logon', i);
    if (back >= 0 && attempts < this.profile.max_logon_attempts) {
      await this.write(id, {});
      return this.pause(id, back, { kind: 'logon', error, credentialsRefused: true });
    }
    return this.end(id, 'Re-authentication failed.', true);
  }

  private async end(id: string, reason: string, refused = false): Promise<PolicyOutcome> {
    await this.clear(id, {});
    return { kind: 'deny', reason, ...(refused ? { credentialsRefused: true as const } : {}) };
  }

  private async clear(id: string, set: Record<string, string>): Promise<void> {
    await this.write(id, set, [STEP, STARTED, ATTEMPTS]);
  }

  /**
   * One store write: set `set`, delete `drop`, and always the pending question and the
   * step-up's password (a new logon step asks for it again).
   */
  private async write(id: string, set: Record<string, string>, drop: string[] = []): Promise<void> {
    await this.engine.store.update(
      parseSessionId(id),
      { setVariables: { [QUESTION_VAR]: '', ...set }, deleteVariables: drop, deleteSecure: [PASSWORD] },
      { now: this.engine.clock.now() },
    );
  }
}

/** The name given is the session's user (or its logon name): a step-up never changes hands. */
function isSameUser(session: SessionRecord, name: string): boolean {
  if (session.user === null) return false;
  return name === session.user || name === session.variables[USERNAME_VAR];
}

function authenticatePlugin(step: PolicyStep): string[] {
  return typeof step === 'object' && 'authenticate' in step ? [step.authenticate] : [];
}
