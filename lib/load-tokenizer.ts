import { readGGUF } from "./gguf/reader.js";
import { tokenizerFromGGUF, type Tokenizer } from "./tokenizer/index.js";

/** The tokenizer of a GGUF model file, without loading its weights. */
export function loadTokenizer(ggufPath: string): Tokenizer {
  return tokenizerFromGGUF(readGGUF(ggufPath));
}
