import { createRequire } from 'node:module';
import type { PackageDefinition } from '@grpc/proto-loader';

/** The parts of google.protobuf.FileDescriptorProto this module reads and writes. */
interface FileDescriptor {
  name?: string;
  package?: string;
  dependency: string[];
  messageType: MessageDescriptor[];
  enumType: { name?: string }[];
  service: { name?: string; method: { inputType?: string; outputType?: string }[] }[];
}
interface MessageDescriptor {
  name?: string;
  field: { typeName?: string }[];
  nestedType: MessageDescriptor[];
  enumType: { name?: string }[];
}
interface DescriptorType {
  decode(bytes: Uint8Array): unknown;
  encode(message: unknown): { finish(): Uint8Array };
}

// protobufjs's descriptor extension is CommonJS only.
const { FileDescriptorProto } = createRequire(import.meta.url)('protobufjs/ext/descriptor') as { FileDescriptorProto: DescriptorType };

/**
 * proto-loader writes one FileDescriptorProto per package, but leaves their `dependency` lists
 * empty. The reflection service hands those files out as they are, and a client that links what
 * it receives (grpcurl, Postman, grpcui) then fails on `google.protobuf.Struct`: "no such type".
 * This declares, for every file, the files whose types it uses, so reflection clients can resolve
 * every message without the .proto files.
 */
export function withDeclaredDependencies(pkg: PackageDefinition): PackageDefinition {
  const rewritten = new Map<Buffer, Buffer>();
  const files = new Map<string, { bytes: Buffer; file: FileDescriptor }>();
  for (const entry of Object.values(pkg)) {
    for (const bytes of fileDescriptorsOf(entry)) {
      const file = FileDescriptorProto.decode(bytes) as FileDescriptor;
      if (file.name && !files.has(file.name)) files.set(file.name, { bytes, file });
    }
  }
  const owner = new Map<string, string>();
  for (const { file } of files.values()) {
    const prefix = file.package ? `${file.package}.` : '';
    for (const m of file.messageType) indexMessage(m, prefix, file.name!, owner);
    for (const e of file.enumType) owner.set(`${prefix}${e.name}`, file.name!);
  }
  for (const { bytes, file } of files.values()) {
    const deps = new Set(file.dependency);
    const use = (typeName: string | undefined, scope: string) => {
      const from = typeName ? owner.get(resolve(typeName, scope, owner)) : undefined;
      if (from && from !== file.name) deps.add(from);
    };
    const pkgScope = file.package ?? '';
    for (const m of file.messageType) forEachField(m, pkgScope ? `${pkgScope}.${m.name}` : m.name!, use);
    for (const s of file.service) for (const method of s.method) {
      use(method.inputType, pkgScope);
      use(method.outputType, pkgScope);
    }
    if (deps.size === file.dependency.length) continue;
    file.dependency = [...deps].sort();
    rewritten.set(bytes, Buffer.from(FileDescriptorProto.encode(file).finish()));
  }
  const out: PackageDefinition = {};
  for (const [name, entry] of Object.entries(pkg)) {
    const protos = fileDescriptorsOf(entry);
    out[name] = protos.length === 0 ? entry : ({ ...entry, fileDescriptorProtos: protos.map((b) => rewritten.get(b) ?? b) } as typeof entry);
  }
  return out;
}

function fileDescriptorsOf(entry: unknown): Buffer[] {
  const protos = (entry as { fileDescriptorProtos?: unknown }).fileDescriptorProtos;
  return Array.isArray(protos) ? (protos as Buffer[]) : [];
}

function indexMessage(m: MessageDescriptor, prefix: string, fileName: string, owner: Map<string, string>): void {
  const full = `${prefix}${m.name}`;
  owner.set(full, fileName);
  for (const e of m.enumType) owner.set(`${full}.${e.name}`, fileName);
  for (const n of m.nestedType) indexMessage(n, `${full}.`, fileName, owner);
}

function forEachField(m: MessageDescriptor, scope: string, use: (typeName: string | undefined, scope: string) => void): void {
  for (const f of m.field) use(f.typeName, scope);
  for (const n of m.nestedType) forEachField(n, `${scope}.${n.name}`, use);
}

/**
 * protobuf name resolution: ".a.b.C" is absolute; "b.C" seen from scope "x.y.M" is tried as
 * x.y.M.b.C, x.y.b.C, x.b.C, b.C (protobufjs writes names relative to the scope, or fully
 * qualified without the leading dot).
 */
function resolve(typeName: string, scope: string, owner: ReadonlyMap<string, string>): string {
  if (typeName.startsWith('.')) return typeName.slice(1);
  for (let s = scope; s; s = s.includes('.') ? s.slice(0, s.lastIndexOf('.')) : '') {
    const candidate = `${s}.${typeName}`;
    if (owner.has(candidate)) return candidate;
  }
  return typeName;
}
