/** Tokenizers: GGUF vocabularies (SentencePiece, byte-level BPE, WordPiece) and Hugging Face files. */
export { tokenizerFromGGUF } from "./from-gguf.js";
export type { Tokenizer, EncodeOptions, EncodeAsyncOptions, DecodeOptions, StreamDecoder, StreamDecoderOptions } from "./types.js";
export { TokenType } from "./types.js";
export { tokenizerFromHuggingFace } from "./from-huggingface.js";
export type { HuggingFaceOptions } from "./from-huggingface.js";
