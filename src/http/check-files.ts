import type { VerdictConfig } from '../config/schema.js';
import { readSharedSecrets } from './pep-auth.js';

/** Checks the files the http section names (the bearer token file); returns every problem. */
export function checkHttpFiles(config: VerdictConfig): string[] {
  const file = config.http?.auth.bearerTokenFile;
  if (!file) return [];
  try {
    readSharedSecrets(file);
    return [];
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return [e.code ? `http.auth.bearerTokenFile: cannot read ${file} (${e.code})` : e.message];
  }
}
