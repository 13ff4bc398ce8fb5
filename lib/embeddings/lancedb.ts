/**
 * The vector index's calls over LanceDB (`@lancedb/lancedb`, an embedded columnar vector
 * store on local disk or object storage), for collections that outgrow one process's
 * memory. LanceDB is not a dependency of Tessera: install `@lancedb/lancedb` and
 * `apache-arrow` beside it to use this adapter.
 *
 * Searches run flat (bypassVectorIndex): exact, like VectorIndex, so both return the same
 * top-k; build an ANN index on the table yourself (table.createIndex) and search it through
 * `table` when exact search gets too slow. Scores are converted to VectorIndex's: cosine
 * similarity (LanceDB's distance is 1 - cos), dot product (its distance is 1 - dot) and
 * Euclidean distance (its l2 distance is squared). Ids are kept as their JSON text in a
 * string column `id`, so numbers and strings both come back as given.
 */
import { describe } from "../arguments.js";
import { TesseraError } from "../errors.js";
import {
  checkDimensions,
  checkId,
  checkK,
  checkMetric,
  checkVectorCount,
  vectorAt,
  type SearchHit,
  type VectorId,
  type VectorMetric,
  type VectorStore,
  type VectorsInput,
} from "./vector-index.js";

export interface LanceVectorStoreOptions {
  /** A directory (created if missing) or an object-store URI LanceDB accepts. */
  uri: string;
  /** Default "vectors". Opened when it exists (its vector width must equal dimensions), else created. */
  table?: string;
  dimensions: number;
  /** Default "cosine". */
  metric?: VectorMetric;
}

// The parts of LanceDB's API used here (the package is optional, so not imported statically).
/** The subset of a LanceDB query the adapter uses. */
export interface LanceQuery {
  distanceType(t: string): LanceQuery;
  bypassVectorIndex(): LanceQuery;
  limit(k: number): LanceQuery;
  toArray(): Promise<Array<Record<string, unknown>>>;
}
/** The subset of a LanceDB Table the adapter uses (the object is LanceDB's own Table). */
export interface LanceTable {
  schema(): Promise<{ fields: Array<{ name: string; type: { listSize?: number } }> }>;
  add(rows: unknown[]): Promise<unknown>;
  mergeInsert(on: string): { whenMatchedUpdateAll(): { whenNotMatchedInsertAll(): { execute(rows: unknown[]): Promise<unknown> } } };
  vectorSearch(v: number[]): LanceQuery;
  delete(predicate: string): Promise<unknown>;
  countRows(filter?: string): Promise<number>;
  close(): void;
}
interface LanceConnection {
  tableNames(): Promise<string[]>;
  openTable(name: string): Promise<LanceTable>;
  createEmptyTable(name: string, schema: unknown, options?: object): Promise<LanceTable>;
  close(): void;
}

async function importOptional<T>(name: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (e) {
    throw new TesseraError("ERR_UNSUPPORTED", `the LanceDB adapter needs the ${name} package; run \`npm install @lancedb/lancedb apache-arrow\``, { cause: e });
  }
}

export class LanceVectorStore implements VectorStore {
  /** @internal Use openLanceVectorStore. */
  constructor(
    private readonly db: LanceConnection,
    /** The LanceDB table, for what the adapter does not cover (ANN indexes, filters). */
    readonly table: LanceTable,
    readonly dimensions: number,
    readonly metric: VectorMetric,
  ) {}

  async size(): Promise<number> {
    return this.table.countRows();
  }

  /** Adds vectors; an id already present has its vector replaced. */
  async add(ids: readonly VectorId[], vectors: VectorsInput): Promise<void> {
    checkVectorCount(ids, vectors, this.dimensions, "add");
    const rows = ids.map((id, i) => ({ id: JSON.stringify(checkId(id, "add")), vector: Array.from(vectorAt(vectors, i, this.dimensions, "add")) }));
    if (new Set(rows.map((r) => r.id)).size !== rows.length) throw new TesseraError("ERR_INVALID_ARGUMENT", "add: the ids of one call must be distinct");
    if (rows.length === 0) return;
    await this.table.mergeInsert("id").whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rows);
  }

  /** The k nearest vectors by exact (flat) search, nearest first. */
  async search(vector: ArrayLike<number>, k: number): Promise<SearchHit[]> {
    checkK(k);
    const q = Array.from(vectorAt([vector], 0, this.dimensions, "search"));
    const rows = await this.table.vectorSearch(q).distanceType(this.metric).bypassVectorIndex().limit(k).toArray();
    return rows.map((r) => {
      const d = Number(r._distance);
      const score = this.metric === "l2" ? Math.sqrt(Math.max(0, d)) : 1 - d;
      return { id: JSON.parse(String(r.id)) as VectorId, score };
    });
  }

  /** Removes the ids present; returns how many were. */
  async remove(ids: readonly VectorId[]): Promise<number> {
    if (!Array.isArray(ids)) throw new TesseraError("ERR_INVALID_ARGUMENT", `remove: ids must be an array, got ${describe(ids)}`);
    if (ids.length === 0) return 0;
    const list = ids.map((id) => `'${JSON.stringify(checkId(id, "remove")).replaceAll("'", "''")}'`).join(", ");
    const predicate = `id IN (${list})`;
    const present = await this.table.countRows(predicate);
    if (present > 0) await this.table.delete(predicate);
    return present;
  }

  close(): void {
    this.table.close();
    this.db.close();
  }
}

/** Opens (or creates) a LanceDB table of { id, vector } rows as a VectorStore. */
export async function openLanceVectorStore(options: LanceVectorStoreOptions): Promise<LanceVectorStore> {
  if (options === null || typeof options !== "object" || typeof options.uri !== "string" || options.uri.length === 0)
    throw new TesseraError("ERR_INVALID_ARGUMENT", "openLanceVectorStore({ uri, dimensions, metric?, table? })");
  const dimensions = checkDimensions(options.dimensions);
  const metric = checkMetric(options.metric ?? "cosine");
  const name = options.table ?? "vectors";
  const lancedb = await importOptional<{ connect(uri: string): Promise<LanceConnection> }>("@lancedb/lancedb");
  const arrow = await importOptional<typeof import("apache-arrow")>("apache-arrow");
  const db = await lancedb.connect(options.uri);
  let table: LanceTable;
  if ((await db.tableNames()).includes(name)) {
    table = await db.openTable(name);
    const vector = (await table.schema()).fields.find((f) => f.name === "vector");
    if (vector?.type.listSize !== dimensions) {
      table.close();
      db.close();
      throw new TesseraError("ERR_INVALID_ARGUMENT", `table ${name} at ${options.uri} holds vectors of ${vector?.type.listSize ?? "no"} dimensions, not ${dimensions}`);
    }
  } else {
    const schema = new arrow.Schema([
      new arrow.Field("id", new arrow.Utf8(), false),
      new arrow.Field("vector", new arrow.FixedSizeList(dimensions, new arrow.Field("item", new arrow.Float32(), true)), false),
    ]);
    table = await db.createEmptyTable(name, schema);
  }
  return new LanceVectorStore(db, table, dimensions, metric);
}
