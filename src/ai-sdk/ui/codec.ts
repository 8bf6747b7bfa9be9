import type { UIMessageChunk } from 'ai';
import type { ErrorCode } from '../../errors/index.js';
import { eventJson } from '../../events/json.js';
import type { RunStreamCodec } from '../../gateway/run-stream/index.js';
import type { LogEntry } from '../../transport/types.js';
import { UiChunkMapper, type UiMappingOptions } from './chunk-mapper.js';

/**
 * The AI SDK UI message stream of one run (what `useChat` / `DefaultChatTransport` parse):
 * `data: <chunk JSON>\n\n` per chunk (see `UiChunkMapper`), `: keep-alive` comments, and
 * `data: [DONE]` at the end, as the AI SDK's own `JsonToSseTransformStream` writes it. A stream
 * the server ends early gets an `error` chunk with the reason (`REVOKED: …`) and `finish`.
 */
export class UiCodec implements RunStreamCodec {
  readonly trailer = 'data: [DONE]\n\n';
  readonly heartbeat = ': keep-alive\n\n';
  private readonly mapper: UiChunkMapper;

  constructor(options: UiMappingOptions) {
    this.mapper = new UiChunkMapper(options);
  }

  write(entry: LogEntry): { text: string; frames: number; faults?: unknown[] } {
    // An event that is not JSON is refused here, before the mapping moves (costs this event only).
    if (entry.json === undefined) eventJson(entry.event);
    const saved = this.mapper.save();
    try {
      const chunks = this.mapper.map(entry.event, String(entry.cursor));
      let text = '';
      for (const chunk of chunks) text += `data: ${JSON.stringify(chunk)}\n\n`;
      const faults = this.mapper.takeFaults();
      return faults.length > 0 ? { text, frames: chunks.length, faults } : { text, frames: chunks.length };
    } catch (error) {
      this.mapper.restore(saved);
      throw error;
    }
  }

  /**
   * A call waiting for approval ends the stream after its `tool-approval-request`: `finish`
   * (`tool-calls`), then `[DONE]`, so the AI SDK chat client is ready for `addToolApprovalResponse`
   * and resends (`sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses`).
   * Questions have no AI SDK part to answer with: the stream goes on (answer them over HTTP or WebSocket).
   */
  pause(entry: LogEntry): { text: string; frames: number } | undefined {
    const { event } = entry;
    if (event.type !== 'tool_executing' || event.data.pending?.kind !== 'approval') return undefined;
    const chunk: UIMessageChunk = { type: 'finish', finishReason: 'tool-calls' };
    return { text: `data: ${JSON.stringify(chunk)}\n\n`, frames: 1 };
  }

  /** The stream that carries the run on after the resend: `start` with the same message id (the run id), so the client continues that message. */
  continuation(runId: string): { text: string; frames: number } {
    const chunk: UIMessageChunk = { type: 'start', messageId: runId };
    return { text: `data: ${JSON.stringify(chunk)}\n\n`, frames: 1 };
  }

  resumed(): { text: string; frames: number } {
    const chunks = this.mapper.resumed();
    let text = '';
    for (const chunk of chunks) text += `data: ${JSON.stringify(chunk)}\n\n`;
    return { text, frames: chunks.length };
  }

  closing(code: ErrorCode, message: string): { text: string; frames: number } {
    const chunks: UIMessageChunk[] = [
      { type: 'error', errorText: `${code}: ${message}` },
      { type: 'finish', finishReason: 'error' },
    ];
    return { text: chunks.map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`).join(''), frames: chunks.length };
  }
}
