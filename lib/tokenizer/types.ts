/** Public shapes of a tokenizer, and the token attributes every vocabulary is described with. */

export interface EncodeOptions {
  /** Add the BOS/EOS (or CLS/SEP) tokens the vocabulary asks for. Default true. */
  addSpecial?: boolean;
  /** Turn the text of control tokens (e.g. "<|eot_id|>") into those tokens. Default false. */
  parseSpecial?: boolean;
}

export interface EncodeAsyncOptions extends EncodeOptions {
  /** Aborting it rejects the promise with a TesseraError of code ERR_ABORTED. */
  signal?: AbortSignal;
}

export interface DecodeOptions {
  /** Leave control and unknown tokens (BOS, EOS, ...) out of the text. Default true. */
  skipSpecial?: boolean;
}

export interface StreamDecoderOptions extends DecodeOptions {
  /**
   * Tokens already in the text before the first pushed token (e.g. the prompt). They decide
   * whether the first pushed token starts the text, which matters for SentencePiece
   * vocabularies that drop the space they add in front of the text. Default: none, so the
   * first pushed token starts the text.
   */
  prefix?: ArrayLike<number>;
}

export interface StreamDecoder {
  /** Adds one token; returns the text it completes (only whole UTF-8 characters, maybe ""). */
  push(id: number): string;
  /** Ends the stream: returns what is held back, with U+FFFD for an incomplete character. */
  flush(): string;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** Things the loader fell back on (e.g. an unknown pre-tokenizer name). */
  readonly warnings: readonly string[];
  encode(text: string, options?: EncodeOptions): number[];
  /**
   * The tokens encode() gives, worked out in slices between which the event loop runs, so a
   * large text (megabytes) does not hold up timers and I/O; abortable through `signal`.
   */
  encodeAsync(text: string, options?: EncodeAsyncOptions): Promise<number[]>;
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The bytes this token stands for in decoded text (empty for control and unknown tokens). */
  tokenBytes(id: number): Uint8Array;
  /** EOS, EOT, EOM, <|im_end|> and the other tokens that end a generated turn. */
  isEndOfGeneration(id: number): boolean;
  /** Control and unknown tokens: the ones `skipSpecial` leaves out of decoded text. */
  isSpecial(id: number): boolean;
  createStreamDecoder(options?: StreamDecoderOptions): StreamDecoder;
}

/** Token types as GGUF stores them (`tokenizer.ggml.token_type`). */
export enum TokenType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

/**
 * Token attributes, as bit flags. The GGUF `tokenizer.ggml.token_type` values map onto them
 * (1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
 */
export enum TokenAttr {
  Undefined = 0,
  Normal = 1 << 0,
  Unknown = 1 << 1,
  Control = 1 << 2,
  UserDefined = 1 << 3,
  Unused = 1 << 4,
  Byte = 1 << 5,
  /** Whitespace to the left of the token's text is swallowed when it is matched in text. */
  LStrip = 1 << 6,
  /** Whitespace to the right of the token's text is swallowed when it is matched in text. */
  RStrip = 1 << 7,
}

/** Tokens matched in text as whole strings before any merging (control ones only when asked). */
export const MATCHED_WHOLE_ATTRS = TokenAttr.Control | TokenAttr.Unknown | TokenAttr.UserDefined;
/** Tokens that `skipSpecial` leaves out of decoded text. */
export const SKIPPABLE_ATTRS = TokenAttr.Control | TokenAttr.Unknown;

export function attrFromGGUFType(type: number): TokenAttr {
  switch (type) {
    case TokenType.Normal:
      return TokenAttr.Normal;
    case TokenType.Unknown:
      return TokenAttr.Unknown;
    case TokenType.Control:
      return TokenAttr.Control;
    case TokenType.UserDefined:
      return TokenAttr.UserDefined;
    case TokenType.Unused:
      return TokenAttr.Unused;
    case TokenType.Byte:
      return TokenAttr.Byte;
    default:
      return TokenAttr.Undefined;
  }
}
