import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * A local stand-in for Twilio's Messages API that speaks its wire format: POST
 * /2010-04-01/Accounts/{AccountSid}/Messages.json, form-encoded, HTTP basic auth;
 * 201 with the message resource (shaped like the CreateMessage example of Twilio's
 * OpenAPI file), or Twilio's error body `{ code, message, more_info, status }`.
 */

const createExample = JSON.parse(
  readFileSync(fileURLToPath(new URL('../fixtures/reference/payloads/twilio/create-message-201-response.json', import.meta.url)), 'utf8'),
) as Record<string, unknown>;

export interface TwilioRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  form: Record<string, string>;
}

export interface ScriptedResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Never answer (to test timeouts). */
  hang?: boolean;
}

export interface FakeTwilio {
  baseUrl: string;
  requests: TwilioRequest[];
  /** Messages accepted (201), in order. */
  sent: Array<{ sid: string; to: string; body: string; from: string | null; messagingServiceSid: string | null; statusCallback: string | null }>;
  /** Responses to give to the next requests, before any checks. */
  script: ScriptedResponse[];
  close(): Promise<void>;
}

export function twilioError(status: number, code: number, message: string): ScriptedResponse {
  return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status } };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeTwilio(accountSid: string, authToken: string): Promise<FakeTwilio> {
  const requests: TwilioRequest[] = [];
  const sent: FakeTwilio['sent'] = [];
  const script: ScriptedResponse[] = [];
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((request, response) => {
    void (async () => {
      const raw = await readBody(request);
      const form = Object.fromEntries(new URLSearchParams(raw));
      const entry: TwilioRequest = { method: request.method ?? '', path: request.url ?? '', authorization: request.headers.authorization, contentType: request.headers['content-type'], form };
      requests.push(entry);
      const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        response.writeHead(status, { 'content-type': 'application/json', ...headers });
        response.end(JSON.stringify(body));
      };
      const scripted = script.shift();
      if (scripted) {
        if (scripted.hang) {
          hanging.add(response);
          return;
        }
        answer(scripted.status, scripted.body ?? {}, scripted.headers);
        return;
      }
      const expectedPath = `/2010-04-01/Accounts/${accountSid}/Messages.json`;
      if (request.method !== 'POST' || entry.path !== expectedPath) return answer(404, twilioError(404, 20404, 'The requested resource was not found').body);
      const expectedAuth = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;
      if (entry.authorization !== expectedAuth) return answer(401, twilioError(401, 20003, 'Authenticate').body);
      if (!entry.contentType?.startsWith('application/x-www-form-urlencoded')) return answer(400, twilioError(400, 20001, 'Unsupported content type').body);
      if (!form.To) return answer(400, twilioError(400, 21604, "A 'To' phone number is required.").body);
      if (!/^\+[1-9]\d{6,14}$/.test(form.To)) return answer(400, twilioError(400, 21211, `The 'To' number ${form.To} is not a valid phone number.`).body);
      if (!form.From && !form.MessagingServiceSid) return answer(400, twilioError(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message").body);
      if (!form.Body) return answer(400, twilioError(400, 21602, 'Message body is required.').body);
      const sid = `SM${randomBytes(16).toString('hex')}`;
      sent.push({ sid, to: form.To, body: form.Body, from: form.From ?? null, messagingServiceSid: form.MessagingServiceSid ?? null, statusCallback: form.StatusCallback ?? null });
      answer(201, {
        ...createExample,
        account_sid: accountSid,
        sid,
        to: form.To,
        from: form.From ?? null,
        body: form.Body,
        messaging_service_sid: form.MessagingServiceSid ?? null,
        uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
      });
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    sent,
    script,
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
