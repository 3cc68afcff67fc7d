import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The dashboard's session cookie. HttpOnly (no script can read it), SameSite=Lax (not
 * sent on cross-site POSTs), Path=/ and, over HTTPS, Secure under the `__Host-` prefix,
 * which browsers only accept from this very host, over HTTPS, without a Domain: a
 * sibling subdomain cannot plant or overwrite it. Over plain HTTP (local use) the name
 * has no prefix, since browsers refuse `__Host-` cookies there.
 */

const plainName = 'nudge_session';
const secureName = '__Host-nudge_session';

/** Whether the request reached us over HTTPS (X-Forwarded-Proto is honoured: the app trusts its proxy). */
function isHttps(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

export function sessionCookieName(request: FastifyRequest): string {
  return isHttps(request) ? secureName : plainName;
}

/** The value of one cookie of the request, or null. Parsed by hand: the app has no cookie plugin. */
export function readCookie(request: FastifyRequest, name: string): string | null {
  const header = request.headers.cookie;
  if (typeof header !== 'string' || header === '') return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const raw = part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    try {
      return decodeURIComponent(raw);
    } catch {
      return null;
    }
  }
  return null;
}

/** The session token the request carries under the cookie name of its protocol. */
export function readSessionToken(request: FastifyRequest): string | null {
  return readCookie(request, sessionCookieName(request));
}

export function setSessionCookie(request: FastifyRequest, reply: FastifyReply, token: string, maxAgeSeconds: number): void {
  const secure = isHttps(request) ? '; Secure' : '';
  void reply.header('set-cookie', `${sessionCookieName(request)}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${maxAgeSeconds}${secure}`);
}

export function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  const secure = isHttps(request) ? '; Secure' : '';
  void reply.header('set-cookie', `${sessionCookieName(request)}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure}`);
}
