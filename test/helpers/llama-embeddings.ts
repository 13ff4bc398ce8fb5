/**
 * The embedding conformance tests' shared pieces: cosine similarity, and llama.cpp's
 * embeddings of texts on a file (node-llama-cpp's CPU build, createEmbeddingContext).
 */

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/**
 * llama.cpp's embedding of each text on `file` (getEmbeddingFor, a 128-token context), and
 * what `inspect` reads from the loaded model before it is disposed. `disposeLlama` frees the
 * llama.cpp instance (for the test's afterAll).
 */
export async function llamaCppEmbeddings<T = undefined>(
  file: string,
  texts: readonly string[],
  threads: number,
  inspect?: (model: import("node-llama-cpp").LlamaModel) => T,
): Promise<{ vectors: number[][]; extra: T; disposeLlama: () => Promise<void> }> {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error, progressLogs: false });
  const lmodel = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const ctx = await lmodel.createEmbeddingContext({ contextSize: 128, threads });
  const vectors: number[][] = [];
  for (const t of texts) vectors.push([...(await ctx.getEmbeddingFor(t)).vector]);
  const extra = inspect?.(lmodel) as T;
  await ctx.dispose();
  await lmodel.dispose();
  return { vectors, extra, disposeLlama: () => llama.dispose() };
}
