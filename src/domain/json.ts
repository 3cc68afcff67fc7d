/** JSON columns are text in both engines; these keep the parsing in one place. */
export function parseJson<T>(text: string | null | undefined, fallback: T): T {
  if (text === null || text === undefined || text === '') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null);
}

export type JsonObject = Record<string, unknown>;

export function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Whether `value` nests objects and arrays deeper than `limit` levels (checked without recursion). */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== 'object' || item === null) continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * A deep copy of a JSON value (objects, arrays, strings, numbers, booleans, null), for
 * the engine's hot path: a session's state is copied at every step, and structuredClone's
 * serialisation cost more than the copy itself for objects of a few keys. Anything
 * nested deeper than `structuredBelow` levels (a webhook's stored answer can be) is left
 * to structuredClone, so the recursion stays bounded.
 */
export function cloneJson<T>(value: T, structuredBelow = 32): T {
  return copyJson(value, structuredBelow) as T;
}

function copyJson(value: unknown, depthLeft: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depthLeft === 0) return structuredClone(value);
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i += 1) out[i] = copyJson(value[i], depthLeft - 1);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    // Assigning "__proto__" would set the copy's prototype instead of a key, as JSON.parse made it.
    if (key === '__proto__') Object.defineProperty(out, key, { value: copyJson(item, depthLeft - 1), enumerable: true, writable: true, configurable: true });
    else out[key] = copyJson(item, depthLeft - 1);
  }
  return out;
}
