import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';

/** The repository's proto/ directory (dist/src/grpc → ../../../proto). */
export const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../proto');
export const VERDICT_PROTO = 'verdict/v1/authorization.proto';

/**
 * proto-loader options shared by the server, the CLI client and the tests. `defaults: false`
 * keeps decoding cheap (absent fields stay undefined); enums as strings keep the JSON readable.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export function loadProtoDefinition(files: readonly string[] = [VERDICT_PROTO]): protoLoader.PackageDefinition {
  return protoLoader.loadSync([...files], LOADER_OPTIONS);
}
