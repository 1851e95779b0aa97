import type { Role } from '../db/repositories/types.js';

export const ROLES: readonly Role[] = ['admin', 'developer', 'viewer'];

/** Who may do what, as data. */
export const PERMISSIONS = {
  'task.run': ['admin', 'developer'],
  'task.cancel.own': ['admin', 'developer'],
  'task.cancel.any': ['admin'],
  /** Answering approval requests of tasks someone else started (the requester may always answer). */
  'approval.answer.any': ['admin'],
  'task.archive': ['admin', 'developer'],
  'task.restore': ['admin'],
  'project.register': ['admin'],
  'user.manage': ['admin'],
  view: ['admin', 'developer', 'viewer'],
} as const satisfies Record<string, readonly Role[]>;

export type Permission = keyof typeof PERMISSIONS;

export function can(role: Role, permission: Permission): boolean {
  return (PERMISSIONS[permission] as readonly Role[]).includes(role);
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}
