/** Tessera: local LLM inference for Node.js. */
export { TesseraError, isTesseraError } from "./errors.js";
export type { TesseraErrorCode } from "./errors.js";
export { loadModel, Model } from "./model/model.js";
export type { BackendChoice, LoadOptions, LoadProgress, ModelInfo } from "./model/model.js";
export { Session } from "./model/session.js";
export type { SessionOptions, EvaluateOptions } from "./model/session.js";
export { Generation } from "./generate/generate.js";
export type { GenerateOptions, GenerationChunk, Completion, StopReason, GenerationStats } from "./generate/generate.js";
export { Sampler } from "./sampling/sampler.js";
export type { SamplingOptions } from "./sampling/sampler.js";
export { loadTokenizer } from "./load-tokenizer.js";
export type { Tokenizer, EncodeOptions, EncodeAsyncOptions, DecodeOptions, StreamDecoder, StreamDecoderOptions } from "./tokenizer/index.js";
export { readGGUF } from "./gguf/reader.js";
export { writeGGUF } from "./gguf/writer.js";
export { GGMLType } from "./gguf/types.js";
export type { GGUFFile, GGUFTensorInfo } from "./gguf/types.js";
export { systemInfo } from "./system.js";
