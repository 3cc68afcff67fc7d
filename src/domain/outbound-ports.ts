/**
 * Ports an HTTP client built on the Fetch standard refuses to call (its "bad ports":
 * SMTP, IRC, X11 and other protocols a crafted request could be smuggled into). Nudge's
 * outbound requests go through such a client, which fails them before connecting, so a
 * provider, integration, webhook or step URL on one of these ports could never be
 * reached: it is refused when it is saved, with the field named, rather than failing
 * every delivery later. `outbound-ports.test.ts` checks this list against
 * the client Nudge runs on.
 */
export const refusedHttpPorts: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143,
  161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045,
  4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/**
 * Why Nudge cannot send HTTP requests to this URL's port, or null when it can. A URL
 * without a port uses 80 or 443, which are always allowed.
 */
export function refusedPortProblem(url: URL): string | null {
  if (url.port === '') return null;
  const port = Number(url.port);
  return refusedHttpPorts.has(port) ? `must not use port ${port}: it belongs to another protocol and HTTP requests to it are refused; use another port` : null;
}
