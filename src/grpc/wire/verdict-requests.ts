/**
 * verdict.v1 CheckRequest / CheckBatchRequest bytes → the Proto* shapes of translate.ts, as
 * proto-loader (defaults: false) would give them: camelCase, fields absent on the wire left
 * undefined, repeated fields as arrays, the last occurrence of a singular field wins. Each
 * google.protobuf.Struct is left as a view of its bytes; structToAttributes decodes it straight
 * into JSON. (A view is safe to keep: grpc-js gives every message its own freshly concatenated
 * buffer and never reuses it.)
 */
import type { ProtoAction, ProtoBatchItem, ProtoCheckBatchRequest, ProtoCheckRequest, ProtoResource, ProtoSubject } from '../translate.js';
import { ProtobufReader } from './protobuf-reader.js';

// Tags: (field number << 3) | wire type; every field here is a varint (0) or length-delimited (2).
const tag = (field: number, wireType: 0 | 2): number => (field << 3) | wireType;

const SUBJECT_TYPE = tag(1, 2);
const SUBJECT_ID = tag(2, 2);
const SUBJECT_ROLES = tag(3, 2);
const SUBJECT_ATTRIBUTES = tag(4, 2);

const ACTION_NAME = tag(1, 2);

const RESOURCE_TYPE = tag(1, 2);
const RESOURCE_ID = tag(2, 2);
const RESOURCE_ATTRIBUTES = tag(3, 2);

const CHECK_SUBJECT = tag(1, 2);
const CHECK_ACTION = tag(2, 2);
const CHECK_RESOURCE = tag(3, 2);
const CHECK_CONTEXT = tag(4, 2);
const CHECK_EXPLAIN = tag(5, 0);
const CHECK_REQUEST_ID = tag(6, 2);
const CHECK_TOKEN = tag(7, 2);

const ITEM_ACTION = tag(1, 2);
const ITEM_RESOURCE = tag(2, 2);

const BATCH_SUBJECT = tag(1, 2);
const BATCH_ITEMS = tag(2, 2);
const BATCH_CONTEXT = tag(3, 2);
const BATCH_EXPLAIN = tag(4, 0);
const BATCH_REQUEST_ID = tag(5, 2);
const BATCH_TOKEN = tag(6, 2);

export function decodeCheckRequest(bytes: Uint8Array): ProtoCheckRequest {
  const r = new ProtobufReader(bytes);
  const msg: ProtoCheckRequest = {};
  while (r.pos < r.end) {
    const t = r.tag();
    switch (t) {
      case CHECK_SUBJECT:
        msg.subject = readSubject(r);
        break;
      case CHECK_ACTION:
        msg.action = readAction(r);
        break;
      case CHECK_RESOURCE:
        msg.resource = readResource(r);
        break;
      case CHECK_CONTEXT:
        msg.context = r.bytes();
        break;
      case CHECK_EXPLAIN:
        msg.explain = r.bool();
        break;
      case CHECK_REQUEST_ID:
        msg.requestId = r.string();
        break;
      case CHECK_TOKEN:
        msg.token = r.string();
        break;
      default:
        r.skip(t);
    }
  }
  return msg;
}

export function decodeCheckBatchRequest(bytes: Uint8Array): ProtoCheckBatchRequest {
  const r = new ProtobufReader(bytes);
  const msg: ProtoCheckBatchRequest = {};
  while (r.pos < r.end) {
    const t = r.tag();
    switch (t) {
      case BATCH_SUBJECT:
        msg.subject = readSubject(r);
        break;
      case BATCH_ITEMS:
        (msg.items ??= []).push(readBatchItem(r));
        break;
      case BATCH_CONTEXT:
        msg.context = r.bytes();
        break;
      case BATCH_EXPLAIN:
        msg.explain = r.bool();
        break;
      case BATCH_REQUEST_ID:
        msg.requestId = r.string();
        break;
      case BATCH_TOKEN:
        msg.token = r.string();
        break;
      default:
        r.skip(t);
    }
  }
  return msg;
}

function readSubject(r: ProtobufReader): ProtoSubject {
  const outer = r.enter();
  const s: ProtoSubject = {};
  while (r.pos < r.end) {
    const t = r.tag();
    switch (t) {
      case SUBJECT_TYPE:
        s.type = r.string();
        break;
      case SUBJECT_ID:
        s.id = r.string();
        break;
      case SUBJECT_ROLES:
        (s.roles ??= []).push(r.string());
        break;
      case SUBJECT_ATTRIBUTES:
        s.attributes = r.bytes();
        break;
      default:
        r.skip(t);
    }
  }
  r.leave(outer);
  return s;
}

function readAction(r: ProtobufReader): ProtoAction {
  const outer = r.enter();
  const a: ProtoAction = {};
  while (r.pos < r.end) {
    const t = r.tag();
    if (t === ACTION_NAME) a.name = r.string();
    else r.skip(t);
  }
  r.leave(outer);
  return a;
}

function readResource(r: ProtobufReader): ProtoResource {
  const outer = r.enter();
  const res: ProtoResource = {};
  while (r.pos < r.end) {
    const t = r.tag();
    switch (t) {
      case RESOURCE_TYPE:
        res.type = r.string();
        break;
      case RESOURCE_ID:
        res.id = r.string();
        break;
      case RESOURCE_ATTRIBUTES:
        res.attributes = r.bytes();
        break;
      default:
        r.skip(t);
    }
  }
  r.leave(outer);
  return res;
}

function readBatchItem(r: ProtobufReader): ProtoBatchItem {
  const outer = r.enter();
  const item: ProtoBatchItem = {};
  while (r.pos < r.end) {
    const t = r.tag();
    if (t === ITEM_ACTION) item.action = readAction(r);
    else if (t === ITEM_RESOURCE) item.resource = readResource(r);
    else r.skip(t);
  }
  r.leave(outer);
  return item;
}
