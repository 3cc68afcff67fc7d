import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configVariables, loadConfig } from './config.js';

function configErrorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  it('runs with nothing set: SQLite under ./data on port 3000', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      publicUrl: 'http://localhost:3000',
      dataDir: './data',
      databaseUrl: null,
      secretKey: null,
      logLevel: 'info',
      defaultCountry: 'US',
      rateLimit: 120,
      rateLimitWindowSeconds: 60,
      bodyLimitBytes: 1_048_576,
      idempotencyTtlHours: 24,
      workerBatchSize: 500,
      pollIntervalMs: 1000,
      dispatchConcurrency: 32,
      whatsappRatePerSecond: 80,
      webhookTimeoutMs: 10_000,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('loads the same config from an empty env as from every documented default', () => {
    const defaults = Object.fromEntries(configVariables.filter((v) => v.defaultValue !== undefined).map((v) => [v.name, v.defaultValue!]));
    expect(loadConfig(defaults)).toEqual(loadConfig({}));
  });

  it('treats empty and blank values as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '  ', LOG_LEVEL: '' })).toMatchObject({ port: 3000, databaseUrl: null, logLevel: 'info' });
  });

  it('reads the values it is given', () => {
    const config = loadConfig({
      PORT: '8080',
      DATABASE_URL: 'postgresql://nudge:pw@db:5432/nudge',
      NUDGE_PUBLIC_URL: 'https://nudge.example.com/',
      NUDGE_DEFAULT_COUNTRY: 'de',
      NUDGE_RATE_LIMIT: '600',
      LOG_LEVEL: 'debug',
      NUDGE_SECRET_KEY: 'k'.repeat(32),
    });
    expect(config).toMatchObject({
      port: 8080,
      databaseUrl: 'postgresql://nudge:pw@db:5432/nudge',
      publicUrl: 'https://nudge.example.com',
      defaultCountry: 'DE',
      rateLimit: 600,
      logLevel: 'debug',
      secretKey: 'k'.repeat(32),
    });
  });

  it('derives the public URL from PORT when NUDGE_PUBLIC_URL is unset', () => {
    expect(loadConfig({ PORT: '4000' }).publicUrl).toBe('http://localhost:4000');
  });

  const bad: Array<[string, string, string]> = [
    ['PORT', 'abc', 'PORT=3000'],
    ['PORT', '70000', 'PORT=3000'],
    ['PORT', '-1', 'PORT=3000'],
    ['PORT', '3000.5', 'PORT=3000'],
    ['NUDGE_RATE_LIMIT', '0', 'NUDGE_RATE_LIMIT=120'],
    ['NUDGE_RATE_LIMIT', 'lots', 'NUDGE_RATE_LIMIT=120'],
    ['NUDGE_RATE_LIMIT_WINDOW_SECONDS', '0', 'NUDGE_RATE_LIMIT_WINDOW_SECONDS=60'],
    ['NUDGE_BODY_LIMIT_BYTES', '10', 'NUDGE_BODY_LIMIT_BYTES=1048576'],
    ['DATABASE_URL', 'mysql://root@127.0.0.1/nudge', 'DATABASE_URL=postgres://'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL=info'],
    ['NUDGE_DEFAULT_COUNTRY', 'XX', 'NUDGE_DEFAULT_COUNTRY=US'],
    ['NUDGE_DEFAULT_COUNTRY', 'USA', 'NUDGE_DEFAULT_COUNTRY=US'],
    ['NUDGE_SECRET_KEY', 'too-short', 'NUDGE_SECRET_KEY='],
    ['NUDGE_PUBLIC_URL', 'nudge.example.com', 'NUDGE_PUBLIC_URL=https://'],
  ];

  it.each(bad)('refuses %s=%s naming the variable and a correct example', (name, value, example) => {
    const error = configErrorOf({ [name]: value });
    expect(error.variable).toBe(name);
    expect(error.message.startsWith(`${name} `)).toBe(true);
    expect(error.message).toContain(`for example ${example}`);
    // The example it gives is itself accepted.
    const given = /for example (\w+)=(\S+)$/.exec(error.message);
    expect(given).not.toBeNull();
    expect(() => loadConfig({ [given![1]!]: given![2]! })).not.toThrow();
  });

  it('gives every variable an example that loads', () => {
    for (const variable of configVariables) {
      expect(() => loadConfig({ [variable.name]: variable.example }), variable.name).not.toThrow();
    }
  });
});

describe('.env.example', () => {
  const text = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
  // Active (`NAME=value`) and commented-out (`# NAME=value`) assignments both count.
  const listed = [...text.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => ({ name: m[1]!, value: m[2]!.trim() }));

  it('lists exactly the variables in configVariables, once each', () => {
    expect(listed.map((v) => v.name).sort()).toEqual(configVariables.map((v) => v.name).sort());
  });

  it('gives each variable a value that loads, with its description above it', () => {
    for (const { name, value } of listed) {
      expect(() => loadConfig({ [name]: value }), name).not.toThrow();
      const spec = configVariables.find((v) => v.name === name)!;
      expect(text, name).toContain(`# ${spec.description}\n`);
    }
  });
});
