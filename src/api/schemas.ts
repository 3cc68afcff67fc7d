import { Type, type TSchema } from 'typebox';

/** The one error body: `error` for clients that read it, `code` for machines, `errors` per field on validation. */
export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'Human-readable message' }),
    code: Type.String({ description: 'Machine-readable error code' }),
    message: Type.String({ description: 'Same as error' }),
    errors: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()), { description: 'Problems per field (validation only)' })),
  },
  { $id: 'Error', additionalProperties: true, title: 'Error' },
);

const errorExamples: Record<number, { code: string; message: string; errors?: Record<string, string[]> }> = {
  400: { code: 'invalid_json', message: 'The request body is not valid JSON' },
  401: { code: 'unauthorized', message: 'Missing API token: send Authorization: Bearer <token>' },
  403: { code: 'forbidden', message: 'This token lacks the scope contacts:write' },
  404: { code: 'not_found', message: 'Contact not found' },
  409: { code: 'idempotency_conflict', message: 'Idempotency-Key was already used with a different request' },
  413: { code: 'payload_too_large', message: 'The request body is larger than 1048576 bytes' },
  415: { code: 'unsupported_media_type', message: 'Send the body as application/json' },
  422: { code: 'validation_failed', message: 'phone must be a valid phone number', errors: { phone: ['phone must be a valid phone number'] } },
  429: { code: 'rate_limited', message: 'Rate limit of 120 requests per 60 s exceeded; retry after 12 s' },
};

const errorDescriptions: Record<number, string> = {
  400: 'Malformed request',
  401: 'Missing, malformed or revoked token',
  403: 'The token lacks a required scope',
  404: 'Not found, or it belongs to another workspace',
  409: 'Conflict',
  413: 'Body too large',
  415: 'Wrong content type',
  422: 'Validation failed or a business rule refused the request',
  429: 'Rate limit exceeded',
};

/** The error responses of an operation, each with the shared body and an example. */
export function errorResponses(...statuses: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const status of statuses) {
    const example = errorExamples[status];
    out[status] = {
      description: errorDescriptions[status] ?? 'Error',
      content: {
        'application/json': {
          schema: { $ref: 'Error#' },
          ...(example
            ? { example: { error: example.message, code: example.code, message: example.message, ...(example.errors ? { errors: example.errors } : {}) } }
            : {}),
        },
      },
    };
  }
  return out;
}

/** Responses every authenticated operation can give. */
export const authErrors = [401, 403, 429] as const;

export function ok<T extends TSchema>(schema: T, description: string, example?: unknown) {
  return { description, content: { 'application/json': { schema, ...(example === undefined ? {} : { example }) } } };
}

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const Timestamp = Type.String({ format: 'date-time', description: 'ISO 8601 UTC' });
export const Uuid = Type.String({ format: 'uuid', maxLength: 36 });
