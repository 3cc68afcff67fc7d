import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode, type FieldErrors } from '../domain/errors.js';

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** `/contacts/0/email` → `contacts.0.email`; a missing property names the property itself. */
function fieldOf(issue: ValidationIssue, context: string): string {
  const path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const missing = issue.keyword === 'required' ? String(issue.params?.missingProperty ?? '') : '';
  const extra = issue.keyword === 'additionalProperties' ? String(issue.params?.additionalProperty ?? '') : '';
  const parts = [path, missing || extra].filter((p) => p !== '');
  return parts.length > 0 ? parts.join('.') : context;
}

function describe(issue: ValidationIssue, field: string): string {
  switch (issue.keyword) {
    case 'required':
      return `${field} is required`;
    case 'additionalProperties':
      return `${field} is not a known field`;
    case 'type':
      return `${field} must be ${String(issue.params?.type ?? 'of another type')}`;
    case 'maxLength':
      return `${field} must be at most ${String(issue.params?.limit)} characters`;
    case 'minLength':
      return `${field} must be at least ${String(issue.params?.limit)} characters`;
    case 'format':
      return `${field} must be a valid ${String(issue.params?.format)}`;
    case 'maxItems':
      return `${field} must hold at most ${String(issue.params?.limit)} items`;
    case 'minItems':
      return `${field} must hold at least ${String(issue.params?.limit)} item${issue.params?.limit === 1 ? '' : 's'}`;
    case 'enum':
      return `${field} must be one of ${(issue.params?.allowedValues as unknown[] | undefined)?.join(', ') ?? 'the allowed values'}`;
    default:
      return `${field} ${issue.message ?? 'is invalid'}`;
  }
}

export function validationToFieldErrors(issues: ValidationIssue[], context: string): FieldErrors {
  const errors: FieldErrors = {};
  for (const issue of issues) {
    const field = fieldOf(issue, context);
    // The field can be any key the caller sent ("constructor", "toString"): only own entries count.
    const list = Object.hasOwn(errors, field) ? errors[field]! : (errors[field] = []);
    list.push(describe(issue, field));
  }
  return errors;
}

const statusCodes: Partial<Record<number, ErrorCode>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
};

/**
 * Maps any error to the public error body. Only errors below 500 show their message:
 * AppErrors, Fastify's validation and body-parsing errors, and errors a library marks
 * with a 4xx `statusCode`. Everything else, whatever its class, is a 500 `internal`
 * (a SyntaxError from a handler's own JSON.parse is a bug of ours, not bad input).
 */
export function toAppError(error: FastifyError | AppError | Error, context: { bodyLimit?: number } = {}): AppError {
  if (error instanceof AppError) return error;
  const fe = error as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
  if (fe.validation) {
    const errors = validationToFieldErrors(fe.validation, fe.validationContext ?? 'body');
    const first = Object.values(errors)[0]?.[0] ?? 'The given data was invalid.';
    return new AppError('validation_failed', first, { errors });
  }
  const tooLarge = () =>
    new AppError('payload_too_large', context.bodyLimit ? `The request body is larger than ${context.bodyLimit} bytes` : 'The request body is too large');
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
    case 'FST_ERR_CTP_EMPTY_TYPE':
      return new AppError('unsupported_media_type', 'Send the body as JSON with the header Content-Type: application/json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge();
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('invalid_json', 'The request body is empty but Content-Type is application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError('invalid_json', 'The request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('bad_request', 'Content-Length does not match the body');
    default:
      break;
  }
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    if (status === 413) return tooLarge();
    return new AppError(statusCodes[status] ?? 'bad_request', error.message);
  }
  return new AppError('internal', 'Internal server error');
}

export function errorBody(error: AppError): Record<string, unknown> {
  return {
    error: error.message,
    code: error.code,
    message: error.message,
    ...(error.errors ? { errors: error.errors } : {}),
    ...(error.extra ?? {}),
  };
}

export function sendError(request: FastifyRequest, reply: FastifyReply, thrown: Error): FastifyReply {
  const error = toAppError(thrown, { bodyLimit: request.routeOptions.bodyLimit });
  if (error.status >= 500) request.log.error({ err: thrown }, 'request failed');
  else request.log.info({ code: error.code, status: error.status }, error.message);
  if (error.headers) void reply.headers(error.headers);
  return reply.code(error.status).type('application/json; charset=utf-8').send(errorBody(error));
}
