import { isCountryCode } from './phone.js';
import { refusedPortProblem } from './outbound-ports.js';

/**
 * One schema for every environment variable Nudge reads. Validated once at boot;
 * a bad value stops the process naming the variable and a correct example.
 * `.env.example` lists the same variables (a test keeps the two in step).
 */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly publicUrl: string;
  readonly dataDir: string;
  readonly databaseUrl: string | null;
  readonly secretKey: string | null;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly defaultCountry: string;
  readonly rateLimit: number;
  readonly rateLimitWindowSeconds: number;
  readonly bodyLimitBytes: number;
  readonly idempotencyTtlHours: number;
  readonly workerBatchSize: number;
  readonly pollIntervalMs: number;
  readonly dispatchConcurrency: number;
  readonly whatsappRatePerSecond: number;
  readonly webhookTimeoutMs: number;
  readonly dispatchLeaseMs: number;
  /** How long a send whose outcome is unknown waits for the provider's status callback before it is sent again. */
  readonly sendConfirmWindowMs: number;
  readonly sandboxDelivery: 'inline' | 'dispatch';
  /** The OpenAI-compatible endpoint that writes sequences from a goal, or null when none is configured. */
  readonly ai: { readonly baseUrl: string; readonly apiKey: string | null; readonly model: string; readonly timeoutMs: number } | null;
  readonly stripeBaseUrl: string;
  readonly automationIntervalMs: number;
  readonly webhookDeliveryTimeoutMs: number;
  readonly webhookDeliveryConcurrency: number;
  /** Email links go through the signed /t/ redirect that records clicks. */
  readonly clickTracking: boolean;
  /** Dashboard sign-in: days a session lasts without use, and sign-in attempts allowed per email and address in 15 minutes. */
  readonly sessionDays: number;
  readonly loginAttempts: number;
}

type Env = Record<string, string | undefined>;

interface VariableSpec {
  readonly name: string;
  readonly description: string;
  readonly example: string;
  readonly defaultValue?: string;
}

