import fc from 'fast-check';

/**
 * Hostile values for request bodies, parameters and raw bytes, shared by
 * test/api/engine-hostile.test.ts (hand-picked cases) and the property-based suite in
 * test/reliability/hostile.test.ts (generated from the OpenAPI document).
 */

/** An object nested `depth` levels deep: `{ a: { a: … 'leaf' …, b: [2] }, b: [2] }`. */
export function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i += 1) value = { a: value, b: [value === 'leaf' ? 1 : 2] };
  return value;
}

/** Strings that have broken parsers, databases, templating and URL handling before. */
export const edgeStrings: readonly string[] = [
  '',
  ' ',
  ' \t\n\r ',
  '\u0000',
  'a\u0000b',
  '\uD800', // a lone high surrogate: not representable in UTF-8
  '\uDFFF',
  'x\uD83D',
  '\uFEFF',
  '\u202Eevil',
  'e\u0301',
  '👩‍👩‍👧‍👦',
  '𝕏'.repeat(300),
  '\u200B\u200C\u200D',
  '\u0085\u2028\u2029',
  'İıßﬃǄ',
  'null',
  'undefined',
  'NaN',
  'true',
  '-0',
  '1e309',
  '0x10',
  '__proto__',
  'constructor',
  'prototype',
  '../../etc/passwd',
  '..%2F..%2Fetc%2Fpasswd',
  '%00',
  '%',
  "' OR 1=1 --",
  '"; drop table contacts; --',
  '<script>alert(1)</script>',
  '{{contact.email}}',
  '{{#each}}{{/each}}',
  '{{'.repeat(300),
  '${7*7}',
  '\\',
  '\\u0000',
  '+14155550123',
  '+999999999999999999999',
  'a@b',
  'ana@example.com',
  '2026-13-45T99:99:99Z',
  '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  'a'.repeat(5_000),
];

export const edgeNumbers: readonly number[] = [0, -0, -1, 1.5, 2 ** 31, 2 ** 32, 2 ** 53 + 2, -(2 ** 53) - 2, 1e21, 1e308, -1e308, 5e-324];

/** A JSON token written as is: numbers JSON.stringify cannot produce (they parse to Infinity or lose precision). */
export class RawJson {
  constructor(readonly text: string) {}
}

export const rawNumbers: readonly RawJson[] = ['1e999', '-1e999', '123456789012345678901234567890', '0.00000000000000000000000000001', '-0.0', '1E+2'].map((t) => new RawJson(t));

/** JSON text of `value`, with RawJson tokens written verbatim. */
export function serialize(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof RawJson) {
      raws.push(v.text);
      return `\u0000raw${raws.length - 1}\u0000`;
    }
    return v;
  });
  return (text ?? 'null').replace(/"\\u0000raw(\d+)\\u0000"/g, (_, i: string) => raws[Number(i)]!);
}

const scalar: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...edgeStrings),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(...edgeNumbers),
  fc.constantFrom(...rawNumbers),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.uuid(),
);

/** A value of any type, often not the one a field wants: scalars, arrays, objects, deep and huge values. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 2, arbitrary: fc.array(scalar, { maxLength: 5 }) },
  { weight: 2, arbitrary: fc.dictionary(fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('__proto__', 'constructor', '', '$where', 'a.b')), scalar, { maxKeys: 5 }) },
  { weight: 1, arbitrary: fc.integer({ min: 20, max: 400 }).map((depth) => nested(depth)) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(70_000), ['y'.repeat(1000)], Array.from({ length: 5000 }, (_, i) => i)) },
);

/** Whole bodies that are not what a JSON route expects, as raw bytes. */
export function rawBodies(example: unknown): Buffer[] {
  const json = serialize(example ?? {});
  const cut = Math.max(1, Math.floor(json.length / 2));
  const firstString = json.indexOf('":"') + 3;
  const withBytes = (bytes: number[]) => (firstString > 2 ? Buffer.concat([Buffer.from(json.slice(0, firstString)), Buffer.from(bytes), Buffer.from(json.slice(firstString))]) : Buffer.concat([Buffer.from('{"a":"'), Buffer.from(bytes), Buffer.from('"}')]));
  return [
    Buffer.from(json.slice(0, cut)), // truncated
    Buffer.from(`${json.slice(0, -1)},}`), // trailing comma
    Buffer.from(json.replace(/"/g, "'")), // single quotes
    Buffer.from(`/* comment */${json}`),
    Buffer.from(`${json}${json}`), // two documents
    Buffer.from(`\uFEFF${json}`), // byte order mark
    Buffer.from('NaN'),
    Buffer.from('null'),
    Buffer.from('"just a string"'),
    Buffer.from('[1,2,3]'),
    Buffer.from('12345678901234567890123'),
    Buffer.from('{"a":1,"a":2}'),
    Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`), // deeper than any parser's stack
    Buffer.from(`${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`),
    Buffer.from(JSON.stringify(Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])))),
    withBytes([0xff, 0xfe]), // invalid UTF-8
    withBytes([0xc3, 0x28]), // broken two-byte sequence
    withBytes([0x80]), // lone continuation byte
    withBytes([0xc0, 0xaf]), // overlong encoding of '/'
    withBytes([0xed, 0xa0, 0x80]), // an encoded surrogate
    withBytes([0xf4, 0x90, 0x80, 0x80]), // beyond U+10FFFF
    Buffer.from(' \n\t '),
  ];
}

/** Content types a JSON route must refuse (or, for the charset ones, read correctly). */
export const wrongContentTypes: readonly string[] = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/xml',
  'application/json; charset=utf-16',
  'application/vnd.api+json',
  'APPLICATION/JSON',
  'application/json, text/plain',
  ';;;',
];
