/** One line an application wrote, as `insitu app logs` shows it. */
export interface OutputLine {
  /** ISO time the agent read the line. */
  at: string;
  /** The instance that wrote it (`i0`, `i1`…). */
  instance: string;
  stream: 'stdout' | 'stderr';
  line: string;
}

/**
 * The last lines a deployment's instances wrote (bounded: `capacity` lines, each line
 * already cut to 2000 characters by the instance), and whoever follows them. It lives in
 * the agent's memory only: the application's output stays at the provider unless the
 * platform asks for it through the tunnel.
 */
export class OutputLog {
  private readonly lines: OutputLine[] = [];
  private readonly followers = new Set<(line: OutputLine) => void>();

  constructor(readonly capacity = 1000) {}

  push(line: OutputLine): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.shift();
    for (const follower of this.followers) follower(line);
  }

  /** The last `count` lines, oldest first. */
  tail(count: number): OutputLine[] {
    return count <= 0 ? [] : this.lines.slice(-count);
  }

  /** Call `onLine` for every line from now on; returns the function that stops it. */
  follow(onLine: (line: OutputLine) => void): () => void {
    this.followers.add(onLine);
    return () => this.followers.delete(onLine);
  }
}
