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
  const context = model.createContext({ contextSize: Math.max(16, tokens.length) });
  const logits = new Float32Array(tokens.length * plan.nVocab);
  await context.eval(Int32Array.from(tokens), 0, true, logits);
  context.dispose();
  model.dispose();
  process.stdout.write(JSON.stringify({ logits: Buffer.from(logits.buffer).toString("base64") }) + "\n");
} catch (e) {
  process.stdout.write(JSON.stringify({ code: e?.code, message: String(e?.message ?? e) }) + "\n");
}
