/**
 * The benchmark models: synthetic random-weight GGUFs at real shapes, written once into
 * .bench-models/ and reused (a file is rewritten only when missing).
 */
import fs from "node:fs";
import path from "node:path";
import { SHAPES, SHAPE_VOCAB, decodeWeightBytes, writeSyntheticModel, type WeightScheme } from "../dev/synthetic-model.js";
import { repoRoot } from "./paths.js";

export type ShapeName = keyof typeof SHAPES;

export interface BenchModel {
  name: string;
  file: string;
  shape: ShapeName;
  scheme: WeightScheme;
  /** Bytes of weights one decode step reads (every matrix but the embedding lookup). */
  decodeBytes: number;
}

const VOCAB_SIZES: Record<string, number> = { llama3: 128256, qwen2: 151936, smollm2: 49152 };

export function benchModel(shape: ShapeName, scheme: WeightScheme): BenchModel {
  const name = `${shape}-${scheme}`;
  const file = path.join(repoRoot, ".bench-models", `${name}.gguf`);
  const options = { weights: scheme, vocab: SHAPE_VOCAB[shape], seed: 7, repeatLayers: true };
  if (!fs.existsSync(file)) {
    const tmp = `${file}.partial`;
    writeSyntheticModel(tmp, SHAPES[shape], options);
    fs.renameSync(tmp, file);
  }
  const decodeBytes = decodeWeightBytes(SHAPES[shape], options, VOCAB_SIZES[SHAPE_VOCAB[shape]]);
  return { name, file, shape, scheme, decodeBytes };
}
