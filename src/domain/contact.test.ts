import { describe, expect, it } from 'vitest';
import {
  applyContactChanges,
  buildSearchText,
  containsPattern,
  emptyContactFields,
  escapeLike,
  mergeMetadata,
  normalizeContactInput,
  normalizeTagName,
  normalizeTimeZone,
  parseTags,
  resolveContactRef,
  searchTerms,
  tagKey,
  toPublicContact,
} from './contact.js';
import { AppError } from './errors.js';

function fieldErrors(fn: () => unknown): Record<string, string[]> {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('validation_failed');
    return (error as AppError).errors ?? {};
  }
  throw new Error('expected a validation error');
}

describe('normalizeContactInput', () => {
  it('normalises the phone to E.164 in the default country', () => {
    expect(normalizeContactInput({ phone: '(415) 555-0123' }, 'US').phone).toBe('+14155550123');
    expect(normalizeContactInput({ phone: '020 7946 0018' }, 'GB').phone).toBe('+442079460018');
    expect(normalizeContactInput({ phone: '+55 11 91234-5678' }, 'US').phone).toBe('+5511912345678');
  });

  it('lowercases and trims the email', () => {
    expect(normalizeContactInput({ email: '  Ana@Example.COM ' }, 'US').email).toBe('ana@example.com');
  });

  it('treats "" as clearing a field and leaves absent fields out', () => {
    const changes = normalizeContactInput({ name: '', email: '  ', timezone: '' }, 'US');
    expect(changes).toEqual({ name: null, email: null, timezone: null });
    expect('phone' in changes).toBe(false);
  });

  it('reports every bad field at once, each by name', () => {
    const errors = fieldErrors(() =>
      normalizeContactInput({ phone: 'call me', email: 'nope', timezone: 'Mars/Olympus', language: 'english!', name: 'x'.repeat(201), metadata: [] }, 'US'),
    );
    expect(Object.keys(errors).sort()).toEqual(['email', 'language', 'metadata', 'name', 'phone', 'timezone']);
    expect(errors.phone![0]).toMatch(/^phone must be a valid phone number/);
  });

  it('answers a 422 naming the field, not a crash, when a caller without schemas sends a wrong type', () => {
    expect(Object.keys(fieldErrors(() => normalizeContactInput({ name: 42 as unknown as string }, 'US')))).toEqual(['name']);
    expect(Object.keys(fieldErrors(() => resolveContactRef({ phone: {} as unknown as string }, 'US', ['phone'])))).toEqual(['phone']);
    expect(Object.keys(fieldErrors(() => normalizeTagName(undefined as unknown as string)))).toEqual(['tag']);
    expect(Object.keys(fieldErrors(() => searchTerms(7 as unknown as string)))).toEqual(['query']);
  });

  it('canonicalises the time zone', () => {
    expect(normalizeContactInput({ timezone: 'america/new_york' }, 'US').timezone).toBe('America/New_York');
    expect(normalizeTimeZone('Not/AZone')).toBeNull();
  });

  it('refuses metadata over 16 KiB naming metadata', () => {
    const errors = fieldErrors(() => normalizeContactInput({ metadata: { blob: 'x'.repeat(17_000) } }, 'US'));
    expect(errors.metadata![0]).toMatch(/16384 bytes/);
  });
});

describe('applyContactChanges', () => {
  it('splits a name into first and last name unless they are given', () => {
    const split = applyContactChanges(emptyContactFields, { name: 'Maria de la Cruz' });
    expect([split.first_name, split.last_name]).toEqual(['Maria', 'de la Cruz']);
    const given = applyContactChanges(emptyContactFields, { name: 'Maria de la Cruz', first_name: 'Mari' });
    expect([given.first_name, given.last_name]).toEqual(['Mari', null]);
  });

  it('builds the name from its parts when the contact has none', () => {
    expect(applyContactChanges(emptyContactFields, { first_name: 'Ana', last_name: 'Silva' }).name).toBe('Ana Silva');
    const named = { ...emptyContactFields, name: 'Ana S.' };
    expect(applyContactChanges(named, { first_name: 'Ana' }).name).toBe('Ana S.');
  });

  it('merges metadata shallowly and removes keys set to ""', () => {
    const current = { ...emptyContactFields, metadata: { plan: 'pro', seats: 3, nested: { a: 1 } } };
    const next = applyContactChanges(current, { metadata: { seats: 5, plan: '', nested: { b: 2 } } });
    expect(next.metadata).toEqual({ seats: 5, nested: { b: 2 } });
  });

  it('refuses a merge that would grow metadata past 16 KiB', () => {
    const current = { ...emptyContactFields, metadata: { a: 'x'.repeat(10_000) } };
    const errors = fieldErrors(() => applyContactChanges(current, { metadata: { b: 'y'.repeat(10_000) } }));
    expect(Object.keys(errors)).toEqual(['metadata']);
  });
});

