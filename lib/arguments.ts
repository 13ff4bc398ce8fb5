/**
 * Argument checks of the public entry points (loadModel, Model, Session, generate): a value
 * of the wrong type is an ERR_INVALID_ARGUMENT naming the option, never a TypeError from
 * deep inside (or a silently truthy "false").
 */
import { TesseraError } from "./errors.js";

/** How a bad value reads in a message. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `a string (${JSON.stringify(v.length > 20 ? v.slice(0, 20) + "..." : v)})`;
  if (typeof v === "object" || typeof v === "function") return `a ${typeof v}`;
  return `${typeof v} ${String(v)}`;
}

function invalid(where: string, name: string, what: string, v: unknown): TesseraError {
  return new TesseraError("ERR_INVALID_ARGUMENT", `${where}: ${name} must be ${what}, got ${describe(v)}`);
}

/** `options` undefined or a plain object; returns it (or {}). */
export function optionsObject<T extends object>(options: T | undefined, where: string): T {
  if (options === undefined) return {} as T;
  if (typeof options !== "object" || options === null || Array.isArray(options))
    throw invalid(where, "options", "an object", options);
  return options;
}

export function optionalBoolean(v: unknown, where: string, name: string): boolean | undefined {
  if (v !== undefined && typeof v !== "boolean") throw invalid(where, name, "a boolean", v);
  return v as boolean | undefined;
}

export function optionalFunction<F extends (...args: never[]) => unknown>(v: unknown, where: string, name: string): F | undefined {
  if (v !== undefined && typeof v !== "function") throw invalid(where, name, "a function", v);
  return v as F | undefined;
}

/** Duck-typed: signals from another realm or a polyfill are welcome. */
export function optionalSignal(v: unknown, where: string): AbortSignal | undefined {
  if (v === undefined) return undefined;
  const ok =
    typeof v === "object" && v !== null && typeof (v as AbortSignal).aborted === "boolean" && typeof (v as AbortSignal).addEventListener === "function";
  if (!ok) throw invalid(where, "signal", "an AbortSignal", v);
  return v as AbortSignal;
}

// Option objects are checked for keys they do not define: a misspelt option (`contextsize`,
// `thread`) would otherwise be ignored without a word and the call would run with the default.
/**
 * Throws ERR_INVALID_ARGUMENT when `options` is not an object or has a key that `known` lacks,
 * naming the likely intended option: one from `aliases` (other libraries' names, such as
 * `n_predict`), or the camelCase form of a snake_case key. Declare `known` as
 * `{ ... } satisfies Record<keyof TheOptions, true>` so that adding an option to the interface
 * without listing it fails to compile.
 */
export function rejectUnknownOptions(
  options: unknown,
  known: Readonly<Record<string, true>>,
  where: string,
  aliases: Readonly<Record<string, string>> = {},
): void {
  if (options === null || typeof options !== "object")
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${where} options must be an object, got ${options === null ? "null" : typeof options}`);
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(known, key)) continue;
    const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    const hint = (Object.hasOwn(aliases, key) ? aliases[key] : undefined) ?? (camel !== key && Object.hasOwn(known, camel) ? camel : undefined);
    throw new TesseraError(
      "ERR_INVALID_ARGUMENT",
      `${where}: unknown option "${key}"${hint ? `; did you mean "${hint}"?` : ""} (known: ${Object.keys(known).join(", ")})`,
    );
  }
}
