/**
 * Retrieval-augmented generation in one file: split a text into passages, embed them,
 * index them, retrieve the passages nearest a question, and answer through model.chat with
 * those passages (and their ids, to cite) in the prompt.
 *
 *   npx tsc -p tsconfig.json && node dist/examples/rag.js [options]
 *     --chat FILE       the model that answers (default: the stories260K the package ships)
 *     --embed FILE      the model that embeds (default: the chat model itself)
 *     --text FILE       the text to search (default: a short built-in one)
 *     --question TEXT   (default: "Where does Tom keep the key?")
 *     --k N             passages to retrieve (default 3)
 *     --json            print { retrieved, answer, sources } as JSON
 *
 * In your own code import from "tessera" instead of "../lib/index.js". A tiny model such as
 * stories260K will not follow the instruction to cite; the program therefore lists the
 * ids of the passages it put in the prompt after the answer, so every answer carries its
 * sources whatever the model writes.
 */
import fs from "node:fs";
import { parseArgs } from "node:util";
import { createVectorIndex, loadModel, type Model, type SearchHit } from "../lib/index.js";

const BUILT_IN = `Tom lives in a small blue house by the river. Every morning he feeds the ducks and waves at the boats.

Tom keeps the key to the garden shed under the red flower pot by the back door. Only his sister Lily knows where it is.

The shed holds a bicycle, three fishing rods and a box of old toys. Tom fixes the bicycle on rainy days.

Lily likes to paint. She paints the river, the boats and the ducks, and hangs the pictures in the kitchen.

On Sundays Tom and Lily walk to the market to buy apples, bread and honey. The honey comes from bees on the hill.

In winter the river freezes and the children skate on it. Their mother makes hot soup when they come home.`;

/** Passages of about `words` words: paragraphs, long ones cut at sentence ends. */
export function splitPassages(text: string, words = 60): string[] {
  const out: string[] = [];
  for (const para of text.split(/\n\s*\n/).map((p) => p.replace(/\s+/g, " ").trim()).filter(Boolean)) {
    let current = "";
    for (const sentence of para.match(/[^.!?]+[.!?]*/g) ?? [para]) {
      const next = current ? `${current} ${sentence.trim()}` : sentence.trim();
      if (current && next.split(" ").length > words) {
        out.push(current);
        current = sentence.trim();
      } else current = next;
    }
    if (current) out.push(current);
  }
  return out;
}

export interface RagAnswer {
  retrieved: Array<SearchHit & { text: string }>;
  answer: string;
  sources: string[];
}

/** Embeds and indexes `passages` (ids p1, p2, ...), retrieves the k nearest `question`, answers with them. */
export async function answer(chatModel: Model, embedModel: Model, passages: string[], question: string, k: number): Promise<RagAnswer> {
  const ids = passages.map((_, i) => `p${i + 1}`);
  const vectors = await embedModel.embed(passages, { truncate: true });
  const index = createVectorIndex({ dimensions: vectors[0].length, metric: "cosine" });
  index.add(ids, vectors);
  const [q] = await embedModel.embed(question, { truncate: true });
  const hits = index.search(q, k);
  const retrieved = hits.map((h) => ({ ...h, text: passages[ids.indexOf(String(h.id))] }));
  const context = retrieved.map((r) => `[${r.id}] ${r.text}`).join("\n");
  const reply = await chatModel.chat(
    [
      { role: "system", content: "Answer the question using only the passages given. Cite the id of each passage you use in brackets, like [p2]." },
      { role: "user", content: `Passages:\n${context}\n\nQuestion: ${question}` },
    ],
    { maxTokens: 64, temperature: 0 },
  );
  return { retrieved, answer: reply.text.trim(), sources: retrieved.map((r) => String(r.id)) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      chat: { type: "string" },
      embed: { type: "string" },
      text: { type: "string" },
      question: { type: "string" },
      k: { type: "string" },
      json: { type: "boolean" },
    },
  });
  const k = Number(values.k ?? 3);
  if (!Number.isInteger(k) || k < 1) throw new Error(`--k expects a positive integer, got ${values.k}`);
  const text = values.text ? fs.readFileSync(values.text, "utf8") : BUILT_IN;
  const question = values.question ?? "Where does Tom keep the key?";
  const chatModel = await loadModel(values.chat);
  const embedModel = values.embed ? await loadModel(values.embed) : chatModel;
  try {
    const passages = splitPassages(text);
    const r = await answer(chatModel, embedModel, passages, question, Math.min(k, passages.length));
    if (values.json) {
      process.stdout.write(JSON.stringify(r) + "\n");
      return;
    }
    process.stdout.write(`Question: ${question}\n\nRetrieved:\n`);
    for (const h of r.retrieved) process.stdout.write(`  [${h.id}] (${h.score.toFixed(3)}) ${h.text}\n`);
    process.stdout.write(`\nAnswer: ${r.answer}\nSources: ${r.sources.map((s) => `[${s}]`).join(", ")}\n`);
  } finally {
    if (embedModel !== chatModel) embedModel.dispose();
    chatModel.dispose();
  }
}

// Run as a script (not when a test imports splitPassages/answer).
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((e: unknown) => {
    process.stderr.write(`rag: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
