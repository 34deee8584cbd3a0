import { open, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { AuditSink } from '../core/audit.js';
import { SessionGateError } from '../core/errors.js';
import { parseSessionId } from '../core/ids.js';
import { invalid, SECURITY_HEADERS, sendJson } from './http.js';

/** One recorded channel of a session: the asciicast file the SSH gateway wrote. */
export interface RecordingFile {
  channel: number;
  /** Absolute path of the file. */
  file: string;
  bytes: number;
}

/**
 * Where the admin layer finds SSH session recordings (docs/ssh.md). The cli supplies it from
 * the configured recording folders; the admin layer cannot import the SSH layer itself.
 *
 * @example
 * ```ts
 * const recordings: RecordingSource = { list: (id) => [{ channel: 0, file: `/var/rec/${id}-0.cast`, bytes: 812 }] };
 * await startAdmin({ engine, metrics, token, recordings });
 * ```
 */
export interface RecordingSource {
  /** The session's recordings in channel order; `[]` when there are none. */
  list(sessionId: string): RecordingFile[];
}

/**
 * What the recording handlers use of an API call and its dependencies: written out here (not
 * imported from api.ts) because api.ts imports this file.
 */
interface RecordingCall {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  by: 'admin_api' | 'admin_page';
}
interface RecordingDeps {
  audit: AuditSink;
  recordings?: RecordingSource | undefined;
}

/** The asciicast v2 media type (asciinema's own). */
const CAST_TYPE = 'application/x-asciicast';

function noQuery(query: URLSearchParams): void {
  for (const key of query.keys()) throw invalid(key, 'unknown query parameter');
}

/** A channel number as the list gives it: digits only, so nothing else ever reaches a file lookup. */
function channelOf(text: string | undefined): number {
  if (text === undefined || !/^\d{1,9}$/.test(text)) throw invalid('channel', 'expected a channel number');
  return Number(text);
}

function notFound(id: string, channel: number): SessionGateError {
  return new SessionGateError(
    'SG_ERR_RECORDING_NOT_FOUND',
    `session ${id} has no recording of channel ${channel}`,
  );
}

/**
 * `GET /api/v1/sessions/{id}/recordings`: the session's recorded channels with their sizes and
 * download paths. Recordings outlive their session, so an ended session is no 404: only its id
 * must be well formed.
 */
export async function listSessionRecordings(call: RecordingCall, deps: RecordingDeps): Promise<void> {
  noQuery(call.query);
  const id = parseSessionId(call.params.id);
  const found = deps.recordings?.list(id) ?? [];
  sendJson(call.res, 200, {
    recordings: found.map((r) => ({
      channel: r.channel,
      bytes: r.bytes,
      url: `/api/v1/sessions/${id}/recordings/${r.channel}`,
    })),
  });
}

/**
 * `GET /api/v1/sessions/{id}/recordings/{channel}`: the asciicast file as a download, audited
 * (`recording_read`). The file is opened before the answer starts, so one that vanished in the
 * meantime is a 404 too.
 */
export async function getSessionRecording(call: RecordingCall, deps: RecordingDeps): Promise<void> {
  noQuery(call.query);
  const id = parseSessionId(call.params.id);
  const channel = channelOf(call.params.channel);
  const entry = deps.recordings?.list(id).find((r) => r.channel === channel);
  if (!entry) throw notFound(id, channel);
  let handle: FileHandle;
  try {
    handle = await open(entry.file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(id, channel);
    throw err;
  }
  try {
    const { size } = await handle.stat();
    deps.audit.write({ event: 'recording_read', sessionId: id, channel, by: call.by });
    call.res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': CAST_TYPE,
      'content-length': size,
      'content-disposition': `attachment; filename="${id}-${channel}.cast"`,
      'cache-control': 'no-store',
    });
    if (size === 0) return void call.res.end();
    // A file still being written may grow: send the size announced, never more.
    await pipeline(handle.createReadStream({ start: 0, end: size - 1, autoClose: false }), call.res);
  } finally {
    await handle.close();
  }
}
