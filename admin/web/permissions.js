// Settings → Permissions (company owner): roles with the Manage Webhooks toggle, and which role
// each member has.

import { h, field, option, switchInput } from './dom.js';
import { showErrors } from './form.js';

const MANAGE = 'manage_webhooks';

export async function permissionsPage(ctx) {
  if (!ctx.isOwner) {
    return h('div', { class: 'page' }, h('h1', {}, 'Permissions'),
      h('p', { class: 'notice' }, 'Only the company owner manages roles and permissions.'));
  }
  const [roles, members] = await Promise.all([ctx.api('GET', '/roles'), ctx.api('GET', '/members')]);

  const roleRow = (r) => {
    const sw = switchInput({
      id: 'perm-' + r.id, checked: r.permissions.includes(MANAGE), label: 'Manage Webhooks for ' + r.name,
      onchange: async (e) => {
        const want = e.target.checked;
        e.target.disabled = true;
        try {
          const perms = r.permissions.filter((p) => p !== MANAGE);
          if (want) perms.push(MANAGE);
          const out = await ctx.api('PUT', `/roles/${r.id}/permissions`, { permissions: perms });
          r.permissions = out.permissions;
          ctx.toast(`${r.name}: Manage Webhooks ${want ? 'granted' : 'revoked'}.`);
        } catch (err) {
          e.target.checked = !want;
          sw.sync();
          ctx.toast('Could not change the permission: ' + err.message, true);
        } finally {
          e.target.disabled = false;
        }
      },
    });
    const count = h('td', { class: 'num' });
    counts.set(r.id, count);
    return h('tr', { 'data-id': r.id }, h('td', { class: 'name-cell' }, h('strong', {}, r.name)), h('td', {}, sw.el), count);
  };

  const counts = new Map();
  const recount = () => {
    for (const [id, cell] of counts) cell.textContent = String(members.items.filter((m) => m.role_id === id).length);
  };
  const roleBody = h('tbody', {}, roles.items.map(roleRow));
  recount();
  const roleName = h('input', { type: 'text', name: 'name', maxlength: '100', autocomplete: 'off' });
  const roleManage = h('input', { type: 'checkbox', id: 'new-role-manage' });
  const summary = h('div', { class: 'summary', role: 'alert', tabindex: '-1' });
  const addForm = h('form', {
    class: 'grid', id: 'role-form', novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const r = await ctx.api('POST', '/roles', { name: roleName.value.trim(), permissions: roleManage.checked ? [MANAGE] : [] });
        ctx.toast(`Role “${r.name}” added.`);
        ctx.go('#/permissions');
      } catch (err) {
        showErrors(addForm, summary, err);
      }
    },
  },
  summary,
  field({ label: 'New role', id: 'new-role-name', name: 'name', control: roleName, required: true }),
  h('div', { class: 'field' }, h('span', { class: 'label', 'aria-hidden': 'true' }, '\u00a0'),
    h('div', { class: 'with-action' },
      h('label', { class: 'check', for: 'new-role-manage' }, roleManage, ' Manage Webhooks'),
      h('button', { type: 'submit', class: 'primary', id: 'add-role' }, '+ Add role'))));

  const memberRow = (m) => {
    let cell;
    if (m.is_owner) {
      cell = h('span', {}, 'Owner ', h('span', { class: 'muted' }, '(every permission)'));
    } else {
      const sel = h('select', {
        id: 'role-of-' + m.id, 'aria-label': 'Role of ' + (m.name || m.email),
        onchange: async () => {
          const roleID = sel.value ? Number(sel.value) : null;
          try {
            await ctx.api('PATCH', '/members/' + m.id, { role_id: roleID });
            m.role_id = roleID;
            recount();
            ctx.toast(`${m.name || m.email} now has ${roleID ? 'the role ' + sel.selectedOptions[0].textContent : 'no role'}.`);
          } catch (err) {
            sel.value = m.role_id ? String(m.role_id) : '';
            ctx.toast('Could not change the role: ' + err.message, true);
          }
        },
      }, option('', 'No role', m.role_id == null), roles.items.map((r) => option(String(r.id), r.name, r.id === m.role_id)));
      cell = sel;
    }
    return h('tr', { 'data-id': m.id }, h('td', {}, h('strong', {}, m.name || '—')), h('td', {}, m.email), h('td', {}, cell));
  };

  return h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('div', {}, h('p', { class: 'crumbs' }, 'Settings'), h('h1', {}, 'Permissions'),
      h('p', { class: 'sub' }, 'Manage Webhooks lets members of a role create, edit, delete, duplicate, test and resync webhooks and OAuth credentials. Everyone else sees them read-only.'))),
    h('section', { class: 'card', 'aria-labelledby': 'roles-title' },
      h('div', { class: 'card-head' }, h('h2', { id: 'roles-title' }, 'Roles')),
      roles.items.length ? h('div', { class: 'table-wrap' }, h('table', { id: 'roles' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Role'), h('th', { scope: 'col' }, 'Manage Webhooks'), h('th', { scope: 'col', class: 'num' }, 'Members'))),
        roleBody)) : h('p', { class: 'card-body muted' }, 'No roles yet.'),
      h('div', { class: 'card-body' }, addForm)),
    h('section', { class: 'card', 'aria-labelledby': 'members-title' },
      h('div', { class: 'card-head' }, h('h2', { id: 'members-title' }, 'Members')),
      h('div', { class: 'table-wrap' }, h('table', { id: 'members' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Email'), h('th', { scope: 'col' }, 'Role'))),
        h('tbody', {}, members.items.map(memberRow))))));
}
