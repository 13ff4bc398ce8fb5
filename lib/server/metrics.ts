/**
 * Prometheus text exposition of the server's counters, gauges and histograms. Names follow
 * vLLM's where one exists (vllm:num_requests_waiting, vllm:kv_cache_usage_perc, ...), so
 * LLM-aware load balancers that read them (the Kubernetes Gateway API Inference Extension)
 * can route across replicas; the rest are tessera_*.
 */

export type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${labels[k].replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",")}}`;
}

class Series {
  readonly values = new Map<string, number>();
  add(labels: Labels, v: number): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + v);
  }
  set(labels: Labels, v: number): void {
    this.values.set(labelText(labels), v);
  }
}

export class Counter {
  private readonly s = new Series();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, v = 1): void {
    this.s.add(labels, v);
  }
  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [l, v] of this.s.values) lines.push(`${this.name}${l} ${v}`);
    return lines.join("\n");
  }
}

export class Gauge {
  constructor(readonly name: string, readonly help: string, private readonly read: () => number) {}
  text(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.read()}`].join("\n");
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly name: string, readonly help: string, private readonly buckets: number[]) {
    this.counts = new Array(buckets.length).fill(0);
  }
  observe(v: number): void {
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) this.counts[i]++;
    this.sum += v;
    this.count++;
  }
  text(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join("\n");
  }
}

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];

export class ServerMetrics {
  readonly requests = new Counter("tessera_http_requests_total", "HTTP requests by route and status code.");
  readonly success = new Counter("vllm:request_success_total", "Finished generation requests by finish reason.");
  readonly promptTokens = new Counter("vllm:prompt_tokens_total", "Prompt tokens processed (including cached ones).");
  readonly cachedTokens = new Counter("tessera_prompt_tokens_cached_total", "Prompt tokens whose keys and values came from the cache.");
  readonly generationTokens = new Counter("vllm:generation_tokens_total", "Tokens generated.");
  readonly ttft = new Histogram("vllm:time_to_first_token_seconds", "Time from request arrival to its first generated token.", LATENCY_BUCKETS);
  readonly itl = new Histogram("vllm:inter_token_latency_seconds", "Time between consecutive generated tokens of a request.", LATENCY_BUCKETS);
  readonly e2e = new Histogram("vllm:e2e_request_latency_seconds", "Time from request arrival to its last token.", LATENCY_BUCKETS);
  private readonly gauges: Gauge[];

  constructor(read: { running: () => number; waiting: () => number; kvUsage: () => number; blocksInUse: () => number; blocksTotal: () => number }) {
    this.gauges = [
      new Gauge("vllm:num_requests_running", "Requests generating now.", read.running),
      new Gauge("vllm:num_requests_waiting", "Requests waiting for a generation slot.", read.waiting),
      new Gauge("vllm:kv_cache_usage_perc", "Share of the KV block pool referenced by sequences (0..1).", read.kvUsage),
      new Gauge("tessera_kv_blocks_in_use", "KV blocks referenced by sequences.", read.blocksInUse),
      new Gauge("tessera_kv_blocks_total", "KV blocks in the pool.", read.blocksTotal),
    ];
  }

  text(): string {
    const parts = [this.requests, this.success, this.promptTokens, this.cachedTokens, this.generationTokens, this.ttft, this.itl, this.e2e, ...this.gauges];
    return parts.map((p) => p.text()).join("\n") + "\n";
  }
}
