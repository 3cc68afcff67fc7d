import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';
import { AppError } from './errors.js';
import { validateIntegrationSettings } from './integration-settings.js';
import { refusedHttpPorts, refusedPortProblem } from './outbound-ports.js';
import { validateProviderSettings } from './provider-settings.js';
import { validateGraph } from './validate-definition.js';
import { webhookUrlProblem } from './webhook-events.js';

/** Whether the HTTP client Nudge sends with refuses this port before connecting. */
async function refusedByClient(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(300) });
    return false;
  } catch (error) {
    return (error as { cause?: { message?: string } }).cause?.message === 'bad port';
  }
}

function fieldsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof AppError) return Object.keys(error.errors ?? {});
    throw error;
  }
  return [];
}

describe('ports HTTP requests cannot reach', () => {
  it('are exactly the ports the runtime HTTP client refuses, from 1 to 10,100', async () => {
    // Nothing listens on most of these ports, so a request is refused at once; a
    // listener (PostgreSQL, Redis…) may hold one until the timeout. Either is "not refused".
    const ports = Array.from({ length: 10_100 }, (_, i) => i + 1);
    const refused: number[] = [];
    for (let i = 0; i < ports.length; i += 250) {
      const chunk = ports.slice(i, i + 250);
      const answers = await Promise.all(chunk.map(refusedByClient));
      chunk.forEach((port, j) => answers[j] && refused.push(port));
    }
    expect(refused).toEqual([...refusedHttpPorts].sort((a, b) => a - b));
  }, 60_000);

  it('leave URLs without a port, or on any other port, alone', () => {
    for (const url of ['https://graph.facebook.com', 'http://127.0.0.1:8080/x', 'https://api.example.com:8443/v1', 'http://[::1]:6001/']) expect(refusedPortProblem(new URL(url)), url).toBeNull();
    expect(refusedPortProblem(new URL('http://irc.example.com:6667/hook'))).toBe('must not use port 6667: it belongs to another protocol and HTTP requests to it are refused; use another port');
  });

  it('are refused in a webhook subscription, a provider and an integration base URL, a webhook step and the configuration', () => {
    expect(webhookUrlProblem('http://hooks.example.com:6000/nudge')).toMatch(/^url must not use port 6000/);
    expect(webhookUrlProblem('http://hooks.example.com:6001/nudge')).toBeNull();
    const whatsapp = { phone_number_id: '106540352242922', access_token: 'EAAGm0PX4ZCpsBAKZBxyz' };
    expect(fieldsOf(() => validateProviderSettings('whatsapp', { ...whatsapp, base_url: 'http://127.0.0.1:25' }, { defaultCountry: 'US' }))).toEqual(['base_url']);
    expect(fieldsOf(() => validateProviderSettings('whatsapp', { ...whatsapp, base_url: 'http://127.0.0.1:26' }, { defaultCountry: 'US' }))).toEqual([]);
    expect(fieldsOf(() => validateIntegrationSettings('stripe', { secret_key: 'sk_test_51Habc0123456789', base_url: 'http://127.0.0.1:10080' }, {}))).toEqual(['base_url']);
    expect(fieldsOf(() => validateIntegrationSettings('stripe', { secret_key: 'sk_test_51Habc0123456789', base_url: 'http://127.0.0.1:10081' }, {}))).toEqual([]);

    const hook = (url: string) => validateGraph({ nodes: [{ id: 'hook', type: 'webhook', url }], edges: [] }, { kind: 'sequence' }).problems;
    expect(hook('http://crm.internal:587/contacts/{{contact.id}}')).toEqual([expect.objectContaining({ message: expect.stringContaining('url must not use port 587') })]);
    expect(hook('http://crm.internal:588/contacts/{{contact.id}}')).toEqual([]);

    expect(() => loadConfig({ NUDGE_AI_BASE_URL: 'http://127.0.0.1:6666/v1' })).toThrow(ConfigError);
    expect(() => loadConfig({ NUDGE_STRIPE_BASE_URL: 'http://127.0.0.1:6697' })).toThrow(/port 6697/);
    expect(loadConfig({ NUDGE_AI_BASE_URL: 'http://127.0.0.1:11434/v1' }).ai?.baseUrl).toBe('http://127.0.0.1:11434/v1');
  });
});
