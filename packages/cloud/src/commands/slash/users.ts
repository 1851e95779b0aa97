import { isRole, ROLES } from '../../middleware/permissions.js';
import { noticeMessage } from '../../notifications/blocks.js';
import { escapeMrkdwn } from '../../notifications/mrkdwn.js';
import { audit, reject, requirePermission } from '../context.js';
import { block, type SlashCommand } from './types.js';

const USER_REF = /^<@([A-Z0-9a-z._-]+)(?:\|[^>]*)?>$|^@?([A-Za-z0-9._-]+)$/;

export const users: SlashCommand = {
  name: 'users',
  usage: 'users [role <@user> <admin|developer|viewer>]',
  description: 'list users, or change a role (admin)',
  permission: 'view',
  async run(context, { ctx, args }) {
    const { users } = context.repos;
    const sub = args[0]?.toLowerCase();
    if (!sub || sub === 'list') {
      const all = await users.list();
      const lines = all.map((u) => `• <@${u.id}>${u.name ? ` (${escapeMrkdwn(u.name)})` : ''} — ${u.role}`);
      await ctx.request.respond(block(all.length ? `*Users*\n${lines.join('\n')}` : '*No users yet.*'));
      return;
    }
    if (sub !== 'role')
      return reject(
        context,
        ctx,
        'invalid_command',
        'Usage: `/bm users` or `/bm users role <@user> <admin|developer|viewer>`',
      );
    if (!(await requirePermission(context, ctx, 'user.manage', 'change roles'))) return;
    const ref = USER_REF.exec(args[1] ?? '');
    const userId = ref?.[1] ?? ref?.[2];
    const role = args[2]?.toLowerCase() ?? '';
    if (!userId || !isRole(role)) {
      return reject(
        context,
        ctx,
        'invalid_command',
        `Usage: \`/bm users role <@user> <${ROLES.join('|')}>\``,
      );
    }
    const existing = await users.findById(userId);
    const user = existing ? await users.setRole(userId, role) : await users.upsert({ id: userId, role });
    await audit(context, ctx, 'user.role_changed', 'user', userId, {
      from: existing?.role ?? null,
      to: role,
    });
    await ctx.request.respond(noticeMessage(`<@${user.id}> is now ${user.role}.`, ':busts_in_silhouette:'));
  },
};
