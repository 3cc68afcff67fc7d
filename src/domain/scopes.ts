/** Every scope a token may carry. `resource:*` grants every action on a resource, `*` everything. */
export const knownScopes = [
  'contacts:read',
  'contacts:write',
  'templates:read',
  'templates:write',
  'messages:read',
  'messages:send',
  'sequences:read',
  'sequences:write',
  'sequences:execute',
  'flows:read',
  'flows:write',
  'flows:execute',
  'sessions:read',
  'sessions:write',
  'settings:read',
  'settings:write',
  'tokens:read',
  'tokens:write',
  'broadcasts:read',
  'broadcasts:write',
  'webhooks:read',
  'webhooks:write',
  'discounts:read',
  'discounts:write',
] as const;

export type Scope = (typeof knownScopes)[number];

const resources = new Set(knownScopes.map((s) => s.split(':')[0]));

export function isValidScope(scope: string): boolean {
  if (scope === '*') return true;
  const [resource, action] = scope.split(':');
  if (resource === undefined || !resources.has(resource)) return false;
  return action === '*' || (knownScopes as readonly string[]).includes(scope);
}

/** Whether a token's scopes grant `needed`. */
export function grants(scopes: readonly string[], needed: Scope): boolean {
  if (scopes.includes('*') || scopes.includes(needed)) return true;
  const resource = needed.split(':')[0];
  return scopes.includes(`${resource}:*`);
}
