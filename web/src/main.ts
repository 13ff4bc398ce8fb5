/**
 * The explorer page: one state (the token sequence, the selected token, the sampler's
 * controls) and a view per section, each drawn from the API's answer for that state. A
 * newer request supersedes an older one of the same kind (its late answer is dropped).
 * Every number shown comes from the server; the page computes nothing about the model.
 */
import { api, type AttentionView, type DistributionView, type EmbeddingView, type ModelView, type Sampling, type TokenView, type TraceView } from "./api.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const SVG = "http://www.w3.org/2000/svg";

interface State {
  model?: ModelView;
  tokens: TokenView[];
  /** Tokens before this index came from the prompt, the rest from Step. */
  promptLength: number;
  selected: number;
  trace?: TraceView;
  attention?: AttentionView;
  layer: number;
  head: number;
  embeddings?: EmbeddingView;
  distribution?: DistributionView;
  session: string;
  steps: number;
}

const state: State = { tokens: [], promptLength: 0, selected: 0, layer: 0, head: 0, session: Math.random().toString(36).slice(2), steps: 0 };
const latest = new Map<string, number>();
let counter = 0;

/** Applies the answer of `request` unless a newer request of the same kind started meanwhile. */
async function newest<T>(kind: string, request: Promise<T>, apply: (value: T) => void | Promise<void>): Promise<void> {
  const ticket = ++counter;
  latest.set(kind, ticket);
  try {
    const value = await request;
    if (latest.get(kind) === ticket) await apply(value);
  } catch (e) {
    if (latest.get(kind) === ticket) showError(e);
  }
}

function showError(e: unknown): void {
  const box = $("error");
  box.hidden = false;
  box.textContent = e instanceof Error ? e.message : String(e);
}

function bumpEpoch(): void {
  document.body.dataset.epoch = String(Number(document.body.dataset.epoch ?? 0) + 1);
}

const ids = () => state.tokens.map((t) => t.id);
const pct = (p: number) => `${(p * 100).toFixed(1)}%`;
const hex = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ");
const visible = (piece: string) => piece.replace(/ /g, "·").replace(/\n/g, "⏎");
const hue = (i: number) => (i * 137.508) % 360;

function sampling(): Sampling {
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  return { temperature: num("temperature"), topK: num("top-k"), topP: num("top-p"), minP: num("min-p") };
}

// ---- tokens -------------------------------------------------------------------------------

function renderTokens(): void {
  const box = $("tokens");
  box.replaceChildren(
    ...state.tokens.map((t, i) => {
      const span = document.createElement("span");
      span.className = "token" + (i === state.selected ? " selected" : "") + (i >= state.promptLength ? " generated" : "");
      span.dataset.index = String(i);
      span.dataset.id = String(t.id);
      span.style.background = `hsl(${hue(i)} 70% 86%)`;
      span.title = `position ${i}, id ${t.id}, bytes ${hex(t.bytes) || "(none)"}`;
      const piece = document.createElement("span");
      piece.className = "piece";
      piece.textContent = visible(t.piece);
      const id = document.createElement("small");
      id.textContent = String(t.id);
      span.append(piece, id);
      span.addEventListener("click", () => select(i));
      return span;
    }),
  );
  renderTokenDetail();
}

function renderTokenDetail(): void {
  const t = state.tokens[state.selected];
  const box = $("token-detail");
  if (!t) return void box.replaceChildren();
  const norms = state.trace?.layers.map((L) => L.residualNorm[state.selected]?.toFixed(2)).join(" → ") ?? "";
  box.textContent = `#${state.selected} "${visible(t.piece)}": id ${t.id}, bytes [${hex(t.bytes) || "none"}]` + (t.special ? ", special" : "") + (norms ? `; residual-stream norm by layer: ${norms}` : "");
}

