/**
 * Fetches the Cerbos PDP binary for the benchmark from the npm registry (package
 * `@cerbos/cerbos-<os>-<arch>`, a pinned version) into a scratch cache, bench/.cerbos/ (ignored by
 * git). It is never a dependency of the project: nothing in package.json refers to it.
 *
 *   node dist/bench/cerbos/install.js [--version 0.55.0]     prints the binary's path
 *
 * BENCH_CERBOS_BIN=/path/to/cerbos skips the download and uses that binary instead;
 * BENCH_CERBOS_VERSION picks another version.
 */
import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ROOT } from '../util.js';

const run = promisify(execFile);

/** The version the published figures were measured with (`npm view @cerbos/cerbos-linux-x64 versions`). */
export const CERBOS_VERSION = '0.55.0';

/** Scratch cache for downloaded binaries (listed in .gitignore). */
export const CERBOS_CACHE = path.join(ROOT, 'bench/.cerbos');

function packageName(): string {
  const os = { linux: 'linux', darwin: 'darwin' }[process.platform as string];
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch as string];
  if (!os || !arch) throw new Error(`no Cerbos npm package for ${process.platform}/${process.arch}; set BENCH_CERBOS_BIN to a cerbos binary`);
  return `@cerbos/cerbos-${os}-${arch}`;
}

async function executable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `cerbos --version`'s first line, e.g. "0.55.0". */
export async function cerbosVersion(bin: string): Promise<string> {
  const { stdout } = await run(bin, ['--version'], { timeout: 30_000 });
  return stdout.split('\n')[0]!.trim();
}

/**
 * Path of a Cerbos binary of `version`, downloading it (`npm pack`, then untar) on first use.
 * The cache entry appears atomically (rename), so concurrent callers never see half a binary.
 */
export async function ensureCerbos(version = process.env.BENCH_CERBOS_VERSION || CERBOS_VERSION, log: (line: string) => void = () => {}): Promise<string> {
  const override = process.env.BENCH_CERBOS_BIN;
  if (override) {
    if (!(await executable(override))) throw new Error(`BENCH_CERBOS_BIN=${override} is not an executable file`);
    return override;
  }
  const pkg = packageName();
  const dir = path.join(CERBOS_CACHE, version);
  const bin = path.join(dir, 'cerbos');
  if (await executable(bin)) return bin;

  await mkdir(CERBOS_CACHE, { recursive: true });
  const tmp = await mkdtemp(path.join(CERBOS_CACHE, `.download-${version}-`));
  try {
    log(`cerbos: downloading ${pkg}@${version} (npm pack) into ${CERBOS_CACHE}`);
    await run('npm', ['pack', `${pkg}@${version}`, '--pack-destination', tmp, '--silent', '--no-audit', '--no-fund'], { cwd: tmp, timeout: 600_000, maxBuffer: 16 << 20 });
    const tarball = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack ${pkg}@${version} produced no tarball`);
    await run('tar', ['-xzf', tarball], { cwd: tmp, timeout: 120_000 });
    const unpacked = path.join(tmp, 'package');
    const candidates = (await readdir(unpacked)).filter((f) => f.startsWith('cerbos') && !f.includes('.'));
    if (candidates.length !== 1) throw new Error(`cannot find the cerbos binary in ${pkg}@${version} (files: ${(await readdir(unpacked)).join(', ')})`);
    const staged = path.join(unpacked, candidates[0]!);
    await chmod(staged, 0o755);
    const got = await cerbosVersion(staged);
    if (got !== version) throw new Error(`${pkg}@${version} contains cerbos ${got}`);
    await mkdir(path.join(tmp, 'final'));
    await rename(staged, path.join(tmp, 'final', 'cerbos'));
    try {
      await rename(path.join(tmp, 'final'), dir);
    } catch (err) {
      // Someone else finished first: theirs is as good as ours.
      if (!(await executable(bin))) throw err;
    }
    return bin;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--version');
  const bin = await ensureCerbos(i >= 0 ? args[i + 1] : undefined, (l) => process.stderr.write(`${l}\n`));
  process.stdout.write(`${bin}\n`);
}
