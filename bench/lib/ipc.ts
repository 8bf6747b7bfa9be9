/**
 * The child side of the bench's IPC: `{ id, cmd, args }` requests from the parent are answered
 * with `{ id, ok, result | error }`; `notify()` sends unsolicited `{ event, ... }` messages.
 * A child exits when its parent goes away (IPC disconnect), so none outlives the bench.
 */
export type Handlers = Record<string, (args: Record<string, unknown>) => unknown>;

interface Request {
  id: number;
  cmd: string;
  args?: Record<string, unknown>;
}

export function serve(handlers: Handlers): void {
  if (!process.send) throw new Error('this script is a bench child: start it with an IPC channel');
  process.on('message', (message: Request) => {
    const handler = handlers[message.cmd];
    if (!handler) {
      reply({ id: message.id, ok: false, error: `unknown command ${message.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.args ?? {}))
      .then(
        (result) => reply({ id: message.id, ok: true, result }),
        (error: unknown) => reply({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

export function notify(event: string, body: Record<string, unknown> = {}): void {
  reply({ event, ...body });
}

function reply(message: Record<string, unknown>): void {
  if (process.connected) process.send!(message);
}
