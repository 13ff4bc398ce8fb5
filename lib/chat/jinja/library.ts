/**
 * @huggingface/jinja with types. Its index.d.ts re-exports from "./runtime" without a file
 * extension, which NodeNext resolution cannot follow, so every export would be `any`; these
 * declarations describe the parts lib/chat uses.
 */
import * as jinja from "@huggingface/jinja";

export interface Environment {
  variables: Map<string, unknown>;
  /** Converts a JS value to a runtime value, declares it and returns it. */
  set(name: string, value: unknown): unknown;
  lookupVariable(name: string): unknown;
}
export interface Program {
  type: "Program";
  body: unknown[];
}
export interface Interpreter {
  run(program: Program): unknown;
  evaluate(statement: unknown, environment: Environment): unknown;
}

export const Environment = jinja.Environment as new (parent?: Environment) => Environment;
export const Interpreter = jinja.Interpreter as new (env?: Environment) => Interpreter;
export const parse = jinja.parse as (tokens: unknown[]) => Program;
export const tokenize = jinja.tokenize as (source: string, options?: { trim_blocks?: boolean; lstrip_blocks?: boolean }) => unknown[];
