/**
 * A float64 forward pass of a dense llama-style GGUF (weights dequantized, activations
 * never rounded): the independent reference both Tessera and llama.cpp are measured against.
 * Small models only — it is O(n²) plain loops.
 */
import fs from "node:fs";
import { dequantize } from "../../lib/gguf/quantize.js";
import { readGGUF } from "../../lib/gguf/reader.js";

/**
 * onLayer (tracing): after each layer at each position, the residual stream x, the
 * attention weights per head (over positions 0..pos), and lens(x) = that residual through
 * the final norm and the LM head.
 */
export function referenceLogits(
  file: string,
  tokens: number[],
  onLayer?: (pos: number, layer: number, x: Float64Array, probs: Float64Array[], lens: () => Float64Array) => void,
): Float64Array[] {
  const g = readGGUF(file);
  const bytes = fs.readFileSync(file);
  const num = (k: string) => Number(g.metadata.get(k)!.value);
  const arch = String(g.metadata.get("general.architecture")!.value);
  const t = (name: string) => {
    const info = g.tensors.find((x) => x.name === name);
    if (!info) return undefined;
    return { w: dequantize(info.type, bytes.subarray(info.offset, info.offset + info.byteLength), info.elementCount), dims: info.dims };
  };
  const E = num(`${arch}.embedding_length`), L = num(`${arch}.block_count`), H = num(`${arch}.attention.head_count`);
  const HK = num(`${arch}.attention.head_count_kv`), eps = num(`${arch}.attention.layer_norm_rms_epsilon`);
  const base = g.metadata.has(`${arch}.rope.freq_base`) ? num(`${arch}.rope.freq_base`) : 10000;
  const hd = E / H;
  const nDims = g.metadata.has(`${arch}.rope.dimension_count`) ? num(`${arch}.rope.dimension_count`) : hd;
  const emb = t("token_embd.weight")!;
  const out = t("output.weight") ?? emb;
  const V = emb.dims[1];
  const matvec = (w: Float64Array, rows: number, cols: number, x: Float64Array) => {
    const y = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
      y[r] = s;
    }
    return y;
  };
  const rms = (x: Float64Array, w: Float64Array) => {
    let ss = 0;
    for (const v of x) ss += v * v;
    const s = 1 / Math.sqrt(ss / x.length + eps);
    return x.map((v, i) => v * s * w[i]);
  };
  const rope = (x: Float64Array, nHeads: number, pos: number) => {
    for (let h = 0; h < nHeads; h++)
      for (let i = 0; i < nDims / 2; i++) {
        const th = pos * base ** ((-2 * i) / nDims);
        const a = h * hd + 2 * i;
        const x0 = x[a], x1 = x[a + 1];
        x[a] = x0 * Math.cos(th) - x1 * Math.sin(th);
        x[a + 1] = x0 * Math.sin(th) + x1 * Math.cos(th);
      }
  };
  const layers = Array.from({ length: L }, (_, l) => ({
    an: t(`blk.${l}.attn_norm.weight`)!.w, wq: t(`blk.${l}.attn_q.weight`)!.w, wk: t(`blk.${l}.attn_k.weight`)!.w,
    wv: t(`blk.${l}.attn_v.weight`)!.w, wo: t(`blk.${l}.attn_output.weight`)!.w, fn: t(`blk.${l}.ffn_norm.weight`)!.w,
    wg: t(`blk.${l}.ffn_gate.weight`)!, wu: t(`blk.${l}.ffn_up.weight`)!.w, wd: t(`blk.${l}.ffn_down.weight`)!.w,
    ks: [] as Float64Array[], vs: [] as Float64Array[],
  }));
  const outNorm = t("output_norm.weight")!.w;
  const logits: Float64Array[] = [];
  tokens.forEach((tok, pos) => {
    let x = Float64Array.from(emb.w.subarray(tok * E, (tok + 1) * E));
    for (const ly of layers) {
      const xn = rms(x, ly.an);
      const q = matvec(ly.wq, H * hd, E, xn), k = matvec(ly.wk, HK * hd, E, xn), v = matvec(ly.wv, HK * hd, E, xn);
      rope(q, H, pos);
      rope(k, HK, pos);
      ly.ks.push(k);
      ly.vs.push(v);
      const att = new Float64Array(H * hd);
      const headProbs: Float64Array[] = [];
      for (let h = 0; h < H; h++) {
        const gk = Math.floor(h / (H / HK));
        const sc = ly.ks.map((kj) => {
          let s = 0;
          for (let i = 0; i < hd; i++) s += q[h * hd + i] * kj[gk * hd + i];
          return s / Math.sqrt(hd);
        });
        const m = Math.max(...sc);
        const p = sc.map((s) => Math.exp(s - m));
        const z = p.reduce((a, b) => a + b, 0);
        headProbs.push(Float64Array.from(p, (v) => v / z));
        for (let j = 0; j < p.length; j++) for (let i = 0; i < hd; i++) att[h * hd + i] += (p[j] / z) * ly.vs[j][gk * hd + i];
      }
      const o = matvec(ly.wo, E, H * hd, att);
      x = x.map((v2, i) => v2 + o[i]);
      const xf = rms(x, ly.fn);
      const F = ly.wg.dims[1];
      const gte = matvec(ly.wg.w, F, E, xf), up = matvec(ly.wu, F, E, xf);
      const hdn = gte.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
      const d = matvec(ly.wd, E, F, hdn);
      x = x.map((v2, i) => v2 + d[i]);
      const xl = x;
      onLayer?.(pos, layers.indexOf(ly), xl, headProbs, () => matvec(out.w, V, E, rms(xl, outNorm)));
    }
    logits.push(matvec(out.w, V, E, rms(x, outNorm)));
  });
  return logits;
}
