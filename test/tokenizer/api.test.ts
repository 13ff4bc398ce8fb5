/**
 * The Tokenizer interface around the conformance-tested core: special tokens (adding,
 * parsing, skipping, end of generation), token bytes, errors, fallbacks and the
 * SentencePiece leading-space rule.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isTesseraError, type TesseraErrorCode } from "../../lib/errors.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import type { GGUFFile, GGUFKV } from "../../lib/gguf/types.js";
import { kv } from "../../lib/gguf/writer.js";
import { tokenizerFromGGUF, tokenizerFromHuggingFace } from "../../lib/tokenizer/index.js";
import { sharedDir, tempDir } from "../helpers/paths.js";
import { ggufVocab, hasTokenizerData, hfVocab, vocabDir } from "./vocabs.js";

function expectCode(f: () => unknown, code: TesseraErrorCode): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(isTesseraError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
}

/** A vocab GGUF with some metadata replaced (undefined removes the key). */
function withMetadata(file: string, changes: Record<string, GGUFKV | undefined>): GGUFFile {
  const f = readGGUF(path.join(vocabDir, file));
  const metadata = new Map(f.metadata);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) metadata.delete(k);
    else metadata.set(k, v);
  }
  return { ...f, metadata };
}

describe.runIf(hasTokenizerData)("tokenizer interface", () => {
  const spm = ggufVocab(path.join(vocabDir, "ggml-vocab-llama-spm.gguf"));
  const gpt2 = ggufVocab(path.join(vocabDir, "ggml-vocab-gpt-2.gguf"));
  const bert = ggufVocab(path.join(vocabDir, "ggml-vocab-bert-bge.gguf"));
  const phi3 = ggufVocab(path.join(vocabDir, "ggml-vocab-phi-3.gguf"));
  const llama3 = hfVocab("llama3", "llama-bpe");
  const qwen2 = hfVocab("qwen2");

  it("reports the special token ids and flags from the metadata", () => {
    expect([spm().vocabSize, spm().bos, spm().eos, spm().addBos, spm().addEos]).toEqual([32000, 1, 2, true, false]);
    expect([gpt2().vocabSize, gpt2().bos, gpt2().eos, gpt2().addBos]).toEqual([50257, 50256, 50256, false]);
    expect([llama3().vocabSize, llama3().bos, llama3().eos, llama3().addBos]).toEqual([128256, 128000, 128001, true]);
    expect([qwen2().vocabSize, qwen2().bos, qwen2().eos, qwen2().addBos]).toEqual([151646, undefined, 151645, false]);
  });

  it("adds BOS/EOS (or CLS/SEP) as the vocabulary asks, unless told not to", () => {
    const hello = spm().encode("Hello", { addSpecial: false });
    expect(hello).not.toContain(1);
    expect(spm().encode("Hello")).toEqual([1, ...hello]);
    expect(spm().encode("")).toEqual([1]);
    expect(spm().encode("", { addSpecial: false })).toEqual([]);
    expect(llama3().encode("Hello")).toEqual([128000, 9906]);
    expect(llama3().encode("Hello", { addSpecial: false })).toEqual([9906]);
    expect(gpt2().encode("Hello")).toEqual(gpt2().encode("Hello", { addSpecial: false }));
    const b = bert().encode("hello world");
    expect(b[0]).toBe(101);
    expect(b[b.length - 1]).toBe(102);
    expect(b.slice(1, -1)).toEqual(bert().encode("hello world", { addSpecial: false }));
  });

  it("parses control-token text only when asked; user-defined tokens always", () => {
    expect(llama3().encode("<|eot_id|>", { parseSpecial: true, addSpecial: false })).toEqual([128009]);
    const plain = llama3().encode("<|eot_id|>", { addSpecial: false });
    expect(plain.length).toBeGreaterThan(1);
    expect(plain).not.toContain(128009);
    expect(llama3().decode(plain)).toBe("<|eot_id|>");
    // SentencePiece: text after a special token gets the space prefix again (llama.cpp's rule).
    const parsed = spm().encode("<s>Hello", { parseSpecial: true, addSpecial: false });
    expect(parsed).toEqual([1, ...spm().encode("Hello", { addSpecial: false })]);
    expect(spm().decode(parsed, { skipSpecial: false })).toBe("<s>Hello");
    // deepseek-coder stores "õ" as a user-defined token: matched even without parseSpecial.
    const ds = ggufVocab(path.join(vocabDir, "ggml-vocab-deepseek-coder.gguf"))();
    expect(ds.encode("õ", { addSpecial: false })).toEqual([32000]);
    expect(ds.decode([32000])).toBe("õ");
  });

  it("phi-3: special tokens swallow the whitespace after them, as llama.cpp sets up", () => {
    const ids = phi3().encode("<|user|>\n  Hi<|end|>\n", { parseSpecial: true, addSpecial: false });
    expect(ids[0]).toBe(32010);
    expect(ids[ids.length - 1]).toBe(32007);
    expect(phi3().decode(ids, { skipSpecial: true })).toBe("Hi");
  });

  it("decodes special tokens only when asked", () => {
    const ids = llama3().encode("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", { parseSpecial: true });
    expect(llama3().decode(ids, { skipSpecial: false })).toBe("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
    expect(llama3().decode(ids)).toBe("user\n\nHi");
    expect(spm().decode(spm().encode("Hi there", { addSpecial: true }), { skipSpecial: true })).toBe("Hi there");
  });

  it("knows which tokens end a generation", () => {
    for (const id of [128001, 128008, 128009]) expect(llama3().isEndOfGeneration(id)).toBe(true);
    for (const id of [128000, 128006, 9906]) expect(llama3().isEndOfGeneration(id)).toBe(false);
    expect(qwen2().isEndOfGeneration(151645)).toBe(true); // <|im_end|>
    expect(qwen2().isEndOfGeneration(151643)).toBe(true); // <|endoftext|>
    expect(qwen2().isEndOfGeneration(151644)).toBe(false); // <|im_start|>
    expect(phi3().isEndOfGeneration(32007)).toBe(true); // <|end|>
    expect(phi3().isEndOfGeneration(32000)).toBe(true); // <|endoftext|>
    expect(spm().isEndOfGeneration(2)).toBe(true);
    expect(spm().isEndOfGeneration(1)).toBe(false);
  });

  it("classifies special tokens and gives token bytes", () => {
    expect(spm().isSpecial(1)).toBe(true);
    expect(spm().isSpecial(0)).toBe(true); // <unk>
    expect(spm().isSpecial(15043)).toBe(false);
    expect(spm().isSpecial(-1)).toBe(false);
    expect(Array.from(spm().tokenBytes(13))).toEqual([0x0a]); // <0x0A>
    expect(Buffer.from(spm().tokenBytes(15043)).toString()).toBe(" Hello");
    expect(Buffer.from(llama3().tokenBytes(9906)).toString()).toBe("Hello");
    expect(llama3().tokenBytes(128009).length).toBe(0); // control tokens spell nothing
    expect(llama3().isSpecial(128009)).toBe(true);
    // The returned bytes are a copy.
    spm().tokenBytes(13)[0] = 0;
    expect(Array.from(spm().tokenBytes(13))).toEqual([0x0a]);
  });

  it("SentencePiece: the space it adds in front of the text is removed again", () => {
    for (const s of ["Hello", " Hello", "  Hello", "\nHello", " ", ""]) expect(spm().decode(spm().encode(s))).toBe(s);
    expect(spm().encode("Hello", { addSpecial: false })[0]).toBe(15043); // "▁Hello"
  });

  it("lone surrogates encode as U+FFFD", () => {
    for (const t of [spm(), llama3(), gpt2()]) {
      expect(t.decode(t.encode("a\ud800b\udc00c"))).toBe("a\ufffdb\ufffdc");
      expect(t.encode("a\ud800b")).toEqual(t.encode("a\ufffdb"));
    }
  });

  it("throws coded errors for bad arguments", () => {
    expectCode(() => spm().decode([32000]), "ERR_INVALID_ARGUMENT");
    expectCode(() => spm().decode([-1]), "ERR_INVALID_ARGUMENT");
    expectCode(() => spm().decode([1.5]), "ERR_INVALID_ARGUMENT");
    expectCode(() => spm().tokenBytes(99999), "ERR_INVALID_ARGUMENT");
    expectCode(() => spm().createStreamDecoder().push(32000), "ERR_INVALID_ARGUMENT");
    expectCode(() => spm().encode(42 as unknown as string), "ERR_INVALID_ARGUMENT");
  });

  it("every entry checks its argument types, with ERR_INVALID_ARGUMENT rather than a TypeError", () => {
    // JavaScript callers can pass anything: call through an untyped view.
    for (const tok of [spm(), llama3(), bert()]) {
      const t = tok as unknown as Record<string, (...args: unknown[]) => unknown>;
      const bad: [string, unknown[]][] = [
        ["encode", [123]],
        ["encode", [null]],
        ["encode", [undefined]],
        ["encode", [["Hello"]]],
        ["encode", ["Hello", "options"]],
        ["encode", ["Hello", null]],
        ["encode", ["Hello", { addSpecial: "no" }]],
        ["encode", ["Hello", { parseSpecial: 1 }]],
        ["decode", [null]],
        ["decode", [undefined]],
        ["decode", [42]],
        ["decode", ["1 2 3"]],
        ["decode", [{ length: "2" }]],
        ["decode", [[1.5]]],
        ["decode", [["1"]]],
        ["decode", [[1n]]],
        ["decode", [[NaN]]],
        ["decode", [[1], "options"]],
        ["decode", [[1], { skipSpecial: "no" }]],
        ["tokenBytes", ["1"]],
        ["tokenBytes", [null]],
        ["tokenBytes", [1.5]],
        ["isSpecial", ["1"]],
        ["isSpecial", [undefined]],
        ["isEndOfGeneration", [null]],
        ["isEndOfGeneration", ["2"]],
        ["createStreamDecoder", ["options"]],
        ["createStreamDecoder", [{ skipSpecial: 0 }]],
        ["createStreamDecoder", [{ prefix: 5 }]],
        ["createStreamDecoder", [{ prefix: [1.5] }]],
      ];
      for (const [name, args] of bad) expectCode(() => t[name].apply(tok, args), "ERR_INVALID_ARGUMENT");
      const stream = tok.createStreamDecoder() as unknown as { push: (id: unknown) => string };
      for (const id of [null, "1", 2.5, undefined]) expectCode(() => stream.push(id), "ERR_INVALID_ARGUMENT");
      // Array-likes of valid ids are fine, and so are numbers outside the vocabulary where the answer is just "no".
      expect(tok.decode(Int32Array.from(tok.encode("hi", { addSpecial: false })))).toBe("hi");
      expect(tok.decode({ length: 0 } as ArrayLike<number>)).toBe("");
      expect(tok.isSpecial(-1)).toBe(false);
      expect(tok.isEndOfGeneration(1e9)).toBe(false);
    }
  });

  it("falls back to the default pre-tokenizer for an unknown tokenizer.ggml.pre, with a warning", () => {
    const odd = tokenizerFromGGUF(withMetadata("ggml-vocab-gpt-2.gguf", { "tokenizer.ggml.pre": kv.str("made-up-2099") }));
    expect(odd.warnings.join(" ")).toContain('unknown tokenizer.ggml.pre "made-up-2099"');
    const dflt = tokenizerFromGGUF(withMetadata("ggml-vocab-gpt-2.gguf", { "tokenizer.ggml.pre": kv.str("default") }));
    expect(dflt.warnings).toEqual([]);
    const text = "Hello, world! 12345 $x+=1; it's";
    expect(odd.encode(text)).toEqual(dflt.encode(text));
    // The default splits punctuation runs first, so it differs from gpt-2's own pre-tokenizer here.
    expect(dflt.encode(text)).not.toEqual(gpt2().encode(text));
    expect(gpt2().warnings).toEqual([]);
  });

  it("refuses missing, unsupported or inconsistent vocabularies with ERR_TOKENIZER", () => {
    expectCode(() => tokenizerFromGGUF(withMetadata("ggml-vocab-gpt-2.gguf", { "tokenizer.ggml.model": undefined })), "ERR_TOKENIZER");
    expectCode(() => tokenizerFromGGUF(withMetadata("ggml-vocab-gpt-2.gguf", { "tokenizer.ggml.model": kv.str("t5") })), "ERR_TOKENIZER");
    expectCode(() => tokenizerFromGGUF(withMetadata("ggml-vocab-gpt-2.gguf", { "tokenizer.ggml.merges": undefined })), "ERR_TOKENIZER");
    expectCode(() => tokenizerFromGGUF(withMetadata("ggml-vocab-gpt-2.gguf", { "tokenizer.ggml.tokens": kv.strArray([]) })), "ERR_TOKENIZER");
    expectCode(
      () => tokenizerFromGGUF(withMetadata("ggml-vocab-llama-spm.gguf", { "tokenizer.ggml.token_type": kv.i32Array(new Int32Array(5)) })),
      "ERR_TOKENIZER",
    );
    expectCode(() => tokenizerFromGGUF(withMetadata("ggml-vocab-llama-spm.gguf", { "tokenizer.ggml.scores": kv.str("x") })), "ERR_TOKENIZER");
    const empty = tempDir("tok-empty");
    expectCode(() => tokenizerFromHuggingFace(empty), "ERR_TOKENIZER");
    const bad = tempDir("tok-bad");
    fs.writeFileSync(path.join(bad, "tokenizer.json"), "{ not json");
    expectCode(() => tokenizerFromHuggingFace(bad), "ERR_TOKENIZER");
    const wordPiece = tempDir("tok-wp");
    fs.writeFileSync(path.join(wordPiece, "tokenizer.json"), JSON.stringify({ model: { type: "WordPiece", vocab: { a: 0 } } }));
    expectCode(() => tokenizerFromHuggingFace(wordPiece), "ERR_TOKENIZER");
    expectCode(() => tokenizerFromHuggingFace(path.join(sharedDir, "tokenizers/llama3"), { preTokenizer: "no-such-pre" }), "ERR_TOKENIZER");
    // A pattern JavaScript cannot run (a possessive quantifier) is refused, not thrown as a SyntaxError.
    const possessive = tempDir("tok-possessive");
    const json = JSON.parse(fs.readFileSync(path.join(sharedDir, "tokenizers/smollm2/tokenizer.json"), "utf8"));
    json.pre_tokenizer = { type: "Split", pattern: { Regex: "\\p{L}++" }, behavior: "Isolated", invert: false };
    fs.writeFileSync(path.join(possessive, "tokenizer.json"), JSON.stringify(json));
    expectCode(() => tokenizerFromHuggingFace(possessive), "ERR_TOKENIZER");
  });

  it("loads the tokenizer of a real model file", () => {
    const stories = ggufVocab(path.join(sharedDir, "models/stories260K.gguf"))();
    expect(stories.vocabSize).toBe(512);
    expect(stories.encode("", { addSpecial: true })).toEqual([1]);
    const golden = JSON.parse(fs.readFileSync(path.join(sharedDir, "models/stories260K.golden.json"), "utf8")) as { greedy_tokens: number[]; text: string };
    expect(stories.decode(golden.greedy_tokens)).toBe(golden.text);
    // The golden text was produced by this model's greedy run: encoding it gives the same tokens back.
    expect(stories.encode(golden.text, { addSpecial: false })).toEqual(golden.greedy_tokens);
  });
});
