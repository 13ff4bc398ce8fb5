// One native load and evaluation in a process of its own (see isolated-eval.ts), so that a
// crash in native code fails the test that caused it instead of killing the test runner.
// stdin: { addonRoot, modelPath, plan, tokens, threads }; stdout: one JSON line, either
// { logits: base64 of every position's Float32 logits } or { code, message } for a thrown error.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { addonRoot, modelPath, plan, tokens, threads } = JSON.parse(input);
try {
  const explicit = process.env.TESSERA_ADDON_PATH;
  const addon = explicit ? require(path.resolve(explicit)) : require("node-gyp-build")(addonRoot);
  const model = await addon.loadModel(modelPath, plan, { backend: "cpu", threads });
  // One sequence in blocks 0.. of a pool just big enough, every row's logits wanted.
  const n = tokens.length;
  const blocks = Math.ceil(n / 32);
  const engine = model.createEngine({ maxContext: Math.max(16, n), blocks });
  const logits = new Float32Array(n * plan.nVocab);
  const rows = Int32Array.from({ length: n }, (_, i) => i);
  const table = Int32Array.from({ length: blocks }, (_, i) => i);
  await engine.step(Int32Array.from(tokens), rows, new Int32Array(n), Int32Array.of(0, blocks), table, rows, new Int32Array(0), logits);
  engine.dispose();
  model.dispose();
  process.stdout.write(JSON.stringify({ logits: Buffer.from(logits.buffer).toString("base64") }) + "\n");
} catch (e) {
  process.stdout.write(JSON.stringify({ code: e?.code, message: String(e?.message ?? e) }) + "\n");
}
