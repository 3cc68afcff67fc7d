import { describe, expect, it } from 'vitest';
import { countSmsSegments, isGsm7 } from './sms-segments.js';

describe('countSmsSegments', () => {
  it('counts plain GSM-7 text as one segment up to 160 characters', () => {
    expect(countSmsSegments('Hello!')).toEqual({ encoding: 'GSM-7', segments: 1, units: 6, perSegment: 160 });
    expect(countSmsSegments('a'.repeat(160))).toMatchObject({ encoding: 'GSM-7', segments: 1, units: 160 });
  });

  it('splits GSM-7 into parts of 153 septets past 160', () => {
    expect(countSmsSegments('a'.repeat(161))).toMatchObject({ segments: 2, perSegment: 153 });
    expect(countSmsSegments('a'.repeat(306))).toMatchObject({ segments: 2 });
    expect(countSmsSegments('a'.repeat(307))).toMatchObject({ segments: 3 });
  });

  it('keeps accented letters of the GSM alphabet in GSM-7', () => {
    expect(countSmsSegments('Ça coûte 5€? Größe: ½').encoding).toBe('UCS-2'); // û and ½ are not GSM
    expect(countSmsSegments('Ça va? Où est la gare à Zürich, Señor? Δ').encoding).toBe('GSM-7');
  });

  it('counts extension-table characters twice', () => {
    expect(countSmsSegments('€')).toMatchObject({ encoding: 'GSM-7', units: 2 });
    expect(countSmsSegments('{[~]}^|\\')).toMatchObject({ units: 16 });
    expect(countSmsSegments('a'.repeat(159) + '€')).toMatchObject({ units: 161, segments: 2 });
    expect(countSmsSegments('a'.repeat(158) + '€')).toMatchObject({ units: 160, segments: 1 });
  });

  it('never splits an escape pair across two segments', () => {
    // 152 septets, then € (2): it does not fit in the first part's last septet, so it starts
    // the second; 306 septets would fit in two parts, but this layout needs three.
    const text = 'a'.repeat(152) + '€' + 'a'.repeat(152);
    expect(countSmsSegments(text)).toMatchObject({ units: 306, segments: 3 });
    expect(countSmsSegments('a'.repeat(151) + '€' + 'a'.repeat(153))).toMatchObject({ units: 306, segments: 2 });
  });

  it('switches the whole message to UCS-2 for one character outside GSM-7', () => {
    expect(countSmsSegments('Hello! 👍')).toEqual({ encoding: 'UCS-2', segments: 1, units: 9, perSegment: 70 });
    expect(countSmsSegments('ж'.repeat(70))).toMatchObject({ encoding: 'UCS-2', segments: 1 });
    expect(countSmsSegments('ж'.repeat(71))).toMatchObject({ encoding: 'UCS-2', segments: 2, perSegment: 67 });
    expect(countSmsSegments('ж'.repeat(135))).toMatchObject({ segments: 3 });
  });

  it('counts a surrogate pair as two units and keeps it in one segment', () => {
    expect(countSmsSegments('👍'.repeat(35))).toMatchObject({ units: 70, segments: 1 });
    // 66 units then an emoji (2): it cannot take the last unit of part one.
    const text = 'ж'.repeat(66) + '👍' + 'ж'.repeat(66);
    expect(countSmsSegments(text)).toMatchObject({ units: 134, segments: 3 });
    expect(countSmsSegments('ж'.repeat(65) + '👍' + 'ж'.repeat(67))).toMatchObject({ units: 134, segments: 2 });
  });

  it('gives an empty body no segments', () => {
    expect(countSmsSegments('')).toMatchObject({ encoding: 'GSM-7', segments: 0 });
  });

  it('recognises the GSM alphabet', () => {
    expect(isGsm7('@£$¥ \n\r')).toBe(true);
    expect(isGsm7('`')).toBe(false);
  });
});
