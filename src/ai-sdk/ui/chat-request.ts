import { convertToModelMessages, isToolUIPart, safeValidateUIMessages, type UIMessage } from 'ai';
import { isValidThreadId } from '../../ids/thread-id.js';
import type { ModelAgentInput } from '../model/model-agent.js';
import { ValidationError } from '../../errors/index.js';

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

export interface ParseChatOptions {
  /**
   * Most messages and parts (counted together) in the conversation, refused before the AI SDK
   * validates them (`INVALID_MESSAGES`): validating a tool part costs ~0.1-0.3 ms of the event
   * loop, so a 1 MiB body of them held the loop for seconds. Default 2,000.
   */
  maxMessageParts?: number;
}

export const DEFAULT_MAX_MESSAGE_PARTS = 2_000;

/** Validates a `useChat` request body. Throws `ValidationError` (400) naming the field. */
export async function parseChatRequest(body: unknown, options: ParseChatOptions = {}): Promise<ChatRequest> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ValidationError('Expected a JSON object { id, messages }', { code: 'INVALID_REQUEST', field: 'body' });
  }
  const record = body as Record<string, unknown>;
  const { id, messages, trigger, messageId } = record;
  if (typeof id !== 'string' || !isValidThreadId(id)) {
    throw new ValidationError('id must be a chat id of 1-128 letters, digits and _ - . :', { code: 'INVALID_THREAD_ID', field: 'id' });
  }
  const maxParts = options.maxMessageParts ?? DEFAULT_MAX_MESSAGE_PARTS;
  if (itemCount(messages, maxParts) > maxParts) {
    throw new ValidationError(`Invalid messages: more than ${maxParts} messages and parts (maxMessageParts)`, {
      code: 'INVALID_MESSAGES',
      field: 'messages',
      details: { reason: 'message_parts', limit: maxParts },
    });
  }
  let validated: Awaited<ReturnType<typeof safeValidateUIMessages>>;
  try {
    validated = await safeValidateUIMessages({ messages });
  } catch (error) {
    throw new ValidationError('Invalid messages: they cannot be validated', { code: 'INVALID_MESSAGES', field: 'messages', cause: error });
  }
  if (!validated.success) {
    throw new ValidationError(`Invalid messages: ${validated.error.message.slice(0, 500)}`, { code: 'INVALID_MESSAGES', field: 'messages' });
  }
  return {
    id,
    messages: validated.data,
    trigger: typeof trigger === 'string' ? trigger : undefined,
    messageId: typeof messageId === 'string' ? messageId : undefined,
    body: record,
  };
}

/**
 * Messages and parts of `messages`, counted up to just past `limit` (each costs the validator
 * about as much: 350,000 empty messages held the loop for 9 s); 0 for a non-array (the validator
 * refuses it). A message that is not an object with a `parts` array is refused here, before the
 * validator walks the rest.
 */
function itemCount(messages: unknown, limit: number): number {
  if (!Array.isArray(messages)) return 0;
  let count = 0;
  for (let i = 0; i < messages.length; i++) {
    const message: unknown = messages[i];
    const parts: unknown = typeof message === 'object' && message !== null ? (message as { parts?: unknown }).parts : undefined;
    if (!Array.isArray(parts)) {
      throw new ValidationError(`Invalid messages: messages[${i}] must be an object with a parts array`, { code: 'INVALID_MESSAGES', field: 'messages' });
    }
    count += 1 + parts.length;
    if (count > limit) return count;
  }
  return count;
}

/**
 * The default run input of a chat request: the conversation as AI SDK model messages (what
 * `ModelAgent` takes). Reasoning parts (our `agent_thinking`) are not sent back to the model, tool
 * calls that never completed are left out, and so are `system` messages: the browser must not
 * speak with the server's authority (the system prompt is `ModelAgent`'s `system` option).
 */
export async function modelInputFromChat(request: ChatRequest): Promise<ModelAgentInput> {
  const messages = request.messages
    .filter((message) => message.role !== 'system')
    .map((message) => ({ ...message, parts: message.parts.filter((part) => part.type !== 'reasoning') }));
  try {
    return { messages: await convertToModelMessages(messages, { ignoreIncompleteToolCalls: true }) };
  } catch (error) {
    // The client's own messages that the AI SDK cannot convert: a 400 naming why.
    const detail = error instanceof Error ? error.message.slice(0, 300) : 'they cannot be converted';
    throw new ValidationError(`The messages cannot be turned into model messages: ${detail}`, { code: 'INVALID_INPUT', field: 'messages', cause: error });
  }
}

/** An approval response of the AI SDK chat client (`addToolApprovalResponse`), as the resent messages carry it. */
export interface ChatApprovalResponse {
  /** `approval.id`: the request id of the waiting call (the `tool-approval-request` chunk's `approvalId`). */
  requestId: string;
  toolCallId: string;
  approved: boolean;
  reason: string | undefined;
}

/**
 * The approval responses of a resend: the tool parts in state `approval-responded` of the last
 * message, when it is the assistant's (what `useChat` sends after `addToolApprovalResponse`, with
 * `sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithApprovalResponses` or a bare
 * `sendMessage()`). Empty for any other request (a new user message starts a run).
 */
export function approvalResponsesOf(request: ChatRequest): ChatApprovalResponse[] {
  const last = request.messages.at(-1);
  if (last?.role !== 'assistant') return [];
  const responses: ChatApprovalResponse[] = [];
  for (const part of last.parts) {
    if (!isToolUIPart(part) || part.state !== 'approval-responded') continue;
    const approval = part.approval as { id: string; approved: boolean; reason?: string };
    responses.push({ requestId: approval.id, toolCallId: part.toolCallId, approved: approval.approved, reason: approval.reason });
  }
  return responses;
}
