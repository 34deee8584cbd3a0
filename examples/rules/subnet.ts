// APM:
//   when ACCESS_SESSION_STARTED {
//      set user_subnet [ACCESS::session data get "session.user.clientip"]
//      if { ![IP::addr $user_subnet equals 192.168.255.0/24] } {
//          log local0. "Unauthorized subnet"
//          ACCESS::session remove
//      }
//   }
import { defineRules } from 'sessiongate';

export default defineRules({
  async ACCESS_SESSION_STARTED(ctx) {
    const userSubnet = await ctx.session.data.get('session.user.clientip');
    if (!ctx.ip.matches(userSubnet, '192.168.255.0/24')) {
      ctx.log('Unauthorized subnet');
      await ctx.session.remove();
    }
  },
});
