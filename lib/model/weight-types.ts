/**
 * The weight types the kernels compute with, as the native table (native/core/weight_types.h)
 * lists them through systemInfo().weightTypes: TypeScript keeps no list of its own, so a new
 * type is one row in C++ (GGMLType and GGML_TYPE_INFO in lib/gguf/types.ts already name
 * every ggml type). test/gguf/weight-types.test.ts checks that every name maps to a GGMLType.
 */
import { TesseraError } from "../errors.js";
import { GGMLType, GGML_TYPE_INFO } from "../gguf/types.js";
import { native } from "../native.js";

let cached: ReadonlySet<GGMLType> | undefined;

/** The computable weight types, in the native table's order. */
export function computeTypes(): ReadonlySet<GGMLType> {
  if (cached) return cached;
  const byName = new Map(Object.entries(GGML_TYPE_INFO).map(([id, info]) => [info.name, Number(id) as GGMLType]));
  const types = native().systemInfo().weightTypes.map((name) => {
    const t = byName.get(name);
    if (t === undefined) throw new TesseraError("ERR_INTERNAL", `the native weight type ${name} has no GGMLType entry in lib/gguf/types.ts`);
    return t;
  });
  return (cached = new Set(types));
}

/** "F32, F16, ... or Q6_K": the computable types by name, for the errors that say which file to use. */
export function computeTypeList(): string {
  const names = [...computeTypes()].map((t) => GGML_TYPE_INFO[t].name);
  return `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`;
}

/**
 * The ggml weight types files use that Tessera does not compute with yet (quantized types
 * outside the native table; Q8_1 and Q8_K are activation formats no file stores weights in),
 * named in the refusal so a user knows which downloads to avoid.
 */
export function unsupportedWeightTypeList(): string {
  const activationOnly = new Set<number>([GGMLType.Q8_1, GGMLType.Q8_K]);
  return Object.entries(GGML_TYPE_INFO)
    .filter(([id, info]) => info.blockSize > 1 && !activationOnly.has(Number(id)) && !computeTypes().has(Number(id) as GGMLType))
    .map(([, info]) => info.name)
    .join(", ");
}
