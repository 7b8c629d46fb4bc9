import { headers, type NatsConnection } from 'nats';
import { HEADER_ALLOWANCE } from './stream.js';
import type { WalEntry } from './wal.js';

/**
 * Sends one spooled entry with a core NATS publish, its id as Nats-Msg-Id (JetStream drops re-sent
 * duplicates). Returns why NATS will never take it, or undefined when it was sent.
 *
 * NATS refuses a message larger than the server's max_payload (the client throws) or, silently for
 * a core publish, the stream's max_msg_size (`messageLimit`): checked first.
 */
export function publishEntry(nc: NatsConnection, entry: WalEntry, bytes: Uint8Array, subject: string, messageLimit: number | undefined): string | undefined {
  if (messageLimit !== undefined && bytes.length + entry.msgId.length + 32 > messageLimit + HEADER_ALLOWANCE) {
    return `message of ${bytes.length} bytes is larger than NATS accepts (${messageLimit + HEADER_ALLOWANCE} bytes: the server's max_payload or the stream's max_msg_size)`;
  }
  const h = headers();
  h.set('Nats-Msg-Id', entry.msgId);
  try {
    nc.publish(subject, bytes, { headers: h });
  } catch (err) {
    // Only a message NATS can never take throws here: retrying would stall the stream forever.
    return `${(err as { code?: string }).code ?? 'ERROR'}: ${(err as Error).message}`;
  }
  return undefined;
}
