// A local OpenID Provider to try sessiongate's single sign-on on one machine (docs/oidc.md).
// For a checkout of sessiongate only: `oidc-provider` is one of its devDependencies, which an
// installed package does not have. Run from the checkout: `node examples/oidc/provider.mjs`.
//
// Issuer http://127.0.0.1:9000, one client `sessiongate` (its secret in examples/oidc/var/oidc-secret,
// mode 0600, written when missing, like the provider's signing key) and two users: alice (group
// dev) and bob. The login page asks for a user name and no password: this is a local try, not a
// provider to use for anything else.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import { createServer } from 'node:http';
import { URL, URLSearchParams } from 'node:url';
import Provider from 'oidc-provider';

const ISSUER = 'http://127.0.0.1:9000';
// The gateway's address; set SESSIONGATE_URL when it listens elsewhere (8080 taken).
const GATEWAY = process.env.SESSIONGATE_URL ?? 'http://127.0.0.1:8080';
const VAR = new URL('./var/', import.meta.url);
const SECRET_FILE = new URL('oidc-secret', VAR);
const HOURS = { Grant: 3600, Session: 3600 };
const say = (line) => process.stdout.write(`${line}\n`);

// The users' claims; each also has sub and preferred_username (its name) and email_verified.
const USERS = {
  alice: { name: 'Alice Example', email: 'alice@example.org', groups: ['dev'] },
  bob: { name: 'Bob Example', email: 'bob@example.org', groups: [] },
};

// The client secret, shared with the gateway through a file only the owner can read.
mkdirSync(VAR, { recursive: true, mode: 0o700 });
if (!existsSync(SECRET_FILE)) {
  writeFileSync(SECRET_FILE, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
}
const secret = readFileSync(SECRET_FILE, 'utf8').trim();

// The ID token signing key, kept across restarts: a running gateway keeps the provider's keys
// for a few minutes, and would refuse tokens signed by a new key under the same kid.
const KEY_FILE = new URL('provider-key.json', VAR);
if (!existsSync(KEY_FILE)) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'local', alg: 'RS256', use: 'sig' };
  writeFileSync(KEY_FILE, JSON.stringify(jwk), { mode: 0o600 });
}
const signingKey = JSON.parse(readFileSync(KEY_FILE, 'utf8'));

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: 'sessiongate',
      client_secret: secret,
      redirect_uris: [`${GATEWAY}/sg/oidc/callback`],
      post_logout_redirect_uris: [`${GATEWAY}/`],
      backchannel_logout_uri: `${GATEWAY}/sg/oidc/backchannel-logout`,
      backchannel_logout_session_required: true,
    },
  ],
  findAccount(_ctx, id) {
    const claims = USERS[id];
    const all = { sub: id, preferred_username: id, email_verified: true, ...claims };
    return claims && { accountId: id, claims: () => all };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'groups'],
  },
  // Put the scopes' claims (groups among them) in the ID token, which is what the gateway reads.
  conformIdTokenClaims: false,
  // A first-party client: grant the scopes without a consent page.
  async loadExistingGrant(ctx) {
    const { client, session, provider: op } = ctx.oidc;
    const id = ctx.oidc.result?.consent?.grantId ?? session.grantIdFor(client.clientId);
    if (id) return op.Grant.find(id);
    const grant = new op.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid profile email');
    await grant.save();
    return grant;
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // The confirmation page of /sg/logout's redirect here (the built-in one loads web fonts).
      logoutSource(ctx, form) {
        ctx.type = 'html';
        ctx.body = `<!doctype html><title>Sign out</title><h1>Sign out of the local provider?</h1>${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>`;
      },
    },
  },
  // Lifetimes in seconds (said here, so that the provider does not print a notice for each).
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, ...HOURS },
  // Its requests (back-channel logout) refuse loopback addresses (SSRF); the gateway here is one.
  fetch: (url, { dispatcher: _ssrfCheck, ...options }) => globalThis.fetch(url, options),
  cookies: { keys: [randomBytes(16).toString('hex')] },
  jwks: { keys: [signingKey] },
});

function loginPage(uid, message = '') {
  const names = Object.keys(USERS).join(' or ');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local provider</title></head>
<body><h1>Local OpenID Provider</h1><p>A local try: type a user name (${names}), no password.</p>
${message && `<p><strong>${message}</strong></p>`}
<form method="post" action="/interaction/${uid}/login">
<label>User <input name="login" autofocus autocomplete="off"></label> <button type="submit">Sign in</button>
</form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// GET /interaction/UID shows the login page; POST /interaction/UID/login signs the user in.
async function interaction(req, res) {
  const { uid } = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginPage(uid));
    return;
  }
  const login = (await readForm(req)).get('login')?.trim() ?? '';
  if (!Object.hasOwn(USERS, login)) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginPage(uid, 'Unknown user.'));
    return;
  }
  const result = { login: { accountId: login } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// After a sign-out here, the provider tells the gateway (its back-channel logout URI).
provider.on('backchannel.success', (_ctx, _client, user) => say(`back-channel logout of ${user}: sent`));
provider.on('backchannel.error', (_ctx, err, client) => {
  say(`back-channel logout to ${client.backchannelLogoutUri} failed: ${err.cause?.message ?? err.message}`);
});

const oidc = provider.callback();
const server = createServer((req, res) => {
  if (!req.url?.startsWith('/interaction/')) return oidc(req, res);
  interaction(req, res).catch((err) => {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
  });
});
server.listen(9000, '127.0.0.1', () => {
  say(`OpenID Provider on ${ISSUER} (client sessiongate, users: ${Object.keys(USERS).join(', ')})`);
});
