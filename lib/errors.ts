/**
 * Every failure Tessera reports is a TesseraError with a stable `code`.
 * Native status codes are mapped to these names in one place (native/addon/status_napi.cpp),
 * so the same code reaches the caller whether the check ran in TypeScript or C++.
 */
export type TesseraErrorCode =
  /** The file is not a well-formed GGUF (bad magic, truncated, offsets past EOF, bad counts). */
  | "ERR_GGUF_MALFORMED"
  /** A GGUF version, metadata type or tensor type this build cannot read. */
  | "ERR_GGUF_UNSUPPORTED"
  /** `general.architecture` names an architecture with no description in lib/arch. */
  | "ERR_UNKNOWN_ARCHITECTURE"
  /** A tensor is stored in a quantization type the kernels do not implement. */
  | "ERR_UNSUPPORTED_QUANT_TYPE"
  /** The architecture needs a tensor or metadata key the file does not have, or its shape is wrong. */
  | "ERR_MODEL_INCOMPATIBLE"
  /** The tokenizer metadata or files are missing or inconsistent. */
  | "ERR_TOKENIZER"
  /** Input text or bytes are not valid for the operation (for example invalid UTF-8 where text is required). */
  | "ERR_INVALID_TEXT"
  /** A call received an argument outside its domain. */
  | "ERR_INVALID_ARGUMENT"
  /** A JSON Schema uses a keyword (or a form of one) that constrained decoding does not support; the message names it and where. */
  | "ERR_UNSUPPORTED_SCHEMA"
  /** The session's KV cache cannot hold the requested tokens. */
  | "ERR_OUT_OF_CONTEXT"
  /** Host or device memory could not be allocated. */
  | "ERR_OUT_OF_MEMORY"
  /** Reading or mapping a file failed. */
  | "ERR_IO"
  /** A download (pullModel, `tessera pull`) could not reach the server or broke off; a partial file is kept to resume. */
  | "ERR_NETWORK"
  /** The server has no such repository, revision or file (HTTP 401, 403 or 404: private and gated repos answer so too). */
  | "ERR_NOT_FOUND"
  /** A downloaded file's size or sha256 is not what the server announced; the file was removed. */
  | "ERR_CHECKSUM"
  /** The requested backend cannot run on this machine. */
  | "ERR_BACKEND_UNAVAILABLE"
  /** A CUDA call failed. */
  | "ERR_CUDA"
  /**
   * NaN or Infinity where numbers must be finite: a step's logits (the model's weights hold
   * non-finite values or its activations overflowed; only the requests whose logits went
   * bad fail), logits handed to the sampler, or a weight found by loadModel's checkTensors.
   * Load with checkTensors: true to find a damaged tensor, or use another quantization.
   */
  | "ERR_NON_FINITE"
  /** The operation was cancelled through an AbortSignal. */
  | "ERR_ABORTED"
  /** The model or session was used after dispose(). */
  | "ERR_DISPOSED"
  /** The session is already running an evaluation. */
  | "ERR_BUSY"
  /**
   * A chat template does not parse, uses a construct the Jinja engine does not implement, or
   * failed while rendering (raise_exception in the template, an undefined value used, ...).
   */
  | "ERR_CHAT_TEMPLATE"
  /** The option or feature is not in this build (e.g. jsonSchema before constrained decoding). */
  | "ERR_UNSUPPORTED"
  /**
   * A vector index file (loadVectorIndex) is not one: wrong magic or version, sizes that do
   * not add up, a checksum mismatch, duplicate ids or non-finite vectors. Save it again.
   */
  | "ERR_INDEX_MALFORMED"
  /** The native addon could not be loaded. */
  | "ERR_ADDON_LOAD"
  /** A bug: an invariant inside Tessera failed. */
  | "ERR_INTERNAL";

export class TesseraError extends Error {
  readonly code: TesseraErrorCode;

  constructor(code: TesseraErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TesseraError";
    this.code = code;
  }
}

export function isTesseraError(e: unknown, code?: TesseraErrorCode): e is TesseraError {
  return e instanceof TesseraError && (code === undefined || e.code === code);
}

/** Native errors arrive as plain Errors carrying a `code`; give them the TesseraError shape. */
export function fromNativeError(e: unknown): TesseraError {
  if (e instanceof TesseraError) return e;
  if (e instanceof Error && typeof (e as { code?: unknown }).code === "string") {
    return new TesseraError((e as unknown as { code: TesseraErrorCode }).code, e.message, { cause: e });
  }
  return new TesseraError("ERR_INTERNAL", `unexpected native failure: ${String(e)}`, { cause: e });
}
