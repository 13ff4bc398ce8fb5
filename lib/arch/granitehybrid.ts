import type { ArchDescription } from "./types.js";
import { granitemoe } from "./granitemoe.js";

/**
 * IBM Granite 4.0 hybrid (granitehybrid): Granite's blocks and multipliers, where the blocks
 * whose head_count_kv entry is 0 run a Mamba-2 mixer in place of attention (llama.cpp's
 * granite-hybrid.cpp); every block keeps its FFN (dense, or experts with the optional shared
 * expert). The mixer's output is scaled by residual_scale like attention's.
 */
export const granitehybrid: ArchDescription = {
  ...granitemoe,
  name: "granitehybrid",
  ssm: { blocks: "no-kv-heads", convBias: "optional" },
};
