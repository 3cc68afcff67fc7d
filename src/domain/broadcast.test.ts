import { describe, expect, it } from 'vitest';
import { checkBroadcastVariables, parseAudience, parseScheduledAt } from './broadcast.js';

const id = '0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B';

describe('parseAudience', () => {
  it('reads each kind of audience, normalising the tag and the ids', () => {
    expect(parseAudience({ tag: '  VIP   buyers ' }).audience).toEqual({ type: 'tag', tag: 'VIP buyers' });
    expect(parseAudience({ type: 'segment', segment_id: id }).audience).toEqual({ type: 'segment', segment_id: id.toLowerCase() });
    expect(parseAudience({ list_id: id }).audience).toEqual({ type: 'list', list_id: id.toLowerCase() });
    expect(parseAudience({ contact_ids: [id, id.toLowerCase()] }).audience).toEqual({ type: 'contacts', contact_ids: [id.toLowerCase()] });
  });

  it('names the field of each problem', () => {
    const field = (value: unknown) => Object.keys(parseAudience(value).errors);
    expect(field('vip')).toEqual(['audience']);
    expect(field({})).toEqual(['audience']);
    expect(field({ tag: 'a', list_id: id })).toEqual(['audience']);
    expect(field({ tags: 'a' })).toEqual(['audience.tags']);
    expect(field({ type: 'list', tag: 'a' })).toEqual(['audience.type']);
    expect(field({ tag: '' })).toEqual(['audience.tag']);
    expect(field({ segment_id: 'segment-1' })).toEqual(['audience.segment_id']);
    expect(field({ contact_ids: [] })).toEqual(['audience.contact_ids']);
    expect(field({ contact_ids: Array.from({ length: 1001 }, () => id) })).toEqual(['audience.contact_ids']);
    expect(field({ contact_ids: [id, 'x', 7] })).toEqual(['audience.contact_ids.1', 'audience.contact_ids.2']);
  });
});

describe('checkBroadcastVariables', () => {
  it('accepts placeholder keys with text and contact or workspace merge tags', () => {
    const value = { '1': '{{contact.first_name|there}}', '2': '{{ first_name }} of {{workspace.name}}', header_1: 'News', button_0: '{{contact.metadata.slug}}' };
    expect(checkBroadcastVariables(value)).toEqual({ variables: value, errors: {} });
    expect(checkBroadcastVariables(undefined)).toEqual({ variables: {}, errors: {} });
  });

  it('refuses keys that are no placeholder, values that are no text, and tags a broadcast cannot fill', () => {
    const { variables, errors } = checkBroadcastVariables({
      name: 'x',
      '1': 5,
      '2': '{{event.city}}',
      '3': '{{unsubscribe_url}}',
      '4': '{{contact}}',
      '5': 'y'.repeat(1025),
    });
    expect(variables).toBeNull();
    expect(Object.keys(errors).sort()).toEqual(['variables.1', 'variables.2', 'variables.3', 'variables.4', 'variables.5', 'variables.name']);
    expect(errors['variables.2']![0]).toMatch(/cannot fill/);
    expect(Object.keys(checkBroadcastVariables(['a']).errors)).toEqual(['variables']);
  });
});

describe('parseScheduledAt', () => {
  const now = Date.UTC(2026, 4, 7, 8, 0, 0);

  it('reads ISO times with a zone', () => {
    expect(parseScheduledAt('2026-05-07T09:00:00Z', now)).toEqual({ at: Date.UTC(2026, 4, 7, 9) });
    expect(parseScheduledAt('2026-05-07T11:00:00.250+02:00', now)).toEqual({ at: Date.UTC(2026, 4, 7, 9, 0, 0, 250) });
  });

  it('takes a time a few seconds past as now, and refuses one further back', () => {
    expect(parseScheduledAt('2026-05-07T07:59:30Z', now)).toEqual({ at: now });
    expect(parseScheduledAt('2026-05-07T07:58:00Z', now)).toMatchObject({ problem: expect.stringMatching(/in the past/) });
  });

  it('refuses what is not a zoned ISO date-time', () => {
    for (const value of ['2026-05-07 09:00', '2026-05-07T09:00:00', 'tomorrow', 1778140800000, null, '2027-02-30T09:00:00Z', '2027-13-01T09:00:00Z', '2027-05-07T25:00:00Z']) {
      expect(parseScheduledAt(value, now), String(value)).toHaveProperty('problem');
    }
  });
});