function select(i: number): void {
  if (i < 0 || i >= state.tokens.length) return;
  state.selected = i;
  renderTokens();
  renderLens();
  renderAttention();
  renderMoe();
  void newest("embeddings", api.embeddings(ids(), state.tokens[i].id), (e) => {
    state.embeddings = e;
    renderEmbeddings();
  }).then(bumpEpoch);
}

// ---- logit lens ---------------------------------------------------------------------------

function renderLens(): void {
  const t = state.trace;
  const table = $("lens-grid");
  if (!t) return void table.replaceChildren();
  const head = document.createElement("tr");
  head.append(cell("th", "layer"), ...state.tokens.map((tok, i) => {
    const th = cell("th", visible(tok.piece));
    if (i === state.selected) th.className = "selected";
    return th;
  }));
  const row = (label: string, cells: Array<{ token: number; piece: string; prob: number }>, layer: string, norms?: number[]) => {
    const tr = document.createElement("tr");
    tr.dataset.layer = layer;
    if (layer === "output") tr.className = "output";
    tr.append(cell("th", label));
    cells.forEach((c, pos) => {
      const td = cell("td", visible(c.piece));
      const p = document.createElement("small");
      p.textContent = pct(c.prob);
      td.append(p);
      td.dataset.layer = layer;
      td.dataset.pos = String(pos);
      td.dataset.token = String(c.token);
      td.dataset.prob = String(c.prob);
      td.style.background = `rgba(47, 111, 222, ${(0.08 + 0.7 * c.prob).toFixed(3)})`;
      td.title = `predicts "${c.piece}" (id ${c.token}) with p = ${c.prob.toFixed(4)}` + (norms ? `; residual norm ${norms[pos].toFixed(3)}` : "");
      if (pos === state.selected) td.classList.add("selected");
      td.addEventListener("click", () => select(pos));
      tr.append(td);
    });
    return tr;
  };
  const rows = [row("output", t.output, "output")];
  for (let l = t.layers.length - 1; l >= 0; l--) {
    const L = t.layers[l];
    rows.push(row(`layer ${L.layer}`, L.lens.map((c) => c[0]), String(L.layer), L.residualNorm));
  }
  table.replaceChildren(head, ...rows);
}

function cell(tag: "td" | "th", text: string): HTMLTableCellElement {
  const c = document.createElement(tag);
  c.textContent = text;
  return c;
}

// ---- embeddings ---------------------------------------------------------------------------

