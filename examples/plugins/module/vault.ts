/**
 * A credential-store plugin as a TypeScript module (runtime: module). It hands out the
 * password of an account from its `config.accounts` map, remembers the checkout in its
 * cookie, and checks it in when the upstream logon succeeded or, at the latest, when the
 * session ends.
 *
 *   plugins:
 *     - name: vault
 *       runtime: module
 *       path: ./examples/plugins/module/vault.ts
 *       config: { accounts: { svc-app: s3cret } }
 */
import { definePlugin } from 'sessiongate';

export default definePlugin({
  kind: 'credentialstore',
  getPasswordList({ serverUsername, serverHostname, cookie }, ctx) {
    const accounts = (ctx.config.accounts ?? {}) as Record<string, string>;
    const password = serverUsername ? accounts[serverUsername] : undefined;
    if (password === undefined) return { passwords: [] };
    ctx.log(`checked out ${serverUsername}@${serverHostname}`);
    return { passwords: [password], cookie: { ...cookie, checkedOut: serverUsername } };
  },
  authenticationCompleted({ cookie }, ctx) {
    if (cookie.checkedOut) ctx.log(`checked in ${String(cookie.checkedOut)} after a successful logon`);
    return { cookie: { ...cookie, checkedOut: null } };
  },
  sessionEnded({ sessionId, cookie }, ctx) {
    if (cookie.checkedOut) ctx.log(`checked in ${String(cookie.checkedOut)} at the end of ${sessionId}`);
  },
});
