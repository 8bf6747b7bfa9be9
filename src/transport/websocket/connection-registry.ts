import type { Connection } from './connection.js';

/** Open connections by user, oldest first, for the per-user and total limits. */
export class ConnectionRegistry {
  private readonly byUser = new Map<string, Connection[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get users(): number {
    return this.byUser.size;
  }

  /** The user's open connections, oldest first. */
  of(userId: string): readonly Connection[] {
    return this.byUser.get(userId) ?? [];
  }

  add(connection: Connection): void {
    const list = this.byUser.get(connection.userId);
    if (list) list.push(connection);
    else this.byUser.set(connection.userId, [connection]);
    this.count++;
  }

  remove(connection: Connection): void {
    const list = this.byUser.get(connection.userId);
    const index = list?.indexOf(connection) ?? -1;
    if (!list || index < 0) return;
    list.splice(index, 1);
    if (list.length === 0) this.byUser.delete(connection.userId);
    this.count--;
  }

  *all(): IterableIterator<Connection> {
    for (const list of this.byUser.values()) yield* list;
  }
}
