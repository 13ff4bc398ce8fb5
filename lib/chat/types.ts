/**
 * Messages and tools in the shape chat templates read (the OpenAI / Hugging Face format):
 * templates index these fields by name, so they are passed through unchanged.
 */

/** A JSON Schema object (the `parameters` of a tool). */
export type JSONSchema = { [key: string]: unknown };

export interface ToolDefinition {
  type: "function";
  function: {
    name: string;
    description?: string;
    parameters?: JSONSchema;
  };
}

/** A tool call as a message of the conversation holds it (what templates render). */
export interface MessageToolCall {
  id?: string;
  type: "function";
  function: {
    name: string;
    /** An object; a JSON string is accepted too (some templates print it as is). */
    arguments: Record<string, unknown> | string;
  };
}

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool" | (string & {});
  content?: string | null | Array<{ type: string; text?: string; [key: string]: unknown }>;
  /** Assistant messages: the calls the model made. */
  tool_calls?: MessageToolCall[];
  /** Tool messages: the call this is the result of. */
  tool_call_id?: string;
  /** Tool messages: the tool's name. */
  name?: string;
  /** Assistant messages of reasoning models: the thinking (some templates render it). */
  reasoning_content?: string;
  [key: string]: unknown;
}

/** A tool call parsed from generated text. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: Record<string, unknown>;
}
