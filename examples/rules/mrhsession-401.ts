// APM:
//   when HTTP_REQUEST {
//       set apm_cookie [HTTP::cookie value MRHSession]
//       if { $apm_cookie != "" && ! [ACCESS::session exists $apm_cookie] } {
//           HTTP::respond 401 WWW-Authenticate "Basic realm=\"www.example.com\""
//           return
//       }
//   }
import { defineRules } from 'sessiongate';

export default defineRules({
  async HTTP_REQUEST(ctx) {
    const apmCookie = ctx.http.cookie('MRHSession');
    if (apmCookie && !(await ctx.session.exists(apmCookie))) {
      ctx.http.respond(401, { headers: { 'WWW-Authenticate': 'Basic realm="www.example.com"' } });
      return 'stop';
    }
  },
});
