import { isSessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { PluginHost } from '../plugins/host.js';
import type { SessionEngine } from '../session/engine.js';
import type { PolicyStep, ProfileConfig } from './config/schema.js';
import { providerTags } from './oidc-tags.js';
import { callStep, LOGON_TIME_VAR, unixNow } from './policy-call.js';
import { StepUp } from './step-up.js';
import type { PolicyInput, PolicyOutcome, PolicyRequest } from './policy-types.js';
import { parseQuestion, QUESTION_VAR, type PendingQuestion } from './policy-types.js';

export type { PolicyInput, PolicyOutcome, PolicyRequest } from './policy-types.js';

/** Hook points the rules layer fills in (issue: event rules); all optional. */
export interface PolicyEvents {
  agentEvent?(session: SessionRecord, agentId: string): Promise<void>;
}

// Progress of the policy, kept with the session so any gateway process can continue it.
export const STEP_VAR = 'sessiongate.policy.step';
const ATTEMPTS_VAR = 'sessiongate.policy.attempts';
const USERNAME = 'session.logon.last.username';
const PASSWORD = 'session.logon.last.password';

/**
 * Runs an access policy (docs/configuration.md, "Policy steps"): logon, authenticate and authorize with AA plugins
 * (NEEDINFO becomes a question), event, assign, and the endings allow, deny, redirect. It
 * resumes at the step the session reached, runs until a step needs input or the policy ends,
 * and records each step's result with the session.
 *
 * @example
 * ```ts
 * const out = await runner.run(session, { credentials: { username: 'alice', password } }, request);
 * if (out.kind === 'question') showForm(out.prompt);
 * ```
 */
export class PolicyRunner {
  /** What the policy's end drops: the logon password, unless the profile keeps it. */
  private readonly atEnd: { deleteSecure?: string[] };
  /** Step-up re-authentication of this profile's allowed sessions (routes with reauth_within). */
  readonly stepUp: StepUp;

  constructor(
    private readonly engine: SessionEngine,
    private readonly host: PluginHost,
    private readonly profile: ProfileConfig,
    private readonly logger: Logger,
    private readonly events: PolicyEvents = {},
  ) {
    // Plugins read the password during the policy (an authenticate step may come after a
    // question, in a later request); past the policy nothing built in needs it.
    this.atEnd = profile.keep_password ? {} : { deleteSecure: [PASSWORD] };
    this.stepUp = new StepUp(engine, host, profile);
  }

  async run(session: SessionRecord, input: PolicyInput, request: PolicyRequest): Promise<PolicyOutcome> {
    try {
      return await this.steps(session, input, request);
    } catch (err) {
      // Closed while its policy ran (evicted by newer logons from the address, expired, killed):
      // an ending like deny, not a failure of the gateway.
      if (!isSessionGateError(err, 'SG_ERR_SESSION_NOT_FOUND')) throw err;
      return { kind: 'deny', reason: 'This logon ended before it was finished. Start again.' };
    }
  }

  private async steps(
    session: SessionRecord,
    input: PolicyInput,
    request: PolicyRequest,
  ): Promise<PolicyOutcome> {
    const id = session.id;
    const steps = this.profile.policy;
    let i = Number(session.variables[STEP_VAR] ?? 0);
    let pending = parseQuestion(session.variables[QUESTION_VAR]);
    let credentials = input.credentials;
    let keyUsed = false;
    for (; i < steps.length; i++) {
      const step = steps[i]!;
      if (step === 'logon') {
        if (input.authenticatedUser !== undefined) {
          await this.engine.data.set(id, USERNAME, input.authenticatedUser);
          continue;
        }
        if (!credentials) return this.pause(id, i, { kind: 'logon' });
        await this.engine.data.set(id, USERNAME, credentials.username);
        await this.engine.data.set(id, PASSWORD, credentials.password, { secure: true });
        credentials = undefined;
        continue;
      }
      if (step === 'allow' || step === 'deny')
        return this.end(id, step === 'allow' ? { kind: 'allow' } : { kind: 'deny' });
      if ('redirect' in step) return this.end(id, { kind: 'redirect', url: step.redirect });
      if ('event' in step) {
        const current = await this.engine.get(id);
        if (current) await (request.agentEvent ?? this.events.agentEvent)?.(current, step.event);
        continue;
      }
      if ('assign' in step) {
        await this.assign(id, step.assign);
        continue;
      }
      // The key stands for the password: the first authenticate step (which checks it), not
      // the factors after it (a TOTP step still asks for its code).
      if ('authenticate' in step && input.authenticatedUser !== undefined && !keyUsed) {
        keyUsed = true;
        await this.accept(id, input.authenticatedUser, undefined);
        continue;
      }
      const answer = pending?.step === i && input.answer?.key === pending.key ? input.answer : undefined;
      const result = await this.plugin(id, step, request, answer);
      pending = undefined;
      if (result.verdict === 'NEEDINFO' && result.question) {
        const q: PendingQuestion = {
          step: i,
          key: result.question.key,
          prompt: result.question.prompt,
          echo: !result.question.disable_echo,
          ...(result.question.redirect ? { redirect: result.question.redirect } : {}),
        };
        await this.engine.data.set(id, QUESTION_VAR, JSON.stringify(q));
        // Asked again after an answer: say why (e.g. "Invalid code").
        const error = answer && result.reason ? { error: result.reason } : {};
        const where = q.redirect ? { redirect: q.redirect } : {};
        const enrol = result.question.otpauth ? { otpauth: result.question.otpauth } : {};
        return this.pause(id, i, {
          kind: 'question',
          key: q.key,
          prompt: q.prompt,
          echo: q.echo,
          ...error,
          ...where,
          ...enrol,
        });
      }
      if (result.verdict === 'ACCEPT') {
        if (!(await this.accept(id, result.gateway_user, result.gateway_groups))) {
          return this.end(id, {
            kind: 'deny',
            reason: 'This user has the most sessions allowed. Log out of another one first.',
          });
        }
        await this.directoryAttributes(id, result.additional_metadata);
        await this.pluginVariables(id, result);
        continue;
      }
      if (result.verdict === 'NONE') continue;
      // DENY (or a failed plugin): back to the logon step while attempts remain.
      const back = 'authenticate' in step ? lastLogonBefore(steps, i) : -1;
      const attempts = Number((await this.engine.data.get(id, ATTEMPTS_VAR)) ?? 0) + 1;
      await this.engine.data.set(id, ATTEMPTS_VAR, String(attempts));
      // Counted by the logon throttle as a failed guess (an authorize refusal is not one).
      const refused = 'authenticate' in step ? { credentialsRefused: true as const } : {};
      // The name the refused credentials were given for: the form shows it again.
      const username = back >= 0 ? await this.engine.data.get(id, USERNAME) : undefined;
      const named = username !== undefined ? { username } : {};
      if (back >= 0 && attempts < this.profile.max_logon_attempts) {
        return this.pause(id, back, {
          kind: 'logon',
          error: 'Logon failed. Check your user name and password.',
          ...refused,
          ...named,
        });
      }
      return this.end(id, {
        kind: 'deny',
        ...(result.reason ? { reason: result.reason } : {}),
        ...refused,
        ...(back >= 0 ? { failedLogons: attempts, ...named } : {}),
      });
    }
    return this.end(id, { kind: 'deny', reason: 'the access policy has no ending' });
  }

  private plugin(
    id: string,
    step: Extract<PolicyStep, { authenticate: string } | { authorize: string }>,
    request: PolicyRequest,
    answer: { key: string; value: string } | undefined,
  ) {
    return callStep(
      { engine: this.engine, host: this.host, profile: this.profile },
      id,
      step,
      request,
      answer,
    );
  }

  /** Record the accepted user and groups; false when the per-user limit refuses the user. */
  private async accept(id: string, user: string | undefined, groups: string[] | undefined): Promise<boolean> {
    try {
      if (user) {
        // A user named by the plugin alone (single sign-on, no logon step) is the logon name too.
        if ((await this.engine.data.get(id, USERNAME)) === undefined)
          await this.engine.data.set(id, USERNAME, user);
        const { evicted } = await this.engine.setUser(id, user);
        if (evicted.length > 0)
          this.logger.info({ sessionId: id, user, evicted }, 'per-user limit: oldest sessions evicted');
      } else {
        const name = await this.engine.data.get(id, USERNAME);
        const current = await this.engine.get(id);
        if (name && current && current.user === null) await this.engine.setUser(id, name);
      }
    } catch (err) {
      // max_sessions_per_user with on_limit: refuse.
      if (isSessionGateError(err) && err.code === 'SG_ERR_USER_LIMIT_REACHED') return false;
      throw err;
    }
    if (groups) await this.engine.data.set(id, 'session.logon.last.groups', groups.join(','));
    return true;
  }

  /**
   * A plugin that returns a JSON object in `additional_metadata` (the ldap plugin does) gives
   * directory attributes: each becomes `session.ad.last.attr.<name>` as in APM, multi-valued
   * ones joined with " | ".
   */
  private async directoryAttributes(id: string, metadata: string | undefined): Promise<void> {
    if (!metadata?.startsWith('{')) return;
    let attrs: unknown;
    try {
      attrs = JSON.parse(metadata);
    } catch {
      return;
    }
    if (!attrs || typeof attrs !== 'object' || Array.isArray(attrs)) return;
    for (const [name, value] of Object.entries(attrs as Record<string, unknown>)) {
      if (!/^[A-Za-z0-9_:-]+$/.test(name)) continue;
      const text = Array.isArray(value) ? value.map(String).join(' | ') : String(value);
      await this.engine.data.set(id, `session.ad.last.attr.${name}`, text);
    }
  }

  /** What an accepting plugin gave to keep (claims, tokens): its names were checked with the result. */
  private async pluginVariables(
    id: string,
    result: { session_variables?: Record<string, string>; secure_variables?: Record<string, string> },
  ): Promise<void> {
    for (const [name, value] of Object.entries(result.session_variables ?? {})) {
      await this.engine.data.set(id, name, value);
    }
    for (const [name, value] of Object.entries(result.secure_variables ?? {})) {
      await this.engine.data.set(id, name, value, { secure: true });
    }
    // Signed in at an OpenID provider: findable by its sid and sub (back-channel logout).
    const vars = result.session_variables ?? {};
    const iss = vars['session.oauth.iss'];
    if (iss) {
      const tags = providerTags(iss, { sid: vars['session.oauth.sid'], sub: vars['session.oauth.sub'] });
      if (tags.length > 0) await this.engine.tag(id, tags);
    }
  }

  private async assign(id: string, values: Record<string, string>): Promise<void> {
    for (const [name, template] of Object.entries(values)) {
      let value = template;
      for (const m of template.matchAll(/%\{([A-Za-z0-9_.:-]+)\}/g)) {
        value = value.replace(m[0], (await this.engine.data.get(id, m[1]!)) ?? '');
      }
      await this.engine.data.set(id, name, value);
    }
  }

  private async pause(id: string, step: number, outcome: PolicyOutcome): Promise<PolicyOutcome> {
    await this.engine.data.set(id, STEP_VAR, String(step));
    return outcome;
  }

  /** Record the result; the caller closes denied sessions and rotates allowed ones. */
  private async end(id: string, outcome: PolicyOutcome): Promise<PolicyOutcome> {
    // The question asked last (a provider's sign-in URL with its state) is done with.
    await this.engine.data.set(id, QUESTION_VAR, '');
    if (outcome.kind === 'allow') await this.engine.data.set(id, LOGON_TIME_VAR, unixNow(this.engine));
    await this.engine.completePolicy(
      id,
      outcome.kind === 'allow' ? 'allow' : outcome.kind === 'deny' ? 'deny' : 'redirect',
      this.atEnd,
    );
    if (outcome.kind === 'redirect')
      await this.engine.data.set(id, 'sessiongate.policy.redirect', outcome.url);
    return outcome;
  }
}

function lastLogonBefore(steps: PolicyStep[], i: number): number {
  for (let j = i - 1; j >= 0; j--) if (steps[j] === 'logon') return j;
  return -1;
}
