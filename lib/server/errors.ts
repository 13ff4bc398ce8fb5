/**
 * Errors in OpenAI's JSON shape ({ error: { message, type, param, code } }) with the status
 * codes clients expect; TesseraErrors map onto them in one place. No stack traces leave the
 * server.
 */
import { isTesseraError, type TesseraErrorCode } from "../errors.js";

export interface ApiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Seconds, for 429 and 503. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, "invalid_request_error", param, code);

const STATUS: Partial<Record<TesseraErrorCode, [number, string]>> = {
  ERR_INVALID_ARGUMENT: [400, "invalid_request_error"],
  ERR_INVALID_TEXT: [400, "invalid_request_error"],
  ERR_OUT_OF_CONTEXT: [400, "invalid_request_error"],
  // What this model cannot do (a chat completion from an encoder): the request must change.
  ERR_UNSUPPORTED: [400, "invalid_request_error"],
  ERR_ABORTED: [499, "request_cancelled"],
  ERR_BUSY: [429, "rate_limit_error"],
  ERR_OUT_OF_MEMORY: [503, "server_error"],
  ERR_DISPOSED: [503, "server_error"],
};

/** Any thrown value as an ApiError: TesseraErrors by their code, anything else a 500 without details. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (isTesseraError(e)) {
    const [status, type] = STATUS[e.code] ?? [500, "server_error"];
    return new ApiError(status, e.message, type, null, e.code.toLowerCase());
  }
  return new ApiError(500, "internal server error", "server_error", null, "internal_error");
}
