import type { ArchDescription } from "./types.js";
import { granite } from "./granite.js";

/**
 * IBM Granite 3.x MoE (granitemoe): Granite's blocks and multipliers with a softmax-routed
 * mixture of experts in every block, top-k weights renormalized (llama.cpp's build_granite
 * passes norm_w = true), and the optional ungated shared expert of GraniteMoE Shared files.
 */
export const granitemoe: ArchDescription = {
  ...granite,
  name: "granitemoe",
  ffn: "moe-if-experts",
  moe: { gating: "softmax", normTopKDefault: true, sharedExperts: "optional" },
};
