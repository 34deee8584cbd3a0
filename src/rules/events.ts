/**
 * The events rules can handle: APM's iRule events, in the order they happen for one resource
 * request (ACCESS_SESSION_CLOSED comes later, from the close pipeline, with no HTTP context).
 */
export const RULE_EVENTS = [
  'HTTP_REQUEST',
  'ACCESS_SESSION_STARTED',
  'ACCESS_POLICY_AGENT_EVENT',
  'ACCESS_POLICY_COMPLETED',
  'ACCESS_ACL_ALLOWED',
  'ACCESS_ACL_DENIED',
  'HTTP_RESPONSE',
  'ACCESS_SESSION_CLOSED',
] as const;

export type RuleEvent = (typeof RULE_EVENTS)[number];

export function isRuleEvent(name: string): name is RuleEvent {
  return (RULE_EVENTS as readonly string[]).includes(name);
}
