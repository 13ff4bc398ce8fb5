/**
 * `tessera embed MODEL [--file F | --text T ...] [--json] [--pooling P] [--no-normalize]`:
 * the embedding of each text (model.embed, lib/embeddings). Texts are the --text values, or
 * the non-empty lines of --file (or of stdin when neither is given); all run batched.
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { TesseraError } from "../errors.js";
import { checkPooling } from "../embeddings/embed.js";
import { loadModel, type BackendChoice } from "../model/model.js";

export const EMBED_USAGE = `usage: tessera embed <model.gguf> [--file F | --text T ...] [options]
  Prints the embedding of each text: the --text values, or each non-empty line of F
  (of stdin without --file or --text), one vector per line, values separated by spaces.
      --file F              texts, one per line ("-": stdin)
      --text T              a text (repeatable)
      --pooling P           none | mean | cls | last (default: the model's pooling_type, else last)
      --no-normalize        leave vectors unnormalized (default: unit L2 length)
      --truncate            cut texts longer than the context instead of failing
      --json                one JSON object: { model, pooling, dimensions, data: [{ index, embedding }] }
      --threads N  --backend B  --context N`;

export async function embedCommand(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        file: { type: "string", short: "f" },
        text: { type: "string", multiple: true },
        pooling: { type: "string" },
        "no-normalize": { type: "boolean" },
        truncate: { type: "boolean" },
        json: { type: "boolean" },
        threads: { type: "string" },
        backend: { type: "string" },
        context: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${(e as Error).message}\n${EMBED_USAGE}`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(EMBED_USAGE + "\n");
    return 0;
  }
  if (positionals.length !== 1) throw new TesseraError("ERR_INVALID_ARGUMENT", `embed needs one model path\n${EMBED_USAGE}`);
  if (values.file !== undefined && values.text !== undefined) throw new TesseraError("ERR_INVALID_ARGUMENT", "pass --file or --text, not both");
  const int = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n)) throw new TesseraError("ERR_INVALID_ARGUMENT", `--${name} expects an integer, got "${v}"`);
    return n;
  };
  const pooling = values.pooling === undefined ? undefined : checkPooling(values.pooling);
  let texts: string[];
  if (values.text) texts = values.text;
  else {
    const file = values.file ?? "-";
    let content: string;
    try {
      content = fs.readFileSync(file === "-" ? 0 : file, "utf8");
    } catch (e) {
      throw new TesseraError("ERR_IO", `could not read ${file === "-" ? "stdin" : file}: ${(e as Error).message}`, { cause: e });
    }
    texts = content.split(/\r?\n/).filter((l) => l.trim().length > 0);
  }
  if (texts.length === 0) throw new TesseraError("ERR_INVALID_ARGUMENT", "no texts to embed: pass --text, or a --file with non-empty lines");
  const model = await loadModel(positionals[0], {
    backend: (values.backend ?? "auto") as BackendChoice,
    threads: int(values.threads, "threads"),
    contextSize: int(values.context, "context"),
  });
  try {
    const vectors = await model.embed(texts, { pooling, normalize: !values["no-normalize"], truncate: values.truncate ?? false });
    if (values.json) {
      const data = vectors.map((v, index) => ({ index, embedding: Array.from(v) }));
      process.stdout.write(JSON.stringify({ model: positionals[0], pooling: pooling ?? "default", dimensions: model.info.nEmbd, data }) + "\n");
    } else {
      for (const v of vectors) process.stdout.write(Array.from(v, (x) => x.toPrecision(7)).join(" ") + "\n");
    }
  } finally {
    model.dispose();
  }
  return 0;
}
