import { z } from 'zod';
import type { Bot } from '../bots/types.js';
import type { PlanStep, Project, Task } from '../db/repositories/types.js';

export const DECOMPOSE_COMMAND = 'decompose';
export const MAX_SUBTASKS = 10;

const Subtask = z.object({
  title: z.string().trim().min(1).max(200),
  prompt: z.string().trim().min(1).max(20_000).optional(),
  description: z.string().trim().min(1).max(20_000).optional(),
  command: z.string().trim().max(50).optional(),
});
const Plan = z.union([z.array(Subtask), z.object({ subtasks: z.array(Subtask) })]);

export type PlanParseResult = { ok: true; subtasks: PlanStep[] } | { ok: false; error: string };

/** JSON candidates in a model's answer: fenced blocks first, then the outermost braces/brackets. */
function candidates(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/```(?:json)?\s*\n([\s\S]*?)```/g)) if (m[1]) out.push(m[1]);
  for (const [open, close] of [
    ['{', '}'],
    ['[', ']'],
  ] as const) {
    const a = text.indexOf(open);
    const b = text.lastIndexOf(close);
    if (a !== -1 && b > a) out.push(text.slice(a, b + 1));
  }
  return out;
}

/** Reads the subtask list a planning task returned. */
export function parsePlan(result: string): PlanParseResult {
  for (const candidate of candidates(result)) {
    let json: unknown;
    try {
      json = JSON.parse(candidate);
    } catch {
      continue;
    }
    const parsed = Plan.safeParse(json);
    if (!parsed.success) continue;
    const list = Array.isArray(parsed.data) ? parsed.data : parsed.data.subtasks;
    const subtasks = list
      .map(
        (s): PlanStep => ({
          title: s.title,
          prompt: s.prompt ?? s.description ?? s.title,
          ...(s.command ? { command: s.command } : {}),
        }),
      )
      .slice(0, MAX_SUBTASKS);
    if (subtasks.length === 0) return { ok: false, error: 'the plan has no subtasks' };
    return { ok: true, subtasks };
  }
  return { ok: false, error: 'no JSON subtask list found in the planning result' };
}

const LIST_ITEM = /^\s*(?:\d+[.)]|[-*•])\s+(.+?)\s*$/;

/**
 * A person's edited plan, replied in the thread: one step per list line, "title — instructions".
 * A line that keeps a step's title and gives no instructions keeps that step's instructions and command.
 */
export function parseEditedPlan(text: string, previous: readonly PlanStep[]): PlanParseResult {
  const steps: PlanStep[] = [];
  for (const line of text.split('\n')) {
    const item = LIST_ITEM.exec(line)?.[1];
    if (!item) continue;
    const [rawTitle = '', ...rest] = item.split(/\s+(?:—|–|-{1,2})\s+/);
    const title = rawTitle
      .replace(/^~(.*)~$/, '$1')
      .trim()
      .slice(0, 200);
    if (!title) continue;
    const prompt = rest.join(' — ').trim();
    const same = previous.find((p) => p.title.toLowerCase() === title.toLowerCase());
    steps.push({
      title,
      prompt: prompt || same?.prompt || title,
      ...(same?.command ? { command: same.command } : {}),
    });
  }
  if (steps.length === 0)
    return { ok: false, error: 'no list of steps found (one per line: `1. title — what to do`)' };
  return { ok: true, subtasks: steps.slice(0, MAX_SUBTASKS) };
}

export function planningSystemPrompt(bot: Bot, originalCommand: string, project: Project): string {
  const commands = bot.commands.map((c) => `${c.name} (${c.description})`).join(', ');
  return [
    `You are the Planner for Bematic, preparing work for the ${bot.displayName} bot on the project "${project.name}" at ${project.localPath}.`,
    `The user asked the ${bot.displayName} bot to ${originalCommand}. Do not change any file: read the code and split the request into at most ${MAX_SUBTASKS} sequential subtasks, each small enough for one focused session and verifiable on its own.`,
    `Available commands for each subtask: ${commands}.`,
    'Answer with a short rationale followed by exactly one JSON code block of the form:',
    '```json',
    '{"subtasks":[{"title":"short title","command":"one of the commands","prompt":"complete, self-contained instructions"}]}',
    '```',
  ].join('\n');
}

export function subtaskPrompt(parent: Task, index: number, total: number, sub: PlanStep): string {
  return [
    `This is step ${index + 1} of ${total} of a larger request: "${parent.prompt.slice(0, 2000)}"`,
    'Earlier steps may already have changed the code; build on them.',
    '',
    `## ${sub.title}`,
    sub.prompt,
  ].join('\n');
}
