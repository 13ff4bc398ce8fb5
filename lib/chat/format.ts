/**
 * What a model's chat template says about its output: how it writes tool calls and whether
 * it thinks in <think>…</think> first. Read off the template text, since the template is
 * the model's own statement of its format.
 */

/**
 * Tool-call syntaxes:
 *  - "hermes": `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Hermes 2/3, Qwen 2.5,
 *    Qwen 3, QwQ; Qwen3-Coder's `<function=name><parameter=k>v</parameter></function>` inside)
 *  - "llama3": a JSON object `{"name": ..., "parameters": {...}}` as the message, or
 *    `<|python_tag|>` followed by one (Llama 3.1 to 3.3)
 *  - "mistral": `[TOOL_CALLS][{"name": ..., "arguments": {...}, "id": ...}]` (Nemo) or
 *    `[TOOL_CALLS]name[CALL_ID]id[ARGS]{...}` / `[TOOL_CALLS]name[ARGS]{...}` (Small 3.2, Devstral)
 *  - "deepseek": `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>name\n```json\n{...}\n```<｜tool▁call▁end｜>…`
 *    (V3, R1) or `…<｜tool▁call▁begin｜>name<｜tool▁sep｜>{...}<｜tool▁call▁end｜>…` (V3.1)
 *  - "none": the template has no tool calls.
 */
export type ToolCallFormat = "hermes" | "llama3" | "mistral" | "deepseek" | "none";

export interface ChatFormat {
  toolCalls: ToolCallFormat;
  /** The template knows <think> blocks: text inside them is reasoning. */
  reasoning: boolean;
}

export const DEEPSEEK = {
  callsBegin: "<｜tool▁calls▁begin｜>",
  callsEnd: "<｜tool▁calls▁end｜>",
  callBegin: "<｜tool▁call▁begin｜>",
  callEnd: "<｜tool▁call▁end｜>",
  sep: "<｜tool▁sep｜>",
} as const;

export function detectChatFormat(template: string): ChatFormat {
  let toolCalls: ToolCallFormat = "none";
  if (template.includes(DEEPSEEK.callsBegin) || template.includes("tool▁calls▁begin")) toolCalls = "deepseek";
  else if (template.includes("[TOOL_CALLS]")) toolCalls = "mistral";
  else if (template.includes("<tool_call>")) toolCalls = "hermes";
  else if (template.includes("<|python_tag|>") || (template.includes("<|start_header_id|>") && template.includes('"parameters"')))
    toolCalls = "llama3";
  return { toolCalls, reasoning: template.includes("<think>") || template.includes("</think>") };
}

/** Whether a rendered prompt leaves a <think> block open (R1 and QwQ prompts end in "<think>\n"). */
export function promptOpensThinking(prompt: string): boolean {
  const open = prompt.lastIndexOf("<think>");
  return open >= 0 && open > prompt.lastIndexOf("</think>");
}
