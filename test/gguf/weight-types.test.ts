/**
 * One table of weight types (issue 26): native/core/weight_types.h is the list the kernels
 * compute with; systemInfo().weightTypes exposes it, and TypeScript derives its list from
 * that (lib/model/weight-types.ts computeTypes: the plan's check and its error text, the
 * tests' and benchmarks' type lists). The README must name the same types, the reference
 * quantizer write each, and the kernel table's columns agree with the list.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { quantize } from "../../lib/gguf/quantize.js";
import { GGML_TYPE_INFO, ggmlTypeName } from "../../lib/gguf/types.js";
import { computeTypeList, computeTypes } from "../../lib/model/weight-types.js";
import { native } from "../../lib/native.js";
import { systemInfo } from "../../lib/system.js";
import { repoRoot } from "../helpers/paths.js";

describe("weight types", () => {
  it("computeTypes() is the native table, each type a GGMLType of the same name and block size", () => {
    const table = native().kernels.weightTypeTable();
    expect([...computeTypes()].map(ggmlTypeName)).toEqual(systemInfo().weightTypes);
    expect(table.map((r) => r.name)).toEqual(systemInfo().weightTypes);
    for (const r of table) expect(GGML_TYPE_INFO[r.type]?.name, r.name).toBe(r.name);
    expect(new Set(table.map((r) => r.activation))).toEqual(new Set(["F32", "F16", "BF16", "Q8_0", "Q8_K", "Q8_1"]));
  });

  it("the error text and the README name every type", () => {
    const list = computeTypeList();
    expect(list).toBe(`${systemInfo().weightTypes.slice(0, -1).join(", ")} or ${systemInfo().weightTypes.at(-1)}`);
    expect(fs.readFileSync(path.join(repoRoot, "README.md"), "utf8").replace(/\s+/g, " ")).toContain(list);
  });

  it("the reference quantizer writes every type", () => {
    for (const type of computeTypes()) expect(() => quantize(type, new Float32Array(256).fill(0.5), 256), ggmlTypeName(type)).not.toThrow();
  });
});
