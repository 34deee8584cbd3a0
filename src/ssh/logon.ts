import { timingSafeEqual } from 'node:crypto';
import ssh2, { type AuthContext, type AuthenticationType, type KeyboardAuthContext, type Prompt } from 'ssh2';

const { utils } = ssh2;
import type { PolicyInput, PolicyOutcome } from '../gateway/policy.js';
import type { Destination } from './destination.js';

/** What the gateway logon needs from its connection. */
export interface LogonDeps {
  dest: Destination;
  /** The profile's policy asks for a logon (else the client's password is the target's). */
  needsLogon: boolean;
  /** No credential store on the route: the target gets the user's own password. */
  relaysPassword: boolean;
  /** The gateway users who listed this public key (authorized_keys in the config). */
  keyUsers(keyBlob: Buffer): string[];
  /** Run the route's access policy one step further with this input. */
  runPolicy(input: PolicyInput): Promise<PolicyOutcome>;
}

/** How the logon stands after one authentication request. */
export type LogonStep =
  /** The request was answered (refused, partial success, or a public key that may be used). */
  | { kind: 'pending' }
  /** The policy allowed: the request waits for the connection to accept it. */
  | { kind: 'allowed'; ctx: AuthContext; relayPassword: string | undefined }
  /** The policy ended without allowing: the request waits for the connection to refuse it. */
  | { kind: 'denied'; ctx: AuthContext; reason: string };

const PENDING: LogonStep = { kind: 'pending' };

/** A policy step that signs in at an identity provider needs a browser. */
const BROWSER_ONLY: PolicyOutcome = {
  kind: 'deny',
  reason: 'this logon signs in at an identity provider, which needs a browser; SSH cannot follow it',
};
const ENROL_IN_BROWSER: PolicyOutcome = {
  kind: 'deny',
  reason: 'this account has no second factor yet: log on once with a browser to set one up',
};

/**
 * The gateway logon of one SSH connection, on the route's access policy: each `logon` step
 * asks for the gateway user and password, each NEEDINFO question of a plugin (a TOTP code)
 * becomes a keyboard-interactive prompt, and a public key listed for the user stands for the
 * logon and the authenticate steps. The password method works for a policy without
 * questions (partial success hands the rest to keyboard-interactive).
 *
 * @example
 * ```ts
 * const step = await logon.handle(ctx);
 * if (step.kind === 'allowed') step.ctx.accept();
 * ```
 */
export class GatewayLogon {
  private outcome: PolicyOutcome | undefined;
  private gatewayUser: string | undefined;
  private relayPassword: string | undefined;
  /** The policy allowed; the target's password is still to be asked for. */
  private allowedAwaitingRelay = false;
  /**
   * The logon was denied. Clients try again after that (OpenSSH reads an empty method list as
   * "any"): those requests are refused as they come, or the policy's end would be reported again.
   */
  private over = false;

  constructor(private readonly d: LogonDeps) {
    this.gatewayUser = d.dest.gatewayUser;
  }

  /** The methods offered: public keys only when the gateway logs users on. */
  methods(): AuthenticationType[] {
    return this.d.needsLogon
      ? ['publickey', 'keyboard-interactive', 'password']
      : ['keyboard-interactive', 'password'];
  }

  async handle(ctx: AuthContext): Promise<LogonStep> {
    if (this.over) {
      ctx.reject([]);
      return PENDING;
    }
    if (this.allowedAwaitingRelay) return this.askRelay(ctx);
    switch (ctx.method) {
      case 'publickey':
        return this.publicKey(ctx);
      case 'password':
        return this.password(ctx);
      case 'keyboard-interactive':
        return this.keyboard(ctx);
      default:
        ctx.reject(this.methods());
        return PENDING;
    }
  }

  private async publicKey(ctx: Extract<AuthContext, { method: 'publickey' }>): Promise<LogonStep> {
    const users = this.d.needsLogon ? this.d.keyUsers(ctx.key.data) : [];
    const user = this.gatewayUser ? users.find((u) => u === this.gatewayUser) : users[0];
    if (user === undefined || this.outcome?.kind === 'question') return this.refuse(ctx);
    if (!ctx.signature || !ctx.blob) {
      ctx.accept(); // "this key would do": the client signs with it next
      return PENDING;
    }
    const key = utils.parseKey(publicLine(ctx.key.algo, ctx.key.data));
    if (key instanceof Error || key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true)
      return this.refuse(ctx);
    this.gatewayUser = user;
    return this.after(ctx, await this.d.runPolicy({ authenticatedUser: user }));
  }

  private async password(ctx: Extract<AuthContext, { method: 'password' }>): Promise<LogonStep> {
    if (!this.d.needsLogon) {
      this.relayPassword = ctx.password;
      return this.after(ctx, await this.d.runPolicy({}));
    }
    const user = this.gatewayUser;
    if (user === undefined || this.outcome?.kind === 'question') return this.refuse(ctx);
    const out = await this.d.runPolicy({ credentials: { username: user, password: ctx.password } });
    if (this.d.relaysPassword) this.relayPassword = ctx.password;
    return this.after(ctx, out);
  }