/** The variables, their defaults and a correct example of each; `.env.example` mirrors this. */
export const configVariables: readonly VariableSpec[] = [
  { name: 'PORT', description: 'HTTP port of the API, docs and dashboard', example: '3000', defaultValue: '3000' },
  { name: 'HOST', description: 'Interface to listen on', example: '0.0.0.0', defaultValue: '0.0.0.0' },
  { name: 'NUDGE_PUBLIC_URL', description: 'Public base URL used in links Nudge generates (unsubscribe, tracking, webhooks). Defaults to http://localhost:$PORT', example: 'https://nudge.example.com' },
  { name: 'NUDGE_DATA_DIR', description: 'Folder of the embedded SQLite database (used when DATABASE_URL is unset)', example: './data', defaultValue: './data' },
  { name: 'DATABASE_URL', description: 'PostgreSQL connection URL; when set, Nudge uses PostgreSQL instead of SQLite', example: 'postgres://nudge:secret@127.0.0.1:5432/nudge' },
  { name: 'NUDGE_SECRET_KEY', description: 'Key (32+ characters) that encrypts provider secrets at rest and signs links. Unset: a key is generated into NUDGE_DATA_DIR on first start', example: 'b3f1c8e2a7d94f6e9c0b1a2d3e4f5a6b7c8d9e0f1a2b3c4d' },
  { name: 'LOG_LEVEL', description: 'fatal, error, warn, info, debug, trace or silent', example: 'info', defaultValue: 'info' },
  { name: 'NUDGE_DEFAULT_COUNTRY', description: 'ISO 3166 country used to read phone numbers written without a + prefix', example: 'US', defaultValue: 'US' },
  { name: 'NUDGE_RATE_LIMIT', description: 'Requests each API token may make per window (a token may carry a higher limit of its own)', example: '120', defaultValue: '120' },
  { name: 'NUDGE_RATE_LIMIT_WINDOW_SECONDS', description: 'Length of the rolling rate-limit window in seconds', example: '60', defaultValue: '60' },
  { name: 'NUDGE_BODY_LIMIT_BYTES', description: 'Largest request body accepted, in bytes', example: '1048576', defaultValue: '1048576' },
  { name: 'NUDGE_IDEMPOTENCY_TTL_HOURS', description: 'How long a response is replayed for a repeated Idempotency-Key', example: '24', defaultValue: '24' },
  { name: 'NUDGE_WORKER_BATCH_SIZE', description: 'Sessions or messages a worker claims at once', example: '500', defaultValue: '500' },
  { name: 'NUDGE_POLL_INTERVAL_MS', description: 'Longest a worker sleeps before looking for due work when no wake-up arrives', example: '1000', defaultValue: '1000' },
  { name: 'NUDGE_DISPATCH_CONCURRENCY', description: 'Provider requests a worker keeps in flight at once', example: '32', defaultValue: '32' },
  { name: 'NUDGE_WHATSAPP_RATE_PER_SECOND', description: 'Messages per second per WhatsApp phone number, shared by every worker', example: '80', defaultValue: '80' },
  { name: 'NUDGE_DISPATCH_LEASE_MS', description: 'How long a worker holds a message it is sending before another worker may try it (after a crash)', example: '60000', defaultValue: '60000' },
  { name: 'NUDGE_SEND_CONFIRM_WINDOW_MS', description: "How long a send whose outcome is unknown (timeout, dropped connection, worker killed mid-send) waits for the provider's status callback before it is sent again", example: '60000', defaultValue: '60000' },
  { name: 'NUDGE_SANDBOX_DELIVERY', description: 'inline: sandbox messages are recorded as delivered in the transaction that queues them; dispatch: they go through the dispatcher like a real provider (to rehearse that path)', example: 'inline', defaultValue: 'inline' },
  { name: 'NUDGE_WEBHOOK_TIMEOUT_MS', description: 'Timeout of outgoing HTTP calls (webhook nodes, providers)', example: '10000', defaultValue: '10000' },
  { name: 'NUDGE_AI_BASE_URL', description: 'Base URL of an OpenAI-compatible chat-completions API (including /v1) that writes sequence emails from a goal. Unset: creating a sequence from a goal is refused', example: 'https://llm.example.com/v1' },
  { name: 'NUDGE_AI_API_KEY', description: 'Bearer key for NUDGE_AI_BASE_URL (leave unset for local model servers without auth)', example: 'sk-example-0000000000000000' },
  { name: 'NUDGE_AI_MODEL', description: 'Model name sent to NUDGE_AI_BASE_URL', example: 'gpt-4o-mini', defaultValue: 'gpt-4o-mini' },
  { name: 'NUDGE_AI_TIMEOUT_MS', description: 'Timeout of one request to NUDGE_AI_BASE_URL', example: '60000', defaultValue: '60000' },
  { name: 'NUDGE_STRIPE_BASE_URL', description: 'Base URL of the Stripe API used by discount steps (change it only to point at a test double or proxy)', example: 'https://api.stripe.com', defaultValue: 'https://api.stripe.com' },
  { name: 'NUDGE_WEBHOOK_DELIVERY_TIMEOUT_MS', description: 'How long a webhook subscriber has to answer one delivery before it counts as failed and is retried', example: '10000', defaultValue: '10000' },
  { name: 'NUDGE_WEBHOOK_DELIVERY_CONCURRENCY', description: 'Webhook deliveries a worker keeps in flight at once', example: '16', defaultValue: '16' },
  { name: 'NUDGE_AUTOMATION_INTERVAL_MS', description: 'How often a worker looks for inactivity triggers, time-window segment changes and pending AI writing', example: '15000', defaultValue: '15000' },
  { name: 'NUDGE_CLICK_TRACKING', description: 'on: links in emails go through a signed redirect at NUDGE_PUBLIC_URL/t/… that records each click (A/B test results count them); off: links are sent as written', example: 'on', defaultValue: 'on' },
  { name: 'NUDGE_SESSION_DAYS', description: 'Days a dashboard sign-in lasts without use (it never lasts more than 30 days, or this many if more)', example: '7', defaultValue: '7' },
  { name: 'NUDGE_LOGIN_ATTEMPTS', description: 'Dashboard sign-in attempts allowed per email and client address in 15 minutes (ten times as many per email from all addresses) before answering 429', example: '5', defaultValue: '5' },
];

export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string, example: string) {
    super(`${variable} ${problem}; for example ${variable}=${example}`);
    this.name = 'ConfigError';
  }
}

function spec(name: string): VariableSpec {
  const found = configVariables.find((v) => v.name === name);
  if (!found) throw new Error(`unknown variable ${name}`);
  return found;
}

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value !== undefined && value.trim() !== '') return value.trim();
  return spec(name).defaultValue;
}

function integer(env: Env, name: string, min: number, max: number): number {
  const value = raw(env, name) ?? '';
  const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max} (got "${value}")`, spec(name).example);
  }
  return parsed;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[]): T {
  const value = raw(env, name) ?? '';
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')} (got "${value}")`, spec(name).example);
  }
  return value as T;
}

function httpUrl(env: Env, name: string): string | null {
  const value = raw(env, name) ?? null;
  if (value === null) return null;
  if (!/^https?:\/\/[^\s/]+/.test(value)) throw new ConfigError(name, `must be an http(s) URL (got "${value}")`, spec(name).example);
  let port: string | null = null;
  try {
    port = refusedPortProblem(new URL(value));
  } catch {
    throw new ConfigError(name, `must be an http(s) URL (got "${value}")`, spec(name).example);
  }
  if (port !== null) throw new ConfigError(name, `${port} (got "${value}")`, spec(name).example);
  return value.replace(/\/+$/, '');
}

