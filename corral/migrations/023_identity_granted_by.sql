-- 023 identity: deleting a user who once granted a role binding kept failing on user_roles.granted_by (no ON
-- DELETE action). The binding stays; who granted it is still in the audit log.
ALTER TABLE user_roles
    DROP CONSTRAINT user_roles_granted_by_fkey,
    ADD CONSTRAINT user_roles_granted_by_fkey FOREIGN KEY (granted_by) REFERENCES users(id) ON DELETE SET NULL;
