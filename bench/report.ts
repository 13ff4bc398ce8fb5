/** Writes a benchmark run as JSON, a Markdown table and an SVG bar chart of the ratios. */
import fs from "node:fs";
import path from "node:path";
import type { ReadBandwidth } from "../lib/native.js";
import type { E2EResult } from "./e2e.js";
import type { EngineBenchResult } from "./engine.js";
import { grammarMarkdown, type GrammarBenchResult } from "./grammar.js";
import { serveLoadMarkdown, type ServeLoadResult } from "./serve-load.js";
import { serveMarkdown, type ServeBenchResult } from "./serve.js";
import type { SpeculativeBenchResult } from "./speculative.js";
import { recurrentMarkdown, type RecurrentBenchResult } from "./recurrent.js";
import { embedMarkdown, type EmbedBenchResult } from "./embed.js";
import { median } from "./stats.js";

export interface KernelRow {
  kernel: string;
  shape: string;
  ms: number;
  gbps: number;
  gflops: number;
  /** matvec: the read bandwidth probed right before it, and the kernel's share of it */
  readBandwidthGBps: number | null;
  bandwidthShare: number | null;
}

export interface BenchReport {
  date: string;
  machine: { cpu: string; cores: number; isa: string };
  readBandwidthGBps: number | null;
  /** The first probe's figures per read method and thread count (the top one is readBandwidthGBps). */
  readBandwidthMethods?: ReadBandwidth["methods"];
  kernels: KernelRow[];
  /**
   * decodeBandwidthShare: median over Tessera's decode runs of (tokens/s x decodeBytes) / the
   * higher read bandwidth of the probes right before and after that run.
   */
  e2e: Array<E2EResult & { decodeBytes: number | null; decodeBandwidthShare: number | null }>;
  /** Many sequences on one model (bench/engine.ts). */
  engine?: EngineBenchResult;
  /** Speculative decoding beside node-llama-cpp's token predictors (bench/speculative.ts). */
  speculative?: SpeculativeBenchResult;
  /** Constrained decoding's cost per token beside node-llama-cpp's grammar (bench/grammar.ts). */
  grammar?: GrammarBenchResult;
  /** Aggregate tokens/s and time to first token through HTTP at several client counts (bench/serve.ts). */
  serve?: ServeBenchResult;
  /** Many streaming clients for a minute: errors, cross-talk, blocks and RSS after (bench/serve-load.ts). */
  serveLoad?: ServeLoadResult;
  /** Embedding throughput beside node-llama-cpp and vector search latency (bench/embed.ts). */
  embed?: EmbedBenchResult;
  /** Mamba-2 decode ms/token after a short and a long prompt, beside llama.cpp (bench/recurrent.ts). */
  recurrent?: RecurrentBenchResult;
  targets: Array<{ target: string; measured: string; met: boolean }>;
}

const fmt = (x: number | null, d = 1) => (x === null || !Number.isFinite(x) ? "–" : x.toFixed(d));

