/**
 * WhatsApp's customer service window: a business may send free-form messages (text,
 * buttons, lists, media) only within 24 hours of the customer's last message; outside
 * it only approved templates go out. Meta refuses the rest with error 131047, so Nudge
 * refuses them first, with the same code, before anything reaches the provider.
 */
export const serviceWindowMs = 24 * 60 * 60 * 1000;

/** Meta's error code for "re-engagement message": a free-form send outside the window. */
export const outsideWindowCode = '131047';

export function isInsideServiceWindow(lastInboundAt: number | null | undefined, now: number): boolean {
  return lastInboundAt !== null && lastInboundAt !== undefined && now - lastInboundAt < serviceWindowMs;
}

/** Templates are the only messages allowed outside the window. */
export function needsServiceWindow(content: { kind: string }): boolean {
  return content.kind !== 'template';
}

export const outsideWindowMessage =
  'Outside the 24-hour customer service window: the contact has not written in the last 24 hours, so only an approved template can be sent (WhatsApp error 131047)';
