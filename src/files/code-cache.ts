import { createHash } from 'node:crypto';
import fs from 'node:fs';
import Module from 'node:module';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';

/**
 * A V8 code cache for the CommonJS modules a `verdict` process loads (grpc-js, protobufjs, pino...):
 * the second start of the same installation skips parsing and compiling their code again
 * (docs/performance.md, "Cold start"). Node 20 has no built-in one for this (module.enableCompileCache
 * is Node 22), and Verdict's own modules (ES modules) cannot be covered at all on Node 20.
 *
 * Why not the v8-compile-cache package: it writes its index and its data as two files, one after the
 * other, and trusts what it reads back; V8 release builds do not checksum cached code (a flipped byte
 * is accepted, checked on Node 20), so a torn write or a corrupt disk would run wrong code. Here one
 * file is written under a temporary name and renamed into place, every entry carries the SHA-256 of
 * the module's source and of its cached data, and anything that does not check out is compiled
 * normally. Where the cache cannot be read or written, loading is exactly as without it.
 *
 * Where: VERDICT_CODE_CACHE=DIR, else $XDG_CACHE_HOME/verdict/code-cache, else
 * ~/.cache/verdict/code-cache; a subdirectory per Node version and architecture. VERDICT_CODE_CACHE=off
 * turns it off. The directory must belong to the user running Verdict and not be writable by group or
 * others (cached code is run as is), else the cache is not used.
 */

const MAGIC = 'VERDICT-CODE-CACHE-1\n';
/** Past this, entries of modules this process did not load are dropped when writing. */
const MAX_BYTES = 64 * 1024 * 1024;

interface Entry {
  /** SHA-256 of the module's source as compiled. */
  readonly source: string;
  /** SHA-256 of `data`. */
  readonly sha256: string;
  readonly data: Buffer;
}

interface Loaded {
  readonly script: vm.Script;
  readonly source: string;
}

export interface CodeCacheStatus {
  readonly file: string;
  /** Modules compiled from a valid cache entry. */
  hits: number;
  /** Modules compiled from their source (no entry, a stale or corrupt one, or one V8 refused). */
  misses: number;
}

/** The directory to use, or undefined when the cache is off. */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const setting = env.VERDICT_CODE_CACHE?.trim();
  if (setting === 'off') return undefined;
  const base = setting ? path.resolve(setting) : path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'verdict', 'code-cache');
  return path.join(base, `node-${process.versions.node}-${process.arch}-v8-${process.versions.v8}`);
}

/** True when `dir` (and so what is in it) can only have been written by this user: cached code runs as is. */
function trusted(dir: string): boolean {
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || (st.mode & 0o022) !== 0) return false;
  return typeof process.getuid !== 'function' || st.uid === process.getuid();
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads the cache file; any problem gives an empty cache (entries are checked again when used). */
function readEntries(file: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  let buf: Buffer;
  try {
    if (!trusted(path.dirname(file))) return entries;
    buf = fs.readFileSync(file);
  } catch {
    return entries;
  }
  try {
    if (buf.toString('latin1', 0, MAGIC.length) !== MAGIC) return entries;
    const indexEnd = buf.indexOf(10, MAGIC.length);
    if (indexEnd < 0) return entries;
    const index = JSON.parse(buf.toString('utf8', MAGIC.length, indexEnd)) as [string, string, string, number, number][];
    let offset = indexEnd + 1;
    for (const [filename, source, hash, length] of index) {
      if (typeof filename !== 'string' || !Number.isSafeInteger(length) || length < 0 || offset + length > buf.length) return new Map();
      entries.set(filename, { source, sha256: hash, data: buf.subarray(offset, offset + length) });
      offset += length;
    }
  } catch {
    return new Map();
  }
  return entries;
}

/** Strips a `#!` line as Node's loader does (a wrapped module cannot start with one). */
function withoutShebang(content: string): string {
  if (content.charCodeAt(0) !== 35 || content.charCodeAt(1) !== 33) return content;
  const end = content.search(/[\r\n]/);
  return end < 0 ? '' : content.slice(end);
}

export class CodeCache {
  readonly status: CodeCacheStatus;
  private readonly entries: Map<string, Entry>;
  private loaded = new Map<string, Loaded>();
  private dirty = false;
  private previousCompile: ((content: string, filename: string, ...rest: unknown[]) => unknown) | undefined;

  constructor(readonly dir: string) {
    const file = path.join(dir, 'modules.bin');
    this.status = { file, hits: 0, misses: 0 };
    this.entries = readEntries(file);
  }