function renderEmbeddings(): void {
  const e = state.embeddings;
  const svg = $("embed-plot") as unknown as SVGSVGElement;
  if (!e) return void svg.replaceChildren();
  const all = [...e.background, ...e.tokens];
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const W = 400, H = 320, pad = 16;
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * pad);
  const sy = (y: number) => H - pad - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * pad);
  const el = (tag: string, attrs: Record<string, string | number>) => {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    return n;
  };
  const nodes: Element[] = [];
  const near = new Set(e.nearest?.map((n) => n.token));
  for (const p of e.background) {
    const c = el("circle", { cx: sx(p.x), cy: sy(p.y), r: near.has(p.token) ? 3 : 1.6, fill: near.has(p.token) ? "#e08a00" : "#c3c8d4" });
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${p.piece} (${p.token})`;
    c.append(title);
    nodes.push(c);
  }
  e.tokens.forEach((p, i) => {
    const g = el("g", { class: "prompt-point", "data-index": i, "data-token": p.token });
    const sel = i === state.selected;
    g.append(
      el("circle", { cx: sx(p.x), cy: sy(p.y), r: sel ? 5.5 : 4, fill: `hsl(${hue(i)} 65% 55%)`, stroke: sel ? "#1d2433" : "none", "stroke-width": 2 }),
    );
    const label = el("text", { x: sx(p.x) + 6, y: sy(p.y) - 4, "font-weight": sel ? "bold" : "normal" });
    label.textContent = visible(p.piece);
    g.append(label);
    g.addEventListener("click", () => select(i));
    nodes.push(g);
  });
  const caption = el("text", { x: 6, y: H - 4, fill: "#6b7385" });
  caption.textContent = `PC1 ${pct(e.explained[0])} · PC2 ${pct(e.explained[1])} of the variance`;
  nodes.push(caption);
  svg.replaceChildren(...nodes);
  const t = state.tokens[state.selected];
  $("nearest").textContent = e.nearest && t ? `nearest to "${visible(t.piece)}" by cosine: ` + e.nearest.map((n) => `${visible(n.piece)} ${n.similarity.toFixed(2)}`).join(", ") : "";
}

// ---- attention ----------------------------------------------------------------------------

function drawHeat(canvas: HTMLCanvasElement, w: number[][], selectedRow: number): void {
  const n = w.length;
  canvas.width = n;
  canvas.height = n;
  const g = canvas.getContext("2d")!;
  const img = g.createImageData(n, n);
  for (let q = 0; q < n; q++)
    for (let k = 0; k < n; k++) {
      const v = k <= q ? Math.sqrt(w[q][k] ?? 0) : 0; // sqrt: small weights stay visible
      const at = (q * n + k) * 4;
      const shade = q === selectedRow ? [232, 120, 20] : [29, 60, 160];
      img.data[at] = 255 - v * (255 - shade[0]);
      img.data[at + 1] = 255 - v * (255 - shade[1]);
      img.data[at + 2] = 255 - v * (255 - shade[2]);
      img.data[at + 3] = k <= q ? 255 : 40;
    }
  g.putImageData(img, 0, 0);
}

function renderAttention(): void {
  const a = state.attention;
  const heads = $("attn-heads");
  const rowTable = $("attn-row");
  if (!a) {
    heads.replaceChildren();
    rowTable.replaceChildren();
    return;
  }
  const head = Math.min(state.head, a.nHead - 1);
  drawHeat($<HTMLCanvasElement>("attn-canvas"), a.weights[head], state.selected);
  heads.replaceChildren(
    ...a.weights.map((w, h) => {
      const c = document.createElement("canvas");
      c.title = `head ${h}`;
      c.dataset.head = String(h);
      if (h === head) c.className = "selected";
      drawHeat(c, w, state.selected);
      c.addEventListener("click", () => {
        state.head = h;
        $<HTMLSelectElement>("attn-head").value = String(h);
        renderAttention();
      });
      return c;
    }),
  );
  // The selected token's row of the selected head, as numbers.
  const weights = a.weights[head][state.selected] ?? [];
  const tr1 = document.createElement("tr"), tr2 = document.createElement("tr");
  tr1.append(cell("th", `layer ${a.layer} head ${head}: "${visible(state.tokens[state.selected]?.piece ?? "")}" attends to`));
  tr2.append(cell("th", "weight"));
  weights.forEach((v, k) => {
    tr1.append(cell("th", visible(state.tokens[k].piece)));
    const td = cell("td", v.toFixed(3));
    td.dataset.pos = String(k);
    td.dataset.weight = String(v);
    td.style.background = `rgba(232, 120, 20, ${(0.7 * v).toFixed(3)})`;
    tr2.append(td);
  });
  rowTable.replaceChildren(tr1, tr2);
}

function loadAttention(): Promise<void> {
  return newest("attention", api.attention(ids(), state.layer), (a) => {
    state.attention = a;
    renderAttention();
  });
}

// ---- distribution -------------------------------------------------------------------------

function renderDistribution(): void {
  const d = state.distribution;
  const table = $("dist");
  const stages = $("stages");
  if (!d) return void table.replaceChildren();
  const li = (stage: string, text: string) => {
    const l = document.createElement("li");
    l.dataset.stage = stage;
    l.textContent = text;
    return l;
  };
  if (d.temperature === 0)
    stages.replaceChildren(li("greedy", `temperature 0 is greedy: the most likely token is taken, the other stages do not run (entropy of the model's distribution ${d.entropy.toFixed(3)} nats).`));
  else
    stages.replaceChildren(
      li("top-k", d.topK > 0 ? `top-k ${d.topK}: keep the ${d.topK} most likely tokens → ${d.afterTopK} of ${d.vocabulary} survive.` : `top-k 0: off, all ${d.vocabulary} tokens go on.`),
      li("top-p", d.topP < 1 ? `top-p ${d.topP}: keep the most likely tokens until their probability adds up to ${d.topP} → ${d.afterTopP} survive.` : "top-p 1: off."),
      li("min-p", d.minP > 0 ? `min-p ${d.minP}: drop tokens less likely than ${d.minP} × the top token's probability → ${d.afterMinP} survive.` : "min-p 0: off."),
      li("temperature", `temperature ${d.temperature}: the survivors' probabilities become softmax(logit / ${d.temperature}) among them — ${d.temperature < 1 ? "sharper" : d.temperature > 1 ? "flatter" : "unchanged"}; entropy ${d.entropy.toFixed(3)} → ${d.finalEntropy.toFixed(3)} nats. One token is drawn from these.`),
    );
  const head = document.createElement("tr");
  head.append(...["token", "id", "logit", "p (T = 1)", "top-k", "top-p", "min-p", "p drawn", ""].map((h) => cell("th", h)));
  const rows = d.candidates.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.token = String(c.token);
    tr.dataset.prob = String(c.prob);
    tr.dataset.final = String(c.final);
    if (c.final === 0) tr.className = "dropped";
    const mark = (kept: boolean) => {
      const td = cell("td", kept ? "✓" : "✗");
      if (!kept) td.className = "out";
      return td;
    };
    const bars = document.createElement("td");
    bars.style.textAlign = "left";
    const base = document.createElement("span");
    base.className = "bar base";
    base.style.width = `${(c.prob * 160).toFixed(1)}px`;
    const fin = document.createElement("span");
    fin.className = "bar";
    fin.style.width = `${(c.final * 160).toFixed(1)}px`;
    bars.append(base, document.createElement("br"), fin);
    const greedy = d.temperature === 0;
    tr.append(cell("td", visible(c.piece)), cell("td", String(c.token)), cell("td", c.logit.toFixed(3)), cell("td", pct(c.prob)),
      greedy ? cell("td", "–") : mark(c.topK), greedy ? cell("td", "–") : mark(c.topP), greedy ? cell("td", "–") : mark(c.minP), cell("td", pct(c.final)), bars);
    return tr;
  });
  table.replaceChildren(head, ...rows);
}

