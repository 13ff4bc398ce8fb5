/** Chat templates stored in a GGUF file. */
import { TesseraError } from "../errors.js";
import type { GGUFFile } from "../gguf/types.js";

/** The key of the default template, as chatTemplates names it. */
export const DEFAULT_TEMPLATE = "default";

/**
 * `tokenizer.chat_template` (as "default") and the named variants
 * `tokenizer.chat_template.<name>` (e.g. "tool_use", "rag"), as llama.cpp reads them.
 */
export function readChatTemplates(file: GGUFFile): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, kv] of file.metadata) {
    let name: string;
    if (key === "tokenizer.chat_template") name = DEFAULT_TEMPLATE;
    else if (key.startsWith("tokenizer.chat_template.")) name = key.slice("tokenizer.chat_template.".length);
    else continue;
    if (typeof kv.value !== "string")
      throw new TesseraError("ERR_GGUF_MALFORMED", `${key} must hold a string (a Jinja chat template)`);
    if (name.length > 0) out[name] = kv.value;
  }
  return out;
}