  /** Compiles CommonJS modules through the cache from now on. */
  install(): this {
    const proto = Module.prototype as unknown as { _compile(content: string, filename: string, ...rest: unknown[]): unknown };
    this.previousCompile = proto._compile;
    const previous = proto._compile;
    const compile = (content: string, filename: string) => this.compile(content, filename);
    proto._compile = function (this: InstanceType<typeof Module>, content: string, filename: string, ...rest: unknown[]) {
      // An ES module through require(), or a policy manifest to check: Node's own path.
      if (rest[0] === 'module' || process.execArgv.some((a) => a.startsWith('--experimental-policy'))) return previous.call(this, content, filename, ...rest);
      // A module with a dynamic import(): Node 20 loses a script's import() callback when the script
      // is compiled from cached data (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING at the import, e.g. in
      // the OTLP exporter), so such modules take Node's own path.
      if (content.includes('import(')) return previous.call(this, content, filename, ...rest);
      let wrapper: (...args: unknown[]) => unknown;
      try {
        wrapper = compile(content, filename) as (...args: unknown[]) => unknown;
      } catch {
        // A syntax error: Node's path reports it (or reads the file as an ES module) exactly as without the cache.
        return (previous as (...args: unknown[]) => unknown).call(this, content, filename, ...rest);
      }
      // Node's own wrapper arguments (lib/internal/modules/cjs/loader.js): exports, require, module, __filename, __dirname.
      const mod = this;
      const require = ((id: string) => mod.require(id)) as NodeJS.Require;
      const statics = Module as unknown as {
        _resolveFilename(request: string, parent: unknown, isMain: boolean, options?: unknown): string;
        _resolveLookupPaths(request: string, parent: unknown): string[] | null;
        _extensions: NodeJS.RequireExtensions;
        _cache: NodeJS.Dict<NodeJS.Module>;
      };
      const resolve = ((request: string, options?: unknown) => statics._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve;
      resolve.paths = (request: string) => statics._resolveLookupPaths(request, mod);
      require.resolve = resolve;
      require.main = process.mainModule;
      require.extensions = statics._extensions;
      require.cache = statics._cache;
      return wrapper.call(mod.exports, mod.exports, require, mod, filename, path.dirname(filename));
    };
    return this;
  }

  /** Back to Node's own compile (tests). */
  uninstall(): void {
    if (this.previousCompile) (Module.prototype as unknown as { _compile: unknown })._compile = this.previousCompile;
    this.previousCompile = undefined;
  }

  private compile(content: string, filename: string): unknown {
    const wrapped = Module.wrap(withoutShebang(content));
    const source = sha256(wrapped);
    const entry = this.entries.get(filename);
    const cachedData = entry && entry.source === source && sha256(entry.data) === entry.sha256 ? entry.data : undefined;
    const script = new vm.Script(wrapped, {
      filename,
      cachedData,
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
    } as vm.ScriptOptions);
    if (cachedData && !script.cachedDataRejected) this.status.hits++;
    else {
      this.status.misses++;
      this.dirty = true;
    }
    this.loaded.set(filename, { script, source });
    return script.runInThisContext({ displayErrors: true });
  }

  /**
   * Writes what this process compiled since the last save, if anything was not in the cache. Made
   * after the modules ran, so the cached data includes the functions they compiled lazily. Never
   * throws: a cache that cannot be written is simply not there next time.
   */
  save(): boolean {
    if (!this.dirty) {
      this.loaded.clear();
      return false;
    }
    const fresh = new Map<string, Entry>();
    try {
      for (const [filename, { script, source }] of this.loaded) {
        const data = script.createCachedData();
        fresh.set(filename, { source, sha256: sha256(data), data });
      }
    } catch {
      return false;
    }
    this.loaded = new Map();
    this.dirty = false;
    let bytes = 0;
    for (const e of fresh.values()) bytes += e.data.length;
    for (const [filename, e] of this.entries) {
      if (fresh.has(filename) || bytes + e.data.length > MAX_BYTES) continue;
      fresh.set(filename, e);
      bytes += e.data.length;
    }
    for (const [filename, e] of fresh) this.entries.set(filename, e);
    const index = [...fresh].map(([filename, e]) => [filename, e.source, e.sha256, e.data.length]);
    const tmp = `${this.status.file}.${process.pid}.tmp`;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      if (!trusted(this.dir)) return false;
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(MAGIC + JSON.stringify(index) + '\n'), ...[...fresh.values()].map((e) => e.data)]), { mode: 0o600 });
      fs.renameSync(tmp, this.status.file);
      return true;
    } catch {
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        // nothing to clean up
      }
      return false;
    }
  }
}

let active: CodeCache | undefined;

/**
 * Starts the cache for this process (bin/verdict.js, before anything else is loaded) unless
 * VERDICT_CODE_CACHE=off; written when the process exits, and by `saveCodeCache` once a server is up.
 */
export function installCodeCache(env: NodeJS.ProcessEnv = process.env): CodeCache | undefined {
  const dir = codeCacheDir(env);
  if (!dir || active) return active;
  try {
    active = new CodeCache(dir).install();
  } catch {
    return undefined;
  }
  process.once('exit', () => active?.save());
  return active;
}

/** Writes the cache now if modules were compiled that it lacks (after a server started serving). */
export function saveCodeCache(): void {
  active?.save();
}
