export type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from "./types.js";
export { TokenType } from "./types.js";
export { tokenizerFromGGUF } from "./from-gguf.js";
export { tokenizerFromHuggingFace } from "./from-huggingface.js";
