/**
 * Every failure a caller must handle is one AppError with a code from this list.
 * The API's single error handler turns it into the public error body; anything
 * else is a logged 500 that leaks nothing.
 */
export const errorStatus = {
  invalid_json: 400,
  bad_request: 400,
  unsupported_media_type: 415,
  payload_too_large: 413,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  idempotency_conflict: 409,
  validation_failed: 422,
  business_rule: 422,
  no_entry_node: 422,
  outside_service_window: 422,
  template_variables_missing: 422,
  provider_not_connected: 422,
  discount_expired: 422,
  discount_locked: 422,
  discount_not_redeemable: 422,
  discount_exhausted: 409,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export type FieldErrors = Record<string, string[]>;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors?: FieldErrors;
  /** Extra members merged into the error body (e.g. `expected_placeholders`). */
  readonly extra?: Record<string, unknown>;
  readonly headers?: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { errors?: FieldErrors; extra?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.status = errorStatus[code];
    this.errors = options.errors;
    this.extra = options.extra;
    this.headers = options.headers;
  }
}

export function notFound(what: string): AppError {
  return new AppError('not_found', `${what} not found`);
}

/** A validation failure naming one field: `invalid('phone', 'must be a valid phone number')`. */
export function invalid(field: string, problem: string): AppError {
  return new AppError('validation_failed', `${field} ${problem}`, { errors: { [field]: [`${field} ${problem}`] } });
}

/** Several field problems at once. */
export function invalidFields(errors: FieldErrors): AppError {
  const first = Object.values(errors)[0]?.[0] ?? 'The given data was invalid.';
  return new AppError('validation_failed', first, { errors });
}

/** Normalises anything thrown into an Error, so callers never handle `unknown`. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : JSON.stringify(thrown));
}
