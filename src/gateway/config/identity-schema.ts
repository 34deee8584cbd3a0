import { z } from 'zod';

// The identity keys of a profile and of a route (docs/identity.md): headers the gateway sets
// from session variables, client headers it removes, and the signed identity assertion.

/**
 * Headers the proxy manages itself (framing, hop-by-hop, the forwarded chain, the session
 * cookie): they can be neither identity headers nor stripped by configuration.
 */
const RESERVED = new Set([
  'host',
  'cookie',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { error: 'expected a header name' })
  .refine((n) => !RESERVED.has(n.toLowerCase()), {
    error: 'this header is managed by the proxy and cannot be configured here',
  });

/** Dotted session variable names; the session id is never sent (the assertion has its hash). */
const variableName = z
  .string()
  .regex(/^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/, {
    error: 'expected a session variable name such as session.logon.last.username',
  })
  .refine((n) => n !== 'session.user.sessionid', { error: 'the session id is not sent to applications' });

const headerNames = z.record(z.string(), z.unknown()).superRefine((record, ctx) => {
  for (const name of Object.keys(record)) {
    const checked = headerName.safeParse(name);
    if (!checked.success)
      ctx.addIssue({ code: 'custom', path: [name], message: checked.error.issues[0]!.message });
  }
});

/** Header name -> session variable; null (on a route) removes a header the profile sets. */
const identityHeaders = <V extends z.ZodType>(value: V) => headerNames.pipe(z.record(z.string(), value));

/** The signed identity assertion (X-Sessiongate-Assertion): true, false or its settings. */
export const identityAssertionSchema = z.union([
  z.boolean(),
  z.strictObject({
    enabled: z.boolean().default(true),
    /** Seconds an assertion is valid; one is re-signed once half of this has passed. */
    lifetime: z.int().min(10).max(3600).default(60),
    issuer: z.string().min(1).default('sessiongate'),
    /** `aud`; default: the route's host, or the request's host on a wildcard route. */
    audience: z.string().min(1).optional(),
  }),
]);
export type IdentityAssertionConfig = z.infer<typeof identityAssertionSchema>;

/** Spread into the profile schema. */
export const profileIdentityKeys = {
  identity_headers: identityHeaders(variableName).default({}),
  strip_headers: z.array(headerName).default([]),
  identity_assertion: identityAssertionSchema.default(false),
};

/** Spread into the route schema: what is set here replaces (or adds to) the profile's. */
export const routeIdentityKeys = {
  identity_headers: identityHeaders(variableName.nullable()).default({}),
  strip_headers: z.array(headerName).default([]),
  identity_assertion: identityAssertionSchema.optional(),
};