describe('mergeMetadata', () => {
  it('keeps a __proto__ key as data without touching prototypes', () => {
    const patch = JSON.parse('{"__proto__": {"polluted": true}, "ok": 1}') as Record<string, unknown>;
    const merged = mergeMetadata({}, patch);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(merged.ok).toBe(1);
  });
});

describe('parseTags', () => {
  it('reads a comma-separated string or an array, trimming and skipping empty pieces', () => {
    expect(parseTags(' vip , lead,,  ').map((t) => t.name)).toEqual(['vip', 'lead']);
    expect(parseTags(['vip', 'big  spender']).map((t) => t.name)).toEqual(['vip', 'big spender']);
  });

  it('drops duplicates ignoring case, keeping the first spelling', () => {
    expect(parseTags('VIP, vip, Vip').map((t) => t.name)).toEqual(['VIP']);
  });

  it('reads "" and [] as no tags', () => {
    expect(parseTags('')).toEqual([]);
    expect(parseTags([])).toEqual([]);
  });

  it('refuses a tag over 100 characters naming tags', () => {
    expect(Object.keys(fieldErrors(() => parseTags('x'.repeat(101))))).toEqual(['tags']);
  });
});

describe('tags', () => {
  it('keys tag names case-insensitively', () => {
    expect(tagKey('VIP')).toBe(tagKey('vip'));
    expect(normalizeTagName('  Big   Spender ')).toEqual({ name: 'Big Spender', key: 'big spender' });
  });

  it('refuses an empty tag or one with a comma', () => {
    expect(Object.keys(fieldErrors(() => normalizeTagName('  ')))).toEqual(['tag']);
    expect(Object.keys(fieldErrors(() => normalizeTagName('a,b')))).toEqual(['tag']);
  });
});

describe('search text', () => {
  it('folds names, phone and email to lowercase without accents', () => {
    expect(buildSearchText({ name: 'José Núñez', first_name: 'José', last_name: 'Núñez', phone: '+14155550123', email: 'jose@example.com' })).toBe(
      'jose nunez jose nunez +14155550123 jose@example.com',
    );
  });

  it('splits a query into folded words and reduces phone fragments to digits', () => {
    expect(searchTerms('  José   (415) 555-0123 ')).toEqual(['jose', '415', '5550123']);
    expect(searchTerms('')).toEqual([]);
    expect(searchTerms(undefined)).toEqual([]);
  });

  it('escapes LIKE wildcards', () => {
    expect(escapeLike('50%_off\\')).toBe('50\\%\\_off\\\\');
    expect(containsPattern('a_b')).toBe('%a\\_b%');
  });

  it('refuses an overlong query naming query', () => {
    expect(Object.keys(fieldErrors(() => searchTerms('x'.repeat(201))))).toEqual(['query']);
    expect(Object.keys(fieldErrors(() => searchTerms('a b c d e f g h i j k')))).toEqual(['query']);
  });
});

describe('resolveContactRef', () => {
  it('prefers contact_id, then phone, then email, ignoring empty strings', () => {
    const all = ['contact_id', 'phone', 'email'] as const;
    expect(resolveContactRef({ contact_id: 'ABC', phone: '+14155550123' }, 'US', all)).toEqual({ by: 'id', id: 'abc' });
    expect(resolveContactRef({ contact_id: '', phone: '4155550123' }, 'US', all)).toEqual({ by: 'phone', phone: '+14155550123' });
    expect(resolveContactRef({ contact_id: '', phone: '', email: 'A@B.co' }, 'US', all)).toEqual({ by: 'email', email: 'a@b.co' });
  });

  it('names the missing reference', () => {
    const errors = fieldErrors(() => resolveContactRef({}, 'US', ['contact_id', 'phone']));
    expect(errors.contact_id![0]).toBe('contact_id is required: name the contact by contact_id or phone');
  });
});

describe('toPublicContact', () => {
  it('shows times as ISO 8601 UTC and metadata as an object', () => {
    const contact = toPublicContact(
      {
        id: 'id-1',
        phone: '+14155550123',
        email: null,
        name: 'Ana',
        first_name: 'Ana',
        last_name: null,
        timezone: null,
        language: null,
        source: 'api',
        metadata: '{"plan":"pro"}',
        opted_in_at: Date.UTC(2026, 4, 7, 8, 14, 23),
        opted_out_at: null,
        last_message_at: null,
        total_messages: 0,
        created_at: Date.UTC(2026, 4, 7),
        updated_at: Date.UTC(2026, 4, 7),
      },
      ['vip'],
    );
    expect(contact.opted_in_at).toBe('2026-05-07T08:14:23.000Z');
    expect(contact.metadata).toEqual({ plan: 'pro' });
    expect(contact.tags).toEqual(['vip']);
  });
});
