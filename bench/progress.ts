/** A one-line progress bar on stderr (redrawn in place on a TTY, one line per step otherwise). */
export class Progress {
  private done = 0;
  private readonly started = performance.now();
  constructor(private readonly total: number) {}

  step(label: string): void {
    this.done = Math.min(this.total, this.done + 1);
    this.draw(label);
  }

  note(label: string): void {
    this.draw(label);
  }

  private draw(label: string): void {
    const width = 28;
    const filled = Math.round((this.done / this.total) * width);
    const secs = ((performance.now() - this.started) / 1000).toFixed(0);
    const line = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${this.done}/${this.total} ${secs}s ${label}`;
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K${line.slice(0, process.stderr.columns - 1)}`);
    else process.stderr.write(line + "\n");
  }

  finish(): void {
    if (process.stderr.isTTY) process.stderr.write("\n");
  }
}
