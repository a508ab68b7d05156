// The command line of every operator tool (src/cli/, bench/): node:util parseArgs in strict mode plus -h/--help, and
// one way to end. --help prints the usage on stdout, exit 0; a wrong command line prints one line saying what is
// wrong, then the usage, on stderr, exit 2; any other failure prints one line on stderr, exit 1. Never a stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command<O extends Options = Options> {
  /** Starts every message: "token: …". */
  name: string;
  /** The whole usage text, without a final newline. */
  usage: string;
  /** The command's own options; -h/--help is added. */
  options: O;
  /** True when the command takes positional arguments (a file, for bench:profile). */
  positionals?: boolean;
}

/** A wrong command line: unknown option, missing or invalid value, missing required option. Exit 2 with the usage. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** What parseArgs returns for a command's options plus --help: `values` typed from the options, and `positionals`. */
export type CommandLine<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O & typeof HELP; strict: true; allowPositionals: boolean }>>;

/**
 * Parses `args` (default: the process's); prints the usage and exits 0 on --help; throws a UsageError otherwise.
 * A leading `--` (as in `yarn token -- --sub alice`) is skipped.
 */
export function parseCommandLine<const O extends Options>(command: Command<O>, argv: string[] = process.argv.slice(2)): CommandLine<O> {
  const args = argv[0] === '--' ? argv.slice(1) : argv;
  const config = { args, options: { ...command.options, ...HELP }, strict: true as const, allowPositionals: command.positionals ?? false };
  let parsed: CommandLine<O>;
  try {
    parsed = parseArgs(config);
  } catch (err) {
    throw new UsageError(parseErrorMessage(err));
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${command.usage}\n`);
    process.exit(0);
  }
  return parsed;
}

/** parseArgs' messages, reworded to one line each. */
function parseErrorMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const option = /^(?:Unknown option|Option) '(?:-\w, )?(-[^' ]+)/.exec(message)?.[1];
  if (option !== undefined) {
    if (/^Unknown option/.test(message)) return `unknown option ${option}`;
    if (/argument missing|argument is ambiguous/.test(message)) return `option ${option} needs a value (write ${option}=<value> for a value starting with "-")`;
    if (/does not take an argument/.test(message)) return `option ${option} takes no value`;
  }
  const positional = /^Unexpected argument '(.*)'/.exec(message)?.[1];
  if (positional !== undefined) return `unexpected argument "${positional}"`;
  return oneLine(message);
}

/** Runs a command's `main`, and ends the process on any failure with one line (exit 1), or one line and the usage (exit 2). */
export function run(command: Pick<Command, 'name' | 'usage'>, main: () => Promise<void>): void {
  const fail = (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${command.name}: ${err.message}\n${command.usage}\n`);
      process.exit(2);
    }
    process.stderr.write(`${command.name}: ${describeError(err)}\n`);
    process.exit(1);
  };
  // Errors emitted outside `main`'s promise chain (a child process that cannot start) end the same way.
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  main().catch(fail);
}

/** One line for any failure: a program that could not be started is named, other errors give their message. */
export function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { path?: string };
  if (e?.code === 'ENOENT' && typeof e.syscall === 'string' && e.syscall.startsWith('spawn')) {
    return `${e.path ?? 'a program'} was not found: is it installed? (bash scripts/setup.sh --test)`;
  }
  return oneLine(err instanceof Error ? err.message : String(err));
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ').trim();

/** `value` of `option` as a whole number in [min, max]. */
export function integerOption(option: string, value: string, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`${option} must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`} (got "${value}")`);
  return n;
}

/** `value` of `option` as a number greater than 0 (decimals allowed: seconds, rates). */
export function positiveOption(option: string, value: string): number {
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n > 0)) throw new UsageError(`${option} must be a number greater than 0 (got "${value}")`);
  return n;
}

/** `value` of `option` as a comma-separated list, each item one of `allowed` when given. */
export function listOption(option: string, value: string, allowed?: readonly string[]): string[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = allowed === undefined ? undefined : items.find((item) => !allowed.includes(item));
  if (bad !== undefined) throw new UsageError(`${option}: "${bad}" is not one of ${allowed!.join(', ')}`);
  return items;
}
