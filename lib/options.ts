/**
 * Option objects are checked for keys they do not define: a misspelt option (`contextsize`,
 * `thread`) would otherwise be ignored without a word and the call would run with the default.
 */
import { TesseraError } from "./errors.js";

/**
 * Throws ERR_INVALID_ARGUMENT when `options` is not an object or has a key that `known` lacks.
 * Declare `known` as `{ ... } satisfies Record<keyof TheOptions, true>` so that adding an
 * option to the interface without listing it fails to compile.
 */
export function rejectUnknownOptions(options: unknown, known: Readonly<Record<string, true>>, where: string): void {
  if (options === null || typeof options !== "object")
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${where} options must be an object, got ${options === null ? "null" : typeof options}`);
  for (const key of Object.keys(options))
    if (!Object.hasOwn(known, key))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `${where}: unknown option "${key}" (known: ${Object.keys(known).join(", ")})`);
}
