import { TesseraError } from "../errors.js";
import { bert } from "./bert.js";
import { deepseek2 } from "./deepseek2.js";
import { gemma2 } from "./gemma2.js";
import { gemma3 } from "./gemma3.js";
import { gptOss } from "./gpt-oss.js";
import { granite } from "./granite.js";
import { granitehybrid } from "./granitehybrid.js";
import { granitemoe } from "./granitemoe.js";
import { llama } from "./llama.js";
import { mamba2 } from "./mamba2.js";
import { mellum } from "./mellum.js";
import { mistral3 } from "./mistral3.js";
import { nomicBert } from "./nomic-bert.js";
import { phi3 } from "./phi3.js";
import { qwen2 } from "./qwen2.js";
import { qwen2moe } from "./qwen2moe.js";
import { qwen3 } from "./qwen3.js";
import { qwen3moe } from "./qwen3moe.js";
import type { ArchDescription } from "./types.js";

const ARCHITECTURES: readonly ArchDescription[] = [
  llama, qwen2, qwen3, qwen2moe, qwen3moe, mellum, deepseek2, granite, granitemoe, gemma2, gemma3, phi3, mistral3, gptOss,
  mamba2, granitehybrid, bert, nomicBert,
];

const byName = new Map(ARCHITECTURES.map((a) => [a.name, a]));

export function supportedArchitectures(): string[] {
  return [...byName.keys()];
}

/**
 * Widely downloaded GGUF architectures (llama.cpp's names) Tessera does not run yet, named in
 * the refusal; an entry leaves this list when its description joins ARCHITECTURES.
 */
const NOT_YET = ["mamba2", "granitehybrid", "nemotron_h", "gemma3n", "phi2", "phimoe", "command-r", "cohere2", "olmo2", "starcoder2", "falcon-h1", "qwen3next"];

export function architecture(name: string): ArchDescription {
  const arch = byName.get(name);
  if (!arch)
    throw new TesseraError(
      "ERR_UNKNOWN_ARCHITECTURE",
      `architecture "${name}" is not supported; Tessera runs ${supportedArchitectures().join(", ")}. ` +
        `Not supported yet, among others: ${NOT_YET.filter((a) => !byName.has(a)).join(", ")}`,
    );
  return arch;
}
