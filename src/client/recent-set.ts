/** A set that remembers only its `capacity` most recently added values (oldest forgotten first). */
export class RecentSet {
  private readonly values = new Set<string>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.values.size;
  }

  has(value: string): boolean {
    return this.values.has(value);
  }

  add(value: string): void {
    if (this.values.has(value)) return;
    this.values.add(value);
    if (this.values.size > this.capacity) {
      const oldest = this.values.values().next();
      if (!oldest.done) this.values.delete(oldest.value);
    }
  }

  delete(value: string): void {
    this.values.delete(value);
  }
}