export function markdown(r: BenchReport): string {
  const lines: string[] = [];
  lines.push(`# Tessera benchmark — ${r.date}`, "");
  lines.push(`${r.machine.cpu}, ${r.machine.cores} cores, ISA ${r.machine.isa}; read bandwidth ${fmt(r.readBandwidthGBps)} GB/s at the start; every bandwidth share below divides by probes taken next to its own run (kernels: in turns with it, each run against the higher of the probes beside it; decode: the higher of the probes right before and after each run; *read BW* columns, median)`, "");
  if (r.readBandwidthMethods?.length)
    lines.push(
      `The probe is the best median of its read methods: ${r.readBandwidthMethods.map((m) => `${m.method} ×${m.threads} ${fmt(m.medianGBps)}`).join(", ")} GB/s.`,
      "",
    );
  if (r.e2e.length) {
    lines.push("## End to end (tokens/s, medians; same GGUF, same threads, alternating runs)", "");
    lines.push("llama.cpp is measured at Tessera's thread count and at 1 thread; ratios are against its best (*t* columns: its thread count per phase). *same-t*: llama.cpp decode at Tessera's thread count.", "");
    lines.push("| model | threads | prefill tessera | prefill llama.cpp (t) | ratio | decode tessera | decode llama.cpp (t) | ratio | decode llama.cpp same-t | decode / bandwidth limit | read BW GB/s | N-API share |");
    lines.push("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const e of r.e2e) {
      const pr = e.tessera.prefillTps && e.llamaCpp.prefillTps ? e.tessera.prefillTps / e.llamaCpp.prefillTps : null;
      lines.push(
        `| ${e.model} | ${e.threads} | ${fmt(e.tessera.prefillTps)} | ${fmt(e.llamaCpp.prefillTps)} (${e.llamaCppThreads.prefill}) | ${fmt(pr, 2)}× | ` +
          `${fmt(e.tessera.decodeTps)} | ${fmt(e.llamaCpp.decodeTps)} (${e.llamaCppThreads.decode}) | ${fmt(e.tessera.decodeTps / e.llamaCpp.decodeTps, 2)}× | ` +
          `${fmt(e.llamaCppByThreads[e.threads]?.decodeTps ?? null)} | ` +
          `${e.decodeBandwidthShare === null ? "–" : (e.decodeBandwidthShare * 100).toFixed(0) + "%"} | ` +
          `${e.decodeReadBandwidthGBps.length ? fmt(median(e.decodeReadBandwidthGBps)) : "–"} | ${(e.napiOverheadShare * 100).toFixed(2)}% |`,
      );
    }
    lines.push("");
  }
  if (r.engine) {
    const e = r.engine;
    const one = e.streams.find((x) => x.streams === 1)?.tps ?? null;
    lines.push(`## Many sequences (${e.model}, ${e.threads} threads, ${e.decodeTokens} greedy tokens per stream, medians)`, "");
    lines.push("| engine | concurrent streams | aggregate tokens/s | vs one Tessera stream |", "|---|---|---|---|");
    for (const x of e.streams) lines.push(`| tessera | ${x.streams} | ${fmt(x.tps)} | ${one ? fmt(x.tps / one, 2) + "×" : "–"} |`);
    lines.push(`| llama.cpp (t=${e.peer.threads}), ${e.peer.streams} sequences in one context | ${e.peer.streams} | ${fmt(e.peer.tps)} | ${one ? fmt(e.peer.tps / one, 2) + "×" : "–"} |`, "");
    lines.push(
      `Prefix cache: first token after a ${e.prefix.prefixTokens}-token prefix an earlier request computed (another prompt in between) ${fmt(e.prefix.warmMs)} ms against ${fmt(e.prefix.coldMs)} ms cold (${fmt(e.prefix.ratio, 3)}×).`,
      "",
      `KV memory: 8 sessions of 100 tokens hold ${fmt(e.memory.bytes / 1048576, 2)} MiB, ${fmt(e.memory.share * 100, 1)}% of 8 contexts of 4096 positions (${fmt(e.memory.contextBytes / 1048576, 1)} MiB); a q8_0 block is ${fmt(e.memory.q8BlockShare, 3)}× an f16 one, q4_0 ${fmt(e.memory.q4BlockShare, 3)}×.`,
      "",
    );
    if (e.contention) {
      const c = e.contention;
      lines.push(`### Decode beside one busy process (${c.model}, tokens/s)`, "", "| engine | quiet | with a spin loop | kept |", "|---|---|---|---|");
      lines.push(`| tessera (t=${e.threads}) | ${fmt(c.tessera.quiet)} | ${fmt(c.tessera.loaded)} | ${fmt(c.tessera.share * 100, 0)}% |`);
      for (const [t, x] of Object.entries(c.llamaCpp)) lines.push(`| llama.cpp (t=${t}) | ${fmt(x.quiet)} | ${fmt(x.loaded)} | ${fmt((x.loaded / x.quiet) * 100, 0)}% |`);
      lines.push("");
    }
  }
  if (r.speculative) {
    const s = r.speculative;
    lines.push(
      `## Speculative decoding (${s.threads} threads, greedy, up to ${s.maxDraftTokens} guesses per pass, tokens/s after the first token, medians)`,
      "",
      "| task | model | engine | plain | speculative | speedup | accepted |",
      "|---|---|---|---|---|---|---|",
    );
    for (const x of s.rows)
      lines.push(`| ${x.task} | ${x.model} | ${x.engine} | ${fmt(x.plainTps)} | ${fmt(x.specTps)} | ${fmt(x.speedup, 2)}× | ${fmt(x.acceptance * 100, 0)}% |`);
    lines.push("");
  }
  if (r.grammar) lines.push(...grammarMarkdown(r.grammar));
  if (r.serve) lines.push(...serveMarkdown(r.serve));
  if (r.serveLoad) lines.push(...serveLoadMarkdown(r.serveLoad));
  if (r.embed) lines.push(...embedMarkdown(r.embed));
  if (r.recurrent) lines.push(...recurrentMarkdown(r.recurrent));
  if (r.kernels.length) {
    lines.push("## Kernels", "", "| kernel | shape | ms | GB/s | GFLOP/s | read BW GB/s | of read bandwidth |", "|---|---|---|---|---|---|---|");
    for (const k of r.kernels)
      lines.push(
        `| ${k.kernel} | ${k.shape} | ${fmt(k.ms, 3)} | ${fmt(k.gbps)} | ${fmt(k.gflops)} | ${fmt(k.readBandwidthGBps)} | ` +
          `${k.bandwidthShare === null ? "–" : (k.bandwidthShare * 100).toFixed(0) + "%"} |`,
      );
    lines.push("");
  }
  if (r.targets.length) {
    lines.push("## Targets", "", "| target | measured | met |", "|---|---|---|");
    for (const t of r.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.met ? "yes" : "**no**"} |`);
    lines.push("");
  }
  return lines.join("\n");
}

/** Horizontal bars: Tessera / llama.cpp ratio per model and phase, with the 1.0 line. */
export function svgChart(r: BenchReport): string {
  const bars: Array<{ label: string; ratio: number }> = [];
  for (const e of r.e2e) {
    if (e.tessera.prefillTps && e.llamaCpp.prefillTps) bars.push({ label: `${e.model} prefill`, ratio: e.tessera.prefillTps / e.llamaCpp.prefillTps });
    bars.push({ label: `${e.model} decode`, ratio: e.tessera.decodeTps / e.llamaCpp.decodeTps });
  }
  const rowH = 26;
  const left = 260;
  const width = 760;
  const maxRatio = Math.max(2, ...bars.map((b) => b.ratio)) * 1.1;
  const x = (v: number) => left + ((width - left - 60) * v) / maxRatio;
  const height = 50 + bars.length * rowH;
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<text x="10" y="20" font-size="14" font-weight="bold">Tessera / llama.cpp tokens-per-second ratio (${esc(r.date)})</text>`,
  ];
  bars.forEach((b, i) => {
    const y = 34 + i * rowH;
    out.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(b.label)}</text>`);
    out.push(`<rect x="${left}" y="${y + 3}" width="${x(b.ratio) - left}" height="${rowH - 8}" fill="${b.ratio >= 1 ? "#2e7d32" : "#c62828"}"/>`);
    out.push(`<text x="${x(b.ratio) + 4}" y="${y + 15}">${b.ratio.toFixed(2)}×</text>`);
  });
  out.push(`<line x1="${x(1)}" y1="28" x2="${x(1)}" y2="${height - 6}" stroke="#333" stroke-dasharray="4 3"/>`);
  out.push("</svg>");
  return out.join("\n");
}

export function writeReport(dir: string, r: BenchReport): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files = [path.join(dir, "results.json"), path.join(dir, "results.md"), path.join(dir, "chart.svg")];
  fs.writeFileSync(files[0], JSON.stringify(r, null, 2));
  fs.writeFileSync(files[1], markdown(r));
  fs.writeFileSync(files[2], svgChart(r));
  return files;
}
