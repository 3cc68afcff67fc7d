/**
 * How an SMS body travels: its encoding and how many segments (billable parts) it takes.
 *
 * A body written only in the GSM 03.38 alphabet goes as GSM-7: 160 septets in one
 * segment, or 153 per segment once it is split (the user-data header takes 7). The
 * characters of the extension table (`^{}\[~]|€` and form feed) are sent as ESC plus a
 * character and count twice, and an escape pair is never split across two segments.
 * Any other character makes the whole body UCS-2: 70 UTF-16 code units in one segment,
 * 67 per segment when split. A character outside the Basic Multilingual Plane (most
 * emoji) is a surrogate pair, two code units that stay together in one segment.
 *
 * @example
 * countSmsSegments('Hello!')        // { encoding: 'GSM-7', segments: 1, units: 6, ... }
 * countSmsSegments('Hello! 👍')     // { encoding: 'UCS-2', segments: 1, units: 9, ... }
 */

export type SmsEncoding = 'GSM-7' | 'UCS-2';

export interface SmsSegmentCount {
  encoding: SmsEncoding;
  /** Billable parts; 0 for an empty body. */
  segments: number;
  /** Septets for GSM-7, UTF-16 code units for UCS-2. */
  units: number;
  /** Units that fit in each segment at this length (160/153 or 70/67). */
  perSegment: number;
}

// GSM 03.38 basic character set (LF and CR included; ESC itself is not text).
const gsmBasic = new Set(
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
// The extension table: each is sent as ESC + a character, two septets.
const gsmExtension = new Set('\f^{}\\[~]|€');

/** True when every character of the text is in the GSM-7 alphabet or its extension table. */
export function isGsm7(text: string): boolean {
  for (const ch of text) if (!gsmBasic.has(ch) && !gsmExtension.has(ch)) return false;
  return true;
}

/** Fills segments of `size` units with items of the given widths, never splitting an item. */
function packSegments(widths: Iterable<number>, size: number): number {
  let segments = 1;
  let used = 0;
  for (const width of widths) {
    if (used + width > size) {
      segments += 1;
      used = 0;
    }
    used += width;
  }
  return segments;
}

export function countSmsSegments(text: string): SmsSegmentCount {
  if (isGsm7(text)) {
    const widths = [...text].map((ch) => (gsmExtension.has(ch) ? 2 : 1));
    const units = widths.reduce((a, b) => a + b, 0);
    if (units === 0) return { encoding: 'GSM-7', segments: 0, units: 0, perSegment: 160 };
    if (units <= 160) return { encoding: 'GSM-7', segments: 1, units, perSegment: 160 };
    return { encoding: 'GSM-7', segments: packSegments(widths, 153), units, perSegment: 153 };
  }
  // Iterating a string yields code points: a surrogate pair arrives as one item of length 2.
  const widths = [...text].map((ch) => ch.length);
  const units = text.length;
  if (units <= 70) return { encoding: 'UCS-2', segments: 1, units, perSegment: 70 };
  return { encoding: 'UCS-2', segments: packSegments(widths, 67), units, perSegment: 67 };
}
