export { createConstraint, grammarSource, jsonSchemaToGbnf, tokenAutomaton } from "./constraint.js";
export type { ConstraintOptions, ResponseFormat } from "./constraint.js";
export { parseGbnf } from "./gbnf.js";
export { jsonSchemaGrammar, jsonObjectGrammar } from "./json-schema.js";
export { compileGrammar } from "./compile.js";
export { toGbnf } from "./ir.js";
export type { Grammar, Expr } from "./ir.js";
export { GrammarMatcher, TokenAutomaton, VocabIndex, vocabIndex } from "./token-masks.js";
export type { MatcherOptions } from "./token-masks.js";
