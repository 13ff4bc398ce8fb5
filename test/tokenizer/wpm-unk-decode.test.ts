/**
 * WordPiece decode around a skipped [UNK] (bert-bge vocabulary, whose [UNK] is typed
 * CONTROL in the GGUF): the word after it keeps its space, as after any other word.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadTokenizer } from "../../lib/index.js";
import { hasShared, sharedDir } from "../helpers/paths.js";

describe.runIf(hasShared)("WordPiece decode with [UNK]", () => {
  it("keeps the space after a skipped [UNK], and strips the first word's only at the start", async () => {
    const t = await loadTokenizer(path.join(sharedDir, "tokenizers/vocab/ggml-vocab-bert-bge.gguf"));
    const ids = t.encode("hello 🦜 world");
    expect(ids).toEqual([101, 7592, 100, 2088, 102]);
    expect(t.decode(ids)).toBe("hello world");
    expect(t.decode(ids, { skipSpecial: false })).toBe("[CLS]hello[UNK] world[SEP]");
    expect(t.decode(t.encode("🦜 world"))).toBe("world");
    expect(t.decode(t.encode("hello 🦜🦜 again 🦜 world"))).toBe("hello again world");
    // Streaming gives the same text token by token.
    const d = t.createStreamDecoder();
    expect(ids.map((id) => d.push(id)).join("") + d.flush()).toBe("hello world");
  });
});
