/**
 * Min-heap of candidate merges for the BPE and SentencePiece mergers. Each entry is a pair of
 * adjacent symbols (left, right) with a priority; lower priority pops first and ties go to the
 * leftmost pair, which is the order both algorithms are specified with. Entries are never
 * updated in place: callers push new candidates and discard stale ones when they pop, so a
 * word of n symbols costs O(n log n).
 *
 * Parallel typed arrays (not objects) keep the queue allocation-free across words.
 */
export class MergeQueue {
  private priority = new Float64Array(64);
  private left = new Int32Array(64);
  private right = new Int32Array(64);
  private aux = new Int32Array(64);
  private n = 0;

  /** Fields of the entry last returned by pop(). */
  topLeft = 0;
  topRight = 0;
  topAux = 0;
  topPriority = 0;

  get size(): number {
    return this.n;
  }

  clear(): void {
    this.n = 0;
  }

  /** Makes room for `n` entries at once (a long word's first pairs) rather than by doublings. */
  reserve(n: number): void {
    if (this.priority.length < n) this.grow(n);
  }

  push(priority: number, left: number, right: number, aux: number): void {
    if (this.n === this.priority.length) this.grow();
    let i = this.n++;
    // Sift up.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(priority, left, this.priority[parent], this.left[parent])) break;
      this.move(parent, i);
      i = parent;
    }
    this.priority[i] = priority;
    this.left[i] = left;
    this.right[i] = right;
    this.aux[i] = aux;
  }

  /** Removes the best entry into topLeft/topRight/topAux/topPriority; false when empty. */
  pop(): boolean {
    if (this.n === 0) return false;
    this.topPriority = this.priority[0];
    this.topLeft = this.left[0];
    this.topRight = this.right[0];
    this.topAux = this.aux[0];
    const last = --this.n;
    if (last === 0) return true;
    const p = this.priority[last];
    const l = this.left[last];
    const r = this.right[last];
    const a = this.aux[last];
    // Sift the last entry down from the root.
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= last) break;
      const other = child + 1;
      if (other < last && this.before(this.priority[other], this.left[other], this.priority[child], this.left[child])) child = other;
      if (!this.before(this.priority[child], this.left[child], p, l)) break;
      this.move(child, i);
      i = child;
    }
    this.priority[i] = p;
    this.left[i] = l;
    this.right[i] = r;
    this.aux[i] = a;
    return true;
  }

  private before(p1: number, l1: number, p2: number, l2: number): boolean {
    return p1 < p2 || (p1 === p2 && l1 < l2);
  }

  private move(from: number, to: number): void {
    this.priority[to] = this.priority[from];
    this.left[to] = this.left[from];
    this.right[to] = this.right[from];
    this.aux[to] = this.aux[from];
  }

  private grow(min = 0): void {
    const cap = Math.max(min, this.priority.length * 2);
    const priority = new Float64Array(cap);
    priority.set(this.priority);
    this.priority = priority;
    const left = new Int32Array(cap);
    left.set(this.left);
    this.left = left;
    const right = new Int32Array(cap);
    right.set(this.right);
    this.right = right;
    const aux = new Int32Array(cap);
    aux.set(this.aux);
    this.aux = aux;
  }
}
