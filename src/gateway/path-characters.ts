/**
 * Characters that must not appear inside one decoded segment unless the matched route allows them
 * (routes file: allowInSegments): a "/" or "\\" would let "..%2F..%2Fadmin" pass as one id and
 * walk out of a prefix condition; NUL and control characters truncate or split ids downstream.
 */
export const SEGMENT_SLASH = 1;
export const SEGMENT_BACKSLASH = 2;
export const SEGMENT_CONTROL = 4;
export const SEGMENT_NUL = 8;
/** The names used by allowInSegments, by bit. */
export const SEGMENT_CHARACTERS: Readonly<Record<string, number>> = { slash: SEGMENT_SLASH, backslash: SEGMENT_BACKSLASH, control: SEGMENT_CONTROL, nul: SEGMENT_NUL };
const SEGMENT_CHARACTER_TEXT: readonly [number, string][] = [
  [SEGMENT_SLASH, '"/" (%2F)'],
  [SEGMENT_BACKSLASH, '"\\" (%5C)'],
  [SEGMENT_NUL, 'NUL (%00)'],
  [SEGMENT_CONTROL, 'a control character'],
];
// C0 controls, DEL and C1 controls (Unicode category Cc), "/" and "\\".
// eslint-disable-next-line no-control-regex
const UNSAFE_IN_SEGMENT = /[\x00-\x1f\x7f-\x9f/\\]/;

/** The SEGMENT_* bits of what a decoded segment holds (0 = nothing a route must allow). */
export function unsafeCharacters(segment: string): number {
  if (!UNSAFE_IN_SEGMENT.test(segment)) return 0;
  let bits = 0;
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x2f) bits |= SEGMENT_SLASH;
    else if (c === 0x5c) bits |= SEGMENT_BACKSLASH;
    else if (c === 0) bits |= SEGMENT_NUL;
    else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) bits |= SEGMENT_CONTROL;
  }
  return bits;
}

/** "a segment holding "/" (%2F) and NUL (%00)", for 400 answers. */
export function describeUnsafe(bits: number): string {
  return SEGMENT_CHARACTER_TEXT.filter(([bit]) => bits & bit).map(([, text]) => text).join(' and ');
}
