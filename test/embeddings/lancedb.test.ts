/**
 * The LanceDB adapter answers the vector index's calls with the same top-k: the same
 * vectors in both, exact (flat) search in LanceDB, every metric, after removals and after
 * reopening the table from disk.
 */
import { describe, expect, it } from "vitest";
import { openLanceVectorStore } from "../../lib/embeddings/lancedb.js";
import { createVectorIndex, type VectorMetric } from "../../lib/embeddings/vector-index.js";
import { Gaussian } from "../helpers/random.js";
import { tempDir } from "../helpers/paths.js";

const N = 5000;
const D = 64;
const K = 10;

describe("LanceDB adapter", () => {
  const g = new Gaussian(77);
  const data = g.array(N * D);
  const ids = Array.from({ length: N }, (_, i) => (i % 2 ? `passage-${i}` : i));
  const queries = Array.from({ length: 3 }, () => g.array(D));
  const dir = tempDir("lancedb");

  for (const metric of ["cosine", "dot", "l2"] as const satisfies readonly VectorMetric[]) {
    it(`${metric}: the same top-${K} as the in-process index, after removals and a reopen`, async () => {
      const index = createVectorIndex({ dimensions: D, metric });
      const lance = await openLanceVectorStore({ uri: dir, table: metric, dimensions: D, metric });
      index.add(ids, data);
      await lance.add(ids, data);
      expect(await lance.size()).toBe(N);
      const compare = async (store: typeof lance) => {
        for (const q of queries) {
          const ours = index.search(q, K);
          const theirs = await store.search(q, K);
          expect(theirs.map((h) => h.id)).toEqual(ours.map((h) => h.id));
          for (let i = 0; i < K; i++) expect(theirs[i].score).toBeCloseTo(ours[i].score, 3);
        }
      };
      await compare(lance);
      const gone = index.search(queries[0], 3).map((h) => h.id);
      expect(await lance.remove([...gone, "absent"])).toBe(3);
      expect(index.remove([...gone, "absent"])).toBe(3);
      await compare(lance);
      lance.close();
      const reopened = await openLanceVectorStore({ uri: dir, table: metric, dimensions: D, metric });
      expect(await reopened.size()).toBe(N - 3);
      await compare(reopened);
      reopened.close();
    }, 60_000);
  }

  it("refuses a table of another width and bad vectors with coded errors", async () => {
    await expect(openLanceVectorStore({ uri: dir, table: "cosine", dimensions: D + 1 })).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    const s = await openLanceVectorStore({ uri: dir, table: "small", dimensions: 2 });
    await expect(s.add(["a"], [[1, NaN]])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(s.search([1, 2, 3], 1)).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    s.close();
  });
});
