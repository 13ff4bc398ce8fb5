/**
 * `tessera explore` in a real browser (issue 23): Debian's headless chromium, driven by
 * playwright-core, loads the explorer on stories260K, types a prompt, clicks a token, moves
 * the sampler's controls and steps generation; every view is checked against numbers the
 * test computes itself from the model (session.evaluate / evaluateAll logits, a real
 * Sampler) or, for attention, against the API. Zero console errors; screenshots go to
 * test-output/explore/. Without /usr/bin/chromium this fails (CI installs it: .ci/run).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MODEL } from "../../lib/default-model.js";
import { loadModel, type Model } from "../../lib/index.js";
import { Sampler } from "../../lib/sampling/sampler.js";
import { createExploreServer } from "../../lib/server/explore.js";
import type { TesseraServer } from "../../lib/server/server.js";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { hasShared, repoRoot, tempDir } from "../helpers/paths.js";

const CHROMIUM = process.env.TESSERA_CHROMIUM ?? "/usr/bin/chromium";
const OUT = path.join(repoRoot, "test-output", "explore");

/** dist/web compiled from web/src when missing or older than a source (npm install builds it in CI). */
function frontEnd(): string {
  const dir = path.join(repoRoot, "dist", "web");
  const built = path.join(dir, "main.js");
  const src = path.join(repoRoot, "web", "src");
  const newest = Math.max(...fs.readdirSync(src).map((f) => fs.statSync(path.join(src, f)).mtimeMs));
  if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < newest)
    execFileSync(process.execPath, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", path.join(repoRoot, "web/tsconfig.json")], { stdio: "inherit" });
  return dir;
}

function softmax(x: ArrayLike<number>, t = 1): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]);
  const out = Float64Array.from(x, (v) => Math.exp((v - max) / t));
  const z = out.reduce((a, v) => a + v, 0);
  return out.map((v) => v / z);
}

const argmax = (x: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
};

