import { it } from "vitest";
import { LlamaCppPeer } from "../scripts/llama-cpp-peer.js";
it("peer", async () => {
const p = await LlamaCppPeer.open("/work/shared/models/stories260K.gguf", { threads: 1, contextSize: 256 });
const l = await p.logitsPerPosition([1, 403, 407], 512);
console.log(l.length, l[0].slice(0, 4));
const d = await p.decode([1], 200);
console.log(d.tokens.slice(0, 10), d.ms);
console.log(await p.prefill(Array.from({length: 128}, (_, i) => 1 + (i % 500))));
await p.dispose();
}, 60000);
