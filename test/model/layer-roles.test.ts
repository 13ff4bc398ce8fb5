/**
 * One plan schema (issue 26): the per-block tensor roles are one table in C++
 * (native/core/layer_roles.h, read here through the addon's layerRoles()) and one in
 * TypeScript (lib/arch/tensor-names.ts); this test keeps them in step. Enums cross N-API as
 * strings; a string outside plan_from_js.cpp's table, or a role the block's recipe does not
 * check, is refused by C++ on its own.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { BLOCK_TENSORS, MATMUL_ROLES, type BlockTensorRole } from "../../lib/arch/tensor-names.js";
import { native, type NativePlan } from "../../lib/native.js";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { evaluateIsolated } from "../helpers/isolated-eval.js";
import { tempDir } from "../helpers/paths.js";

describe("layer roles", () => {
  const roles = native().layerRoles();

  it("native and TypeScript list the same roles with the same GGUF names", () => {
    expect(roles.map((r) => r.name)).toEqual(Object.keys(BLOCK_TENSORS));
    for (const r of roles) expect(BLOCK_TENSORS[r.name as BlockTensorRole], r.name).toBe(r.suffix);
  });

  it("the matmul roles are MATMUL_ROLES; every other role is an F32 norm or bias", () => {
    expect(new Set(roles.filter((r) => r.kind === "matmul").map((r) => r.name))).toEqual(new Set(MATMUL_ROLES));
    // "param": any other F32 tensor (Mamba-2's conv taps, decays, skips; gpt-oss's sinks), named neither way.
    for (const r of roles.filter((r) => r.kind !== "matmul")) {
      if (r.kind === "param") expect(r.suffix, r.name).not.toMatch(/norm\.weight$|\.bias$/);
      else expect(r.suffix, r.name).toMatch(r.kind === "norm" ? /norm\.weight$/ : /\.bias$/);
    }
  });

  describe("C++ checks a plan built elsewhere", () => {
    const dir = tempDir("layer-roles");
    const file = path.join(dir, "llama.gguf");
    writeSyntheticModel(file, { architecture: "llama", nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 2, nFf: 128, contextLength: 256 }, { weights: "F32", vocab: "stories", seed: 3 });
    const tokens = [1, 5, 9, 200];
    const refused = (edit: (plan: NativePlan) => void) => {
      const r = evaluateIsolated(file, tokens, 1, edit);
      return r.kind === "error" ? `${r.code}: ${r.message}` : r.kind;
    };

    it("the unedited plan evaluates", () => {
      expect(refused(() => {})).toBe("logits");
    });

    it("an enum outside the table is ERR_INVALID_ARGUMENT listing the allowed strings", () => {
      expect(refused((p) => ((p as { norm: string }).norm = "batch"))).toMatch(/^ERR_INVALID_ARGUMENT: .*norm must be one of "rms", "layer"/);
      expect(refused((p) => ((p.layers[0] as { ffnKind: unknown }).ffnKind = 1))).toMatch(/^ERR_INVALID_ARGUMENT: .*ffnKind must be one of "dense", "moe"/);
      expect(refused((p) => ((p.rope as { scaling: string }).scaling = "ntk"))).toMatch(/^ERR_INVALID_ARGUMENT: .*scaling must be one of/);
    });

    it("a role the block's recipe does not use is refused, naming it", () => {
      // An MLA tensor on a plain attention block: no executor would read it.
      expect(refused((p) => (p.layers[0].wkvA = p.layers[0].wq))).toMatch(/^ERR_MODEL_INCOMPATIBLE: .*attention kv latent \(attn_kv_a_mqa\.weight\).*does not use/);
    });

    it("a norm role given a tensor of the wrong shape is refused by its label", () => {
      expect(refused((p) => (p.layers[0].qNorm = p.layers[0].attnNorm))).toMatch(/^ERR_MODEL_INCOMPATIBLE: .*\(q norm\) has shape/);
    });
  });
}, 60_000);
