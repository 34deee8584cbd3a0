// APM:
//   when ACCESS_ACL_ALLOWED {
//      set user [ACCESS::session data get "session.logon.last.username"]
//      HTTP::header insert "X-USERNAME" $user
//   }
//
// `insert` appends to the client's own X-USERNAME, if it sent one: configure the header as an
// identity header (`identity_headers: { X-USERNAME: session.logon.last.username }`, as the
// quickstart does) or in `strip_headers`, so the client's copies are gone before rules run
// (docs/identity.md).
import { defineRules } from 'sessiongate';

export default defineRules({
  async ACCESS_ACL_ALLOWED(ctx) {
    const user = await ctx.session.data.get('session.logon.last.username');
    ctx.http.headers.insert('X-USERNAME', user ?? '');
  },
});
