/** The tokenizer contract the engine, generation loop and public API use. */

export interface EncodeOptions {
  /** Add BOS/EOS (or CLS/SEP) as the vocabulary's flags say. Default true. */
  addSpecial?: boolean;
  /** Recognize control tokens written as text (e.g. "<|eot_id|>"). Default false. */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave control tokens (BOS, EOS, ...) out of the text. Default true. */
  skipSpecial?: boolean;
}

/** Turns a stream of token ids into text, emitting only complete UTF-8 characters. */
export interface StreamDecoder {
  push(id: number): string;
  /** Whatever is still buffered (an incomplete character becomes U+FFFD). */
  flush(): string;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** Notes about the vocabulary (e.g. an unknown pre-tokenizer replaced by the default). */
  readonly warnings: readonly string[];
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  /** The bytes a token stands for in decoded text (empty for control tokens). */
  tokenBytes(id: number): Uint8Array;
  isEndOfGeneration(id: number): boolean;
  isSpecial(id: number): boolean;
  createStreamDecoder(options?: DecodeOptions): StreamDecoder;
}

/** Token types as GGUF stores them (tokenizer.ggml.token_type). */
export enum TokenType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}
