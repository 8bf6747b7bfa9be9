interface Gate {
  go: () => void;
  went: Promise<void>;
  started: () => void;
  hasStarted: Promise<void>;
}

function createGate(): Gate {
  let go!: () => void;
  let started!: () => void;
  const went = new Promise<void>((resolve) => (go = resolve));
  const hasStarted = new Promise<void>((resolve) => (started = resolve));
  return { go, went, started, hasStarted };
}

/**
 * Starts a step's tool calls in the order the model made them, after the thinking that preceded them.
 *
 * The AI SDK executes a step's tools concurrently once the model finished the step, while our
 * reader of the model stream may still lag behind. Every tool call the reader sees takes a turn:
 * a valid call's turn opens its gate (the adapted tool's `execute` waits for it and reports back
 * once `callTool` emitted `tool_executing`), an invalid call's turn runs `start` (the reader's own
 * failed `callTool`). The reader never waits on a turn: it only appends to the chain, so the model
 * stream keeps flowing.
 */
export class ToolSequencer {
  private chain: Promise<void> = Promise.resolve();
  private readonly gates = new Map<string, Gate>();

  /** Reader: a valid call the AI SDK will execute; its turn waits until its `execute` started the call. */
  expect(modelCallId: string): void {
    const gate = this.gate(modelCallId);
    this.chain = this.chain.then(() => {
      gate.go();
      return gate.hasStarted;
    });
  }

  /** Reader: a call only we start (invalid arguments, unknown tool), in its turn. */
  run(start: () => void): void {
    this.chain = this.chain.then(start);
  }

  /** The adapted tool's `execute`: waits for its turn; call the returned function right after `callTool` was called. */
  async turn(modelCallId: string): Promise<() => void> {
    const gate = this.gate(modelCallId);
    await gate.went;
    return () => {
      gate.started();
      this.gates.delete(modelCallId);
    };
  }

  /** Reader, at a step's end or the stream's end: calls that were never executed no longer hold the line. */
  releaseAll(): void {
    for (const gate of this.gates.values()) {
      gate.go();
      gate.started();
    }
    this.gates.clear();
  }

  private gate(modelCallId: string): Gate {
    let gate = this.gates.get(modelCallId);
    if (!gate) {
      gate = createGate();
      this.gates.set(modelCallId, gate);
    }
    return gate;
  }
}
