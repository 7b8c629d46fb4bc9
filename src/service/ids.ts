import { randomFillSync } from 'node:crypto';

const pool = Buffer.allocUnsafe(16 * 256);
let poolOffset = pool.length;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A UUIDv7: time-ordered (48-bit Unix milliseconds) with 74 random bits, so decision ids sort by
 * time and are unique across instances. Random bytes come from a pooled CSPRNG buffer: one
 * randomFillSync per 256 ids keeps this off the hot path's profile.
 */
export function newDecisionId(nowMs: number): string {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const o = poolOffset;
  poolOffset += 16;
  let ms = nowMs;
  const t: string[] = new Array<string>(6);
  for (let i = 5; i >= 0; i--) {
    t[i] = HEX[ms % 256]!;
    ms = Math.floor(ms / 256);
  }
  const b = (i: number) => HEX[pool[o + i]!]!;
  return (
    `${t[0]}${t[1]}${t[2]}${t[3]}-${t[4]}${t[5]}-` +
    `${HEX[0x70 | (pool[o + 6]! & 0x0f)]}${b(7)}-` +
    `${HEX[0x80 | (pool[o + 8]! & 0x3f)]}${b(9)}-` +
    `${b(10)}${b(11)}${b(12)}${b(13)}${b(14)}${b(15)}`
  );
}
