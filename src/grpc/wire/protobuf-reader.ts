/**
 * A minimal protobuf wire-format reader for the hand-written verdict.v1 Check/CheckBatch codec.
 *
 * It follows protobufjs where protobufjs is lenient (unknown fields of every wire type are
 * skipped, groups included; strings are decoded like protobufjs's BufferReader, so invalid UTF-8
 * becomes U+FFFD) and the protobuf specification where protobufjs is not (a length running past
 * its message is an error, never a silently shortened string; a known field arriving with the
 * wrong wire type is skipped as unknown instead of being misread).
 */

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

/** Strings up to this many bytes are decoded in JS when they are ASCII (see string()). */
const SHORT_STRING = 12;

/** protoc's and protobufjs's default recursion limit, applied to nested groups. */
const MAX_GROUP_DEPTH = 100;

/** Bytes that are not a well-formed protobuf message (truncated, bad wire type, overlong varint). */
export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
}

/** Node's Buffer has utf8Slice (what Buffer#toString('utf8') ends in) without the argument parsing. */
interface Utf8Slicing {
  utf8Slice(start: number, end: number): string;
}
const HAS_UTF8_SLICE = typeof (Buffer.prototype as unknown as Partial<Utf8Slicing>).utf8Slice === 'function';

/** A Buffer over the same memory (no copy): grpc-js hands us Buffers, tests may hand Uint8Arrays. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Reads one message. `end` is the end of the message being read: nested messages narrow it with
 * enter()/leave() so no read can run past the message that contains it.
 */
export class ProtobufReader {
  readonly buf: Buffer;
  pos: number;
  end: number;

  constructor(bytes: Uint8Array) {
    this.buf = asBuffer(bytes);
    this.pos = 0;
    this.end = this.buf.length;
  }

  private truncated(what: string): WireFormatError {
    return new WireFormatError(`truncated ${what} at offset ${this.pos}`);
  }

  /**
   * A varint as a number: exact up to 2^53, approximate (but still large) beyond. Callers only need
   * lengths and tags (checked against limits), booleans (zero or not) and ignored enums.
   */
  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    if (pos >= this.end) throw this.truncated('varint');
    let byte = buf[pos++]!;
    if (byte < 0x80) {
      this.pos = pos;
      return byte;
    }
    let value = byte & 0x7f;
    let scale = 0x80;
    for (let i = 1; i < 10; i++) {
      if (pos >= this.end) throw this.truncated('varint');
      byte = buf[pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        this.pos = pos;
        return value;
      }
      scale *= 0x80;
    }
    throw new WireFormatError(`varint longer than 10 bytes at offset ${this.pos}`);
  }

  /** A field tag: (field number << 3) | wire type. */
  tag(): number {
    const at = this.pos;
    const tag = this.varint();
    if (tag > 0xffffffff) throw new WireFormatError(`invalid tag at offset ${at}`);
    return tag;
  }

  /** A length prefix, checked against what is left of the current message. */
  length(): number {
    const at = this.pos;
    const n = this.varint();
    if (n > this.end - this.pos) throw new WireFormatError(`length ${n} at offset ${at} runs past the end of the message (${this.end - this.pos} bytes left)`);
    return n;
  }

  string(): string {
    const n = this.length();
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    if (n <= SHORT_STRING) {
      // Most strings here are short ASCII (keys, ids, names): building them in JS is cheaper than
      // the native call (concatenations this short stay flat strings in V8).
      const buf = this.buf;
      let s = '';
      let i = start;
      for (; i < end; i++) {
        const c = buf[i]!;
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === end) return s;
    }
    return HAS_UTF8_SLICE ? (this.buf as unknown as Utf8Slicing).utf8Slice(start, end) : this.buf.toString('utf8', start, end);
  }

  /** A length-delimited field as a view of the same memory (no copy). */
  bytes(): Buffer {
    const n = this.length();
    const start = this.pos;
    this.pos = start + n;
    return this.buf.subarray(start, start + n);
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  double(): number {
    if (this.end - this.pos < 8) throw this.truncated('double');
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  /** Reads a length prefix and narrows `end` to that embedded message; returns the outer end for leave(). */
  enter(): number {
    const n = this.length();
    const outer = this.end;
    this.end = this.pos + n;
    return outer;
  }

  leave(outerEnd: number): void {
    this.pos = this.end;
    this.end = outerEnd;
  }

  /** Skips the value of a field that is unknown (or known but sent with another wire type). */
  skip(tag: number, depth = 0): void {
    switch (tag & 7) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.skipBytes(8);
        return;
      case WIRE_LENGTH_DELIMITED:
        this.skipBytes(this.length());
        return;
      case WIRE_START_GROUP: {
        if (depth >= MAX_GROUP_DEPTH) throw new WireFormatError(`groups nested deeper than ${MAX_GROUP_DEPTH} at offset ${this.pos}`);
        const field = tag >>> 3;
        for (;;) {
          const inner = this.tag();
          if ((inner & 7) === WIRE_END_GROUP) {
            if (inner >>> 3 !== field) throw new WireFormatError(`end of group ${inner >>> 3} inside group ${field} at offset ${this.pos}`);
            return;
          }
          this.skip(inner, depth + 1);
        }
      }
      case WIRE_FIXED32:
        this.skipBytes(4);
        return;
      default:
        // 4 (an end-group without its start), 6 and 7.
        throw new WireFormatError(`invalid wire type ${tag & 7} at offset ${this.pos}`);
    }
  }

  private skipBytes(n: number): void {
    if (n > this.end - this.pos) throw this.truncated('field');
    this.pos += n;
  }
}
