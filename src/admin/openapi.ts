/**
 * The OpenAPI 3.1 description of the admin API, written by hand as data.
 * `test/admin/openapi.test.ts` checks that every route the server implements is here, and
 * every operation here is implemented, with the statuses the tests observe.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
const error = (description: string) => json(ref('Error'), description);
const idParam = { $ref: '#/components/parameters/id' };
const nameParam = { $ref: '#/components/parameters/name' };
const channelParam = { $ref: '#/components/parameters/channel' };
const common = {
  '401': error('No valid admin token (or page session).'),
};
/** Changes made with the page cookie must carry X-Requested-With and the admin origin. */
const change = {
  ...common,
  '403': error('A change with the page cookie lacks X-Requested-With or comes from another origin.'),
};
const seconds = { type: 'integer', minimum: 0, maximum: 3_153_600_000, description: 'seconds; 0 = none' };
const isoTime = { type: 'string', format: 'date-time' };
const isoTimeOrNull = { type: ['string', 'null'], format: 'date-time' };

export const OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'sessiongate admin API',
    version: '1',
    description:
      'Live sessions of a sessiongate gateway: list, inspect, create, change and kill them, read and ' +
      'set their variables. Authenticate with `Authorization: Bearer <token>` (the admin token file). ' +
      'Errors are `{ "error": { "code", "message" } }` with the codes of docs/errors.md.',
  },
  servers: [{ url: 'http://127.0.0.1:8081' }],
  security: [{ bearer: [] }, { adminCookie: [] }],
  paths: {
    '/api/v1/sessions': {
      get: {
        operationId: 'listSessions',
        summary: 'A page of live sessions, optionally filtered.',
        parameters: [
          { name: 'user', in: 'query', schema: { type: 'string' } },
          { name: 'state', in: 'query', schema: ref('State') },
          { name: 'client_ip', in: 'query', schema: { type: 'string' } },
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
          {
            name: 'cursor',
            in: 'query',
            schema: { type: 'string' },
            description: 'next_cursor of the previous page',
          },
        ],
        responses: {
          '200': json(
            {
              type: 'object',
              required: ['sessions', 'next_cursor'],
              properties: {
                sessions: { type: 'array', items: ref('Session') },
                next_cursor: { type: ['string', 'null'] },
              },
            },
            'The page; next_cursor is null on the last one.',
          ),
          '400': error('A filter is malformed (the message names it).'),
          ...common,
        },
      },
      post: {
        operationId: 'createSession',
        summary: 'Start a session (ACCESS::session create) and return its token, once.',
        requestBody: { required: false, content: { 'application/json': { schema: ref('CreateSession') } } },
        responses: {
          '201': json(
            {
              type: 'object',
              required: ['id', 'token'],
              properties: {
                id: ref('SessionId'),
                token: { type: 'string', description: 'the secret cookie value' },
              },
            },
            'Created.',
          ),
          '400': error('Bad input (the message names the field).'),
          '409': error('The user is at the per-user limit and the profile refuses new sessions.'),
          '503': error('The concurrent-session limit is reached.'),
          ...change,
        },
      },
      delete: {
        operationId: 'killUserSessions',
        summary:
          'Close every session of a user (reason admin_kill, or password_changed after a new password).',
        parameters: [
          { name: 'user', in: 'query', required: true, schema: { type: 'string' } },
          {
            name: 'reason',
            in: 'query',
            schema: { type: 'string', enum: ['admin_kill', 'password_changed'], default: 'admin_kill' },
          },
        ],
        responses: {
          '200': json(
            { type: 'object', required: ['closed'], properties: { closed: { type: 'integer', minimum: 0 } } },
            'How many sessions were closed.',
          ),
          '400': error('user is missing or malformed, or an unknown reason.'),
          ...change,
        },
      },
    },
    '/api/v1/sessions/{id}': {
      parameters: [idParam],
      get: {
        operationId: 'getSession',
        summary: 'One session with its variables (secure ones masked) and the plugins holding cookies.',
        responses: {
          '200': json(ref('SessionDetail'), 'The session.'),
          '400': error('Malformed id.'),
          '404': error('No live session has this id.'),
          ...common,
        },
      },
      patch: {
        operationId: 'modifySession',
        summary: 'Change the idle timeout, the lifetime (from creation) or the time remaining.',
        requestBody: { required: true, content: { 'application/json': { schema: ref('ModifySession') } } },
        responses: {
          '200': json(ref('Session'), 'The session with its new deadlines.'),
          '400': error('Bad input, nothing to change, or lifetime together with remaining.'),
          '404': error('No live session has this id.'),
          ...change,
        },
      },
      delete: {
        operationId: 'killSession',
        summary: 'Close the session (reason admin_kill, or removed with ?reason=removed).',
        parameters: [
          {
            name: 'reason',
            in: 'query',
            schema: { type: 'string', enum: ['admin_kill', 'removed'], default: 'admin_kill' },
          },
        ],
        responses: {
          '204': { description: 'Closed.' },
          '400': error('Malformed id or reason.'),
          '404': error('No live session has this id.'),
          ...change,
        },
      },
    },
    '/api/v1/sessions/{id}/variables/{name}': {
      parameters: [idParam, nameParam],
      get: {
        operationId: 'getVariable',
        summary: 'Read a variable (ACCESS::session data get); value null when unset.',
        parameters: [
          {
            name: 'secure',
            in: 'query',
            schema: { type: 'string', enum: ['1', '0'] },
            description:
              'read a secure variable in clear: only when admin.reveal_secure is on, with the token (never the page); audited',
          },
          {
            name: 'config',
            in: 'query',
            schema: { type: 'string', enum: ['1', '0'] },
            description: "read the session's effective profile setting named `name`",
          },
        ],
        responses: {
          '200': json(
            {
              type: 'object',
              required: ['name', 'value'],
              properties: { name: { type: 'string' }, value: { type: ['string', 'null'] } },
            },
            'The value.',
          ),
          '400': error('Malformed id or name, or secure with config.'),
          '403': error(
            'The variable is secure: read it with ?secure=1; or secure values are not revealed (admin.reveal_secure off, or the page).',
          ),
          '404': error('No live session has this id, or (config) no such setting.'),
          ...common,
        },
      },
      put: {
        operationId: 'setVariable',
        summary: 'Set a variable (ACCESS::session data set); secure ones are encrypted at rest.',
        requestBody: { required: true, content: { 'application/json': { schema: ref('SetVariable') } } },
        responses: {
          '204': { description: 'Set.' },
          '400': error('Bad input, or a read-only variable.'),
          '404': error('No live session has this id.'),
          ...change,
        },
      },
    },
    '/api/v1/sessions/{id}/recordings': {
      parameters: [idParam],
      get: {
        operationId: 'listRecordings',
        summary:
          'The SSH recordings of a session (asciicast v2, one per shell or exec channel); ended sessions too.',
        responses: {
          '200': json(
            {
              type: 'object',
              required: ['recordings'],
              properties: { recordings: { type: 'array', items: ref('Recording') } },
            },
            'The recordings in channel order; empty when there are none.',
          ),
          '400': error('Malformed id, or a query parameter.'),
          ...common,
        },
      },
    },
    '/api/v1/sessions/{id}/recordings/{channel}': {
      parameters: [idParam, channelParam],
      get: {
        operationId: 'getRecording',
        summary: 'Download one recording (audited as recording_read).',
        responses: {
          '200': {
            description: 'The asciicast file, as an attachment named <id>-<channel>.cast.',
            content: { 'application/x-asciicast': { schema: { type: 'string' } } },
          },
          '400': error('Malformed id or channel.'),
          '404': error('The session has no recording of this channel.'),
          ...common,
        },
      },
    },
    '/api/v1/stats': {
      get: {
        operationId: 'getStats',
        summary: 'Sessions by state and profile, created and closed counts, close pipeline backlog.',
        responses: { '200': json(ref('Stats'), 'The figures.'), ...common },
      },
    },
    '/api/v1/openapi.json': {
      get: {
        operationId: 'getOpenApi',
        summary: 'This document (no token needed).',
        security: [],
        responses: { '200': json({ type: 'object' }, 'The OpenAPI document.') },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'The content of the admin token file.' },
      adminCookie: {
        type: 'apiKey',
        in: 'cookie',
        name: 'sg_admin',
        description: 'The web page session (POST /login); changes also need the X-Requested-With header.',
      },
    },
    parameters: {
      id: { name: 'id', in: 'path', required: true, schema: ref('SessionId') },
      name: {
        name: 'name',
        in: 'path',
        required: true,
        schema: { type: 'string' },
        description: 'e.g. session.custom.x',
      },
      channel: {
        name: 'channel',
        in: 'path',
        required: true,
        schema: { type: 'string', pattern: '^[0-9]{1,9}$' },
        description: 'the recording number within the session, as the list gives it',
      },
    },
    schemas: {
      SessionId: { type: 'string', pattern: '^[0-9a-f]{32}$' },
      State: { type: 'string', enum: ['inprogress', 'allow', 'deny', 'redirect'] },
      Session: {
        type: 'object',
        required: [
          'id',
          'state',
          'user',
          'client_ip',
          'user_agent',
          'protocol',
          'created_at',
          'last_access_at',
          'expires_at',
          'expiry_reason',
          'idle_timeout',
          'lifetime',
          'lifetime_expires_at',
          'policy_expires_at',
        ],
        additionalProperties: false,
        properties: {
          id: ref('SessionId'),
          state: ref('State'),
          user: { type: ['string', 'null'] },
          client_ip: { type: ['string', 'null'] },
          user_agent: {
            type: ['string', 'null'],
            description: "session.user.agent (the browser's User-Agent), or an SSH client's software version",
          },
          protocol: {
            type: ['string', 'null'],
            description: 'session.server.protocol: http, https or ssh (null: made through the API)',
          },
          created_at: isoTime,
          last_access_at: isoTime,
          expires_at: { ...isoTimeOrNull, description: 'the first of the three deadlines; null = never' },
          expiry_reason: {
            type: ['string', 'null'],
            enum: ['idle_timeout', 'lifetime_expired', 'policy_timeout', null],
            description: 'the close reason the session gets at expires_at',
          },
          idle_timeout: seconds,
          lifetime: seconds,
          lifetime_expires_at: isoTimeOrNull,
          policy_expires_at: { ...isoTimeOrNull, description: 'access policy timeout (inprogress only)' },
        },
      },
      SessionDetail: {
        allOf: [
          ref('Session'),
          {
            type: 'object',
            required: ['variables', 'plugins'],
            properties: {
              variables: {
                type: 'object',
                additionalProperties: { type: 'string' },
                description: 'secure variables as ********',
              },
              plugins: { type: 'array', items: { type: 'string' }, description: 'plugins holding a cookie' },
            },
          },
        ],
      },
      CreateSession: {
        type: 'object',
        additionalProperties: false,
        properties: {
          timeout: seconds,
          lifetime: seconds,
          user: { type: 'string', minLength: 1, maxLength: 256 },
          variables: { type: 'object', additionalProperties: { type: 'string' } },
          state: { ...ref('State'), description: 'default allow' },
          client_ip: { type: 'string' },
        },
      },
      ModifySession: {
        type: 'object',
        additionalProperties: false,
        properties: { timeout: seconds, lifetime: seconds, remaining: seconds },
        description: 'at least one field; lifetime and remaining exclude each other',
      },
      Recording: {
        type: 'object',
        required: ['channel', 'bytes', 'url'],
        additionalProperties: false,
        properties: {
          channel: { type: 'integer', minimum: 0 },
          bytes: { type: 'integer', minimum: 0 },
          url: { type: 'string', description: 'the download path on this listener' },
        },
      },
      SetVariable: {
        type: 'object',
        required: ['value'],
        additionalProperties: false,
        properties: { value: { type: 'string' }, secure: { type: 'boolean', default: false } },
      },
      Stats: {
        type: 'object',
        required: ['since', 'sessions', 'created', 'closed', 'policy_results', 'close_pipeline'],
        properties: {
          since: isoTime,
          sessions: {
            type: 'object',
            properties: {
              active: { type: 'integer' },
              by_state: { type: 'object', additionalProperties: { type: 'integer' } },
              by_profile: { type: 'object', additionalProperties: { type: 'integer' } },
              by_profile_complete: { type: 'boolean' },
            },
          },
          created: {
            type: 'object',
            properties: { total: { type: 'integer' }, by_origin: { type: 'object' } },
          },
          closed: {
            type: 'object',
            properties: { total: { type: 'integer' }, by_reason: { type: 'object' } },
          },
          policy_results: { type: 'object', additionalProperties: { type: 'integer' } },
          close_pipeline: {
            type: 'object',
            properties: {
              backlog: { type: 'integer' },
              pending: { type: 'object', additionalProperties: { type: 'integer' } },
              failed_total: { type: 'integer' },
              failed: { type: 'object', additionalProperties: { type: 'integer' } },
              backlog_growing_since: isoTimeOrNull,
              stuck: { type: 'boolean' },
              subscribers: {
                type: 'object',
                description: 'Each close subscriber on its own: how far behind it is.',
                additionalProperties: {
                  type: 'object',
                  properties: {
                    pending: { type: 'integer' },
                    failed: { type: 'integer' },
                    oldest_age_seconds: { type: 'integer' },
                    behind: { type: 'boolean' },
                    stuck: { type: 'boolean' },
                  },
                },
              },
            },
          },
        },
      },
      Error: {
        type: 'object',
        required: ['error'],
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string', pattern: '^SG_ERR_' }, message: { type: 'string' } },
          },
        },
      },
    },
  },
} as const;