function loadDistribution(): Promise<void> {
  return newest("distribution", api.distribution(ids(), sampling()), (d) => {
    state.distribution = d;
    renderDistribution();
  });
}

// ---- MoE ----------------------------------------------------------------------------------

function renderMoe(): void {
  const t = state.trace;
  const moe = t?.layers.filter((L) => L.experts);
  const section = $("moe-view");
  section.hidden = !moe || moe.length === 0;
  if (!t || !moe || moe.length === 0) return;
  const head = document.createElement("tr");
  head.append(cell("th", "layer"), ...state.tokens.map((tok) => cell("th", visible(tok.piece))));
  const rows = moe.map((L) => {
    const tr = document.createElement("tr");
    tr.append(cell("th", `layer ${L.layer}`));
    L.experts!.forEach((choice, pos) => {
      const td = cell("td", choice.map((c) => `${c.expert}: ${c.weight.toFixed(2)}`).join("\n"));
      td.dataset.layer = String(L.layer);
      td.dataset.pos = String(pos);
      td.dataset.experts = choice.map((c) => c.expert).join(",");
      if (pos === state.selected) td.className = "selected";
      tr.append(td);
    });
    return tr;
  });
  $("moe-grid").replaceChildren(head, ...rows);
}

// ---- the whole page -----------------------------------------------------------------------

