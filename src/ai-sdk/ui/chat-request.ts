import { convertToModelMessages, safeValidateUIMessages, type UIMessage } from 'ai';
import { isValidThreadId } from '../../ids/thread-id.js';
import type { ModelAgentInput } from '../model/model-agent.js';
import { HttpProblem } from '../../protocol/http.js';

/** What `useChat` (the AI SDK's `DefaultChatTransport`) POSTs. */
export interface ChatRequest {
  /** The chat id: the run's thread. */
  id: string;
  /** The conversation, ending with the user's new message. */
  messages: UIMessage[];
  /** `'submit-message'` or `'regenerate-message'`. */
  trigger: string | undefined;
  messageId: string | undefined;
  /** The whole body, including what `useChat` was given as `body`. */
  body: Record<string, unknown>;
}

/** Validates a `useChat` request body. Throws `HttpProblem` 400. */
export async function parseChatRequest(body: unknown): Promise<ChatRequest> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpProblem(400, 'INVALID_REQUEST', 'Expected a JSON object { id, messages }');
  }
  const record = body as Record<string, unknown>;
  const { id, messages, trigger, messageId } = record;
  if (typeof id !== 'string' || !isValidThreadId(id)) {
    throw new HttpProblem(400, 'INVALID_THREAD_ID', 'id must be a chat id of 1-128 letters, digits and _ - . :');
  }
  const validated = await safeValidateUIMessages({ messages });
  if (!validated.success) throw new HttpProblem(400, 'INVALID_MESSAGES', `Invalid messages: ${validated.error.message}`);
  return {
    id,
    messages: validated.data,
    trigger: typeof trigger === 'string' ? trigger : undefined,
    messageId: typeof messageId === 'string' ? messageId : undefined,
    body: record,
  };
}

/**
 * The default run input of a chat request: the conversation as AI SDK model messages (what
 * `ModelAgent` takes). Reasoning parts (our `agent_thinking`) are not sent back to the model, and
 * tool calls that never completed are left out.
 */
export async function modelInputFromChat(request: ChatRequest): Promise<ModelAgentInput> {
  const messages = request.messages.map((message) => ({ ...message, parts: message.parts.filter((part) => part.type !== 'reasoning') }));
  return { messages: await convertToModelMessages(messages, { ignoreIncompleteToolCalls: true }) };
}
