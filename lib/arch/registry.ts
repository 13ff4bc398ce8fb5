import { TesseraError } from "../errors.js";
import { bert } from "./bert.js";
import { deepseek2 } from "./deepseek2.js";
import { granite } from "./granite.js";
import { granitehybrid } from "./granitehybrid.js";
import { granitemoe } from "./granitemoe.js";
import { llama } from "./llama.js";
import { mamba2 } from "./mamba2.js";
import { mellum } from "./mellum.js";
import { nomicBert } from "./nomic-bert.js";
import { qwen2 } from "./qwen2.js";
import { qwen2moe } from "./qwen2moe.js";
import { qwen3 } from "./qwen3.js";
import { qwen3moe } from "./qwen3moe.js";
import type { ArchDescription } from "./types.js";

const ARCHITECTURES: readonly ArchDescription[] = [llama, qwen2, qwen3, qwen2moe, qwen3moe, mellum, deepseek2, granite, granitemoe, bert, nomicBert, mamba2, granitehybrid];

const byName = new Map(ARCHITECTURES.map((a) => [a.name, a]));

export function supportedArchitectures(): string[] {
  return [...byName.keys()];
}

export function architecture(name: string): ArchDescription {
  const arch = byName.get(name);
  if (!arch)
    throw new TesseraError(
      "ERR_UNKNOWN_ARCHITECTURE",
      `architecture "${name}" is not supported; Tessera runs ${supportedArchitectures().join(", ")}`,
    );
  return arch;
}
