import type { Project } from '../db/repositories/types.js';
import { type Bot, type BotCommand, READ_ONLY_TOOLS } from './types.js';

function preamble(bot: string, command: BotCommand, project: Project): string {
  return [
    `You are ${bot}, working through Bematic on the project "${project.name}" at ${project.localPath}.`,
    `The user asked you to ${command.name}: ${command.description}.`,
    'Stay inside the project directory. Never print secrets, tokens or credentials.',
    'Finish with a short summary for a Slack thread: what you did, what changed, and anything left to do.',
  ].join('\n');
}

const cmd = (
  name: string,
  aliases: string[],
  description: string,
  writes: boolean,
  usage: string,
): BotCommand => ({ name, aliases, description, writes, usage });

export const CoderBot: Bot = {
  name: 'coder',
  displayName: 'Coder',
  description: 'Writes and changes code: fixes bugs, implements features, refactors, writes tests.',
  aliases: ['code', 'dev'],
  commands: [
    cmd('fix', ['bugfix', 'debug'], 'find and fix a bug', true, 'code fix <what is broken>'),
    cmd(
      'implement',
      ['build', 'add', 'feature'],
      'implement a feature or change',
      true,
      'code implement <feature>',
    ),
    cmd(
      'refactor',
      ['cleanup'],
      'restructure code without changing behaviour',
      true,
      'code refactor <target>',
    ),
    cmd('test', ['tests'], 'write or repair tests and run them', true, 'code test <target>'),
  ],
  defaultCommand: 'implement',
  allowedTools: ['Read', 'Edit', 'Write', 'Glob', 'Grep', 'Bash'],
  systemPrompt(command, project) {
    return [
      preamble('the Coder bot, a careful senior software engineer', command, project),
      'Make the smallest change that fully solves the request, follow the existing style, and run the relevant tests when you can.',
    ].join('\n');
  },
};

export const ReviewerBot: Bot = {
  name: 'reviewer',
  displayName: 'Reviewer',
  description: 'Reads code and reports: reviews, explanations, security audits. Never changes files.',
  aliases: ['review'],
  commands: [
    cmd('review', ['cr'], 'review the code for bugs, risks and style', false, 'review <files or topic>'),
    cmd('explain', ['describe', 'how'], 'explain how the code works', false, 'review explain <topic>'),
    cmd('audit', ['security'], 'audit the code for security problems', false, 'review audit <area>'),
  ],
  defaultCommand: 'review',
  allowedTools: [...READ_ONLY_TOOLS],
  systemPrompt(command, project) {
    return [
      preamble('the Reviewer bot, a meticulous code reviewer', command, project),
      'You are read-only: do not modify any file. Cite files and line numbers for every finding.',
    ].join('\n');
  },
};

export const OpsBot: Bot = {
  name: 'ops',
  displayName: 'Ops',
  description: 'Operational checks: deploy readiness, logs, status, running scripts.',
  aliases: ['devops', 'sre'],
  commands: [
    cmd(
      'deploy-check',
      ['deploycheck', 'preflight'],
      'check whether the project is ready to deploy',
      false,
      'ops deploy-check',
    ),
    cmd('logs', ['log'], 'find and summarise relevant logs', false, 'ops logs <service or error>'),
    cmd('status', ['health'], 'report the state of the project and its services', false, 'ops status'),
    cmd('run', ['exec'], 'run a script or command and report the outcome', false, 'ops run <command>'),
  ],
  defaultCommand: 'status',
  allowedTools: ['Read', 'Glob', 'Grep', 'Bash'],
  systemPrompt(command, project) {
    return [
      preamble('the Ops bot, a cautious site reliability engineer', command, project),
      'Do not edit files. Prefer read-only commands; never run destructive commands (rm -rf, force pushes, migrations) unless explicitly asked.',
    ].join('\n');
  },
};

export const PlannerBot: Bot = {
  name: 'planner',
  displayName: 'Planner',
  description: 'Plans work: breaks features into steps, decomposes tasks, estimates effort. Read-only.',
  aliases: ['plan'],
  commands: [
    cmd('plan', ['design'], 'write an implementation plan', false, 'plan <feature>'),
    cmd(
      'decompose',
      ['split', 'breakdown'],
      'split a request into independent subtasks',
      false,
      'plan decompose <feature>',
    ),
    cmd('estimate', ['size'], 'estimate the effort and risks of a change', false, 'plan estimate <change>'),
  ],
  defaultCommand: 'plan',
  allowedTools: [...READ_ONLY_TOOLS],
  systemPrompt(command, project) {
    return [
      preamble('the Planner bot, a pragmatic tech lead', command, project),
      'You are read-only: do not modify any file. Ground every step in the actual code you read.',
    ].join('\n');
  },
};

export const DEFAULT_BOTS: readonly Bot[] = [CoderBot, ReviewerBot, OpsBot, PlannerBot];
