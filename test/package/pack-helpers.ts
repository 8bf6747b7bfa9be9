import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface CommandResult {
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * The environment for a child `npm`: ours, minus what an outer `npm test` exports for its own
 * project (`npm_config_local_prefix` would point a nested install back at this repo,
 * `npm_config_loglevel=silent` would hide the warnings we check for).
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    const lower = key.toLowerCase();
    if (lower.startsWith('npm_') && !lower.startsWith('npm_config_')) continue; // npm_lifecycle_*, npm_package_*
    if (['npm_config_local_prefix', 'npm_config_prefix', 'npm_config_loglevel', 'npm_config_global_prefix'].includes(lower)) continue;
    if (key === 'INIT_CWD') continue;
    env[key] = value;
  }
  env.npm_config_update_notifier = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_audit = 'false';
  return env;
}

/**
 * `nice`, where there is one: the packaging work (a full build, installs, typechecks) is CPU-heavy
 * and must not starve the timing-sensitive suites running beside it on a 2-core machine.
 */
const NICE = ['/usr/bin/nice', '/bin/nice'].find((path) => existsSync(path));

/** Runs a real command (at low priority); rejects with its output when it exits non-zero. */
export function run(command: string, args: readonly string[], cwd: string, timeoutMs = 180_000): Promise<CommandResult> {
  const started = performance.now();
  const [file, argv] = NICE ? [NICE, ['-n', '10', command, ...args]] : [command, [...args]];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { cwd, env: childEnv(), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const ms = Math.round(performance.now() - started);
      if (error) {
        reject(new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${error.message}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
      } else {
        resolve({ stdout, stderr, ms });
      }
    });
  });
}

/** What a clean clone (plus uncommitted work) has: tracked and untracked-but-not-ignored files. */
function sourceFiles(): string[] {
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: projectRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    // Deleted but not yet committed files are listed too; a clone of the work would not have them.
    // node_modules and dist are never the project's sources, even when a symlink makes git list one.
    return out
      .split('\0')
      .filter((file) => file && !/^(node_modules|dist)(\/|$)/.test(file) && existsSync(join(projectRoot, file)));
  } catch {
    // No git (a source tarball): everything but what is never committed.
    const skip = new Set(['node_modules', 'dist', '.git', 'coverage', 'test-results', 'docs/api']);
    return ts.sys
      .readDirectory(projectRoot, undefined, ['**/node_modules', ...skip])
      .map((file) => relative(projectRoot, file).split(sep).join('/'))
      .filter((file) => ![...skip].some((dir) => file === dir || file.startsWith(`${dir}/`)));
  }
}

/** Copies the project as a clean clone would have it (no dist/), with our node_modules linked in. */
export function cloneProject(into: string): void {
  for (const file of sourceFiles()) {
    const target = join(into, file);
    mkdirSync(dirname(target), { recursive: true });
    cpSync(join(projectRoot, file), target);
  }
  symlinkSync(join(projectRoot, 'node_modules'), join(into, 'node_modules'), 'dir');
}

function lockPackages(): Record<string, { version?: string }> {
  const lock = JSON.parse(readFileSync(join(projectRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  return lock.packages;
}

/** Every version of a package in this repo's lockfile, newest first. */
export function lockedVersions(name: string): string[] {
  const versions = Object.entries(lockPackages())
    .filter(([path]) => path === `node_modules/${name}` || path.endsWith(`/node_modules/${name}`))
    .map(([, entry]) => entry.version)
    .filter((version): version is string => typeof version === 'string');
  return [...new Set(versions)].sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
}

/**
 * The version this repo's lockfile installs at the top level (so a consumer install is served
 * from the npm cache that `npm ci` filled).
 */
export function lockedVersion(name: string): string {
  const version = lockPackages()[`node_modules/${name}`]?.version ?? lockedVersions(name)[0];
  if (!version) throw new Error(`${name} is not in package-lock.json`);
  return version;
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
}

export interface TypecheckResult {
  /** The formatted diagnostics; empty when clean. */
  errors: string;
  ms: number;
}

/** {@link typecheck} of each tsconfig, one after the other in a low-priority child process (see typecheck-cli.ts). */
export async function typecheckInChild(...tsconfigPaths: string[]): Promise<Record<string, TypecheckResult>> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(projectRoot, 'test/package/typecheck-cli.ts'), ...tsconfigPaths], projectRoot);
  return JSON.parse(stdout) as Record<string, TypecheckResult>;
}

/**
 * Typechecks a consumer project with its tsconfig, as `tsc -p` would, reporting the diagnostics
 * of the consumer's files and of agentwire's shipped declarations (checked as if `skipLibCheck`
 * were off for agentwire only: other packages' declarations are not ours to fix, and checking
 * them all costs 15 s). Emits when the tsconfig asks to. Returns the formatted diagnostics.
 */
export function typecheck(tsconfigPath: string): TypecheckResult {
  const started = performance.now();
  const host: ts.ParseConfigFileHost = {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  };
  const config = ts.getParsedCommandLineOfConfigFile(tsconfigPath, { skipLibCheck: false }, host);
  if (!config) throw new Error(`cannot read ${tsconfigPath}`);
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options, projectReferences: config.projectReferences });
  const consumerDir = dirname(tsconfigPath);
  const checked = program.getSourceFiles().filter((file) => {
    const path = relative(consumerDir, file.fileName).split(sep).join('/');
    return !path.startsWith('node_modules/') || path.startsWith('node_modules/agentwire/');
  });
  const diagnostics = [
    ...config.errors,
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...checked.flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]),
  ];
  if (diagnostics.length === 0 && !config.options.noEmit) {
    const emitted = program.emit();
    diagnostics.push(...emitted.diagnostics);
  }
  const errors = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => consumerDir,
    getNewLine: () => '\n',
  });
  return { errors, ms: Math.round(performance.now() - started) };
}
