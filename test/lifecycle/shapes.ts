import type { ModelShape } from "../../dev/synthetic-model.js";

/**
 * About 100 MB of F32 weights (4 blocks at d=768, stories vocabulary): over the 32 MiB below
 * which steps run on the calling thread, and every FFN matrix (6 MiB) is copied at load, so
 * a load takes long enough (0.1-0.4 s here) to abort or interrupt midway.
 */
export const LARGE_SHAPE: ModelShape = { architecture: "llama", nLayer: 4, nEmbd: 768, nHead: 12, nHeadKv: 4, nFf: 2048, contextLength: 4096 };