  /** Prompt after prompt until the policy ends or the client goes away. */
  private async keyboard(ctx: KeyboardAuthContext): Promise<LogonStep> {
    let out = this.outcome ?? (await this.d.runPolicy({}));
    for (;;) {
      this.outcome = out;
      if (out.kind === 'allow') return this.allowed(ctx);
      if (out.kind !== 'logon' && out.kind !== 'question') return this.denied(ctx, out);
      if (out.kind === 'question' && out.redirect) return this.denied(ctx, BROWSER_ONLY);
      if (out.kind === 'question' && out.otpauth) return this.denied(ctx, ENROL_IN_BROWSER);
      if (out.kind === 'question') {
        const answers = await ask(ctx, [{ prompt: out.prompt, echo: out.echo }], out.error);
        if (!answers) return PENDING;
        out = await this.d.runPolicy({ answer: { key: out.key, value: answers[0] ?? '' } });
        continue;
      }
      const prompts: Prompt[] = [];
      if (this.gatewayUser === undefined) prompts.push({ prompt: 'Gateway user: ', echo: true });
      prompts.push({ prompt: 'Gateway password: ', echo: false });
      const answers = await ask(ctx, prompts, out.error);
      if (!answers) return PENDING;
      const password = answers[answers.length - 1] ?? '';
      this.gatewayUser ??= answers[0] ?? '';
      if (this.d.relaysPassword) this.relayPassword = password;
      out = await this.d.runPolicy({ credentials: { username: this.gatewayUser, password } });
    }
  }

  /** The end of a request that is not keyboard-interactive. */
  private after(ctx: AuthContext, out: PolicyOutcome): LogonStep | Promise<LogonStep> {
    this.outcome = out;
    if (out.kind === 'allow') return this.allowed(ctx);
    if (out.kind === 'question' && out.redirect) return this.denied(ctx, BROWSER_ONLY);
    if (out.kind === 'question' && out.otpauth) return this.denied(ctx, ENROL_IN_BROWSER);
    if (out.kind === 'question') {
      ctx.reject(['keyboard-interactive'], true); // go on with the prompts
      return PENDING;
    }
    if (out.kind === 'logon') return this.refuse(ctx);
    return this.denied(ctx, out);
  }

  private allowed(ctx: AuthContext): LogonStep | Promise<LogonStep> {
    if (this.d.relaysPassword && this.relayPassword === undefined) {
      this.allowedAwaitingRelay = true;
      return this.askRelay(ctx);
    }
    return { kind: 'allowed', ctx, relayPassword: this.relayPassword };
  }

  /** Without a credential store the target needs the user's password: asked once, after the policy. */
  private askRelay(ctx: AuthContext): LogonStep | Promise<LogonStep> {
    if (ctx.method !== 'keyboard-interactive') {
      ctx.reject(['keyboard-interactive'], true);
      return PENDING;
    }
    const { targetUser, host } = this.d.dest;
    return ask(ctx, [{ prompt: `Password for ${targetUser}@${host}: `, echo: false }]).then((answers) => {
      if (!answers) return PENDING;
      this.allowedAwaitingRelay = false;
      this.relayPassword = answers[0] ?? '';
      return { kind: 'allowed', ctx, relayPassword: this.relayPassword };
    });
  }

  private denied(ctx: AuthContext, out: PolicyOutcome): LogonStep {
    const reason =
      out.kind === 'deny' && out.reason
        ? out.reason
        : out.kind === 'redirect'
          ? 'this access policy ends in a web redirect, which SSH cannot follow'
          : 'access denied';
    this.over = true;
    return { kind: 'denied', ctx, reason };
  }

  private refuse(ctx: AuthContext): LogonStep {
    ctx.reject(this.methods());
    return PENDING;
  }
}

/** Keyboard-interactive prompts; undefined when the client gave up. */
function ask(
  ctx: KeyboardAuthContext,
  prompts: Prompt[],
  instructions?: string,
): Promise<string[] | undefined> {
  return new Promise((done) => {
    const answer = (answers: string[] | Error) => done(Array.isArray(answers) ? answers : undefined);
    if (instructions) (ctx.prompt as PromptWithText)(prompts, 'sessiongate', `${instructions}\n`, answer);
    else ctx.prompt(prompts, answer);
  });
}

type PromptWithText = (
  prompts: Prompt[],
  title: string,
  instructions: string,
  cb: (answers: string[] | Error) => void,
) => void;

/** An authorized_keys-style line for a key the client offered (parseKey reads that form). */
function publicLine(algo: string, blob: Buffer): string {
  const type = blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1');
  return `${type || algo} ${blob.toString('base64')}`;
}

/** Constant-time equality of two public key blobs. */
export function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
