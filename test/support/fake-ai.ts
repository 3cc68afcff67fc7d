import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for an OpenAI-compatible chat-completions endpoint that speaks its wire
 * format: POST /v1/chat/completions with a JSON body `{ model, messages, response_format,
 * temperature }` and `Authorization: Bearer <key>`; 200 with a `chat.completion` object
 * (`{ id, object, created, model, choices: [{ index, message: { role, content }, finish_reason }], usage }`),
 * or OpenAI's error body `{ "error": { "message", "type", "param", "code" } }`.
 *
 * Unless a test sets `reply`, the assistant answers with a JSON object holding as many
 * emails as the user prompt asks for ("exactly N emails").
 */

export interface AiRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  /** The parsed JSON body (null when it was not JSON). */
  body: ChatCompletionBody | null;
}

export interface ChatCompletionBody {
  model?: unknown;
  messages?: Array<{ role?: unknown; content?: unknown }>;
  response_format?: { type?: unknown };
  temperature?: unknown;
  [field: string]: unknown;
}

export interface ScriptedResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (to test timeouts). */
  hang?: boolean;
}

export interface FakeAi {
  /** Including `/v1`, as settings give it. */
  baseUrl: string;
  requests: AiRequest[];
  /** Responses to give to the next requests, before any checks. */
  script: ScriptedResponse[];
  /** The assistant's message content for a valid request; null restores the default answer. */
  reply: ((request: ChatCompletionBody) => string) | null;
  close(): Promise<void>;
}

export function aiError(status: number, message: string, type: string, code: string | null = null, param: string | null = null): ScriptedResponse {
  return { status, body: { error: { message, type, param, code } } };
}

/** A 200 chat completion whose assistant message is `content`. */
export function completion(content: string | null, options: { model?: string; finishReason?: string; refusal?: string | null } = {}): ScriptedResponse {
  return { status: 200, body: completionBody(content, options.model ?? 'gpt-4o-mini-2024-07-18', options.finishReason ?? 'stop', options.refusal ?? null, 0) };
}

function completionBody(content: string | null, model: string, finishReason: string, refusal: string | null, promptChars: number): Record<string, unknown> {
  // Roughly four characters a token, as OpenAI's own rule of thumb.
  const promptTokens = Math.ceil(promptChars / 4);
  const completionTokens = Math.ceil((content ?? '').length / 4);
  return {
    id: `chatcmpl-${randomBytes(12).toString('base64url')}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content, refusal }, logprobs: null, finish_reason: finishReason }],
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    system_fingerprint: 'fp_fake',
  };
}

/** The default answer: `count` short emails, a day apart, in the shape the prompt asks for. */
export function sampleEmails(count: number): string {
  const emails = Array.from({ length: count }, (_, i) => ({
    subject: `Email ${i + 1} for {{contact.first_name|there}}`,
    previewText: `Preview ${i + 1}`,
    html: `<h1>Step ${i + 1}</h1><p>Hi {{contact.first_name|there}}, here is step ${i + 1}.</p>`,
    delayDays: i === 0 ? 0 : i === 1 ? 1 : 2,
  }));
  return JSON.stringify({ emails });
}

function requestedCount(body: ChatCompletionBody): number {
  const user = (body.messages ?? []).filter((m) => m.role === 'user').map((m) => String(m.content)).join('\n');
  const match = /exactly (\d+) emails?/i.exec(user);
  return match ? Number(match[1]) : 3;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts the fake; with an `apiKey`, requests must carry it as a Bearer token (as OpenAI checks), without one any or no key passes (as local servers do). */
export async function startFakeAi(options: { apiKey?: string | null } = {}): Promise<FakeAi> {
  const apiKey = options.apiKey ?? null;
  const hanging = new Set<ServerResponse>();
  const fake: Omit<FakeAi, 'baseUrl' | 'close'> = { requests: [], script: [], reply: null };
  const server: Server = createServer((request, response) => {
    void (async () => {
      const raw = await readBody(request);
      let body: ChatCompletionBody | null = null;
      try {
        const parsed: unknown = JSON.parse(raw);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as ChatCompletionBody;
      } catch {
        // Recorded as null; answered below with OpenAI's invalid-JSON error.
      }
      fake.requests.push({ method: request.method ?? '', path: request.url ?? '', authorization: request.headers.authorization, contentType: request.headers['content-type'], body });
      const answer = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
        response.writeHead(status, { 'content-type': 'application/json', ...headers });
        response.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
      };
      const fail = (error: ScriptedResponse) => answer(error.status, error.body);

      const scripted = fake.script.shift();
      if (scripted) {
        if (scripted.hang) {
          hanging.add(response);
          return;
        }
        answer(scripted.status, scripted.body ?? {}, scripted.headers);
        return;
      }
      if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
        return fail(aiError(404, `Invalid URL (${request.method ?? ''} ${request.url ?? ''})`, 'invalid_request_error'));
      }
      if (apiKey !== null) {
        const authorization = request.headers.authorization;
        if (!authorization?.startsWith('Bearer ')) {
          return fail(aiError(401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", 'invalid_request_error'));
        }
        const given = authorization.slice('Bearer '.length);
        if (given !== apiKey) {
          return fail(aiError(401, `Incorrect API key provided: ${given.slice(0, 3)}****${given.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', 'invalid_api_key'));
        }
      }
      if (!request.headers['content-type']?.startsWith('application/json') || body === null) {
        return fail(aiError(400, 'We could not parse the JSON body of your request.', 'invalid_request_error'));
      }
      if (typeof body.model !== 'string' || body.model === '') {
        return fail(aiError(400, 'you must provide a model parameter', 'invalid_request_error'));
      }
      const messages = body.messages;
      if (!Array.isArray(messages) || messages.length === 0) {
        return fail(aiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'invalid_request_error', 'empty_array', 'messages'));
      }
      const badMessage = messages.findIndex((m) => !['system', 'user', 'assistant', 'developer'].includes(String(m.role)) || typeof m.content !== 'string');
      if (badMessage !== -1) {
        return fail(aiError(400, `Invalid value for 'messages[${badMessage}]'.`, 'invalid_request_error', 'invalid_value', `messages[${badMessage}]`));
      }
      if (body.response_format?.type === 'json_object' && !messages.some((m) => String(m.content).toLowerCase().includes('json'))) {
        return fail(aiError(400, "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", 'invalid_request_error', null, 'messages'));
      }
      const content = fake.reply ? fake.reply(body) : sampleEmails(requestedCount(body));
      const promptChars = messages.reduce((sum, m) => sum + String(m.content).length, 0);
      answer(200, completionBody(content, body.model, 'stop', null, promptChars));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