async function refresh(): Promise<void> {
  $("error").hidden = true;
  state.selected = Math.min(state.selected, state.tokens.length - 1);
  renderTokens();
  await Promise.all([
    newest("trace", api.trace(ids()), (t) => {
      state.trace = t;
      renderLens();
      renderMoe();
      renderTokenDetail();
    }),
    newest("embeddings", api.embeddings(ids(), state.tokens[state.selected]?.id), (e) => {
      state.embeddings = e;
      renderEmbeddings();
    }),
    loadAttention(),
    loadDistribution(),
  ]);
  bumpEpoch();
}

async function analyze(): Promise<void> {
  const text = $<HTMLTextAreaElement>("prompt").value;
  await newest("tokenize", api.tokenize(text), async (r) => {
    if (r.tokens.length === 0) return showError(new Error("the prompt gives no tokens: type something"));
    state.tokens = r.tokens;
    state.promptLength = r.tokens.length;
    state.selected = r.tokens.length - 1;
    state.steps = 0;
    $("steps").replaceChildren();
    $("kv-length").textContent = "0";
    await refresh();
  });
}

async function step(): Promise<void> {
  if (state.tokens.length === 0) return;
  const seed = Number($<HTMLInputElement>("seed").value) + state.steps;
  await newest("step", api.step(state.session, ids(), sampling(), seed), async (s) => {
    state.steps++;
    state.tokens = [...state.tokens, s.token];
    state.selected = state.tokens.length - 1;
    $("kv-length").textContent = String(s.kvLength);
    const li = document.createElement("li");
    li.dataset.token = String(s.token.id);
    li.dataset.kv = String(s.kvLength);
    li.dataset.final = String(s.final);
    li.textContent = `"${visible(s.token.piece)}" (id ${s.token.id}) drawn with p ${pct(s.final)} (model ${pct(s.prob)}); evaluated ${s.evaluated} token${s.evaluated === 1 ? "" : "s"}, KV cache ${s.kvLength}` + (s.endOfGeneration ? " — end of generation" : "");
    $("steps").append(li);
    await refresh();
  });
}

function setupControls(): void {
  for (const id of ["temperature", "top-k", "top-p", "min-p"]) {
    const input = $<HTMLInputElement>(id);
    input.addEventListener("input", () => {
      $(`${id}-value`).textContent = input.value;
      if (state.tokens.length) void loadDistribution().then(bumpEpoch);
    });
  }
  $("analyze").addEventListener("click", () => void analyze());
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      void analyze();
    }
  });
  $("step").addEventListener("click", () => void step());
  $("attn-layer").addEventListener("change", (e) => {
    state.layer = Number((e.target as HTMLSelectElement).value);
    void loadAttention().then(bumpEpoch);
  });
  $("attn-head").addEventListener("change", (e) => {
    state.head = Number((e.target as HTMLSelectElement).value);
    renderAttention();
  });
}

async function start(): Promise<void> {
  setupControls();
  let model: ModelView | undefined;
  for (let tries = 0; !model; tries++) {
    try {
      model = await api.model();
    } catch (e) {
      // 503 while the model loads: ask again.
      if (tries > 300) return showError(e);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  state.model = model;
  $("model-info").textContent = `${model.name && model.name !== model.architecture ? `${model.name} · ` : ""}${model.architecture} · ${model.nLayer} layers × ${model.nHead} heads · width ${model.nEmbd} · ${model.nVocab} tokens` + (model.nExpert > 0 ? ` · ${model.nExpert} experts (${model.nExpertUsed} per token)` : "") + ` · ${model.backend}`;
  $<HTMLTextAreaElement>("prompt").maxLength = model.maxPromptChars;
  const opts = (n: number, label: string) => Array.from({ length: n }, (_, i) => new Option(`${label} ${i}`, String(i)));
  $("attn-layer").replaceChildren(...opts(model.nLayer, "layer"));
  $("attn-head").replaceChildren(...opts(model.nHead, "head"));
  await analyze();
}

void start();
