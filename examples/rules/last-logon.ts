// APM: when ACCESS_POLICY_AGENT_EVENT { if { [ACCESS::policy agent_id] eq "lastLogon" } { ... } }
// (the whole iRule is in docs/rules.md). AD's lastLogon counts 100-ns ticks since 1601; BigInt
// keeps it exact, as Tcl's integers do.
import { defineRules } from 'sessiongate';

export default defineRules({
  async ACCESS_POLICY_AGENT_EVENT(ctx) {
    if (ctx.policy.agentId === 'lastLogon') {
      // our limit in seconds
      const twoWeeks = 1209600n;
      // diff in milliseconds between MS time attribute (year 1601) and start of epoch
      const offset = 11644473600000n;
      const adtime = BigInt((await ctx.session.data.get('session.ad.last.attr.lastLogon')) || '0');
      // convert adtime to milliseconds
      const millisecs = adtime / 10000n;
      // subtract offset
      const lastLoginTime = millisecs - offset;
      // convert to seconds
      const secs = lastLoginTime / 1000n;
      const now = BigInt(ctx.clock.seconds());
      // finally calculate the difference
      const diff = now - secs;
      ctx.log(`lastLogon: ${diff} seconds from current time`);
      await ctx.session.data.set('session.custom.lastLogonWithin2Weeks', diff > twoWeeks ? '0' : '1');
    }
  },
});