describe("tessera explore in headless chromium", () => {
  let model: Model;
  let server: TesseraServer;
  let address: string;
  let context: BrowserContext;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    // Fail, not skip: the acceptance is that this runs in CI.
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium), as .ci/run does`);
    fs.mkdirSync(OUT, { recursive: true });
    model = await loadModel(DEFAULT_MODEL, { backend: "cpu", threads: 2, contextSize: 256 });
    server = createExploreServer({ model, scriptDir: frontEnd(), log: () => {} });
    address = await server.listen({ host: "127.0.0.1", port: 0 });
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 1500 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
  });
  afterAll(async () => {
    await context?.close();
    await server?.close(1000);
    model?.dispose();
  });

  /** Runs `action` and waits until the page has settled after it (its requests answered). */
  async function settle(action: () => Promise<unknown>): Promise<void> {
    const epoch = Number(await page.getAttribute("body", "data-epoch"));
    await action();
    await page.waitForFunction((e) => Number(document.body.dataset.epoch) > e && document.body.dataset.pending === "0", epoch, { timeout: 15_000 });
  }

  async function post<T>(route: string, body: unknown): Promise<T> {
    const r = await fetch(`${address}/explore/api/${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect(r.status).toBe(200);
    return (await r.json()) as T;
  }

  it("shows tokens, lens, embeddings, attention, the sampler's stages and steps that match the model", async () => {
    await page.goto(`${address}/`);
    await page.waitForFunction(() => Number(document.body.dataset.epoch) > 0 && document.body.dataset.pending === "0", null, { timeout: 15_000 });

    // Type a prompt: the tokens view shows the tokenizer's ids, pieces and bytes.
    // A prompt whose next token is open (entropy ~2.7 nats), so that each truncation cuts.
    const prompt = "Once upon a time, there was a little cat named Tom. He liked to play with the";
    const ids = model.tokenizer.encode(prompt);
    await page.fill("#prompt", prompt);
    await settle(() => page.click("#analyze"));
    const shown = await page.$$eval("#tokens .token", (els) => els.map((e) => ({ id: Number((e as HTMLElement).dataset.id), title: (e as HTMLElement).title, piece: e.querySelector(".piece")!.textContent })));
    expect(shown.map((t) => t.id)).toEqual(ids);
    shown.forEach((t, i) => {
      const bytes = Array.from(model.tokenizer.tokenBytes(ids[i]), (b) => b.toString(16).padStart(2, "0")).join(" ");
      expect(t.title).toContain(`id ${ids[i]}`);
      if (bytes) expect(t.title).toContain(bytes);
    });
    expect(shown[1].piece).toBe(new TextDecoder().decode(model.tokenizer.tokenBytes(ids[1])).replace(/ /g, "·"));

    // Logit lens: the last layer's top-1 at every position is the model's own prediction
    // (evaluateAll on a fresh session; evaluate for the last position), the output row too.
    const s = model.createSession();
    const all = await s.evaluateAll(ids);
    s.dispose();
    const V = model.info.nVocab;
    const last = String(model.info.nLayer - 1);
    const lensLast = await page.$$eval(`#lens-grid td[data-layer="${last}"]`, (tds) => tds.map((td) => ({ token: Number((td as HTMLElement).dataset.token), prob: Number((td as HTMLElement).dataset.prob) })));
    const output = await page.$$eval('#lens-grid td[data-layer="output"]', (tds) => tds.map((td) => ({ token: Number((td as HTMLElement).dataset.token), prob: Number((td as HTMLElement).dataset.prob) })));
    expect(lensLast.length).toBe(ids.length);
    expect(await page.locator("#lens-grid tr[data-layer]").count()).toBe(model.info.nLayer + 1);
    for (let p = 0; p < ids.length; p++) {
      const row = all.subarray(p * V, (p + 1) * V);
      const top = argmax(row);
      expect(lensLast[p].token).toBe(top);
      expect(output[p].token).toBe(top);
      // The lens runs in float32 natively; the reference softmax in float64.
      expect(Math.abs(lensLast[p].prob - softmax(row)[top])).toBeLessThan(1e-3);
    }
    const s2 = model.createSession();
    const finalLogits = await s2.evaluate(ids);
    s2.dispose();
    expect(lensLast[ids.length - 1].token).toBe(argmax(finalLogits));

    // Click a token: it is selected in every view.
    const pick = 3;
    await settle(() => page.click(`#tokens .token[data-index="${pick}"]`));
    expect(await page.getAttribute(`#tokens .token[data-index="${pick}"]`, "class")).toContain("selected");
    expect(await page.locator(`#lens-grid td.selected[data-pos="${pick}"]`).count()).toBe(model.info.nLayer + 1);
    expect(await page.textContent("#token-detail")).toContain(`id ${ids[pick]}`);
    // Embeddings: one point per token, the selected one's nearest neighbours as the model reports them.
    expect(await page.locator("#embed-plot .prompt-point").count()).toBe(ids.length);
    expect(await page.locator("#embed-plot circle").count()).toBe(Math.min(V, 1500) + ids.length);
    const nearestText = await page.textContent("#nearest");
    for (const n of model.nearestTokens(ids[pick], 3)) expect(nearestText).toContain(n.similarity.toFixed(2));
    // Attention: the selected token's row of layer 0, head 0 equals the API's and sums to 1.
    const attn = await post<{ weights: number[][][] }>("attention", { tokens: ids, layer: 0 });
    const rowShown = await page.$$eval("#attn-row td[data-weight]", (tds) => tds.map((td) => Number((td as HTMLElement).dataset.weight)));
    expect(rowShown).toEqual(attn.weights[0][pick]);
    expect(rowShown.length).toBe(pick + 1);
    expect(rowShown.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 2);
    // Another layer and head: the row follows.
    await settle(() => page.selectOption("#attn-layer", "2"));
    await page.selectOption("#attn-head", "5");
    const attn2 = await post<{ weights: number[][][] }>("attention", { tokens: ids, layer: 2 });
    expect(await page.$$eval("#attn-row td[data-weight]", (tds) => tds.map((td) => Number((td as HTMLElement).dataset.weight)))).toEqual(attn2.weights[5][pick]);

    // The distribution: with the truncations off, temperature T shows softmax(logits / T).
    const distribution = () => page.$$eval("#dist tr[data-token]", (trs) => trs.map((tr) => ({ token: Number((tr as HTMLElement).dataset.token), prob: Number((tr as HTMLElement).dataset.prob), final: Number((tr as HTMLElement).dataset.final) })));
    await settle(() => page.fill("#top-k", "0"));
    await settle(() => page.fill("#top-p", "1"));
    await settle(() => page.fill("#min-p", "0"));
    await settle(() => page.fill("#temperature", "1.5"));
    expect(await page.textContent("#temperature-value")).toBe("1.5");
    const p1 = softmax(finalLogits), pT = softmax(finalLogits, 1.5);
    let rows = await distribution();
    expect(rows.length).toBe(40);
    for (const r of rows) {
      expect(Math.abs(r.prob - p1[r.token])).toBeLessThan(1e-9);
      expect(Math.abs(r.final - pT[r.token])).toBeLessThan(1e-9);
    }
    // With the truncations on: the survivors (computed here from the logits) share softmax(logit / T).
    await settle(() => page.fill("#top-k", "12"));
    await settle(() => page.fill("#top-p", "0.9"));
    await settle(() => page.fill("#min-p", "0.25"));
    await settle(() => page.fill("#temperature", "0.7"));
    const order = Array.from(finalLogits.keys()).sort((a, b) => finalLogits[b] - finalLogits[a] || a - b);
    const topk = order.slice(0, 12);
    const zk = topk.reduce((a, id) => a + p1[id], 0);
    let n = 0;
    let cumulative = 0;
    while (n < topk.length) {
      cumulative += p1[topk[n++]] / zk;
      if (cumulative >= 0.9) break;
    }
    const survivors = topk.slice(0, n).filter((id) => p1[id] >= 0.25 * p1[topk[0]]);
    // Each stage cuts something here: 512 -> 12 -> n -> survivors.
    expect(n).toBeLessThan(12);
    expect(survivors.length).toBeLessThan(n);
    expect(survivors.length).toBeGreaterThan(1);
    const w = survivors.map((id) => Math.exp((finalLogits[id] - finalLogits[topk[0]]) / 0.7));
    const zw = w.reduce((a, v) => a + v, 0);
    rows = await distribution();
    for (const r of rows) {
      const at = survivors.indexOf(r.token);
      expect(Math.abs(r.final - (at >= 0 ? w[at] / zw : 0))).toBeLessThan(1e-9);
    }
    expect(await page.textContent('#stages li[data-stage="top-p"]')).toContain(`→ ${n} survive`);
    expect(await page.textContent('#stages li[data-stage="min-p"]')).toContain(`→ ${survivors.length} survive`);
    await page.screenshot({ path: path.join(OUT, "explore.png"), fullPage: true });

    // Step twice: each token is the real Sampler's draw (seed 42, then 43) on the model's
    // logits, and the KV cache grows by one token per step after the prompt.
    const sampling = { temperature: 0.7, topK: 12, topP: 0.9, minP: 0.25 };
    const seq = [...ids];
    for (let k = 0; k < 2; k++) {
      const ss = model.createSession();
      const logits = await ss.evaluate(seq);
      ss.dispose();
      const expected = new Sampler({ ...sampling, seed: 42 + k, repeatPenalty: 1 }).sample(logits.slice(), seq);
      await settle(() => page.click("#step"));
      const li = page.locator("#steps li").nth(k);
      expect(Number(await li.getAttribute("data-token"))).toBe(expected);
      expect(Number(await li.getAttribute("data-kv"))).toBe(seq.length);
      expect(await li.textContent()).toContain(k === 0 ? `evaluated ${ids.length} tokens` : "evaluated 1 token,");
      expect(await page.textContent("#kv-length")).toBe(String(seq.length));
      seq.push(expected);
      expect(await page.$$eval("#tokens .token", (els) => els.map((e) => Number((e as HTMLElement).dataset.id)))).toEqual(seq);
      expect(await page.locator("#tokens .token.generated").count()).toBe(k + 1);
    }
    // The views follow the longer sequence: the lens grid's last column predicts after it.
    const s3 = model.createSession();
    const after = await s3.evaluate(seq);
    s3.dispose();
    expect(Number(await page.getAttribute(`#lens-grid td[data-layer="output"][data-pos="${seq.length - 1}"]`, "data-token"))).toBe(argmax(after));
    // stories260K has no experts: the routing view stays hidden.
    expect(await page.isHidden("#moe-view")).toBe(true);

    await page.screenshot({ path: path.join(OUT, "explore-steps.png"), fullPage: true });
    await page.locator("#distribution-view").screenshot({ path: path.join(OUT, "distribution.png") });
    expect(consoleErrors).toEqual([]);
  });

  it.runIf(hasShared)("shows a mixture-of-experts model's routing per layer and token", async () => {
    const file = path.join(tempDir("explore"), "moe.gguf");
    writeSyntheticModel(file, { architecture: "qwen3moe", nLayer: 2, nEmbd: 128, nHead: 4, nHeadKv: 2, headDim: 32, nFf: 256, contextLength: 512, qkNorm: true, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 64, normTopK: true } }, { weights: "F32", vocab: "stories", seed: 3 });
    const moe = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 128 });
    const moeServer = createExploreServer({ model: moe, scriptDir: frontEnd(), log: () => {} });
    const at = await moeServer.listen({ host: "127.0.0.1", port: 0 });
    const p = await context.newPage();
    p.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    try {
      await p.goto(`${at}/`);
      await p.waitForFunction(() => Number(document.body.dataset.epoch) > 0 && document.body.dataset.pending === "0", null, { timeout: 15_000 });
      expect(await p.isVisible("#moe-view")).toBe(true);
      expect(await p.textContent("#model-info")).toContain("8 experts (2 per token)");
      const ids = await p.$$eval("#tokens .token", (els) => els.map((e) => Number((e as HTMLElement).dataset.id)));
      const r = await fetch(`${at}/explore/api/trace`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ tokens: ids }) });
      const trace = (await r.json()) as { layers: Array<{ layer: number; experts: Array<Array<{ expert: number }>> }> };
      const cells = await p.$$eval("#moe-grid td[data-experts]", (tds) => tds.map((td) => ({ layer: Number((td as HTMLElement).dataset.layer), pos: Number((td as HTMLElement).dataset.pos), experts: (td as HTMLElement).dataset.experts })));
      expect(cells.length).toBe(2 * ids.length);
      for (const c of cells) expect(c.experts).toBe(trace.layers[c.layer].experts[c.pos].map((e) => e.expert).join(","));
      // The routing is the model's own: session.trace on it names the same experts.
      const s = moe.createSession();
      const t = await s.trace(ids, { topK: 1 });
      s.dispose();
      for (const c of cells) expect(c.experts).toBe(t.layers[c.layer].experts![c.pos].map((e) => e.expert).join(","));
      await p.locator("#moe-view").screenshot({ path: path.join(OUT, "moe.png") });
      expect(consoleErrors).toEqual([]);
    } finally {
      await p.close();
      await moeServer.close(1000);
      moe.dispose();
    }
  });

  it("refuses bad requests with coded errors and serves no file outside its assets", async () => {
    const bad = async (route: string, body: unknown) => {
      const r = await fetch(`${address}/explore/api/${route}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      expect(r.status).toBe(400);
      return ((await r.json()) as { error: { message: string } }).error.message;
    };
    expect(await bad("trace", { tokens: [1, 99999] })).toMatch(/not in the vocabulary/);
    expect(await bad("trace", { tokens: [] })).toMatch(/tokens/);
    expect(await bad("trace", { tokens: Array(257).fill(1) })).toMatch(/tokens/);
    expect(await bad("tokenize", { text: "x".repeat(4001) })).toMatch(/text/);
    expect(await bad("attention", { tokens: [1, 2], layer: 99 })).toMatch(/layer/);
    expect(await bad("distribution", { tokens: [1], sampling: { temperature: -1, topK: 0, topP: 1, minP: 0 } })).toMatch(/temperature/);
    expect(await bad("step", { session: "../x", tokens: [1], sampling: { temperature: 1, topK: 0, topP: 1, minP: 0 }, seed: 1 })).toMatch(/session/);
    const traversal = await fetch(`${address}/explore/..%2F..%2Fpackage.json`);
    expect(traversal.status).toBe(404);
    const page = await fetch(`${address}/`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(await page.text()).toContain("/explore/main.js");
  });
});
