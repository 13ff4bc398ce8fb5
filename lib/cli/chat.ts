/**
 * `tessera chat MODEL`: a conversation on the terminal. Each line typed (or read from a
 * pipe) is a user message; the reply streams, reasoning dimmed. /reset forgets the
 * conversation (and its KV cache), /exit ends; Ctrl-C stops the reply being written.
 */
import fs from "node:fs";
import readline from "node:readline";
import { jsonSchemaConstraint } from "../chat/constraints.js";
import { compileChatTemplate } from "../chat/template.js";
import type { JSONSchema } from "../chat/types.js";
import { TesseraError, isTesseraError } from "../errors.js";
import type { GenerateOptions } from "../generate/generate.js";
import type { Model } from "../model/model.js";

type Values = Record<string, string | boolean | string[] | undefined>;

interface Helpers {
  generationOptions(values: Values): GenerateOptions;
  openModel(values: Values, positionals: string[]): Promise<Model>;
  usageError(message: string): Error;
}

function readFile(path: string, what: string): string {
  try {
    return fs.readFileSync(path, "utf8");
  } catch (e) {
    throw new TesseraError("ERR_IO", `cannot read the ${what} file ${path}: ${(e as Error).message}`);
  }
}

/** The schema of --json-schema FILE, refused up front where this build cannot constrain output. */
function jsonSchemaOption(file: string | undefined): JSONSchema | undefined {
  if (file === undefined) return undefined;
  let schema: unknown;
  try {
    schema = JSON.parse(readFile(file, "JSON schema"));
  } catch (e) {
    if (isTesseraError(e)) throw e;
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${file} is not JSON: ${(e as Error).message}`);
  }
  if (schema === null || typeof schema !== "object" || Array.isArray(schema))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${file} must hold a JSON schema object`);
  if (!jsonSchemaConstraint(schema as JSONSchema))
    throw new TesseraError(
      "ERR_UNSUPPORTED",
      "--json-schema needs constrained decoding (JSON schema grammars), which this build does not have yet; run without it",
    );
  return schema as JSONSchema;
}

export async function runChat(values: Values, positionals: string[], helpers: Helpers): Promise<number> {
  const jsonSchema = jsonSchemaOption(values["json-schema"] as string | undefined);
  const template = values.template === undefined ? undefined : readFile(values.template as string, "template");
  // A template that does not parse is reported before the model loads.
  if (template !== undefined) compileChatTemplate(template);
  const options = helpers.generationOptions(values);
  const thinking = values.think ? true : values["no-think"] ? false : undefined;
  const model = await helpers.openModel(values, positionals);
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
  const chat = model.createChat({
    system: values.system as string | undefined,
    template,
    thinking,
    ...options,
    jsonSchema,
  });
  const rl = readline.createInterface({ input: process.stdin, output: tty ? process.stdout : undefined, terminal: tty });
  let turn: AbortController | undefined;
  let failed = false;
  const onSigint = () => {
    if (turn) turn.abort();
    else rl.close();
  };
  process.on("SIGINT", onSigint);
  rl.on("SIGINT", onSigint);
  if (tty) {
    process.stdout.write(dim(`${model.info.name ?? positionals[0]} — /reset clears the conversation, /exit ends, Ctrl-C stops a reply\n`));
    rl.setPrompt("> ");
    rl.prompt();
  }
  try {
    for await (const line of rl) {
      const text = line.trim();
      if (text === "/exit" || text === "/quit") break;
      if (text === "/reset") {
        chat.reset();
        if (tty) process.stdout.write(dim("(conversation cleared)\n"));
      } else if (text.startsWith("/")) {
        process.stderr.write(`unknown command ${text}: /reset clears the conversation, /exit ends\n`);
      } else if (text.length > 0) {
        turn = new AbortController();
        let inReasoning = false;
        try {
          const generation = chat.send(line, { signal: turn.signal });
          for await (const chunk of generation) {
            if (chunk.reasoning) {
              process.stdout.write(dim(chunk.reasoning));
              inReasoning = true;
            }
            if (chunk.text) {
              if (inReasoning) process.stdout.write("\n");
              inReasoning = false;
              process.stdout.write(chunk.text);
            }
            for (const call of chunk.toolCalls ?? []) process.stderr.write(dim(`[tool call ${call.name} ${JSON.stringify(call.arguments)}]\n`));
          }
          process.stdout.write("\n");
          if (values.stats) {
            const s = (await generation).stats;
            process.stderr.write(
              dim(
                `[prompt ${s.promptTokens} tokens (${s.cachedTokens} cached) in ${s.promptMs.toFixed(1)} ms, ` +
                  `${s.generatedTokens} tokens in ${s.generateMs.toFixed(1)} ms]\n`,
              ),
            );
          }
        } catch (e) {
          process.stdout.write("\n");
          if (isTesseraError(e, "ERR_ABORTED")) process.stderr.write(dim("(stopped)\n"));
          else if (isTesseraError(e)) {
            failed = true;
            process.stderr.write(`tessera: ${e.code}: ${e.message}\n`);
          } else throw e;
        } finally {
          turn = undefined;
        }
      }
      if (tty) rl.prompt();
    }
  } finally {
    process.off("SIGINT", onSigint);
    rl.close();
    chat.dispose();
    model.dispose();
  }
  return failed ? 2 : 0;
}
