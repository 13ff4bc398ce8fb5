/**
 * Where chat output is constrained by a grammar. Constrained decoding (JSON schema and GBNF
 * grammars, issue 20 part 4) is built separately; these hooks are the only places the chat
 * layer asks for it, so wiring it in is a change here alone.
 */
import type { GenerateOptions } from "../generate/generate.js";
import type { ToolCallFormat } from "./format.js";
import type { JSONSchema, ToolDefinition } from "./types.js";

/**
 * Generation options that keep a tool call's arguments inside its tool's JSON schema
 * (a lazy grammar that starts at the format's tool-call marker), or undefined: no
 * constraint, the parser reads whatever the model writes.
 *
 * TODO(grammar, issue 20 part 4): return the sampler's grammar option built from
 * `tools[i].function.parameters` for `format`'s call syntax once constrained decoding lands.
 */
export function toolCallConstraint(_tools: readonly ToolDefinition[], _format: ToolCallFormat): Partial<GenerateOptions> | undefined {
  return undefined;
}

/**
 * Generation options that make the whole reply JSON matching `schema` (the generation
 * loop's jsonSchema constraint: lib/grammar), or undefined where output cannot be
 * constrained (the chat API and CLI then refuse `jsonSchema` with ERR_UNSUPPORTED).
 */
export function jsonSchemaConstraint(schema: JSONSchema): Partial<GenerateOptions> | undefined {
  return { jsonSchema: schema };
}
