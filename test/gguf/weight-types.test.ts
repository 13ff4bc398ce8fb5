/**
 * One table of weight types (issue 26): native/core/weight_types.h is the list the kernels
 * compute with; systemInfo().weightTypes exposes it, and lib/gguf/types.ts COMPUTE_TYPES
 * (the plan's check, the quantizer, the error texts through computeTypeList) must name the
 * same types in the same order, as must the README.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { quantize } from "../../lib/gguf/quantize.js";
import { COMPUTE_TYPES, computeTypeList, ggmlTypeName } from "../../lib/gguf/types.js";
import { native } from "../../lib/native.js";
import { systemInfo } from "../../lib/system.js";
import { repoRoot } from "../helpers/paths.js";

describe("weight types", () => {
  it("the native table and COMPUTE_TYPES list the same types", () => {
    expect(native().systemInfo().weightTypes).toEqual([...COMPUTE_TYPES].map(ggmlTypeName));
    expect(systemInfo().weightTypes).toEqual(native().systemInfo().weightTypes);
  });

  it("the error text and the README name every type", () => {
    const list = computeTypeList();
    expect(list).toBe(`${systemInfo().weightTypes.slice(0, -1).join(", ")} or ${systemInfo().weightTypes.at(-1)}`);
    expect(fs.readFileSync(path.join(repoRoot, "README.md"), "utf8").replace(/\s+/g, " ")).toContain(list);
  });

  it("the reference quantizer writes every type", () => {
    for (const type of COMPUTE_TYPES) expect(() => quantize(type, new Float32Array(256).fill(0.5), 256), ggmlTypeName(type)).not.toThrow();
  });
});
