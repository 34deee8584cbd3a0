import type { CloseRecord } from '../core/session-types.js';
import type { VariableReader } from './session-data.js';

/** What a close-pipeline subscriber receives: the close record and its delivery facts. */
export interface SessionClosedEvent extends CloseRecord {
  /** 1 on the first delivery to this subscriber. */
  attempt: number;
  /** A previous delivery to this subscriber was cut off by a crash; the handler may have run. */
  redelivered: boolean;
  /** The final variables, readable as on a live session (secure ones with `secure: true`). */
  data: VariableReader;
}

export type CloseHandler = (event: SessionClosedEvent) => void | Promise<void>;