function aiEndpoint(env: Env): Config['ai'] {
  const baseUrl = httpUrl(env, 'NUDGE_AI_BASE_URL');
  if (baseUrl === null) return null;
  return { baseUrl, apiKey: raw(env, 'NUDGE_AI_API_KEY') ?? null, model: raw(env, 'NUDGE_AI_MODEL') ?? 'gpt-4o-mini', timeoutMs: integer(env, 'NUDGE_AI_TIMEOUT_MS', 1000, 600_000) };
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(env: Env): Config {
  const port = integer(env, 'PORT', 0, 65535);
  const host = raw(env, 'HOST') ?? '0.0.0.0';

  const publicUrl = raw(env, 'NUDGE_PUBLIC_URL') ?? `http://localhost:${port}`;
  if (!/^https?:\/\/[^\s/]+/.test(publicUrl)) {
    throw new ConfigError('NUDGE_PUBLIC_URL', `must be an http(s) URL (got "${publicUrl}")`, spec('NUDGE_PUBLIC_URL').example);
  }

  const databaseUrl = raw(env, 'DATABASE_URL') ?? null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must be a postgres:// URL', spec('DATABASE_URL').example);
  }

  const secretKey = raw(env, 'NUDGE_SECRET_KEY') ?? null;
  if (secretKey !== null && secretKey.length < 32) {
    throw new ConfigError('NUDGE_SECRET_KEY', 'must be at least 32 characters long', spec('NUDGE_SECRET_KEY').example);
  }

  const logLevel = raw(env, 'LOG_LEVEL') ?? 'info';
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${logLevels.join(', ')} (got "${logLevel}")`, 'info');
  }

  const defaultCountry = (raw(env, 'NUDGE_DEFAULT_COUNTRY') ?? 'US').toUpperCase();
  if (!isCountryCode(defaultCountry)) {
    throw new ConfigError('NUDGE_DEFAULT_COUNTRY', `must be a two-letter ISO 3166 country code (got "${defaultCountry}")`, 'US');
  }

  return Object.freeze({
    port,
    host,
    publicUrl: publicUrl.replace(/\/+$/, ''),
    dataDir: raw(env, 'NUDGE_DATA_DIR') ?? './data',
    databaseUrl,
    secretKey,
    logLevel: logLevel as Config['logLevel'],
    defaultCountry,
    rateLimit: integer(env, 'NUDGE_RATE_LIMIT', 1, 10_000_000),
    rateLimitWindowSeconds: integer(env, 'NUDGE_RATE_LIMIT_WINDOW_SECONDS', 1, 86_400),
    bodyLimitBytes: integer(env, 'NUDGE_BODY_LIMIT_BYTES', 1024, 100 * 1024 * 1024),
    idempotencyTtlHours: integer(env, 'NUDGE_IDEMPOTENCY_TTL_HOURS', 1, 24 * 30),
    workerBatchSize: integer(env, 'NUDGE_WORKER_BATCH_SIZE', 1, 10_000),
    pollIntervalMs: integer(env, 'NUDGE_POLL_INTERVAL_MS', 10, 60_000),
    dispatchConcurrency: integer(env, 'NUDGE_DISPATCH_CONCURRENCY', 1, 1000),
    whatsappRatePerSecond: integer(env, 'NUDGE_WHATSAPP_RATE_PER_SECOND', 1, 10_000),
    webhookTimeoutMs: integer(env, 'NUDGE_WEBHOOK_TIMEOUT_MS', 100, 120_000),
    dispatchLeaseMs: integer(env, 'NUDGE_DISPATCH_LEASE_MS', 1000, 3_600_000),
    sendConfirmWindowMs: integer(env, 'NUDGE_SEND_CONFIRM_WINDOW_MS', 0, 3_600_000),
    sandboxDelivery: oneOf(env, 'NUDGE_SANDBOX_DELIVERY', ['inline', 'dispatch'] as const),
    ai: aiEndpoint(env),
    stripeBaseUrl: httpUrl(env, 'NUDGE_STRIPE_BASE_URL') ?? 'https://api.stripe.com',
    automationIntervalMs: integer(env, 'NUDGE_AUTOMATION_INTERVAL_MS', 100, 3_600_000),
    webhookDeliveryTimeoutMs: integer(env, 'NUDGE_WEBHOOK_DELIVERY_TIMEOUT_MS', 100, 60_000),
    webhookDeliveryConcurrency: integer(env, 'NUDGE_WEBHOOK_DELIVERY_CONCURRENCY', 1, 256),
    clickTracking: oneOf(env, 'NUDGE_CLICK_TRACKING', ['on', 'off'] as const) === 'on',
    sessionDays: integer(env, 'NUDGE_SESSION_DAYS', 1, 365),
    loginAttempts: integer(env, 'NUDGE_LOGIN_ATTEMPTS', 1, 1000),
  });
}
