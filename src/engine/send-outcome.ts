import type { SendResult } from '../channels/channel.js';
import type { MessageOutcome } from '../store/message-repository.js';
import { computeBackoff, maxAttempts } from './backoff.js';

/**
 * How long a send whose outcome is unknown (a timeout, a dropped connection, a worker
 * killed mid-send) waits for the provider's status callback before it is sent again:
 * the default of NUDGE_SEND_CONFIRM_WINDOW_MS.
 */
export const confirmationWindowMs = 60_000;

/**
 * What a send result does to its message, in one place for the dispatcher, inline
 * channels and direct sends: accepted → sent (or delivered); retryable → queued again
 * after a backoff that honours Retry-After, until the attempts run out; permanent → failed.
 * `attempts` counts the attempt just made.
 */
export function outcomeOf(message: { id: string; attempts: number }, result: SendResult, done: number, confirmMs = confirmationWindowMs): MessageOutcome {
  if (result.ok) {
    const delivered = result.status === 'delivered';
    return {
      id: message.id,
      status: delivered ? 'delivered' : 'sent',
      provider_message_id: result.providerMessageId,
      error_code: null,
      error_message: null,
      next_attempt_at: null,
      lease_until: null,
      updated_at: done,
      sent_at: done,
      delivered_at: delivered ? done : null,
      failed_at: null,
      segments: typeof result.details?.segments === 'number' ? result.details.segments : null,
      encoding: typeof result.details?.encoding === 'string' ? result.details.encoding : null,
    };
  }
  if (result.retryable && message.attempts < maxAttempts) {
    const backoff = computeBackoff(message.attempts, result.retryAfterMs);
    return {
      id: message.id,
      status: 'queued',
      provider_message_id: null,
      error_code: result.code,
      error_message: result.message.slice(0, 1000),
      // The provider may have accepted it: give its status callback (which names this
      // message) time to arrive and settle it before sending again.
      next_attempt_at: done + (result.ambiguous ? Math.max(backoff, confirmMs) : backoff),
      lease_until: null,
      updated_at: done,
      sent_at: null,
      delivered_at: null,
      failed_at: null,
      segments: null,
      encoding: null,
    };
  }
  return {
    id: message.id,
    status: 'failed',
    provider_message_id: null,
    error_code: result.retryable ? 'max_attempts_exceeded' : result.code,
    error_message: result.message.slice(0, 1000),
    next_attempt_at: null,
    lease_until: null,
    updated_at: done,
    sent_at: null,
    delivered_at: null,
    failed_at: done,
    segments: null,
    encoding: null,
  };
}
