import { TesseraError } from "../errors.js";
import { llama } from "./llama.js";
import type { ArchDescription } from "./types.js";

const ARCHITECTURES: readonly ArchDescription[] = [llama];

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
