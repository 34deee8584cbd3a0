// APM:
//   when ACCESS_ACL_ALLOWED {
//      set user [ACCESS::session data get "session.logon.last.username"]
//      HTTP::header insert "X-USERNAME" $user
//   }
import { defineRules } from '../../src/rules/define.js';

export default defineRules({
  async ACCESS_ACL_ALLOWED(ctx) {
    const user = await ctx.session.data.get('session.logon.last.username');
    ctx.http.headers.insert('X-USERNAME', user ?? '');
  },
});
