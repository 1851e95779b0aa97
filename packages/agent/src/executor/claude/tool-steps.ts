import { isAbsolute, relative } from 'node:path';
import { z } from 'zod';

const Input = z
  .object({
    file_path: z.string().optional(),
    notebook_path: z.string().optional(),
    path: z.string().optional(),
    command: z.string().optional(),
    description: z.string().optional(),
    pattern: z.string().optional(),
    url: z.string().optional(),
    query: z.string().optional(),
  })
  .partial();

const MAX_DETAIL = 120;

function clip(s: string): string {
  const line = s.split('\n')[0]?.trim() ?? '';
  const oneLine = line.length < s.trim().length ? `${line} …` : line;
  return oneLine.length > MAX_DETAIL ? `${oneLine.slice(0, MAX_DETAIL - 1)}…` : oneLine;
}

/** A path as the user thinks of it: relative to the project when inside it. */
export function displayPath(path: string, cwd: string): string {
  if (!isAbsolute(path)) return path;
  const rel = relative(cwd, path);
  return rel.length > 0 && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** Turns a tool call into the human step shown in the thread, e.g. "Editing src/auth.ts". */
export function describeToolUse(tool: string, rawInput: unknown, cwd: string): string {
  const parsed = Input.safeParse(rawInput);
  const input = parsed.success ? parsed.data : {};
  const file = input.file_path ?? input.notebook_path;
  const where = file === undefined ? undefined : displayPath(file, cwd);
  const inPath = input.path === undefined ? '' : ` in ${displayPath(input.path, cwd)}`;
  switch (tool) {
    case 'Edit':
    case 'MultiEdit':
      return where ? `Editing ${where}` : 'Editing a file';
    case 'Write':
      return where ? `Writing ${where}` : 'Writing a file';
    case 'Read':
      return where ? `Reading ${where}` : 'Reading a file';
    case 'NotebookEdit':
      return where ? `Editing notebook ${where}` : 'Editing a notebook';
    case 'Bash':
      return input.command ? `Running ${clip(input.command)}` : 'Running a command';
    case 'Grep':
      return input.pattern ? `Searching for '${clip(input.pattern)}'${inPath}` : 'Searching';
    case 'Glob':
      return input.pattern ? `Finding files matching '${clip(input.pattern)}'${inPath}` : 'Finding files';
    case 'WebFetch':
      return input.url ? `Fetching ${clip(input.url)}` : 'Fetching a page';
    case 'WebSearch':
      return input.query ? `Searching the web for '${clip(input.query)}'` : 'Searching the web';
    case 'TodoWrite':
      return 'Updating the plan';
    case 'Task':
    case 'Agent':
      return input.description ? `Delegating: ${clip(input.description)}` : 'Delegating to a subagent';
    default:
      return `Using ${tool}`;
  }
}

/** The shell command of a Bash tool call, if that is what it is. */
export function bashCommand(tool: string, rawInput: unknown): string | undefined {
  if (tool !== 'Bash') return undefined;
  const parsed = Input.safeParse(rawInput);
  return parsed.success ? parsed.data.command : undefined;
}

/** The file a file-changing tool call targets, if it is one. */
export function changedFilePath(tool: string, rawInput: unknown): string | undefined {
  if (!FILE_CHANGING_TOOLS.has(tool)) return undefined;
  const parsed = Input.safeParse(rawInput);
  if (!parsed.success) return undefined;
  return parsed.data.file_path ?? parsed.data.notebook_path;
}

export const FILE_CHANGING_TOOLS: ReadonlySet<string> = new Set([
  'Edit',
  'MultiEdit',
  'Write',
  'NotebookEdit',
]);

const MAX_SUMMARY = 8000;
const EditInput = z.object({ file_path: z.string(), old_string: z.string(), new_string: z.string() });
const MultiEditInput = z.object({
  file_path: z.string(),
  edits: z.array(z.object({ old_string: z.string(), new_string: z.string() })),
});
const WriteInput = z.object({ file_path: z.string(), content: z.string() });

const lines = (text: string, mark: string) =>
  text === ''
    ? []
    : text
        .replace(/\n$/, '')
        .split('\n')
        .map((l) => `${mark}${l}`);

/**
 * What a tool call was given, for the task's transcript: edits and writes as
 * unified-diff hunks (so the page can show the change), a command as itself,
 * anything else as its JSON input. Clipped; the caller redacts.
 */
export function summarizeToolInput(tool: string, rawInput: unknown, cwd: string): string | undefined {
  let out: string[] | undefined;
  const edit = EditInput.safeParse(rawInput);
  const multi = MultiEditInput.safeParse(rawInput);
  const write = WriteInput.safeParse(rawInput);
  if ((tool === 'Edit' || tool === 'MultiEdit') && (edit.success || multi.success)) {
    const file = displayPath(edit.success ? edit.data.file_path : (multi.data?.file_path ?? ''), cwd);
    const edits = edit.success ? [edit.data] : (multi.data?.edits ?? []);
    out = [`--- a/${file}`, `+++ b/${file}`];
    for (const e of edits) out.push('@@', ...lines(e.old_string, '-'), ...lines(e.new_string, '+'));
  } else if (tool === 'Write' && write.success) {
    const file = displayPath(write.data.file_path, cwd);
    out = ['--- /dev/null', `+++ b/${file}`, '@@', ...lines(write.data.content, '+')];
  } else if (tool === 'Bash') {
    const command = bashCommand(tool, rawInput);
    out = command === undefined ? undefined : [command];
  } else if (rawInput !== undefined) {
    out = [JSON.stringify(rawInput, null, 2)];
  }
  if (!out) return undefined;
  const text = out.join('\n');
  return text.length > MAX_SUMMARY ? `${text.slice(0, MAX_SUMMARY - 1)}…` : text;
}

/** A tool_result's content as text (it is a string or a list of text blocks). */
export function toolResultText(content: unknown): string {
  if (typeof content === 'string') return clipText(content);
  if (!Array.isArray(content)) return '';
  const parts = content
    .map((b: unknown) =>
      typeof b === 'object' && b !== null && 'text' in b && typeof b.text === 'string' ? b.text : '',
    )
    .filter(Boolean);
  return clipText(parts.join('\n'));
}

function clipText(text: string): string {
  return text.length > MAX_SUMMARY ? `${text.slice(0, MAX_SUMMARY - 1)}…` : text;
}
