import { createAjv } from '../infra/schema/validate.js';
import { issue } from './authorize.js';
import { type ControlFrame, type StreamFilters, SubscribeMessage } from './protocol.js';

const checkSubscribe = createAjv().compile<SubscribeMessage>(SubscribeMessage);

/** What one client message asks for, or the error frame that answers it. */
export type ClientRequest =
  | { kind: 'subscribe'; filters: StreamFilters }
  | { kind: 'ping' }
  | { kind: 'invalid'; reply: ControlFrame };

/**
 * Parses and validates one client message against the documented schemas (`SubscribeMessage`,
 * `PingMessage`). Never throws: anything else becomes an error frame for the client, not a crash
 * and not a disconnect.
 */
export function parseClientMessage(text: string, isBinary: boolean): ClientRequest {
  if (isBinary) return invalid('invalid_message', 'messages must be JSON text frames');
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return invalid('invalid_json', 'message is not valid JSON');
  }
  const type = (message as { type?: unknown } | null)?.type;
  if (type === 'ping' && Object.keys(message as object).length === 1) return { kind: 'ping' };
  if (type !== 'subscribe') {
    return invalid('invalid_message', 'expected {"type":"subscribe","filters":{...}} or {"type":"ping"}');
  }
  if (!checkSubscribe(message)) {
    const details = (checkSubscribe.errors ?? []).map((e) => issue(e, 'message'));
    return invalid('validation_failed', 'invalid subscribe message', details);
  }
  return { kind: 'subscribe', filters: message.filters };
}

function invalid(code: string, message: string, details?: unknown): ClientRequest {
  return {
    kind: 'invalid',
    reply: { type: 'error', error: details === undefined ? { code, message } : { code, message, details } },
  };
}
