import { randomFillSync } from 'node:crypto';

const pool = Buffer.allocUnsafe(16 * 256);
let poolOffset = pool.length;
/** ASCII codes of the two hex digits of each byte value: [2b] high digit, [2b + 1] low digit. */
const HEX_CODES = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  const hex = b.toString(16).padStart(2, '0');
  HEX_CODES[2 * b] = hex.charCodeAt(0);
  HEX_CODES[2 * b + 1] = hex.charCodeAt(1);
}
const DASH = 0x2d;
/** The id being written: its first 14 characters (the time and two dashes) are kept while the millisecond is the same. */
const text = Buffer.alloc(36, DASH);
let textMs = -1;

function hexByte(at: number, b: number): void {
  text[at] = HEX_CODES[2 * b]!;
  text[at + 1] = HEX_CODES[2 * b + 1]!;
}

/**
 * A UUIDv7: time-ordered (48-bit Unix milliseconds) with 74 random bits, so decision ids sort by
 * time and are unique across instances. Random bytes come from a pooled CSPRNG buffer: one
 * randomFillSync per 256 ids keeps this off the hot path's profile. The text is written as ASCII
 * into one buffer and read out as one string: a batch item costs one string, not the dozen
 * intermediate ones that concatenating hex pairs made.
 */
export function newDecisionId(nowMs: number): string {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const o = poolOffset;
  poolOffset += 16;
  if (nowMs !== textMs) {
    textMs = nowMs;
    // xxxxxxxx-xxxx-: the 6 bytes of the millisecond, big-endian (dashes at 8 and 13 stay).
    let ms = nowMs;
    for (let i = 5; i >= 0; i--) {
      hexByte(i < 4 ? 2 * i : 2 * i + 1, ms % 256);
      ms = Math.floor(ms / 256);
    }
  }
  // 7xxx-: version 7 and 12 random bits; yxxx-: variant 10 and 14 random bits; then 48 random bits.
  hexByte(14, 0x70 | (pool[o + 6]! & 0x0f));
  hexByte(16, pool[o + 7]!);
  hexByte(19, 0x80 | (pool[o + 8]! & 0x3f));
  hexByte(21, pool[o + 9]!);
  for (let i = 10; i < 16; i++) hexByte(24 + 2 * (i - 10), pool[o + i]!);
  return text.toString('latin1', 0, 36);
}
